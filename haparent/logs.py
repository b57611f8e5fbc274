"""Logging as keepalived does it: syslog by default (-S facility, -G none), the console
too with -l, more detail with -D; each process under its own name (keepalived:
Keepalived, Keepalived_vrrp, Keepalived_healthcheckers)."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import sys
import syslog
import time
from collections.abc import Callable
from typing import TextIO

import setproctitle

from haparent.options import Options

# Read at each setup_logging call, so tests can point it at a socket of their own.
SYSLOG_SOCKET = "/dev/log"
RETRY_EVERY = 5.0  # s between attempts to reach a syslog that is away
MAX_LINE = 65536  # bytes of one line sent to syslog
SEND_TIMEOUT = 0.25  # s a stalled syslog may hold up the process per line (glibc waits forever)

# The numbers are the C library's (the syslog module's constants: logging.handlers, which
# has them too, would bring pickle and queue along, 0.6 MB in every process).
# Syslog priority per level. DEBUG records only pass with -D, and keepalived logs its -D
# (LOG_DETAIL) lines at LOG_INFO: a `*.info` rsyslog rule sees them as it did.
_PRIORITY = {
    "DEBUG": syslog.LOG_INFO,
    "INFO": syslog.LOG_INFO,
    "WARNING": syslog.LOG_WARNING,
    "ERROR": syslog.LOG_ERR,
    "CRITICAL": syslog.LOG_CRIT,
}
# Facility numbers unshifted (LOG_DAEMON is 3 << 3): the header's PRI is facility << 3 | level.
_LOCAL0 = syslog.LOG_LOCAL0 >> 3
_FACILITIES = {
    "user": syslog.LOG_USER >> 3,
    "daemon": syslog.LOG_DAEMON >> 3,
    **{f"local{n}": _LOCAL0 + n for n in range(8)},
    # keepalived -S 0..7 means LOG_LOCAL0..7.
    **{str(n): _LOCAL0 + n for n in range(8)},
}


def facility(name: str) -> int:
    return _FACILITIES[name]


class Syslog(logging.Handler):
    """Lines to the local syslog socket, which may be missing at start (a container), go
    away (journald restarted) and come back: never a traceback, never a blocked console.

    The stdlib's SysLogHandler since 3.11 no longer raises when there is no socket, and
    then answers every line with handleError's 40-line "--- Logging error ---". Here a line
    that cannot be sent is dropped and counted; reconnection is tried at once after a
    failed send (a restarted journald is usually back already), otherwise at most every
    `retry_every` seconds. `notice` (stderr with -l, else None) hears once that syslog is
    unavailable and once that it is back; syslog itself is told how many lines it missed.
    The wire format is the stdlib's: `<PRI>IDENT[PID]: MESSAGE` and a NUL."""

    def __init__(
        self,
        address: str,
        facility: int,
        ident: str,
        *,
        notice: TextIO | None = None,
        retry_every: float = RETRY_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.address = address
        self.facility = facility
        self.ident = ident
        self.notice = notice
        self.retry_every = retry_every
        self.clock = clock
        self.sock: socket.socket | None = None
        self.available = True  # what we last said; the first failure is reported
        self.missed = 0  # lines dropped during the current outage
        self.dropped = 0  # lines dropped in all
        self.next_try = 0.0
        try:
            self._connect()
        except OSError as e:
            self._unavailable(e)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self._encode(record)
        except Exception:
            self.handleError(record)  # a bad log call (format arguments): a bug to see
            return
        if not self._deliver(data):
            self.missed += 1
            self.dropped += 1
        elif not self.available:
            self._back()

    def close(self) -> None:
        self._disconnect()
        super().close()

    def _encode(self, record: logging.LogRecord) -> bytes:
        level = _PRIORITY.get(record.levelname, syslog.LOG_WARNING)
        # Capped below a datagram socket's default send buffer, so that one huge line cannot
        # fail with EMSGSIZE and pass for an outage.
        return f"<{self.facility << 3 | level}>{self.format(record)}".encode()[:MAX_LINE] + b"\0"

    def _deliver(self, data: bytes) -> bool:
        if self.sock is not None:
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                # A closed peer (journald restarted: ECONNREFUSED) or a stall: one fresh try
                # now, since a restarted syslog is usually listening again already.
                self._disconnect()
        elif self.clock() < self.next_try:
            return False
        try:
            sock = self._connect()
            sock.sendall(data)
        except OSError as e:
            self._disconnect()
            self._unavailable(e)
            return False
        return True

    def _connect(self) -> socket.socket:
        self.next_try = self.clock() + self.retry_every
        # Datagram as glibc's syslog(3); a stream socket (some syslog-ng set-ups) otherwise.
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
            try:
                sock.settimeout(SEND_TIMEOUT)
                sock.connect(self.address)
            except OSError as e:
                sock.close()
                if e.errno == errno.EPROTOTYPE and kind == socket.SOCK_DGRAM:
                    continue
                raise
            self.sock = sock
            return sock
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _disconnect(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def _unavailable(self, error: OSError) -> None:
        if self.available:
            self.available = False
            reason = error.strerror or type(error).__name__
            self._say(f"{self.ident}: syslog at {self.address} unavailable ({reason}); logging to the console only")

    def _back(self) -> None:
        self.available = True
        missed, self.missed = self.missed, 0
        self._say(f"{self.ident}: syslog at {self.address} is back ({missed} lines not sent to it)")
        if missed:
            text = f"syslog was unavailable: {missed} lines were not sent to it"
            record = logging.LogRecord(self.ident, logging.WARNING, __file__, 0, text, None, None)
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.sendall(self._encode(record))

    def _say(self, text: str) -> None:
        if self.notice is not None:
            with contextlib.suppress(OSError, ValueError):
                self.notice.write(text + "\n")
                self.notice.flush()


def setup_logging(opts: Options, ident: str) -> None:
    """(Re)configure the root logger for this process; called again in each child."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if opts.log_detail else logging.INFO)
    if not opts.no_syslog:
        # Installed even when there is no socket now: syslog may start later.
        notice = sys.stderr if opts.log_console else None
        syslog = Syslog(SYSLOG_SOCKET, facility(opts.log_facility), ident, notice=notice)
        syslog.setFormatter(logging.Formatter(f"{ident}[%(process)d]: %(message)s"))
        root.addHandler(syslog)
    if opts.log_console:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(f"%(asctime)s {ident}[%(process)d]: %(message)s"))
        root.addHandler(console)
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    # asyncio's own debug lines ("Using selector") say nothing to an operator, even with -D.
    logging.getLogger("asyncio").setLevel(logging.INFO)


def set_titles(title: str, comm: str) -> None:
    """`ps -ef` shows `title`; /proc/PID/comm (ps -e, top, pgrep without -f) shows `comm`."""
    setproctitle.setproctitle(title)
    # setproctitle also truncates the title into comm; set the short name explicitly.
    setproctitle.setthreadtitle(comm[:15])
