"""TCP_CHECK (checks.tcp.TcpConnect, the one implementation) against real listeners on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import time
from collections.abc import Coroutine, Iterator
from ipaddress import ip_address
from typing import Any, TypeVar

from checker_child.checks.base import Result, Target
from checker_child.checks.tcp import ConnectPool, TcpConnect, TcpTarget
from labkit.listeners import AcceptCloseSockets
from tests.checker_child.servers import free_port, silent_server, tcp_listener

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def accept_close_listener(loop: asyncio.AbstractEventLoop) -> tuple[AcceptCloseSockets, int]:
    """A listener on 127.0.0.1 that accepts and closes, as the benchmark's real servers."""
    listener = AcceptCloseSockets(loop)
    port = free_port()
    listener.listen("127.0.0.1", port)
    return listener, port


async def check(target: Target) -> Result:
    """One attempt, as the workload starts it: the result arrives through a callback."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Result] = loop.create_future()
    pool = ConnectPool(loop)
    conn = TcpConnect(pool, TcpTarget(target), answer.set_result)
    conn.start()
    assert not answer.done(), "the result is handed over on a later loop pass, never from start()"
    try:
        return await answer
    finally:
        conn.cancel()
        pool.close()


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


def test_cancel_stops_an_attempt_without_a_result() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        results: list[Result] = []
        with full_backlog() as port:
            pool = ConnectPool(loop)
            conn = TcpConnect(pool, TcpTarget(Target(ip_address("127.0.0.1"), port, timeout=0.3)), results.append)
            conn.start()
            assert conn.sock is not None and len(pool.pending) == 1
            conn.cancel()
            assert conn.sock is None and pool.pending == {}
            await asyncio.sleep(0.6)
            pool.close()
        assert results == []

    run(main())


def test_a_reused_connect_times_out_by_its_own_attempt() -> None:
    """A checker's TcpConnect serves attempt after attempt: the deadline of a cancelled
    attempt must not end the next one."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        results: list[tuple[float, Result]] = []
        with full_backlog() as port:
            pool = ConnectPool(loop)
            target = TcpTarget(Target(ip_address("127.0.0.1"), port, timeout=0.5))
            conn = TcpConnect(pool, target, lambda r: results.append((loop.time(), r)))
            conn.start()
            await asyncio.sleep(0.3)
            conn.cancel()
            second = loop.time()
            conn.start()
            await asyncio.sleep(0.9)
            pool.close()
        assert len(results) == 1
        at, result = results[0]
        assert result.detail == f"TCP connection to [127.0.0.1]:tcp:{port} timeout."
        assert 0.45 < at - second < 0.8

    run(main())


def test_many_connects_at_a_small_cost() -> None:
    """2,000 attempts through one pool against a local listener all pass; a generous
    bound on their CPU (the goal, 10,000 a second in a fifth of a core, lives in
    bench.checker_bench): under 0.5 ms each, the listener's accepts included."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener, port = accept_close_listener(loop)
        pool = ConnectPool(loop)
        results: list[Result] = []
        n = 2000
        finished = asyncio.Event()

        def done(r: Result) -> None:
            results.append(r)
            if len(results) == n:
                finished.set()

        target = TcpTarget(Target(ip_address("127.0.0.1"), port, timeout=5))
        cpu0 = time.process_time()
        for i in range(n):
            TcpConnect(pool, target, done).start()
            if i % 50 == 49:
                await asyncio.sleep(0)  # let the listener accept
        await asyncio.wait_for(finished.wait(), 30)
        cpu = time.process_time() - cpu0
        pool.close()
        listener.close()
        assert all(r.ok for r in results), results[:3]
        print(f"\n{n} TCP_CHECK attempts: {cpu / n * 1e6:.0f} us of CPU each, the listener's accepts included")
        assert cpu / n < 0.0005, f"{cpu / n * 1e6:.0f} us of CPU per check"

    run(main())


def test_a_connect_that_cannot_be_watched_fails_the_attempt() -> None:
    """epoll refuses more descriptors (fs.epoll.max_user_watches): the attempt fails, through
    the callback as always, and nothing is left behind."""

    class FullEpoll:
        def __init__(self, real: Any) -> None:
            self.real = real

        def register(self, fd: int, events: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        results: list[Result] = []
        with full_backlog() as port:
            pool = ConnectPool(loop)
            pool.epoll = FullEpoll(pool.epoll)  # type: ignore[assignment]
            conn = TcpConnect(pool, TcpTarget(Target(ip_address("127.0.0.1"), port, timeout=1)), results.append)
            conn.start()
            assert results == [] and conn.sock is None and pool.pending == {}
            await asyncio.sleep(0.05)
            pool.close()
        assert [r.ok for r in results] == [False]
        assert results[0].detail.startswith(f"TCP connection to [127.0.0.1]:tcp:{port} failed. (no space left")

    run(main())


def test_ended_connects_leave_the_deadlines_as_they_fall_due() -> None:
    """A connect that ended leaves a stale deadline entry; entries leave as their deadlines
    pass, a few per timer pass (not every stale one at the first expiry: 30,000 at once at
    10,000 checks a second), and the timer stops when none is left."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener, port = accept_close_listener(loop)
        pool = ConnectPool(loop)
        results: list[Result] = []
        conn = TcpConnect(pool, TcpTarget(Target(ip_address("127.0.0.1"), port, timeout=0.5)), results.append)
        t0 = loop.time()
        for i in range(4):  # deadlines at about 0.5, 0.7, 0.9, 1.1
            await asyncio.sleep(max(0.0, t0 + 0.2 * i - loop.time()))
            conn.start()
        await asyncio.sleep(t0 + 0.8 - loop.time())
        left = sorted(round(d - t0, 1) for fifo in pool.deadlines.values() for d, _, _ in fifo)
        await asyncio.sleep(t0 + 1.3 - loop.time())
        after = sum(len(fifo) for fifo in pool.deadlines.values())
        timer = pool._timer_at
        pool.close()
        listener.close()
        assert [r.ok for r in results] == [True] * 4
        assert left == [0.9, 1.1]
        assert after == 0 and timer is None

    run(main())
