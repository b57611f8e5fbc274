"""rtnetlink notifications on the loop, inside a lab namespace: a link and an address
added with iproute2 arrive as decoded messages, in batches."""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from pyroute2.netlink.rtnl import RTM_DELADDR

from labkit.lab import Lab
from tests.lab.conftest import lab2, lab_tools, make_lab  # noqa: F401 (fixtures)
from watchdog.rtnotify import RTMGRP_IPV4_IFADDR, RTMGRP_LINK, RtnlNotifications, wanted


def test_links_and_addresses_arrive_decoded(lab2: Lab) -> None:  # noqa: F811 (the fixture)
    node = lab2.node(1)
    seen: list[tuple[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def batch(messages: list[Any], lost: bool) -> None:
            assert not lost
            for m in messages:
                seen.append((m["header"]["type"], m.get_attr("IFLA_IFNAME") or m.get_attr("IFA_LOCAL")))

        events = RtnlNotifications(loop, RTMGRP_LINK | RTMGRP_IPV4_IFADDR, batch, "Test", logging.getLogger("t"))
        try:
            await asyncio.to_thread(node.ip, "link", "add", "pkv0", "type", "veth", "peer", "name", "pkv1")
            await asyncio.to_thread(node.ip, "addr", "add", "198.18.0.1/32", "dev", "pkv0")
            for _ in range(200):
                if any(v == "198.18.0.1" for _, v in seen):
                    break
                await asyncio.sleep(0.01)
        finally:
            events.close()

    with node.inside():
        asyncio.run(main())
    names = [v for _, v in seen]
    assert "pkv0" in names and "198.18.0.1" in names, seen


def test_only_the_wanted_types_are_decoded(lab2: Lab) -> None:  # noqa: F811 (the fixture)
    # The VRRP child's own RTM_NEWADDR (one per VIP it adds) are skipped undecoded; a deletion is not.
    node = lab2.node(1)
    seen: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def batch(messages: list[Any], lost: bool) -> None:
            seen.extend(m["header"]["type"] for m in messages)

        events = RtnlNotifications(
            loop, RTMGRP_IPV4_IFADDR, batch, "Test", logging.getLogger("t"), types=frozenset({RTM_DELADDR})
        )
        try:
            await asyncio.to_thread(node.ip, "addr", "add", "198.18.0.2/32", "dev", "eth0")
            await asyncio.to_thread(node.ip, "addr", "del", "198.18.0.2/32", "dev", "eth0")
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
        finally:
            events.close()

    with node.inside():
        asyncio.run(main())
    assert seen == [RTM_DELADDR]


def test_wanted_keeps_whole_aligned_messages() -> None:
    def msg(mtype: int, body: bytes) -> bytes:
        length = 16 + len(body)
        raw = struct.pack("=IHHII", length, mtype, 0, 1, 0) + body
        return raw + b"\0" * (-length % 4)

    a, b, c = msg(20, b"abc"), msg(21, b"defgh"), msg(16, b"")
    assert wanted(a + b + c, frozenset({21, 16})) == b + c
    assert wanted(a, frozenset({21})) == b""
    assert wanted(b"\x08\0\0\0", frozenset({21})) == b""  # shorter than a header: nothing
