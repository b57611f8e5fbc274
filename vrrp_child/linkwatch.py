"""Interface up/down from the kernel's link notifications (rtnetlink RTMGRP_LINK), not
by polling: an instance whose interface goes down enters FAULT at once, and leaves it
when the link is back (keepalived: netlink link events; `linkbeat_use_polling` is not
implemented). Messages are decoded with pyroute2's rtnetlink marshal.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

log = logging.getLogger("pykeepalived_vrrp")

RTMGRP_LINK = 0x1
IFF_UP = 0x1
IFF_RUNNING = 0x40
_RCVBUF = 1 << 20


def link_up(flags: int) -> bool:
    """Usable for VRRP: administratively up and with carrier (IFF_RUNNING)."""
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


class LinkWatch:
    """Calls `changed(ifname, up)` when a watched interface goes down or comes back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[str, bool], None]) -> None:
        self.loop = loop
        self.changed = changed
        self.state: dict[str, bool] = {}  # watched interface -> last known up
        self._marshal = MarshalRtnl()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        self.sock.bind((0, RTMGRP_LINK))
        loop.add_reader(self.sock.fileno(), self._readable)

    def watch(self, ifname: str, up: bool = True) -> None:
        self.state.setdefault(ifname, up)

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:
                # ENOBUFS: notifications were lost; the next ones still say the truth.
                log.warning("Link notifications: %s", e.strerror)
                return
            try:
                messages = self._marshal.parse(data)
            except Exception as e:  # a message pyroute2 cannot decode must not stop the loop
                log.warning("Cannot decode a link notification: %s", e)
                continue
            for msg in messages:
                self._message(msg)

    def _message(self, msg: object) -> None:
        mtype = msg["header"]["type"]  # type: ignore[index]
        name = msg.get_attr("IFLA_IFNAME")  # type: ignore[attr-defined]
        if name not in self.state:
            return
        up = False if mtype == RTM_DELLINK else (mtype == RTM_NEWLINK and link_up(msg["flags"]))  # type: ignore[index]
        if up != self.state[name]:
            self.state[name] = up
            log.info("Netlink reports %s %s", name, "up" if up else "down")
            self.changed(name, up)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
