"""The host's addresses for `ha_suspend`: read once with psutil, then kept current by
rtnetlink address notifications (no polling)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any

import psutil  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR

from watchdog.rtnotify import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RtnlNotifications

log = logging.getLogger("pykeepalived_healthcheckers")


class AddressWatch:
    """`has(address)`, and `changed()` called after a batch of changes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[], None]) -> None:
        self.changed = changed
        self.addresses: Counter[Any] = Counter()  # an address may be on several interfaces
        # subscribed before the first read, so no change between the two is missed
        groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
        self.events = RtnlNotifications(loop, groups, self._batch, "Address", log)
        self._load()

    def _load(self) -> None:
        self.addresses.clear()
        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.family in (socket.AF_INET, socket.AF_INET6):
                    with contextlib.suppress(ValueError):
                        self.addresses[ip_address(a.address.split("%")[0])] += 1

    def has(self, address: object) -> bool:
        return self.addresses.get(address, 0) > 0

    def _batch(self, messages: list[Any], lost: bool) -> None:
        changed = False
        for msg in messages:
            changed |= self._message(msg)
        if lost:  # notifications were dropped (ENOBUFS): read the whole list again
            self._load()
            changed = True
        if changed:
            self.changed()

    def _message(self, msg: Any) -> bool:
        mtype = msg["header"]["type"]
        addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if addr is None:
            return False
        try:
            ip = ip_address(addr)
        except ValueError:
            return False
        if mtype == RTM_NEWADDR:
            self.addresses[ip] += 1
            return True
        if mtype == RTM_DELADDR and self.addresses.get(ip, 0) > 0:
            self.addresses[ip] -= 1
            if not self.addresses[ip]:
                del self.addresses[ip]
            return True
        return False

    def close(self) -> None:
        self.events.close()
