"""Checks for the pykeepalived <-> keepalived 2.2.7 interop tests (test_vrrp_interop.py): what each
daemon's log and statistics say about the other's adverts, the IP header fields tshark sees that the lab's
`decode_vrrp` leaves out (TOS / traffic class, DF, the Ethernet destination), and who held the VIP in a
window of the sampler's record.
"""

from __future__ import annotations

import ipaddress
import re
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from labkit.lab import Daemon, LabError, Sample, VrrpPacket, decode_vrrp, wait_for

# keepalived 2.2.7's receive-side complaints (vrrp_check_packet and friends, `strings keepalived`): any of
# them in a log means the other side's adverts were not what it expects. "Setting unicast VRRPv3 checksum
# to old version" is keepalived noticing a v2-style v3 checksum: RFC 5798 wants the pseudo-header form.
RX_PROBLEMS = re.compile(
    r"vrrp packet too (?:short|long)"
    r"|invalid TTL/HL|TTL/HL \d+ not in range"
    r"|wrong version"
    r"|received a \d+ auth, expecting"
    r"|received an invalid passwd"
    r"|Invalid auth type"
    r"|IPSEC-AH|AH header"
    r"|advertisement interval mismatch"
    r"|Invalid packet type"
    r"|unexpected ip number count"
    r"|ip_tot_len mismatch"
    r"|not present in MASTER advert"
    r"|Invalid VRRPv[23] checksum"
    r"|Setting unicast VRRPv3 checksum to old version"
    r"|CONFIGURATION ERROR"
    r"|send advert error"
    r"|VRID mismatch"
    r"|Invalid advert"  # pykeepalived's packet-level drop line
    r"|Traceback|Error:|ERROR",
    re.IGNORECASE,
)

# keepalived's SIGUSR2 dump: every counter of a problem with a received advert.
ERROR_COUNTERS = (
    "Packet Errors/Length",
    "Packet Errors/TTL",
    "Packet Errors/Invalid Type",
    "Packet Errors/Advertisement Interval",
    "Packet Errors/Address List",
    "Authentication Errors/Invalid Type",
    "Authentication Errors/Type Mismatch",
    "Authentication Errors/Failure",
)


def rx_problems(log_text: str) -> list[str]:
    """The log lines that report a received advert as bad (or a crash)."""
    return [line for line in log_text.splitlines() if RX_PROBLEMS.search(line)]


def parse_stats(text: str) -> dict[str, dict[str, int]]:
    """keepalived's stats dump (pykeepalived writes the same layout): instance -> {"Section/Name": n}.
    Lines directly under an instance are keyed by their own name ("Became master")."""
    out: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    section = ""
    for line in text.splitlines():
        if m := re.fullmatch(r"VRRP Instance: (\S+)", line.strip()):
            current = out.setdefault(m.group(1), {})
            section = ""
            continue
        if current is None or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        name, _, value = line.strip().partition(":")
        value = value.strip()
        if not value:
            section = name
        elif indent <= 2:
            current[name] = int(value)
            section = ""
        else:
            current[f"{section}/{name}"] = int(value)
    return out


def dump_stats(daemon: Daemon, timeout: float = 5.0) -> dict[str, dict[str, int]]:
    """SIGUSR2 to the daemon, then its stats file (in $TMPDIR, the daemon's own directory), once the last
    counter of every instance is written."""
    path = daemon.workdir / "keepalived.stats"  # both daemons' name
    path.unlink(missing_ok=True)
    daemon.signal(signal.SIGUSR2)

    def complete() -> dict[str, dict[str, int]] | None:
        try:
            stats = parse_stats(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if stats and all("Priority Zero/Sent" in s for s in stats.values()):
            return stats
        return None

    return wait_for(f"{daemon.kind}'s stats in {path}", complete, timeout)


class WireHeader(TypedDict):
    """What tshark says of one VRRP packet's lower layers."""

    tos: int  # IPv4 TOS byte, or the IPv6 traffic class
    dont_fragment: bool | None  # IPv4 only
    eth_dst: str


_HEADER_FIELDS = ("ip.dsfield", "ipv6.tclass", "ip.flags.df", "eth.dst")


def wire_headers(pcap: Path) -> list[WireHeader]:
    """The IP/Ethernet fields of the pcap's VRRP packets, in the order `decode_vrrp` returns them
    (the same `-Y vrrp` filter over the same file)."""
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", "vrrp", "-T", "fields", "-E", "separator=/t"]
    for f in _HEADER_FIELDS:
        argv += ["-e", f]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise LabError(f"tshark failed on {pcap}: {res.stderr.strip()}")
    out: list[WireHeader] = []
    for line in res.stdout.splitlines():
        v = dict(zip(_HEADER_FIELDS, line.split("\t"), strict=False))
        tos = v.get("ip.dsfield") or v.get("ipv6.tclass") or "-1"
        df = v.get("ip.flags.df", "")
        out.append(
            WireHeader(
                tos=int(tos, 0),
                dont_fragment=None if not df else df in ("1", "True"),
                eth_dst=v.get("eth.dst", ""),
            )
        )
    return out


@dataclass(frozen=True)
class WirePacket:
    """A decoded VRRP packet with its IP/Ethernet header fields."""

    vrrp: VrrpPacket
    header: WireHeader

    def signature(self) -> tuple[object, ...]:
        """Everything two correct senders of one virtual router put on the wire alike (but the interval,
        where they are configured differently): all but the source, destination, priority and checksum."""
        p, h = self.vrrp, self.header
        return (
            p["family"],
            p["version"],
            p["type"],
            p["ttl"],
            h["tos"],
            p["vrid"],
            p["count"],
            tuple(str(ipaddress.ip_address(a)) for a in p["addresses"]),
            p["adver_int"],
            p["auth_type"],
            p["auth_string"],
        )


def capture_packets(pcap: Path) -> list[WirePacket]:
    packets = decode_vrrp(pcap)
    headers = wire_headers(pcap)
    if len(packets) != len(headers):
        raise LabError(f"tshark gave {len(packets)} VRRP packets but {len(headers)} headers in {pcap}")
    return [WirePacket(p, h) for p, h in zip(packets, headers, strict=True)]


def holders_between(
    samples: Sequence[Sample], since: float, until: float | None = None, *, ignore: Collection[int] = ()
) -> set[tuple[int, ...]]:
    """The distinct holder sets seen in [since, until], leaving out the nodes in `ignore`."""
    return {
        tuple(h for h in s.holders if h not in ignore)
        for s in samples
        if s.t >= since and (until is None or s.t <= until)
    }


def longest_spell(
    samples: Sequence[Sample], bad: Callable[[tuple[int, ...]], bool], since: float, until: float | None = None
) -> float:
    """The longest time the holders were `bad`, from the first such sample to the next good one (0.0 if
    never seen; a spell still running at `until` ends there)."""
    longest = 0.0
    start: float | None = None
    last = since
    for s in samples:
        if s.t < since or (until is not None and s.t > until):
            continue
        last = s.t
        if bad(s.holders):
            start = s.t if start is None else start
        elif start is not None:
            longest = max(longest, s.t - start)
            start = None
    if start is not None:
        longest = max(longest, last - start)
    return longest


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))
