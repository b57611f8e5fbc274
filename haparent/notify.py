"""systemd notifications (sd_notify(3)) through sdnotify. Without NOTIFY_SOCKET every
call is a no-op, so the daemon behaves the same under any init.

keepalived sends READY=1 (+MAINPID), RELOADING=1, STOPPING=1 and ERRNO=; we add
MONOTONIC_USEC= with RELOADING=1 (systemd >= 253 wants it for Type=notify-reload),
STATUS= lines and WATCHDOG=1."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import sdnotify


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self._sd = sdnotify.SystemdNotifier() if self.enabled else None
        self.watchdog_interval = self._watchdog_interval(env)

    @staticmethod
    def _watchdog_interval(env: Mapping[str, str]) -> float | None:
        """Half of WATCHDOG_USEC (sd_watchdog_enabled(3) advice), if it is meant for us."""
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) == 0:
            return None
        if pid and pid != str(os.getpid()):
            return None  # meant for the process systemd started, which we are not (we forked)
        return int(usec) / 2e6

    def fileno(self) -> int | None:
        sock = getattr(self._sd, "socket", None)
        return sock.fileno() if sock is not None else None

    def send(self, *fields: str) -> None:
        if self._sd is not None:
            self._sd.notify("\n".join(fields))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"MAINPID={os.getpid()}", f"STATUS={status}")

    def reloading(self, status: str) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={status}")

    def stopping(self, status: str) -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def errno(self, number: int, status: str) -> None:
        self.send(f"ERRNO={number}", f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")
