"""Notify FIFOs: notify_fifo, vrrp_notify_fifo and lvs_notify_fifo (global_defs), and the
*_fifo_script that reads each one.

keepalived 2.2.7, measured in a namespace and followed here:
- a missing FIFO is created (mode 0600, chowned to the `username [groupname]` of the
  keyword) and removed at stop; a FIFO that existed before is left in place;
- `*_fifo_script` is started with the FIFO's path as its only argument;
- lines (vrrp_notify.c / ipwrapper.c):
    INSTANCE "VI_1" MASTER 150       (state, then the effective priority)
    GROUP "G1" MASTER 0              (a sync group's priority is always 0)
    INSTANCE "VI_1" MASTER_PRIORITY 140   (vrrp_notify_priority_changes)
    VS [10.0.0.1]:tcp:80 UP          (quorum up/down)
    RS [192.168.1.1]:tcp:80 [10.0.0.1]:tcp:80 DOWN
  a VS is `[ADDR]:PROTO:PORT`, `FWM N` or `[GROUP]:PORT`.

The FIFO is opened O_RDWR|O_NONBLOCK: opening never waits for a reader (we are a reader
ourselves, so the kernel never sees a FIFO without one) and a write never blocks. When the
reader falls behind and the pipe is full, the line is dropped, counted and logged once per
burst. Each line is one write() under PIPE_BUF, which the kernel keeps whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import pwd
import stat
from dataclasses import dataclass, field

from conf.global_defs import GlobalDefs, NotifyFifo
from conf.values import Script
from watchdog.scripts import ScriptRunner

log = logging.getLogger(__name__)

FIFO_MODE = 0o600
PIPE_BUF = 4096


def instance_line(name: str, state: str, priority: int) -> str:
    return f'INSTANCE "{name}" {state} {priority}'


def group_line(name: str, state: str) -> str:
    return f'GROUP "{name}" {state} 0'


def trio(address: object, protocol: str | None, port: int | None) -> str:
    """keepalived's `[ADDR]:PROTO:PORT` (brackets for both families; proto "none" when
    there is none, as for a fwmark service)."""
    proto = protocol.lower() if protocol else "none"
    return f"[{address}]:{proto}:{port or 0}"


def fmt_vs(
    address: object | None = None,
    protocol: str | None = None,
    port: int | None = None,
    fwmark: int | None = None,
    group: str | None = None,
) -> str:
    """keepalived's FMT_VS: `[GROUP]:PORT`, `FWM N` or `[ADDR]:PROTO:PORT`."""
    if group is not None:
        return f"[{group}]:{port or 0}"
    if fwmark is not None:
        return f"FWM {fwmark}"
    return trio(address, protocol, port)


def vs_line(vs: str, up: bool) -> str:
    """`vs` as fmt_vs gives it."""
    return f"VS {vs} {'UP' if up else 'DOWN'}"


def rs_line(rs: str, vs: str, up: bool) -> str:
    """`rs` as trio(rs address, the VS's protocol, rs port) gives it, `vs` as fmt_vs."""
    return f"RS {rs} {vs} {'UP' if up else 'DOWN'}"


@dataclass
class _Fifo:
    path: str
    fd: int
    created: bool
    dropped: int = 0
    in_burst: bool = False
    scripts: list[asyncio.Task[object]] = field(default_factory=list)


def _owner(spec: NotifyFifo) -> tuple[int, int] | None:
    if spec.user is None:
        return None
    try:
        pw = pwd.getpwnam(spec.user)
        gid = grp.getgrnam(spec.group).gr_gid if spec.group is not None else pw.pw_gid
    except KeyError:
        return None
    return pw.pw_uid, gid


def open_fifo(spec: NotifyFifo, failures: dict[str, str] | None = None) -> _Fifo | None:
    """Create (if missing) and open one FIFO; None, logged, if that cannot be done (and
    the reason in `failures[path]`, for the child's STATUS=).

    The path may be in a directory others can write to: create with mkfifo (which never
    follows a symlink), open with O_NOFOLLOW, check the opened file is a FIFO, and chown
    the open file rather than the path, so nothing planted there is written to or chowned."""
    path = spec.path
    created = False
    fd = -1
    try:
        try:
            os.mkfifo(path, FIFO_MODE)
            created = True
        except FileExistsError:
            # Refuse before opening: opening a device node can have side effects.
            if not stat.S_ISFIFO(os.lstat(path).st_mode):
                log.error("Notify FIFO %s exists and is not a FIFO", path)
                _note(failures, path, "exists and is not a FIFO")
                return None
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):  # replaced between the lstat and the open
            os.close(fd)
            log.error("Notify FIFO %s exists and is not a FIFO", path)
            _note(failures, path, "exists and is not a FIFO")
            return None
        owner = _owner(spec) if created else None
        if owner is not None:
            os.fchown(fd, *owner)
    except OSError as e:
        log.error("Unable to open notify FIFO %s - %s (%d)", path, e.strerror, e.errno or 0)
        _note(failures, path, e.strerror or str(e))
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return None
    return _Fifo(path, fd, created)


