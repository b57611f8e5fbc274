"""Interface up/down from the kernel's link notifications (rtnetlink RTMGRP_LINK), not
by polling: an instance whose interface goes down enters FAULT at once, and leaves it
when the link is back (keepalived: netlink link events; `linkbeat_use_polling` is not
implemented). Messages are decoded with pyroute2's rtnetlink codecs (watchdog.rtmarshal).

`interface_up_down_delays` debounces an interface as keepalived 2.2.7's
update_interface_flags does: a change of up-ness is acted upon only after the interface's
down (or up) delay, and is forgotten if the interface goes back before it expires
("Delay timer for eth0 cancelled"). An interface never seen up, and a deleted one, change
at once. `link_delays` holds keepalived's limit on the delays (vrrp_complete_instance).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_DELLINK, RTM_DELROUTE, RTM_DELRULE, RTM_NEWLINK

from conf.static import IfUpDownDelay
from conf.vrrp import VrrpInstance
from watchdog.rtnotify import RTMGRP_LINK, RtnlNotifications

log = logging.getLogger("pykeepalived_vrrp")

# What the child acts on: links here, deletions in vrrp_child.holdwatch. Not our own
# RTM_NEWADDR for each VIP added (the address group is joined for RTM_DELADDR).
NOTIFIED = frozenset({RTM_NEWLINK, RTM_DELLINK, RTM_DELADDR, RTM_DELROUTE, RTM_DELRULE})

IFF_UP = 0x1
IFF_RUNNING = 0x40


def link_up(flags: int) -> bool:
    """Usable for VRRP: administratively up and with carrier (IFF_RUNNING)."""
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


@dataclass(frozen=True)
class Delays:
    """Seconds an interface must stay down (up) before its instances are told."""

    down: float = 0.0
    up: float = 0.0


def link_delays(
    lines: Iterable[IfUpDownDelay], instances: Iterable[VrrpInstance]
) -> tuple[dict[str, Delays], list[str]]:
    """The delays per interface, and keepalived's log lines for those it reduced.

    A delay must stay below (down_timer_adverts - 1) advert intervals of every instance on
    the interface, else a backup would take over before this master enters FAULT: keepalived
    (check_debounce_timers) sets such a delay to that bound minus advert_int / 256, and with
    down_timer_adverts 1 drops both delays. A VMAC instance uses its base interface's."""
    delays = {line.interface: Delays(line.down_delay, line.up_delay) for line in lines}
    notes: list[str] = []
    for inst in instances:
        d = delays.get(inst.interface or "")
        if d is None or not (d.down or d.up):
            continue
        dta = inst.down_timer_adverts
        if dta == 1:
            notes.append(f"{inst.name}: cannot use debounce timers with down_timer_adverts = 1 - resetting")
            delays[inst.interface or ""] = Delays()
            continue
        bound = (dta - 1) * inst.advert_int
        if d.down >= bound or d.up >= bound:
            below = bound - inst.advert_int / 256
            delays[inst.interface or ""] = Delays(min(d.down, below), min(d.up, below))
            # keepalived's words, its typo included
            notes.append(
                f"{inst.name}: interface {inst.interface} debounce timer(s) not less that {dta - 1} * advert_int"
                " - resetting"
            )
    return delays, notes


@dataclass
class _Pending:
    up: bool
    flags: int
    timer: asyncio.TimerHandle


class LinkWatch:
    """Calls `changed(ifname, up)` when a watched interface goes down or comes back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[str, bool], None]) -> None:
        self.changed = changed
        self.state: dict[str, bool] = {}  # watched interface -> last known up
        self.delays: dict[str, Delays] = {}  # interface_up_down_delays
        self.flags: dict[str, int] = {}  # watched interface -> flags acted upon (for the log)
        self.seen_up: set[str] = set()  # keepalived delays only an interface once seen up
        self.pending: dict[str, _Pending] = {}  # a delayed change of up-ness
        self.loop = loop
        # the other kinds of messages the socket carries once more groups joined (holdwatch)
        self.others: Callable[[list[Any]], None] | None = None
        # lost notifications (ENOBUFS) need nothing more: the next ones still say the truth
        self.events = RtnlNotifications(
            loop, RTMGRP_LINK, lambda msgs, _lost: self._messages(msgs), "Link", log, types=NOTIFIED
        )

    def watch(self, ifname: str, up: bool = True, flags: int | None = None) -> None:
        self.state.setdefault(ifname, up)
        if flags is not None:
            self.flags.setdefault(ifname, flags)
        if up:
            self.seen_up.add(ifname)

    def _messages(self, messages: list[Any]) -> None:
        rest = []
        for msg in messages:
            if msg["header"]["type"] in (RTM_NEWLINK, RTM_DELLINK):
                self._message(msg)
            else:
                rest.append(msg)
        if rest and self.others is not None:
            self.others(rest)

    def _message(self, msg: Any) -> None:
        mtype = msg["header"]["type"]
        name = msg.get_attr("IFLA_IFNAME")
        if name not in self.state:
            return
        flags = 0 if mtype == RTM_DELLINK else int(msg["flags"])
        up = mtype == RTM_NEWLINK and link_up(flags)
        pending = self.pending.get(name)
        if pending is not None and flags == self.flags.get(name, flags if up == self.state[name] else -1):
            # back to the very flags acted upon: keepalived drops the delayed change silently
            pending.timer.cancel()
            del self.pending[name]
            return
        if pending is not None:
            if pending.up == up:
                pending.flags = flags  # the same change still waits: it will act on these flags
                return
            # back to the state acted upon before the delay ran out: nothing happens
            pending.timer.cancel()
            del self.pending[name]
            log.info("Delay timer for %s cancelled", name)
        if up == self.state[name]:
            self.flags[name] = flags
            return
        d = self.delays.get(name, Delays())
        delay = d.up if up else d.down
        if delay > 0 and name in self.seen_up and mtype != RTM_DELLINK:
            timer = self.loop.call_later(delay, self._delayed, name)
            self.pending[name] = _Pending(up, flags, timer)
            log.info(
                "%s: Adding flags change from 0x%x to 0x%x delay by %d",
                name,
                self.flags.get(name, 0),
                flags,
                round(delay * 1_000_000),  # keepalived logs microseconds
            )
            return
        self._apply(name, up, flags)

    def _delayed(self, name: str) -> None:
        pending = self.pending.pop(name, None)
        if pending is not None:
            self._apply(name, pending.up, pending.flags)

    def _apply(self, name: str, up: bool, flags: int) -> None:
        self.state[name] = up
        self.flags[name] = flags
        if up:
            self.seen_up.add(name)
        log.info("Netlink reports %s %s", name, "up" if up else "down")
        self.changed(name, up)

    def configure(self, delays: dict[str, Delays]) -> None:
        """New delays (start-up, reload); a change already waiting keeps its timer."""
        self.delays = delays

    def close(self) -> None:
        for pending in self.pending.values():
            pending.timer.cancel()
        self.pending.clear()
        self.events.close()
