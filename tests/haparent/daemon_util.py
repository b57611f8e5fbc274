"""Running the real daemon in tests: temp config, pidfiles and notify socket; every process
a test starts is killed at the end, even when the test fails."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.lab import wait_for

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
global_defs {
    router_id test
}
vrrp_instance VI_1 {
    state BACKUP
    interface pk-test0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.10/24
    }
}
virtual_server 192.0.2.10 80 {
    delay_loop 6
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 80 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"""
CHECKER_ONLY = CONFIG[: CONFIG.index("vrrp_instance")] + CONFIG[CONFIG.index("virtual_server") :]


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for whoever adopted it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class NotifyListener:
    """A NOTIFY_SOCKET as systemd has one: a datagram socket collecting sd_notify messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def drain(self) -> list[dict[str, str]]:
        with contextlib.suppress(BlockingIOError):
            while True:
                data = self.sock.recv(4096)
                fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
                self.messages.append((time.monotonic(), fields))
        return [m for _, m in self.messages]

    def kinds(self) -> list[str]:
        """READY / RELOADING / STOPPING / ERRNO in order (STATUS and WATCHDOG left out)."""
        out: list[str] = []
        for m in self.drain():
            out.extend(k for k in ("READY", "RELOADING", "STOPPING", "ERRNO") if k in m)
        return out

    def wait_kinds(self, expected: list[str], timeout: float = 5.0) -> None:
        wait_for(f"notifications {expected}", lambda: self.kinds() == expected or None, timeout)

    def time_of(self, kind: str, nth: int = 0) -> float:
        times = [t for t, m in self.messages if kind in m]
        return times[nth]

    def last_status(self) -> str:
        statuses = [m["STATUS"] for m in self.drain() if "STATUS" in m]
        return statuses[-1] if statuses else ""

    def close(self) -> None:
        self.sock.close()


class Daemon:
    def __init__(
        self, workdir: Path, config: str = CONFIG, args: tuple[str, ...] = (), env: dict[str, str] | None = None
    ):
        self.dir = workdir
        self.config = workdir / "keepalived.conf"
        self.config.write_text(config)
        self.pidfiles = {
            "parent": workdir / "parent.pid",
            "vrrp": workdir / "vrrp.pid",
            "checker": workdir / "check.pid",
        }
        self.log = workdir / "daemon.log"
        self.control_socket = workdir / "ctl.sock"
        self.notify = NotifyListener(str(workdir / "notify.sock"))
        self.args = args
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(workdir), NOTIFY_SOCKET=self.notify.path)
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen_pids: set[int] = set()

    def command(self, *extra: str) -> list[str]:
        p = self.pidfiles
        return [
            sys.executable,
            "-m",
            "haparent.cli",
            "-l",
            "-G",
            "-D",
            "-f",
            str(self.config),
            "-p",
            str(p["parent"]),
            "-r",
            str(p["vrrp"]),
            "-c",
            str(p["checker"]),
            "--heartbeat-interval",
            "0.2",
            "--heartbeat-timeout",
            "1",
            "--control-socket",
            str(self.control_socket),
            *self.args,
            *extra,
        ]

    def start(self, *extra: str, foreground: bool = True) -> Daemon:
        with open(self.log, "ab") as log:
            # A session of its own, so the finalizer can kill everything it started.
            self.proc = subprocess.Popen(
                self.command("-n", *extra) if foreground else self.command(*extra),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
                start_new_session=True,
            )
        self.seen_pids.add(self.proc.pid)
        return self

    def pid(self, which: str) -> int | None:
        try:
            text = self.pidfiles[which].read_text().strip()
        except FileNotFoundError:
            return None
        if text.isdigit():
            self.seen_pids.add(int(text))
            return int(text)
        return None

    def wait_ready(self, timeout: float = 10.0) -> None:
        wait_for("READY=1", lambda: "READY" in self.notify.kinds() or None, timeout)

    def signal(self, sig: int) -> None:
        pid = self.pid("parent")
        assert pid is not None
        os.kill(pid, sig)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Kill whatever is left of what this test started (the finalizer)."""
        for pid in [*self.seen_pids, *(p for p in (self.pid(w) for w in self.pidfiles) if p)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.notify.close()


def short_tmpdir() -> Path:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    return Path(tempfile.mkdtemp(prefix="pk-"))
