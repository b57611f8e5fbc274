"""Locked pidfiles (-p, -r, -c): the lock, not the file's existence, says a daemon runs.

flock(2) locks belong to the open file description: the daemonizing fork and the
children share it, a crash (even SIGKILL) releases it, and a stale file left behind
does not stop the next start (keepalived uses OFD locks for the same reasons)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat


class AlreadyRunning(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(f"daemon is already running (pidfile {path} is locked)")
        self.path = path


class PidFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        """Open and lock; AlreadyRunning when another process holds the lock."""
        while True:
            # O_NOFOLLOW: a symlink planted at the path must not make root truncate its target
            # (keepalived refuses one too). The OSError's strerror is what the caller prints.
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise OSError(e.errno, "it is a symbolic link: refusing", self.path) from None
                raise
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(errno.EINVAL, "it is not a regular file: refusing", self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise AlreadyRunning(self.path) from None
            # The holder may have unlinked the file between our open and our lock: then we
            # locked an orphan inode and must try again on the file now at that path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return
            os.close(fd)

    def write(self, pid: int | None) -> None:
        """The pid, or an empty file while the process it names is not running."""
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        if pid is not None:
            os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def close(self) -> None:
        """Let go of our copy of the lock without removing the file (another process that
        shares the open file, a child, keeps the lock)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def release(self) -> None:
        """Remove the file, then drop the lock (in that order, so no one locks a file we
        are about to remove)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
