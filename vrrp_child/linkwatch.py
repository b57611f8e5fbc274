"""Interface up/down from the kernel's link notifications (rtnetlink RTMGRP_LINK), not
by polling: an instance whose interface goes down enters FAULT at once, and leaves it
when the link is back (keepalived: netlink link events; `linkbeat_use_polling` is not
implemented). Messages are decoded with pyroute2's rtnetlink marshal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK

from watchdog.rtnotify import RTMGRP_LINK, RtnlNotifications

log = logging.getLogger("pykeepalived_vrrp")

IFF_UP = 0x1
IFF_RUNNING = 0x40


def link_up(flags: int) -> bool:
    """Usable for VRRP: administratively up and with carrier (IFF_RUNNING)."""
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


class LinkWatch:
    """Calls `changed(ifname, up)` when a watched interface goes down or comes back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[str, bool], None]) -> None:
        self.changed = changed
        self.state: dict[str, bool] = {}  # watched interface -> last known up
        # the other kinds of messages the socket carries once more groups joined (holdwatch)
        self.others: Callable[[list[Any]], None] | None = None
        # lost notifications (ENOBUFS) need nothing more: the next ones still say the truth
        self.events = RtnlNotifications(loop, RTMGRP_LINK, lambda msgs, _lost: self._messages(msgs), "Link", log)

    def watch(self, ifname: str, up: bool = True) -> None:
        self.state.setdefault(ifname, up)

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
        up = False if mtype == RTM_DELLINK else (mtype == RTM_NEWLINK and link_up(msg["flags"]))
        if up != self.state[name]:
            self.state[name] = up
            log.info("Netlink reports %s %s", name, "up" if up else "down")
            self.changed(name, up)

    def close(self) -> None:
        self.events.close()
