"""Whether this process may open what the VRRP child cannot work without.

keepalived 2.2.7, measured as `nobody` (setpriv, `-n -l -G -f CONF`): the VRRP child's first
privileged step is its shared gratuitous ARP channel (an AF_PACKET socket); refused, it logs
`Error 1 while registering gratuitous ARP shared channel` (`gratuitous NDISC` when every
instance is IPv6), then `Stopped`, and exits KEEPALIVED_EXIT_MISSING_PERMISSION (4); the
parent logs `pid N exited with permanent error missing permission. Terminating` and exits 4.
No instance ever runs, so no VIP is announced by a daemon that could never hold one.

We probe the same way before anything else starts (the AF_PACKET channel first, then the
raw VRRP socket of each family), so the child fails before it says ready, not later.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vrrp_child.packet import VRRP_PROTO

PERMISSION_ERRNOS = frozenset({errno.EPERM, errno.EACCES})

# What the child needs; said in the error so the operator knows what to grant.
NEEDED = "CAP_NET_RAW and CAP_NET_ADMIN (run it as root)"


def is_permission(e: OSError) -> bool:
    return e.errno in PERMISSION_ERRNOS


@dataclass(frozen=True)
class Refused:
    channel: str  # keepalived's name for it: "gratuitous ARP", "gratuitous NDISC", "VRRP IPv4"
    error: OSError

    def keepalived_line(self) -> str:
        """keepalived's own log line for a refused shared channel (vrrp_arp.c / vrrp_ndisc.c)."""
        return f"Error {self.error.errno or 0} while registering {self.channel} shared channel"

    def reason(self) -> str:
        what = self.error.strerror or str(self.error)
        return f"cannot open the {self.channel} channel: {what}; the VRRP child needs {NEEDED}"


def garp_channel(families: Iterable[int]) -> str:
    """keepalived registers the ARP channel when any instance is IPv4, else the NDISC one."""
    return "gratuitous ARP" if 4 in set(families) else "gratuitous NDISC"


Opener = Callable[[int, int, int], socket.socket]


def probe(families: Iterable[int], opener: Opener = socket.socket) -> Refused | None:
    """Open and close each socket the instances of `families` need; the first refusal for
    lack of permission, or None. Other errors are left to the instance that meets them."""
    fams = sorted(set(families))
    if not fams:
        return None
    wanted: list[tuple[str, int, int, int]] = [(garp_channel(fams), socket.AF_PACKET, socket.SOCK_RAW, 0)]
    for fam in fams:
        wanted.append((f"VRRP IPv{fam}", socket.AF_INET if fam == 4 else socket.AF_INET6, socket.SOCK_RAW, VRRP_PROTO))
    for channel, af, kind, proto in wanted:
        try:
            opener(af, kind | socket.SOCK_CLOEXEC, proto).close()
        except OSError as e:
            if is_permission(e):
                return Refused(channel, e)
    return None
