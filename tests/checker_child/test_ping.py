"""PING_CHECK: loopback answers (IPv4 and IPv6, ping and raw sockets); an address of a
namespace pair that nobody owns does not; ping_group_range is opened and put back."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker_child.checks import ping
from checker_child.checks.base import ProbeEnv, Result, Target
from conf.checkers import PingCheck
from labkit.lab import Lab
from watchdog.checksum import checksum

T = TypeVar("T")
ENV = ProbeEnv()
V4 = Target(ip_address("127.0.0.1"), None, timeout=2.0)
V6 = Target(ip_address("::1"), None, timeout=2.0)


def run(coro: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro()

    return asyncio.run(main())


def check(target: Target) -> Result:
    return run(lambda: ping.probe(PingCheck(), ENV)(target))


# ---------------------------------------------------------------- pure parts


def test_echo_request_v4_checksum_verifies() -> None:
    pkt = ping.echo_request(socket.AF_INET, 0x1234, 7)
    assert len(pkt) == 8 + 128
    assert pkt[:1] == b"\x08" and struct.unpack("!HH", pkt[4:8]) == (0x1234, 7)
    assert checksum(pkt) == 0  # a packet with a right checksum sums to 0
    assert pkt[8:].startswith(b"keepalived check - keepalived check - ")


def test_echo_request_v6_leaves_the_checksum_to_the_kernel() -> None:
    pkt = ping.echo_request(socket.AF_INET6, 1, 2)
    assert pkt[0] == 128 and pkt[2:4] == b"\0\0"


def test_parse_reply() -> None:
    icmp = struct.pack("!BBHHH", 0, 0, 0, 5, 6) + b"data"
    assert ping.parse_reply(socket.AF_INET, icmp, raw=False) == (0, 5, 6)
    ip_header = bytes([0x45]) + bytes(19)
    assert ping.parse_reply(socket.AF_INET, ip_header + icmp, raw=True) == (0, 5, 6)
    assert ping.parse_reply(socket.AF_INET, b"\x45" + bytes(10), raw=True) is None
    assert ping.parse_reply(socket.AF_INET6, icmp[:7], raw=True) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([socket.AF_INET, socket.AF_INET6]), st.booleans())
def test_parse_reply_never_raises(data: bytes, family: int, raw: bool) -> None:
    got = ping.parse_reply(family, data, raw=raw)
    assert got is None or all(0 <= v <= 0xFFFF for v in got)


def test_group_range_is_opened_and_put_back(tmp_path: Path) -> None:
    path = tmp_path / "ping_group_range"
    path.write_text("1\t0\n")  # the kernel's default: nobody
    try:
        assert ping.allow_ping_sockets(path)
        assert path.read_text().split() == ["0", "0"]
        ping.restore_ping_group_range(path)
        assert path.read_text().split() == ["1", "0"]
        path.write_text("0\t2147483647\n")  # already open: left alone, nothing to restore
        assert ping.allow_ping_sockets(path)
        ping.restore_ping_group_range(path)
        assert path.read_text() == "0\t2147483647\n"
    finally:
        ping.restore_ping_group_range(path)


# ---------------------------------------------------------------- loopback


def test_loopback_v4_answers() -> None:
    result = check(V4)
    assert result.ok, result.detail
    assert result.detail == "ICMP connection to [127.0.0.1]:tcp:0 success."


def test_loopback_v6_answers() -> None:
    result = check(V6)
    assert result.ok, result.detail


@pytest.mark.parametrize("target", [V4, V6], ids=["v4", "v6"])
def test_raw_socket_fallback_answers(target: Target) -> None:
    if os.geteuid() != 0:
        pytest.skip("raw sockets need root")
    run(lambda: ping.echo(target, raw=True))  # raises TimeoutError if no reply


def test_bindto_and_fwmark_are_accepted() -> None:
    result = check(replace(V4, bindto=ip_address("127.0.0.2"), fwmark=42))
    assert result.ok, result.detail


def test_unroutable_fails_without_raising() -> None:
    # An IPv6 address with no route from here (no default route for 2001:db8::/32 in a
    # test host is not guaranteed, so accept either a send error or a timeout).
    result = check(Target(ip_address("100::1"), None, timeout=0.3))  # RFC 6666 discard prefix
    assert not result.ok
    assert result.detail.startswith("ICMP connection to")


# ---------------------------------------------------------------- namespaces


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    with Lab.pair(workdir=tmp_path / "lab") as lab:
        yield lab


@pytest.mark.lab
def test_neighbour_answers_and_unowned_address_does_not(lab: Lab) -> None:
    """From node 1: node 2 (192.0.2.2, 2001:db8::2) answers; 192.0.2.99 is on the link
    but nobody owns it. A fresh namespace starts with ping_group_range "1 0", so this
    also exercises allow_ping_sockets (and restores it)."""
    node = lab.nodes[0]

    async def body() -> tuple[Result, Result, Result, float]:
        probe = ping.probe(PingCheck(), ENV)
        up4 = await probe(Target(ip_address("192.0.2.2"), None, timeout=3.0))
        up6 = await probe(Target(ip_address("2001:db8::2"), None, timeout=3.0))
        t0 = time.monotonic()
        down = await probe(Target(ip_address("192.0.2.99"), None, timeout=1.0))
        return up4, up6, down, time.monotonic() - t0

    with node.inside():
        before = ping.read_group_range()
        try:
            up4, up6, down, took = run(body)
        finally:
            ping.restore_ping_group_range()
        after = ping.read_group_range()
    assert up4.ok, up4.detail
    assert up6.ok, up6.detail
    assert not down.ok and down.detail == "ICMP connection to address [192.0.2.99]:tcp:0 timeout."
    assert 0.8 < took < 3.0
    assert before == after


@pytest.mark.lab
def test_bind_if_limits_the_echo_to_that_interface(lab: Lab) -> None:
    node = lab.nodes[0]

    async def body() -> tuple[Result, Result]:
        probe = ping.probe(PingCheck(), ENV)
        via_va = await probe(Target(ip_address("192.0.2.2"), None, bind_if="va", timeout=3.0))
        via_lo = await probe(Target(ip_address("192.0.2.2"), None, bind_if="lo", timeout=0.5))
        return via_va, via_lo

    with node.inside():
        try:
            via_va, via_lo = run(body)
        finally:
            ping.restore_ping_group_range()
    assert via_va.ok, via_va.detail
    assert not via_lo.ok


# ---------------------------------------------------------------- scale


def test_thousand_concurrent_pings_to_loopback() -> None:
    """1,000 checks in flight at once, each on its own ping socket. Prints wall and CPU
    time; bounds are generous (2 loaded cores)."""
    n = 1000
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        pytest.skip(f"needs {n + 100} file descriptors, have {soft}")

    async def body() -> list[Result]:
        probe = ping.probe(PingCheck(), ENV)
        return await asyncio.gather(*(probe(V4) for _ in range(n)))

    cpu0, t0 = time.process_time(), time.monotonic()
    results = run(body)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    print(f"\n{n} concurrent PING_CHECK probes to 127.0.0.1: wall {wall * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms")
    assert sum(r.ok for r in results) == n, [r.detail for r in results if not r.ok][:3]
    assert wall < 10.0
