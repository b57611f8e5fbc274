"""Gratuitous ARPs and unsolicited NAs on the wire, paced per interface: the pure
`pacing.Pacer` says what goes now, a loop timer per interface sends the rest when it is due
(global_defs vrrp_garp_interval / vrrp_gna_interval, garp_group's per interface)."""

from __future__ import annotations

import asyncio

from conf.model import Config
from vrrp_child.arp import FrameSender
from vrrp_child.pacing import Intervals, Pacer


class PacedFrames:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.frames = FrameSender()
        self.pacer = Pacer()
        self._pacing: dict[str, asyncio.TimerHandle] = {}

    def configure(self, config: Config) -> None:
        """vrrp_garp_interval / vrrp_gna_interval, and garp_group per interface."""
        g = config.global_defs
        self.pacer.default = Intervals(g.vrrp_garp_interval, g.vrrp_gna_interval)
        self.pacer.intervals = {
            ifname: Intervals(
                group.garp_interval if group.garp_interval is not None else g.vrrp_garp_interval,
                group.gna_interval if group.gna_interval is not None else g.vrrp_gna_interval,
            )
            for group in config.garp_group
            for ifname in group.all_interfaces
        }

    def send(self, ifname: str, frames: list[bytes]) -> None:
        now = self.loop.time()
        ready, wake = self.pacer.offer(ifname, frames, now)
        self._send_paced(ifname, ready, wake)

    def _send_paced(self, ifname: str, ready: list[bytes], wake: float | None) -> None:
        if ready:
            self.frames.send_many(ifname, ready)
        if wake is not None and ifname not in self._pacing:
            self._pacing[ifname] = self.loop.call_at(wake, self._pace, ifname)

    def _pace(self, ifname: str) -> None:
        self._pacing.pop(ifname, None)
        ready, wake = self.pacer.due(ifname, self.loop.time())
        self._send_paced(ifname, ready, wake)

    def cancel(self) -> None:
        """No more paced frames (the stop: the child's last frames already went)."""
        for handle in self._pacing.values():
            handle.cancel()

    def close(self) -> None:
        self.frames.close()
