"""Pacing of gratuitous ARPs and unsolicited NAs per interface (global_defs
`vrrp_garp_interval` / `vrrp_gna_interval`, or a `garp_group`'s `garp_interval` /
`gna_interval` for its interfaces): some switches drop or rate-limit bursts, so keepalived
can space them out. With an interval of 0 (the default) frames go out at once.

`Pacer` is pure: frames go in, and it says which to send now and when to call it again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

ETH_P_IPV6 = b"\x86\xdd"


def is_na(frame: bytes) -> bool:
    """An IPv6 frame (an unsolicited NA) rather than an ARP."""
    return frame[12:14] == ETH_P_IPV6


@dataclass(frozen=True)
class Intervals:
    garp: float = 0.0  # seconds between two gratuitous ARPs on one interface
    gna: float = 0.0  # seconds between two unsolicited NAs on one interface


@dataclass
class _Queue:
    frames: deque[bytes] = field(default_factory=deque)
    next_at: float = 0.0


@dataclass
class Pacer:
    """Per (interface, kind) queues; `kind` is "arp" or "na"."""

    intervals: dict[str, Intervals] = field(default_factory=dict)  # interface -> its intervals
    default: Intervals = field(default_factory=Intervals)
    queues: dict[tuple[str, str], _Queue] = field(default_factory=dict)

    def interval(self, ifname: str, kind: str) -> float:
        iv = self.intervals.get(ifname, self.default)
        return iv.gna if kind == "na" else iv.garp

    def offer(self, ifname: str, frames: Iterable[bytes], now: float) -> tuple[list[bytes], float | None]:
        """Queue `frames`; returns (frames to send now, when to call `due` next or None)."""
        ready: list[bytes] = []
        for frame in frames:
            kind = "na" if is_na(frame) else "arp"
            if self.interval(ifname, kind) <= 0:
                ready.append(frame)
            else:
                self.queues.setdefault((ifname, kind), _Queue()).frames.append(frame)
        more, wake = self.due(ifname, now)
        return ready + more, wake

    def due(self, ifname: str, now: float) -> tuple[list[bytes], float | None]:
        """The queued frames of `ifname` whose time has come, and the next wake-up."""
        out: list[bytes] = []
        wake: float | None = None
        for kind in ("arp", "na"):
            q = self.queues.get((ifname, kind))
            if q is None:
                continue
            step = self.interval(ifname, kind)
            while q.frames and q.next_at <= now:
                out.append(q.frames.popleft())
                q.next_at = max(q.next_at, now) + step
            if q.frames:
                wake = q.next_at if wake is None else min(wake, q.next_at)
        return out, wake
