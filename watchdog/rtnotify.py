"""rtnetlink notifications on the child's loop: a NETLINK_ROUTE socket bound to multicast
groups, read when readable, decoded with pyroute2's rtnetlink codecs (watchdog.rtmarshal). Shared by the VRRP
child's link watch (RTMGRP_LINK) and the checker's address watch (ha_suspend).

With `types`, messages of other types are skipped by their header before decoding: the
VRRP child hears its own RTM_NEWADDR for every VIP it adds (it subscribes to the address
group for RTM_DELADDR), and pyroute2 took a fifth of a 250-instance takeover's CPU to
decode them."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from watchdog.rtmarshal import RtnlMarshal

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
_RCVBUF = 1 << 20
_SOL_NETLINK = 270
_NETLINK_ADD_MEMBERSHIP = 1
_HDR = struct.Struct("=IH")  # nlmsghdr's length and type


class RtnlNotifications:
    """Calls `batch(messages, lost)` once per readable event with the messages read; `lost`
    is True when the kernel dropped some (ENOBUFS), so the receiver can re-read the truth.
    The socket is bound before the caller reads its initial state: nothing falls between."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        groups: int,
        batch: Callable[[list[Any], bool], None],
        what: str,
        log: logging.Logger,
        *,
        types: frozenset[int] | None = None,
    ) -> None:
        self.loop = loop
        self.types = types
        self.batch = batch
        self.what = what  # "Link", "Address": in the log lines
        self.log = log
        self._marshal = RtnlMarshal()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        self.sock.bind((0, groups))
        loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        messages: list[Any] = []
        lost = False
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as e:
                self.log.warning("%s notifications: %s", self.what, e.strerror)
                lost = True
                continue
            if self.types is not None:
                data = wanted(data, self.types)
                if not data:
                    continue
            try:
                messages.extend(self._marshal.parse(data))
            except Exception as e:  # a message pyroute2 cannot decode must not stop the loop
                self.log.warning("Cannot decode a %s notification: %s", self.what.lower(), e)
        if messages or lost:
            self.batch(messages, lost)

    def join(self, groups: int) -> None:
        """Add multicast groups (an RTMGRP_ mask) to the bound socket: one socket carries
        every kind of notification the child reads."""
        for bit in range(32):
            if groups & (1 << bit):
                self.sock.setsockopt(_SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, bit + 1)

    def close(self) -> None:
        try:
            self.loop.remove_reader(self.sock.fileno())
        finally:
            self.sock.close()


def wanted(data: bytes, types: frozenset[int]) -> bytes:
    """The messages of one netlink datagram whose type is in `types` (by their nlmsghdr; each
    message is 4-byte aligned), the others left out undecoded."""
    kept: list[bytes] = []
    off = 0
    while off + _HDR.size <= len(data):
        length, mtype = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        end = off + ((length + 3) & ~3)
        if mtype in types:
            kept.append(data[off:end])
        off = end
    return b"".join(kept)
