"""TCP_CHECK: the real server passes when a TCP connection opens within connect_timeout.

As keepalived does (check_tcp.c), the connection is closed at once: no data is sent
and nothing is read. Failures are described with keepalived's own words
("TCP connection to [10.0.0.1]:tcp:80 failed.") so that log watchers keep working.

The check runs without a coroutine: a non-blocking connect watched by a loop writer
callback, with a loop timer for connect_timeout. 10,000 checks a second must cost a
small part of a core, and a task per attempt costs several times more (issue 15).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable

from .base import Result, Target, describe_error, make_socket


def fmt_check(target: Target, proto: str = "tcp") -> str:
    """keepalived's FMT_CHK: `[10.0.0.1]:tcp:80` (brackets for both families)."""
    port = 0 if target.port is None else target.port
    return f"[{target.address}]:{proto}:{port}"


class TcpConnect:
    """One connect attempt to `target`; `done(result)` is called once, always from a loop
    callback (never from inside `start()`), unless the attempt is cancelled first."""

    __slots__ = ("done", "loop", "sock", "target", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, target: Target, done: Callable[[Result], None]) -> None:
        self.loop = loop
        self.target = target
        self.done = done
        self.sock: socket.socket | None = None
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        target = self.target
        try:
            sock = make_socket(target)
        except OSError as e:
            self.loop.call_soon(self.done, _failure(target, describe_error(e)))
            return
        err = sock.connect_ex(target.sockaddr())
        if err == 0:
            sock.close()
            self.loop.call_soon(self.done, _success(target))
            return
        if err != errno.EINPROGRESS:
            sock.close()
            self.loop.call_soon(self.done, _failure(target, _strerror(err)))
            return
        self.sock = sock
        self.loop.add_writer(sock.fileno(), self._writable)
        self.timer = self.loop.call_later(target.timeout, self._timeout)

    def _writable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._close()
        self.done(_success(self.target) if err == 0 else _failure(self.target, _strerror(err)))

    def _timeout(self) -> None:
        self.timer = None
        if self.sock is None:
            return
        self._close()
        self.done(Result(False, f"TCP connection to {fmt_check(self.target)} timeout."))

    def cancel(self) -> None:
        self._close()

    def _close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            self.loop.remove_writer(sock.fileno())
            sock.close()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _strerror(err: int) -> str:
    return os.strerror(err).lower() if err else "failed"


def _success(target: Target) -> Result:
    return Result(True, f"TCP connection to {fmt_check(target)} success.")


def _failure(target: Target, detail: str) -> Result:
    return Result(False, f"TCP connection to {fmt_check(target)} failed. ({detail})")
