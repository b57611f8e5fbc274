"""haparent.logs: syslog is optional at run time. A real AF_UNIX datagram socket plays
/dev/log: absent at start, created later, removed (journald restarted), created again; the
console goes on throughout and no traceback is ever printed. Then the real daemon, started
as the README says (without -G), on a machine that may have no /dev/log."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from haparent import logs
from haparent.logs import Syslog, setup_logging
from haparent.options import Options
from labkit.lab import wait_for
from tests.haparent.daemon_util import CONFIG, Daemon, short_tmpdir


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SyslogServer:
    """A syslog daemon's /dev/log: a bound datagram socket we read the lines from."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)

    def lines(self) -> list[str]:
        out: list[str] = []
        with contextlib.suppress(BlockingIOError):
            while True:
                out.append(self.sock.recv(65536).decode())
        return out

    def stop(self) -> None:
        self.sock.close()
        os.unlink(self.path)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = short_tmpdir()  # AF_UNIX paths are limited to 108 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


def make_logger(address: str, clock: Clock) -> tuple[logging.Logger, Syslog, io.StringIO, io.StringIO]:
    notice = io.StringIO()
    console = io.StringIO()
    handler = Syslog(address, logs.facility("daemon"), "pykeepalived", notice=notice, clock=clock)
    handler.setFormatter(logging.Formatter("pykeepalived[%(process)d]: %(message)s"))
    logger = logging.Logger("test-syslog")  # not the root logger: pytest's capture stays out
    logger.addHandler(handler)
    console_handler = logging.StreamHandler(console)
    console_handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console_handler)
    return logger, handler, notice, console


def test_syslog_absent_then_created_removed_and_recreated(short_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    address = str(short_dir / "log")
    clock = Clock()
    logger, handler, notice, console = make_logger(address, clock)
    assert notice.getvalue().count("unavailable") == 1  # said at start, once

    logger.info("one")
    logger.info("two")
    assert handler.dropped == 2

    server = SyslogServer(address)
    logger.info("three")  # the retry is not due yet: still dropped
    assert server.lines() == [] and handler.dropped == 3
    clock.now += logs.RETRY_EVERY
    logger.warning("four")
    assert server.lines() == [
        f"<28>pykeepalived[{os.getpid()}]: four\0",  # daemon.warning, as the stdlib sends it
        # The missed count goes to syslog once, after the first line that made it.
        f"<28>pykeepalived[{os.getpid()}]: syslog was unavailable: 3 lines were not sent to it\0",
    ]
    assert "is back (3 lines not sent to it)" in notice.getvalue()
    logger.info("five")
    assert server.lines() == [f"<30>pykeepalived[{os.getpid()}]: five\0"]
    logger.setLevel(logging.DEBUG)  # -D
    logger.debug("detail")  # keepalived logs its -D lines at LOG_INFO: daemon.info, not debug
    assert server.lines() == [f"<30>pykeepalived[{os.getpid()}]: detail\0"]

    server.stop()  # journald restarted, or gone
    logger.info("six")
    logger.info("seven")
    assert handler.dropped == 5
    assert notice.getvalue().count("unavailable") == 2  # once per outage, not per line

    server = SyslogServer(address)
    clock.now += logs.RETRY_EVERY
    logger.info("eight")
    assert [line.split(": ", 1)[1] for line in server.lines()] == [
        "eight\0",
        "syslog was unavailable: 2 lines were not sent to it\0",
    ]
    assert notice.getvalue().count("is back") == 2

    assert console.getvalue().split() == ["one", "two", "three", "four", "five", "detail", "six", "seven", "eight"]
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Logging error" not in err
    handler.close()
    server.stop()


def test_a_restarted_syslog_gets_the_next_line_at_once(short_dir: Path) -> None:
    # journald restarts and binds a new socket at the same path: our connected socket now
    # talks to nobody (ECONNREFUSED); one fresh connection delivers the line, nothing is lost.
    address = str(short_dir / "log")
    server = SyslogServer(address)
    logger, handler, notice, _ = make_logger(address, Clock())
    logger.info("before")
    server.stop()
    server = SyslogServer(address)
    logger.info("after")
    assert [line.split(": ", 1)[1] for line in server.lines()] == ["after\0"]
    assert handler.dropped == 0 and notice.getvalue() == ""
    handler.close()
    server.stop()


def test_a_stream_syslog_socket_is_used_too(short_dir: Path) -> None:
    address = str(short_dir / "log")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(1)
    logger, handler, notice, _ = make_logger(address, Clock())
    conn, _ = listener.accept()
    logger.info("hello")
    conn.settimeout(2)
    assert conn.recv(4096).endswith(b": hello\0")
    assert handler.dropped == 0 and notice.getvalue() == ""
    handler.close()
    conn.close()
    listener.close()


def test_setup_logging_without_a_socket_keeps_the_console(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(logs, "SYSLOG_SOCKET", str(short_dir / "nothing-here"))
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging(Options(log_console=True), "pykeepalived")
        logging.getLogger("pykeepalived").info("a line for the console")
        logging.getLogger("pykeepalived").info("and another")
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
            h.close()
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "a line for the console" in err and "and another" in err
    assert err.count("unavailable") == 1
    assert "Traceback" not in err and "Logging error" not in err


class SyslogDaemon(Daemon):
    """The daemon as the README starts it: syslog on (no -G)."""

    def command(self, *extra: str) -> list[str]:
        return [a for a in super().command(*extra) if a != "-G"]


def test_the_daemon_without_g_prints_no_traceback(tmp_path: Path) -> None:
    d = SyslogDaemon(short_tmpdir(), CONFIG)
    try:
        d.start()
        d.wait_ready()
        d.signal(signal.SIGUSR1)
        wait_for("the data dumps", lambda: (d.dir / "keepalived.data").exists() or None, 10)
        d.signal(signal.SIGTERM)
        assert d.proc is not None and d.proc.wait(timeout=15) == 0
        log = d.log_text()
        assert "Stopped pykeepalived" in log  # the console lines are all there
        assert "Traceback" not in log and "Logging error" not in log, log
        if not os.path.exists(logs.SYSLOG_SOCKET):
            # One notice per process (parent, VRRP child, checker child), not one per line.
            assert log.count("unavailable") == 3, log
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)
