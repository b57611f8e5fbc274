"""DNS_CHECK against a dnspython-based responder on loopback."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from ipaddress import ip_address
from typing import TypeVar

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st

from checker_child.checks import dns as dnscheck
from checker_child.checks.base import ProbeEnv, Result, Target
from conf.checkers import DnsCheck
from tests.checker_child.servers_extra import (
    Listening,
    dns_server,
    fixed,
    free_udp_port,
    noerror,
    rcode,
    silent,
    wrong_id_then,
)

T = TypeVar("T")
ENV = ProbeEnv()


def run(coro: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro()

    return asyncio.run(main())


async def check(srv: Listening, checker: DnsCheck | None = None, timeout: float = 2.0) -> Result:
    return await dnscheck.probe(checker or DnsCheck(), ENV)(Target(srv.address, srv.port, timeout=timeout))


# ---------------------------------------------------------------- pure parts


def test_query_is_keepalived_s() -> None:
    # keepalived's query for the defaults: RD, one question ". SOA IN", no EDNS.
    assert dnscheck.build_query(DnsCheck()) == bytes.fromhex("000001000001000000000000" + "00" + "0006" + "0001")
    wire = dnscheck.build_query(DnsCheck(type="AAAA", name="www.example.com"))
    msg = dns.message.from_wire(dnscheck.with_id(wire, 0x1234))
    assert msg.id == 0x1234 and msg.flags == dns.flags.RD and msg.edns < 0
    assert str(msg.question[0].name) == "www.example.com." and msg.question[0].rdtype == dns.rdatatype.AAAA


def test_bad_name_is_a_failed_result_not_an_exception() -> None:
    checker = DnsCheck(name="a" * 70 + ".example.com")

    async def body() -> Result:
        async with dns_server(noerror) as srv:
            return await check(srv, checker)

    result = run(body)
    assert not result.ok and "cannot query name" in result.detail


def test_judge() -> None:
    header = struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 0)
    assert dnscheck.judge(header, 7) == 0
    assert dnscheck.judge(header, 8) is None  # another id
    assert dnscheck.judge(struct.pack("!HH", 7, 0x0100) + bytes(8), 7) is None  # a query, not a response
    assert dnscheck.judge(struct.pack("!HH", 7, 0x8183) + bytes(8), 7) == 3
    assert dnscheck.judge(header[:11], 7) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 0xFFFF))
def test_judge_never_raises(data: bytes, qid: int) -> None:
    got = dnscheck.judge(data, qid)
    assert got is None or 0 <= got <= 15


# ---------------------------------------------------------------- real responder


def test_noerror_passes_and_the_query_is_what_was_configured() -> None:
    async def body() -> tuple[Result, list[bytes]]:
        async with dns_server(noerror) as srv:
            return await check(srv, DnsCheck(type="A", name="www.example.test")), srv.seen

    result, seen = run(body)
    assert result.ok, result.detail
    assert result.detail.startswith("DNS_CHECK ([127.0.0.1]:udp:")
    (query,) = [dns.message.from_wire(s) for s in seen]
    assert str(query.question[0].name) == "www.example.test."
    assert query.question[0].rdtype == dns.rdatatype.A


def test_ipv6_soa_passes() -> None:
    async def body() -> Result:
        async with dns_server(noerror, "::1") as srv:
            return await check(srv)

    result = run(body)
    assert result.ok, result.detail


def test_nodata_passes_as_in_keepalived() -> None:
    # NOERROR without answer records: keepalived only looks at the rcode.
    async def body() -> Result:
        async with dns_server(rcode(0)) as srv:
            return await check(srv)

    assert run(body).ok


def test_header_only_noerror_passes() -> None:
    async def body() -> Result:
        async with dns_server(rcode(0, header_only=True)) as srv:
            return await check(srv)

    assert run(body).ok


def test_nxdomain_and_servfail_fail() -> None:
    async def body() -> list[Result]:
        out = []
        for code in (dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL, dns.rcode.REFUSED):
            async with dns_server(rcode(code)) as srv:
                out.append(await check(srv))
        return out

    nx, servfail, refused = run(body)
    assert not nx.ok and "read error occurred. (rcode = 3, NXDOMAIN)" in nx.detail
    assert not servfail.ok and "(rcode = 2, SERVFAIL)" in servfail.detail
    assert not refused.ok and "(rcode = 5" in refused.detail


def test_wrong_id_and_queries_are_ignored_then_the_answer_counts() -> None:
    async def body() -> Result:
        async with dns_server(wrong_id_then(noerror)) as srv:
            return await check(srv)

    result = run(body)
    assert result.ok, result.detail


def test_garbage_only_is_a_timeout() -> None:
    async def body() -> tuple[Result, float]:
        async with dns_server(fixed(b"\xde\xad\xbe\xef" * 8, b"x")) as srv:
            t0 = time.monotonic()
            result = await check(srv, timeout=0.5)
            return result, time.monotonic() - t0

    result, took = run(body)
    assert not result.ok
    assert "read timeout from socket" in result.detail and "2 datagram(s)" in result.detail
    assert 0.4 < took < 3.0


def test_silent_server_times_out() -> None:
    async def body() -> Result:
        async with dns_server(silent) as srv:
            return await check(srv, timeout=0.3)

    result = run(body)
    assert not result.ok and result.detail.endswith("read timeout from socket")


def test_closed_port_fails_at_once() -> None:
    async def body() -> tuple[Result, float]:
        port = free_udp_port()
        t0 = time.monotonic()
        result = await dnscheck.probe(DnsCheck(), ENV)(Target(ip_address("127.0.0.1"), port, timeout=3))
        return result, time.monotonic() - t0

    result, took = run(body)
    assert not result.ok
    assert "failed to read socket; errno 111 (Connection refused)" in result.detail
    assert took < 1.5


def test_default_port_is_53() -> None:
    checker = DnsCheck()

    async def body() -> Result:
        # Nothing listens on 127.0.0.1:53 here (or a resolver does: either way port 53 was used).
        return await dnscheck.probe(checker, ENV)(Target(ip_address("127.0.0.1"), None, timeout=0.3))

    result = run(body)
    assert "[127.0.0.1]:udp:53" in result.detail


def test_bindto_is_used() -> None:
    async def body() -> tuple[Result, list[str]]:
        async with dns_server(noerror) as srv:
            target = replace(Target(srv.address, srv.port, timeout=2), bindto=ip_address("127.0.0.2"))
            return await dnscheck.probe(DnsCheck(), ENV)(target), srv.peers

    result, peers = run(body)
    assert result.ok, result.detail
    assert peers == ["127.0.0.2"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=4))
def test_garbage_replies_never_raise(datagrams: list[bytes]) -> None:
    async def body() -> Result:
        async with dns_server(fixed(*datagrams)) as srv:
            return await check(srv, timeout=0.05)

    result = run(body)
    assert isinstance(result, Result)
