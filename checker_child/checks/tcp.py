"""TCP_CHECK: the real server passes when a TCP connection opens within connect_timeout.

As keepalived does (check_tcp.c), the connection is closed at once: no data is sent
and nothing is read. Failures are described with keepalived's own words
("TCP connection to [10.0.0.1]:tcp:80 failed.") so that log watchers keep working.

10,000 checks a second must cost a small part of a core (issue 15), so the check runs
without a coroutine and without the loop's per-descriptor machinery:

- `TcpTarget`: what never changes between attempts, prepared once per checker (the
  socket address, the result texts);
- `ConnectPool`: the connects in flight in one epoll set of our own, whose descriptor is
  the only one the loop watches (one callback serves every connect that completed in a
  loop pass), and one loop timer for all their connect_timeouts;
- `TcpConnect`: one attempt, a non-blocking connect.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
from collections import deque
from collections.abc import Callable
from ipaddress import IPv6Address

from .base import Result, Target, describe_error, make_socket

_NONBLOCKING_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_TROUBLE = select.EPOLLERR | select.EPOLLHUP
_CSocket = socket.SocketType  # the C socket class: no Python-level __init__ per attempt
# The deadline timer fires at most once per EXPIRY_STEP: a connect_timeout is noticed at
# most this much late, and 10,000 deadlines a second cost 100 timer passes, not 10,000.
EXPIRY_STEP = 0.01


def fmt_check(target: Target, proto: str = "tcp") -> str:
    """keepalived's FMT_CHK: `[10.0.0.1]:tcp:80` (brackets for both families)."""
    port = 0 if target.port is None else target.port
    return f"[{target.address}]:{proto}:{port}"


class TcpTarget:
    """A checker's target as every attempt uses it."""

    __slots__ = ("family", "plain", "sockaddr", "success", "target", "timed_out", "timeout", "where")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.family = target.family
        self.timeout = target.timeout
        # A link-local address's scope is the bind_if's index now: looked up per attempt.
        scoped = isinstance(target.address, IPv6Address) and target.address.is_link_local and target.bind_if
        self.sockaddr = None if scoped else target.sockaddr()
        # No bindto, bind_port, bind_if or fwmark: a socket in one system call.
        self.plain = not (target.fwmark or target.bind_if or target.bindto is not None or target.bind_port is not None)
        self.where = fmt_check(target)
        self.success = Result(True, f"TCP connection to {self.where} success.")
        self.timed_out = Result(False, f"TCP connection to {self.where} timeout.")

    def failure(self, detail: str) -> Result:
        return Result(False, f"TCP connection to {self.where} failed. ({detail})")