def _note(failures: dict[str, str] | None, path: str, why: str) -> None:
    if failures is not None:
        failures[path] = why


class Fifos:
    """The FIFOs one child writes to. The same path given twice is opened once."""

    def __init__(self, specs: list[tuple[NotifyFifo, Script | None]], runner: ScriptRunner | None) -> None:
        self._fifos: list[_Fifo] = []
        # The FIFOs that could not be opened, with why: the child reports them as degraded.
        self.failed: dict[str, str] = {}
        by_path: dict[str, _Fifo] = {}
        for spec, script in specs:
            fifo = by_path.get(spec.path)
            if fifo is None:
                opened = open_fifo(spec, self.failed) if spec.path not in self.failed else None
                if opened is None:
                    continue
                fifo = by_path[spec.path] = opened
                self._fifos.append(fifo)
            if script is not None and runner is not None:
                self._start_script(fifo, script, runner)

    @classmethod
    def for_vrrp(cls, gdefs: GlobalDefs, runner: ScriptRunner | None) -> Fifos:
        """notify_fifo and vrrp_notify_fifo, each with its script."""
        return cls(_specs(gdefs, "notify_fifo", "vrrp_notify_fifo"), runner)

    @classmethod
    def for_lvs(cls, gdefs: GlobalDefs, runner: ScriptRunner | None) -> Fifos:
        """notify_fifo and lvs_notify_fifo, each with its script."""
        return cls(_specs(gdefs, "notify_fifo", "lvs_notify_fifo"), runner)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self._fifos]

    @property
    def dropped(self) -> int:
        return sum(f.dropped for f in self._fifos)

    def __bool__(self) -> bool:
        return bool(self._fifos)

    def send(self, line: str) -> None:
        """Write one line to every FIFO; never blocks, never raises."""
        data = (line if line.endswith("\n") else line + "\n").encode()
        if len(data) > PIPE_BUF:
            log.warning("Notify FIFO line too long (%d bytes); not sent", len(data))
            return
        for fifo in self._fifos:
            try:
                os.write(fifo.fd, data)
            except BlockingIOError:
                fifo.dropped += 1
                if not fifo.in_burst:
                    fifo.in_burst = True
                    log.warning("Notify FIFO %s is full (its reader is not reading); dropping lines", fifo.path)
                continue
            except OSError as e:
                fifo.dropped += 1
                if e.errno != errno.EPIPE and not fifo.in_burst:
                    fifo.in_burst = True
                    log.warning("Notify FIFO %s write error - %s", fifo.path, e.strerror)
                continue
            if fifo.in_burst:
                fifo.in_burst = False
                log.warning("Notify FIFO %s: %d line(s) dropped in all", fifo.path, fifo.dropped)

    async def close(self) -> None:
        """Stop the FIFO scripts we started, close the FIFOs, remove those we created."""
        tasks = [t for f in self._fifos for t in f.scripts if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for fifo in self._fifos:
            with contextlib.suppress(OSError):
                os.close(fifo.fd)
            if fifo.created:
                with contextlib.suppress(OSError):
                    os.unlink(fifo.path)
        self._fifos = []

    def _start_script(self, fifo: _Fifo, script: Script, runner: ScriptRunner) -> None:
        async def run() -> object:
            result = await runner.run(script, args=(fifo.path,), label=f"notify FIFO script '{script.path}'")
            if not result.ok:
                log.warning("Notify FIFO script %s for %s %s", script.path, fifo.path, result.describe())
            return result

        fifo.scripts.append(asyncio.get_running_loop().create_task(run()))


def _specs(gdefs: GlobalDefs, *names: str) -> list[tuple[NotifyFifo, Script | None]]:
    out: list[tuple[NotifyFifo, Script | None]] = []
    for name in names:
        spec: NotifyFifo | None = getattr(gdefs, name)
        if spec is not None:
            out.append((spec, getattr(gdefs, f"{name}_script")))
    return out
