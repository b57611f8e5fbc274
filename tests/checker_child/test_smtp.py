"""SMTP_CHECK against real servers on loopback: aiosmtpd for a good one and one that
refuses HELO, small scripted servers for bad banners, multi-line replies and silence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from pathlib import Path
from typing import TypeVar

import pytest

import conf
from checker_child.checks import smtp
from checker_child.checks.base import ProbeEnv, Result, Target
from conf.checkers import DEFAULT_SMTP_HELO, SmtpCheck, SmtpHost
from tests.checker_child.servers import free_port, silent_server
from tests.checker_child.servers_extra import Listening, smtp_script, smtp_server

T = TypeVar("T")
ENV = ProbeEnv()


def run(coro: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro()

    return asyncio.run(main())


def target_of(srv: Listening, timeout: float = 3.0) -> Target:
    return Target(srv.address, srv.port, timeout=timeout)


async def check(srv: Listening, checker: SmtpCheck | None = None, timeout: float = 3.0) -> Result:
    return await smtp.probe(checker or SmtpCheck(), ENV)(target_of(srv, timeout))


# ---------------------------------------------------------------- pure parts


def test_reply_code() -> None:
    assert smtp.reply_code([b"220 mx ESMTP"]) == 220
    assert smtp.reply_code([b"220"]) == 220
    assert smtp.reply_code([b"250-mx", b"250-PIPELINING", b"250 HELP"]) == 250
    assert smtp.reply_code([b"250-mx", b"251 x"]) is None
    assert smtp.reply_code([b"hello"]) is None
    assert smtp.reply_code([b"22"]) is None
    assert smtp.reply_code([]) is None


def test_last_line() -> None:
    assert smtp.is_last_line(b"220 ready")
    assert smtp.is_last_line(b"220")
    assert not smtp.is_last_line(b"220-more")
    assert smtp.is_last_line(b"garbage-line")


def test_host_targets_fall_back_to_the_checker_target() -> None:
    base = Target(ip_address("10.0.0.1"), None, bindto=ip_address("10.0.0.9"), fwmark=7, timeout=4.0)
    checker = SmtpCheck(
        host=(
            SmtpHost(connect_ip=ip_address("10.0.0.2"), connect_port=2525, connect_timeout=1.5),
            SmtpHost(bind_if="eth1"),
        )
    )
    first, second = smtp.targets(checker, base)
    assert (first.address, first.port, first.timeout, first.bindto, first.fwmark) == (
        ip_address("10.0.0.2"),
        2525,
        1.5,
        ip_address("10.0.0.9"),
        7,
    )
    assert (second.address, second.port, second.bind_if, second.timeout) == (ip_address("10.0.0.1"), 25, "eth1", 4.0)
    # Without host blocks: the given target, port 25 when the real server has none.
    (only,) = smtp.targets(SmtpCheck(), base)
    assert only.port == 25 and only.address == base.address


def test_host_blocks_from_a_config(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(
        """
