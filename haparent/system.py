"""Every OS call the supervisor makes, behind one object (supervisor's lesson): the
supervision logic is tested against a fake of this, and the real thing is tested for real.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol, TypeVar

from conf import accounts
from watchdog import heaptrim
from watchdog.safefile import write_atomic


@dataclass(frozen=True)
class Spawned:
    pid: int
    read_fd: int  # the parent reads the child's messages here
    write_fd: int  # the parent writes messages to the child here


ChildMain = Callable[[int, int], int]  # (read_fd, write_fd) in the child -> exit code
T = TypeVar("T")


class System(Protocol):
    def monotonic(self) -> float: ...

    def spawn(self, child_main: ChildMain, close_in_child: Iterable[int]) -> Spawned: ...

    def kill(self, pid: int, sig: int) -> None: ...

    def reap(self) -> list[tuple[int, int]]: ...

    def wait(self, fds: Sequence[int], timeout: float) -> list[int]: ...

    def read(self, fd: int) -> bytes | None: ...

    def readable(self, fd: int) -> bool: ...

    def background(self, work: Callable[[], T]) -> Future[T]: ...

    def write(self, fd: int, data: bytes) -> bool: ...

    def close(self, fd: int) -> None: ...

    def write_file(self, path: str, text: str) -> None: ...

    def trim_heap(self) -> None: ...


class RealSystem:
    """The real calls. Signals reach the loop through a wakeup pipe: handlers only record
    (`on_signal` appends), and `wait` returns as soon as one arrives."""

    def __init__(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def wake(self) -> None:
        """Wake `wait` from another thread (the metrics server's)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def own_fds(self) -> tuple[int, ...]:
        return (self._wake_r, self._wake_w)

    def install_signals(self, signals: Iterable[int], on_signal: Callable[[int], None]) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in signals:
            signal.signal(sig, lambda signum, _frame: on_signal(signum))

    def monotonic(self) -> float:
        return time.monotonic()

    def spawn(self, child_main: ChildMain, close_in_child: Iterable[int]) -> Spawned:
        # Close-on-exec: scripts the children run later must not hold our pipes open, or
        # a child would not see EOF when the parent dies.
        down_r, down_w = os.pipe2(os.O_CLOEXEC)
        up_r, up_w = os.pipe2(os.O_CLOEXEC)
        with accounts.LOCK:  # never fork in the middle of a reload's NSS look-up (conf.accounts)
            _freeze_heap()
            pid = os.fork()
        if pid == 0:  # the child: never returns into the parent's loop
            code = 70
            try:
                for fd in (down_w, up_r, *close_in_child):
                    with contextlib.suppress(OSError):
                        os.close(fd)
                code = child_main(down_r, up_w)
            finally:
                os._exit(code)
        os.close(down_r)
        os.close(up_w)
        # Never block the parent on a child that does not read (a stopped one).
        os.set_blocking(down_w, False)
        os.set_blocking(up_r, False)
        return Spawned(pid, up_r, down_w)

    def kill(self, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def reap(self) -> list[tuple[int, int]]:
        ended: list[tuple[int, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            ended.append((pid, status))
        return ended

    def wait(self, fds: Sequence[int], timeout: float) -> list[int]:
        try:
            readable, _, _ = select.select([*fds, self._wake_r], [], [], max(0.0, timeout))
        except InterruptedError:  # pragma: no cover - PEP 475 retries select itself
            return []
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 512):
                    pass
        return [fd for fd in readable if fd != self._wake_r]

    def read(self, fd: int) -> bytes | None:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno in (errno.EBADF, errno.EIO):
                return b""
            raise

    def readable(self, fd: int) -> bool:
        try:
            ready, _, _ = select.select([fd], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(ready)

    def background(self, work: Callable[[], T]) -> Future[T]:
        """Run `work` in a thread of its own; `wait` returns when it is done. A thread, not a
        process: the parent forks children meanwhile. The work (the config parser) is pure
        Python; its only calls into libraries with locks of their own, the NSS user and group
        look-ups, hold conf.accounts.LOCK, which `spawn` holds across fork()."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(work())
            except BaseException as e:  # handed to the loop, which reports it
                future.set_exception(e)
            self.wake()

        threading.Thread(target=run, name="pykeepalived-load", daemon=True).start()
        return future

    def write(self, fd: int, data: bytes) -> bool:
        try:
            return os.write(fd, data) == len(data)
        except (BlockingIOError, BrokenPipeError):
            return False

    def close(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            os.close(fd)

    def write_file(self, path: str, text: str) -> None:
        # A dump in $TMPDIR (often /tmp): random temporary name, O_EXCL, 0600, renamed.
        write_atomic(path, text)

    def trim_heap(self) -> None:
        heaptrim.trim()


def _freeze_heap() -> None:
    """Before a fork: what the parent holds (modules, the configuration) moves to the garbage
    collector's permanent generation, so that neither process's collections write to those
    objects' headers and the pages stay shared copy-on-write (the gc module's advice for
    fork without exec). Collected first, so no garbage is frozen; then the C heap's free pages
    go back to the kernel, so that the child neither inherits them nor copies them when its
    next malloc lands there (watchdog.heaptrim)."""
    gc.collect()
    heaptrim.trim()
    gc.freeze()
