"""Address lines: static_ipaddress, virtual_ipaddress and virtual_ipaddress_excluded
entries (keepalived.conf(5), "Static routes/addresses/rules" and vrrp_instance):

    <IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>]
        [peer <IPADDR>] [home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin]
        [track_group GROUP] [preferred_lft nn|forever] [no_track] [use_vmac]

keepalived skips an address it cannot use, but for most bad options it reports the
option and ignores just that option; we do the same.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conf.diagnostics import Location
from conf.routes import check_interface, check_track_group, dump_as, parse_uint, rt_names
from conf.schema import ConfigValueError, Context
from conf.syntax import Stmt
from conf.values import IPAddress, IPInterface, ip_address

IFNAMSIZ = 16
PREFERRED_LFT_FOREVER = 0xFFFFFFFF


@dataclass(frozen=True)
class IpAddressEntry:
    address: IPInterface  # the address with its prefix length (default /32 or /128)
    brd: IPAddress | str | None = None  # an address, or '+'/'-' (set/clear the host bits)
    dev: str | None = None  # None: the vrrp_instance's interface, or default_interface for static
    scope: int | None = None  # rt_scopes number (global 0, site 200, link 253, host 254, nowhere 255)
    label: str | None = None  # IPv4 only
    peer: IPAddress | None = None
    home: bool = False
    nodad: bool = field(default=False, metadata=dump_as("-nodad"))
    mngtmpaddr: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    track_group: str | None = None  # static addresses only
    preferred_lft: int | None = None  # seconds; PREFERRED_LFT_FOREVER for `forever`
    no_track: bool = False
    use_vmac: bool = False  # VIPs only
    location: Location | None = field(default=None, compare=False, repr=False)

    @property
    def family(self) -> int:
        return self.address.version

    @property
    def ip(self) -> IPAddress:
        return self.address.ip

    @property
    def broadcast(self) -> IPAddress | None:
        """The broadcast address the kernel gets (brd '+' sets the host bits, '-' clears them)."""
        if self.brd == "+":
            return self.address.network.broadcast_address
        if self.brd == "-":
            return self.address.network.network_address
        return self.brd if not isinstance(self.brd, str) else None

    def __str__(self) -> str:
        return str(self.address)


_FLAGS = {
    "home": "home",
    "-nodad": "nodad",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
    "no_track": "no_track",
}


def parse_address_prefix(text: str, loc: Location, ctx: Context) -> IPInterface:
    """ADDR[/LEN]: a bad address is an error; a bad length is reset to the full length."""
    addr_s, slash, plen_s = text.partition("/")
    try:
        addr = ip_address(addr_s)
    except ValueError:
        raise ConfigValueError(f"invalid IP address '{text}'") from None
    full: int = addr.max_prefixlen
    plen = full
    if slash:
        try:
            plen = int(plen_s, 10)
            if not 0 <= plen <= addr.max_prefixlen:
                raise ValueError
        except ValueError:
            ctx.diags.reset(f"invalid prefix length in {text}; using {full}", loc)
            plen = full
    return ipaddress.ip_interface(f"{addr}/{plen}")


class AddressLine:
    """The converter for an address line (`static`: static_ipaddress, which takes
    track_group; otherwise VIPs, which take use_vmac)."""

    takes_block = False
    syntax = (
        "<IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>] [peer <IPADDR>] "
        "[home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin] [no_track] [preferred_lft nn|forever]"
    )

    def __init__(self, static: bool) -> None:
        self.static = static

    def __call__(self, stmt: Stmt, ctx: Context) -> IpAddressEntry:
        return self.parse(stmt.words, stmt.location, ctx)

    def parse(self, words: tuple[str, ...] | list[str], loc: Location, ctx: Context) -> IpAddressEntry:
        address = parse_address_prefix(words[0], loc, ctx)
        v6 = address.version == 6
        v: dict[str, Any] = {}
        i, n = 1, len(words)
        while i < n:
            w = words[i]
            i += 1
            flag = _FLAGS.get(w)
            if flag is not None:
                v[flag] = True
                continue
            if w == "use_vmac" and not self.static:
                v["use_vmac"] = True
                continue
            if w not in ("dev", "scope", "brd", "broadcast", "label", "peer", "preferred_lft") and not (
                w == "track_group" and self.static
            ):
                ctx.diags.reset(f"unknown option '{w}' for ip address {address}; ignored", loc)
                continue
            if i >= n:
                # keepalived stops reading the line here and keeps the address.
                ctx.diags.reset(f"no value after '{w}' for {address}; ignored", loc)
                break
            arg = words[i]
            i += 1
            if w == "dev":
                v["dev"] = arg
            elif w == "scope":
                scope = rt_names("rt_scopes").get(arg)
                if scope is None:
                    try:
                        scope = parse_uint(arg, 0, 255, "scope")
                    except ConfigValueError:
                        ctx.diags.reset(f"invalid scope '{arg}' for {address}; ignored", loc)
                        continue
                v["scope"] = scope
            elif w in ("brd", "broadcast"):
                if v6:
                    raise ConfigValueError(f"a broadcast address cannot be given for the IPv6 address {address}")
                if arg in ("+", "-"):
                    if address.network.prefixlen >= 31:
                        ctx.diags.reset(
                            f"prefix length {address.network.prefixlen} too long for broadcast "
                            f"'{arg}' on {address}; ignored",
                            loc,
                        )
                        continue
                    v["brd"] = arg
                else:
                    try:
                        brd = ip_address(arg)
                    except ValueError:
                        raise ConfigValueError(f"invalid broadcast address '{arg}'") from None
                    if brd.version != 4:
                        raise ConfigValueError(f"broadcast address {arg} is not IPv4")
                    v["brd"] = brd
            elif w == "label":
                if v6:
                    ctx.diags.reset(f"a label cannot be given for IPv6 addresses ({address}); label ignored", loc)
                    continue
                if len(arg) >= IFNAMSIZ:
                    raise ConfigValueError(f"address label {arg} is longer than {IFNAMSIZ - 1} characters")
                v["label"] = arg
            elif w == "peer":
                try:
                    peer = ip_address(arg)
                except ValueError:
                    raise ConfigValueError(f"invalid peer address '{arg}'") from None
                if peer.version != address.version:
                    raise ConfigValueError(f"peer address {arg} does not match the address family")
                v["peer"] = peer
            elif w == "preferred_lft":
                if arg == "forever":
                    v["preferred_lft"] = PREFERRED_LFT_FOREVER
                else:
                    try:
                        v["preferred_lft"] = parse_uint(arg, what="preferred_lft")
                    except ConfigValueError:
                        ctx.diags.reset(f"preferred_lft {arg} is invalid; ignored", loc)
            else:  # track_group (static only)
                v["track_group"] = check_track_group(arg, ctx, loc)
        if "dev" in v:
            check_interface(v["dev"], f"ip address {address}", ctx, loc)
        return IpAddressEntry(address, location=loc, **v)


ADDRESS_LINE: Callable[[Stmt, Context], IpAddressEntry] = AddressLine(static=False)
"""For virtual_ipaddress and virtual_ipaddress_excluded."""
STATIC_ADDRESS_LINE: Callable[[Stmt, Context], IpAddressEntry] = AddressLine(static=True)