virtual_server 10.0.0.100 25 {
    protocol TCP
    real_server 10.0.0.1 25 {
        SMTP_CHECK {
            connect_timeout 4
            helo_name mail.test
            host {
                connect_ip 10.0.0.2
                connect_port 2525
            }
            host {
                connect_ip 10.0.0.3
                connect_timeout 2
            }
        }
    }
}
"""
    )
    loaded = conf.load(str(path))
    assert loaded.config is not None
    (checker,) = loaded.config.virtual_server[0].real_server[0].checkers
    assert isinstance(checker, SmtpCheck)
    got = smtp.targets(checker, Target(ip_address("10.0.0.1"), 25, timeout=checker.connect_timeout or 5.0))
    assert [(str(t.address), t.port, t.timeout) for t in got] == [("10.0.0.2", 2525, 4.0), ("10.0.0.3", 25, 2.0)]


# ---------------------------------------------------------------- real servers


def test_good_server_passes_with_default_helo() -> None:
    async def body() -> tuple[Result, list[str]]:
        async with smtp_server() as srv:
            return await check(srv), srv.helo

    result, helo = run(body)
    assert result.ok, result.detail
    assert helo == [DEFAULT_SMTP_HELO]
    assert result.detail.startswith("Remote SMTP server [127.0.0.1]:tcp:")
    assert result.detail.endswith("succeed on service.")


def test_good_server_on_ipv6_with_helo_name() -> None:
    async def body() -> tuple[Result, list[str]]:
        async with smtp_server("::1") as srv:
            return await check(srv, SmtpCheck(helo_name="lb1.example.test")), srv.helo

    result, helo = run(body)
    assert result.ok, result.detail
    assert helo == ["lb1.example.test"]


def test_exact_bytes_on_the_wire() -> None:
    async def body() -> tuple[Result, list[bytes]]:
        async with smtp_script(["220 mx"]) as srv:
            return await check(srv, SmtpCheck(helo_name="h.test")), srv.seen

    result, seen = run(body)
    assert result.ok, result.detail
    assert seen == [b"HELO h.test\r\n", b"QUIT\r\n"]


def test_554_banner_fails() -> None:
    async def body() -> Result:
        async with smtp_script(["554 no service here"]) as srv:
            return await check(srv)

    result = run(body)
    assert not result.ok
    assert result.detail.startswith("SMTP_CHECK Bad greeting banner from server [127.0.0.1]:")
    assert "554 no service here" in result.detail


def test_helo_refused_fails() -> None:
    async def body() -> Result:
        async with smtp_server(helo_reply="550 go away") as srv:
            return await check(srv)

    result = run(body)
    assert not result.ok
    assert result.detail.startswith("SMTP_CHECK Bad HELO response from server")
    assert "550 go away" in result.detail


def test_multiline_banner_and_helo_reply_pass() -> None:
    async def body() -> Result:
        async with smtp_script(["220-mx.test welcome", "220 ESMTP"], reply=["250-mx.test", "250 8BITMIME"]) as srv:
            return await check(srv)

    result = run(body)
    assert result.ok, result.detail


def test_garbage_banner_fails() -> None:
    async def body() -> Result:
        async with smtp_script(["HTTP/1.1 400 Bad Request"]) as srv:
            return await check(srv)

    result = run(body)
    assert not result.ok and "Bad greeting banner" in result.detail


def test_close_after_banner_is_a_read_failure() -> None:
    async def body() -> Result:
        async with smtp_script(["220 mx"], close_after_banner=True) as srv:
            return await check(srv)

    result = run(body)
    assert not result.ok
    assert result.detail.startswith("SMTP_CHECK ")
    assert "server [127.0.0.1]:" in result.detail
    # Depending on timing our HELO meets a closed socket (write/read failure or reset).
    assert any(w in result.detail for w in ("Read failure", "Write failure")), result.detail


def test_silent_server_times_out_within_connect_timeout() -> None:
    async def body() -> tuple[Result, float]:
        async with silent_server() as srv:
            t0 = time.monotonic()
            result = await smtp.probe(SmtpCheck(), ENV)(Target(ip_address(srv.host), srv.port, timeout=0.5))
            return result, time.monotonic() - t0

    result, took = run(body)
    assert not result.ok
    assert result.detail.startswith("SMTP_CHECK Read timeout from server [127.0.0.1]:")
    assert 0.4 < took < 3.0


def test_refused() -> None:
    port = free_port()
    result = run(lambda: smtp.probe(SmtpCheck(), ENV)(Target(ip_address("127.0.0.1"), port, timeout=2)))
    assert not result.ok
    assert result.detail == f"SMTP_CHECK Error connecting to server [127.0.0.1]:{port} (connection refused)"


def test_every_host_must_pass() -> None:
    async def body() -> tuple[Result, Result, int]:
        async with smtp_server() as good, smtp_script(["554 busy"]) as bad, smtp_server() as good2:
            hosts_bad = SmtpCheck(
                host=(
                    SmtpHost(connect_ip=good.address, connect_port=good.port),
                    SmtpHost(connect_ip=bad.address, connect_port=bad.port),
                    SmtpHost(connect_ip=good2.address, connect_port=good2.port),
                )
            )
            hosts_good = SmtpCheck(
                host=(
                    SmtpHost(connect_ip=good.address, connect_port=good.port),
                    SmtpHost(connect_ip=good2.address, connect_port=good2.port),
                )
            )
            # The checker's own target is a port where nothing listens: with host blocks
            # only the hosts are checked.
            base = Target(ip_address("127.0.0.1"), free_port(), timeout=2)
            r_bad = await smtp.probe(hosts_bad, ENV)(base)
            accepted_after_bad = good2.accepted
            r_good = await smtp.probe(hosts_good, ENV)(base)
            return r_bad, r_good, accepted_after_bad

    r_bad, r_good, good2_accepted = run(body)
    assert not r_bad.ok and "Bad greeting banner" in r_bad.detail
    assert good2_accepted == 0  # stops at the first host that fails
    assert r_good.ok, r_good.detail


def test_never_raises_on_odd_servers() -> None:
    """Replies cut short, huge lines, binary noise: always a Result."""
    banners = [[""], ["2"], ["220" + "x" * 5000], ["\x00\xff\xfe"], ["220-" + "a"] * 200]

    async def body() -> list[Result]:
        out = []
        for banner in banners:
            async with smtp_script(banner, close_after_banner=True) as srv:
                out.append(await check(srv, timeout=1.0))
        return out

    results = run(body)
    assert all(isinstance(r, Result) for r in results)
    assert not any(r.ok for r in results)


@pytest.mark.parametrize("helo", ["mail.example.org", "x"])
def test_helo_name_is_sent(helo: str) -> None:
    async def body() -> list[str]:
        async with smtp_server() as srv:
            await check(srv, SmtpCheck(helo_name=helo))
            return srv.helo

    assert run(body) == [helo]