class ConnectPool:
    """The TCP connects in flight: an epoll set of our own (level-triggered EPOLLOUT; a
    closed socket leaves it by itself) and their deadlines, one FIFO per connect_timeout
    value (a FIFO is in deadline order) behind a single loop timer. A connect that ends
    leaves its FIFO entry behind, stale, dropped when its deadline passes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.epoll = select.epoll()
        self.pending: dict[int, TcpConnect] = {}
        # (deadline, attempt, its socket): an entry whose attempt has moved on is stale
        self.deadlines: dict[float, deque[tuple[float, TcpConnect, socket.SocketType]]] = {}
        self._timer_at: float | None = None  # the live timer's time (None: no timer)
        self._generation = 0  # of the live timer: an older one that fires does nothing
        loop.add_reader(self.epoll.fileno(), self.collect)

    def watch(self, conn: TcpConnect, sock: socket.SocketType, timeout: float) -> None:
        """Follow `conn`'s connect on `sock` (registered in the epoll set: OSError at
        fs.epoll.max_user_watches) until it completes or `timeout` passes."""
        fd = sock.fileno()
        self.epoll.register(fd, select.EPOLLOUT)
        self.pending[fd] = conn
        deadline = self.loop.time() + timeout
        fifo = self.deadlines.get(timeout)
        if fifo is None:
            fifo = self.deadlines[timeout] = deque()
        fifo.append((deadline, conn, sock))
        if self._timer_at is None or deadline < self._timer_at:
            self._arm(deadline)

    def forget(self, fd: int) -> None:
        """`fd` is about to be closed (its attempt ended or was cancelled)."""
        self.pending.pop(fd, None)

    def collect(self) -> None:
        """Hand over every connect that has completed: the loop calls this when our epoll
        set is readable, and the scheduler right after starting a batch (on a near network,
        loopback above all, most connects are complete by then: their results go in the same
        loop pass, and the loop is not woken again for them)."""
        pending = self.pending
        for fd, events in self.epoll.poll(0):
            conn = pending.pop(fd, None)
            if conn is not None:
                conn.writable(events)

    def _arm(self, when: float) -> None:
        self._generation += 1
        self._timer_at = when
        self.loop.call_at(when, self._expire, self._generation)

    def _expire(self, generation: int) -> None:
        if generation != self._generation:
            return  # superseded by an earlier deadline, or closed
        self._timer_at = None
        now = self.loop.time()
        first: float | None = None
        for fifo in self.deadlines.values():
            # Only what is due: the entries of connects that ended long ago leave as their
            # deadlines pass (a few per pass), not 30,000 at once every connect_timeout.
            while fifo and fifo[0][0] <= now:
                _, conn, sock = fifo.popleft()
                if conn.sock is sock:  # still connecting at its deadline
                    conn.timeout()
            if fifo and (first is None or fifo[0][0] < first):
                first = fifo[0][0]
        if first is not None:
            self._arm(max(first, now + EXPIRY_STEP))

    def close(self) -> None:
        for conn in list(self.pending.values()):
            conn.cancel()
        self._generation += 1
        self._timer_at = None
        self.deadlines.clear()
        self.loop.remove_reader(self.epoll.fileno())
        self.epoll.close()


class TcpConnect:
    """A checker's connect attempts, one at a time: after each `start()`, `done(result)`
    is called once, always from a loop callback (never from inside `start()`), unless the
    attempt is cancelled first."""

    __slots__ = ("done", "pool", "sock", "target")

    def __init__(self, pool: ConnectPool, target: TcpTarget, done: Callable[[Result], None]) -> None:
        self.pool = pool
        self.target = target
        self.done = done
        self.sock: socket.SocketType | None = None

    def start(self) -> None:
        t = self.target
        loop = self.pool.loop
        try:
            sock = _CSocket(t.family, _NONBLOCKING_STREAM) if t.plain else make_socket(t.target)
        except OSError as e:
            loop.call_soon(self.done, t.failure(describe_error(e)))
            return
        try:
            err = sock.connect_ex(t.sockaddr or t.target.sockaddr())
        except OSError as e:  # a link-local address whose bind_if went away
            sock.close()
            loop.call_soon(self.done, t.failure(describe_error(e)))
            return
        if err == 0:
            sock.close()
            loop.call_soon(self.done, t.success)
            return
        if err != errno.EINPROGRESS:
            sock.close()
            loop.call_soon(self.done, t.failure(_strerror(err)))
            return
        try:
            self.pool.watch(self, sock, t.timeout)
        except OSError as e:  # epoll's watch limit (fs.epoll.max_user_watches)
            sock.close()
            loop.call_soon(self.done, t.failure(describe_error(e)))
            return
        self.sock = sock

    def writable(self, events: int) -> None:
        sock = self.sock
        if sock is None:
            return
        # Writable and no error: connected, without asking the socket.
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if events & _TROUBLE else 0
        self.sock = None
        sock.close()
        self.done(self.target.success if err == 0 else self.target.failure(_strerror(err)))

    def timeout(self) -> None:
        if self._close():
            self.done(self.target.timed_out)

    def cancel(self) -> None:
        self._close()

    def _close(self) -> bool:
        sock, self.sock = self.sock, None
        if sock is None:
            return False
        self.pool.forget(sock.fileno())
        sock.close()
        return True


def _strerror(err: int) -> str:
    return os.strerror(err).lower() if err else "failed"
