"""UDP_CHECK against real UDP servers on loopback (echo, silent, fixed replies, closed
ports) and, in a namespace pair, a host that does not answer ARP (ICMP host unreachable)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker_child.checks import udp
from checker_child.checks.base import ProbeEnv, Result, Target
from conf.checkers import ReplyHex, ReplyPattern, UdpCheck
from labkit.lab import Lab
from tests.checker_child.servers_extra import Listening, echo, fixed, free_udp_port, silent, udp_server

T = TypeVar("T")
ENV = ProbeEnv()


def run(coro: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro()

    return asyncio.run(main())


def pattern(text: str) -> ReplyPattern:
    data, mask = ReplyHex().words(tuple(text.split()))
    return ReplyPattern(data, mask)


async def check(srv: Listening, checker: UdpCheck, timeout: float = 1.0) -> Result:
    return await udp.probe(checker, ENV)(Target(srv.address, srv.port, timeout=timeout))


# ---------------------------------------------------------------- pure parts


def test_reply_ok() -> None:
    p = pattern("4f4b")  # "OK"
    assert udp.reply_ok(b"OK", p, 0, 255)
    assert udp.reply_ok(b"OK and more", p, 0, 255)
    assert udp.reply_ok(b"O", p, 0, 255)  # only min(len(reply), len(pattern)) bytes compared
    assert not udp.reply_ok(b"NO", p, 0, 255)
    assert not udp.reply_ok(b"OK", p, 3, 255)  # too short
    assert not udp.reply_ok(b"OK!!", p, 0, 3)  # too long
    wild = pattern("4X 4b")
    assert udp.reply_ok(b"AK", wild, 0, 255) and udp.reply_ok(b"OK", wild, 0, 255)
    assert not udp.reply_ok(b"\x50K", wild, 0, 255)
    # A bare require_reply: any reply at all, whatever its length (keepalived checks
    # the lengths only when there is data to compare).
    assert udp.reply_ok(b"x" * 300, ReplyPattern(), 0, 255)
    assert udp.reply_ok(b"", ReplyPattern(), 5, 255)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.binary(min_size=1, max_size=20), st.integers(0, 100), st.integers(0, 300))
def test_reply_ok_is_the_masked_prefix_rule(reply: bytes, data: bytes, lo: int, hi: int) -> None:
    p = ReplyPattern(data, b"\xff" * len(data))
    n = min(len(reply), len(data))
    expect = lo <= len(reply) <= hi and reply[:n] == data[:n]
    assert udp.reply_ok(reply, p, lo, hi) is expect


def test_default_payload_is_keepalived_s_filler() -> None:
    assert udp.DEFAULT_PAYLOAD == b"keepalived check - keepalived ch"


# ---------------------------------------------------------------- real servers


def test_echo_without_require_reply_passes_and_payloads_are_sent() -> None:
    async def body() -> tuple[Result, Result, list[bytes]]:
        async with udp_server(echo) as srv:
            a = await check(srv, UdpCheck())
            b = await check(srv, UdpCheck(payload=bytes.fromhex("ab120f03")))
            return a, b, srv.seen

    a, b, seen = run(body)
    assert a.ok and b.ok
    assert a.detail.startswith("UDP connection to [127.0.0.1]:udp:") and a.detail.endswith("success.")
    assert seen == [udp.DEFAULT_PAYLOAD, bytes.fromhex("ab120f03")]


def test_silence_passes_without_require_reply_and_fails_with_it() -> None:
    async def body() -> tuple[Result, Result, float]:
        async with udp_server(silent) as srv:
            t0 = time.monotonic()
            quiet = await check(srv, UdpCheck(), timeout=0.3)
            took = time.monotonic() - t0
            needed = await check(srv, UdpCheck(require_reply=ReplyPattern()), timeout=0.3)
            return quiet, needed, took

    quiet, needed, took = run(body)
    assert quiet.ok and "(no reply)" in quiet.detail
    assert 0.2 < took < 2.0
    assert not needed.ok and needed.detail.endswith("failed. (no reply)")


@pytest.mark.parametrize("require", [None, ReplyPattern()])
def test_closed_port_fails_at_once(require: ReplyPattern | None) -> None:
    async def body() -> tuple[Result, float]:
        port = free_udp_port()
        t0 = time.monotonic()
        result = await udp.probe(UdpCheck(require_reply=require), ENV)(Target(ip_address("127.0.0.1"), port, timeout=3))
        return result, time.monotonic() - t0

    result, took = run(body)
    assert not result.ok
    assert result.detail.endswith("failed. (connection refused)")
    assert took < 1.5


def test_closed_port_ipv6() -> None:
    port = free_udp_port("::1")
    result = run(lambda: udp.probe(UdpCheck(), ENV)(Target(ip_address("::1"), port, timeout=3)))
    assert not result.ok and "connection refused" in result.detail


def test_required_reply_matching() -> None:
    async def body() -> list[Result]:
        out = []
        async with udp_server(fixed(b"+OK ready")) as srv:
            for text, lo, hi in [
                ("2b4f4b", 0, 255),  # "+OK": passes
                ("2bXX4b", 0, 255),  # wildcards
                ("2d45", 0, 255),  # "-E": mismatch
                ("2b4f4b", 10, 255),  # 9 bytes is too short
                ("2b4f4b", 0, 8),  # ... and too long
            ]:
                checker = UdpCheck(require_reply=pattern(text), min_reply_length=lo, max_reply_length=hi)
                out.append(await check(srv, checker))
        return out

    ok, wild, mismatch, short, long = run(body)
    assert ok.ok and wild.ok
    for r in (mismatch, short, long):
        assert not r.ok and "reply data mismatch." in r.detail


def test_bare_require_reply_takes_a_long_reply() -> None:
    async def body() -> Result:
        async with udp_server(fixed(b"x" * 1000)) as srv:
            return await check(srv, UdpCheck(require_reply=ReplyPattern()))

    assert run(body).ok


def test_ipv6_echo_with_pattern() -> None:
    async def body() -> Result:
        async with udp_server(echo, "::1") as srv:
            return await check(srv, UdpCheck(payload=b"PING", require_reply=pattern("50494e47")))

    result = run(body)
    assert result.ok, result.detail


@settings(max_examples=40, deadline=None)
# min_size=1: asyncio does not send empty datagrams.
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=3), st.binary(max_size=8))
def test_garbage_replies_never_raise(replies: list[bytes], want: bytes) -> None:
    checker = UdpCheck(require_reply=ReplyPattern(want, b"\xff" * len(want)))

    async def body() -> Result:
        async with udp_server(fixed(*replies)) as srv:
            return await check(srv, checker, timeout=0.2)

    result = run(body)
    assert isinstance(result, Result)
    first = replies[0]
    n = min(len(first), len(want))
    assert result.ok is ((not want or len(first) <= 255) and first[:n] == want[:n])


def test_thousand_concurrent_probes_to_loopback() -> None:
    """1,000 UDP_CHECKs with require_reply in flight at once against one echo server in
    the same process. Prints wall and CPU time (the server's included)."""
    n = 1000

    async def body() -> list[Result]:
        async with udp_server(echo) as srv:
            probe = udp.probe(UdpCheck(require_reply=ReplyPattern()), ENV)
            target = Target(srv.address, srv.port, timeout=5.0)
            return await asyncio.gather(*(probe(target) for _ in range(n)))

    cpu0, t0 = time.process_time(), time.monotonic()
    results = run(body)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    print(f"\n{n} concurrent UDP_CHECK probes to an echo server: wall {wall * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms")
    assert sum(r.ok for r in results) == n, [r.detail for r in results if not r.ok][:3]
    assert wall < 10.0


# ---------------------------------------------------------------- namespaces


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Lab.pair(workdir=tmp_path / "lab") as lab:
        yield lab


@pytest.mark.lab
def test_host_unreachable_fails_even_without_require_reply(lab: Lab) -> None:
    """192.0.2.99 is on node 1's subnet but nobody answers ARP for it: the kernel reports
    ICMP host unreachable (after ~3 s of ARP), which IP_RECVERR turns into a failure.
    Without IP_RECVERR a connected UDP socket ignores it and silence would pass."""
    node = lab.nodes[0]
    target = Target(ip_address("192.0.2.99"), 9, timeout=8.0)

    async def body() -> tuple[Result, float]:
        t0 = time.monotonic()
        result = await udp.probe(UdpCheck(), ENV)(target)
        return result, time.monotonic() - t0

    with node.inside():
        result, took = run(body)
    assert not result.ok
    assert "no route to host" in result.detail
    assert took < 7.5
