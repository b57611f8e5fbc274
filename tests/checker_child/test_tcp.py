"""TCP_CHECK against real listeners on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Coroutine, Iterator
from ipaddress import ip_address
from typing import Any, TypeVar

from checker_child.checks import tcp
from checker_child.checks.base import ProbeEnv, Result, Target
from conf.checkers import TcpCheck
from tests.checker_child.servers import free_port, silent_server, tcp_listener

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def check(target: Target) -> Result:
    return await tcp.probe(TcpCheck(), ProbeEnv())(target)


def test_connect_succeeds_v4_and_v6() -> None:
    async def main() -> None:
        for host in ("127.0.0.1", "::1"):
            async with tcp_listener(host) as srv:
                r = await check(Target(srv.address, srv.port, timeout=2))
                assert r.ok, r
                host_text = f"[{host}]"
                assert r.detail == f"TCP connection to {host_text}:tcp:{srv.port} success."
                assert await srv.wait_for(lambda s: s.accepted == 1)

    run(main())


def test_sends_nothing_and_closes() -> None:
    async def main() -> None:
        async with silent_server() as srv:
            r = await check(Target(srv.address, srv.port, timeout=2))
            assert r.ok
            assert await srv.wait_for(lambda s: s.accepted == 1)
            await asyncio.sleep(0.2)
            assert srv.received == 0

    run(main())


def test_refused_fails_fast() -> None:
    port = free_port()
    t0 = time.monotonic()
    r = run(check(Target(ip_address("127.0.0.1"), port, timeout=5)))
    assert not r.ok
    assert r.detail == f"TCP connection to [127.0.0.1]:tcp:{port} failed. (connection refused)"
    assert time.monotonic() - t0 < 2


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listener that never accepts, with its queue filled: further SYNs are dropped,
    so a connect waits until its timeout."""
    lsock = socket.socket()
    fillers: list[socket.socket] = []
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        port = lsock.getsockname()[1]
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.2)
        yield port
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_timeout_within_bound() -> None:
    with full_backlog() as port:
        t0 = time.monotonic()
        r = run(check(Target(ip_address("127.0.0.1"), port, timeout=0.5)))
        elapsed = time.monotonic() - t0
    assert not r.ok
    assert r.detail == f"TCP connection to [127.0.0.1]:tcp:{port} timeout."
    assert 0.4 < elapsed < 3


def test_bindto_and_bind_port() -> None:
    async def main() -> None:
        async with tcp_listener() as srv:
            r = await check(Target(srv.address, srv.port, bindto=ip_address("127.0.0.2"), timeout=2))
            assert r.ok, r
            assert await srv.wait_for(lambda s: len(s.peers) == 1)
            assert srv.peers[0][0] == "127.0.0.2"
            port = free_port("127.0.0.2")
            r = await check(Target(srv.address, srv.port, bindto=ip_address("127.0.0.2"), bind_port=port, timeout=2))
            assert r.ok, r
            assert await srv.wait_for(lambda s: len(s.peers) == 2)
            assert srv.peers[1] == ("127.0.0.2", port)

    run(main())


def test_bind_to_missing_interface_fails() -> None:
    async def main() -> None:
        async with tcp_listener() as srv:
            r = await check(Target(srv.address, srv.port, bind_if="nosuchif0", timeout=2))
            assert not r.ok
            assert "failed" in r.detail

    run(main())
