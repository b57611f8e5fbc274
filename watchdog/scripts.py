"""Running keepalived's external scripts (notify_*, `notify`, vrrp_script, MISC_CHECK)
from a child's asyncio loop without ever blocking it.

How a script runs, as keepalived 2.2.7 runs it (checked with a notify script that dumped
its surroundings):
- argv as configured (conf.values.Script splits it the way keepalived does), executed
  directly: no shell, and a file without a `#!` line does not run (keepalived is silent
  about it; here it is a NOT_EXECUTABLE result).
- Its own process group (keepalived's setpgid(0, 0); same session), so a timeout can
  signal the script and everything it started.
- As the script's `user [group]`, else global_defs `script_user`, else keepalived_script
  if that user exists, else root. The group is the user's primary group unless given;
  supplementary groups are cleared to that one group (keepalived's setgroups(1, &gid)).
- stdin, stdout and stderr on /dev/null (keepalived does not capture them), no other
  descriptor inherited (keepalived leaks a few; nothing needs them).
- The environment is the daemon's, unchanged: keepalived 2.2.7 passes IFS, LD_PRELOAD,
  LD_LIBRARY_PATH, BASH_ENV and the rest through as they are (the parent already removes
  systemd's NOTIFY_SOCKET/WATCHDOG_*). Under systemd that environment is the unit's, and
  users put what their scripts need there (Environment=), so cleaning it would break them.

A timeout sends SIGTERM to the script's process group, then SIGKILL to whatever of the
group is left after `kill_grace` (2 s). Every child is reaped: the exit is watched with a
pidfd on the loop (no thread per child, no global child watcher), and a run that is
cancelled still terminates and reaps its script.

A burst of scripts (a sync group of 200 instances changing state) spawns them one per loop
iteration: one fork/exec takes 0.1-0.4 ms, and doing 200 back to back would hold the
loop for tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conf.security import DEFAULT_SCRIPT_USER, RunAs, resolve_user
from conf.values import Script

log = logging.getLogger(__name__)

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL after a timeout
_POLL = 0.05  # when pidfd_open is missing (Linux < 5.3): how often to look for the exit


class Outcome(enum.Enum):
    EXITED = "exited"  # ran to its end: `status` is the exit status
    SIGNALLED = "signalled"  # killed by a signal we did not send: `signal` says which
    TIMED_OUT = "timed out"  # we sent SIGTERM (then SIGKILL if needed); `status`/`signal` say how it ended
    NOT_FOUND = "not found"
    NOT_EXECUTABLE = "not executable"
    FAILED = "failed"  # could not start: unknown user, no permission to switch, no resources


@dataclass(frozen=True)
class ScriptResult:
    argv: tuple[str, ...]
    outcome: Outcome
    status: int | None = None  # exit status, when it exited
    signal: int | None = None  # the signal that ended it, when one did
    pid: int | None = None
    duration: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        """What vrrp_script / MISC_CHECK count as success: exit status 0."""
        return self.outcome is Outcome.EXITED and self.status == 0

    def describe(self) -> str:
        if self.outcome in (Outcome.EXITED, Outcome.SIGNALLED, Outcome.TIMED_OUT):
            prefix = "timed out, then " if self.outcome is Outcome.TIMED_OUT else ""
            if self.signal is not None:
                return f"{prefix}killed by {_signame(self.signal)}"
            return f"{prefix}exited with status {self.status}"
        return f"{self.outcome.value}" + (f": {self.detail}" if self.detail else "")


def notify_args(kind: str, name: str, state: str, priority: int | None = None) -> tuple[str, ...]:
    """The arguments keepalived appends to the generic `notify` script (and only to it:
    notify_master & co. get exactly their configured argv): `INSTANCE|GROUP name STATE
    [priority]`, e.g. `INSTANCE VI_1 MASTER 255`."""
    return (kind, name, state) if priority is None else (kind, name, state, str(priority))


class ScriptRunner:
    """Runs scripts for one child. `default_user` is global_defs `script_user` as words
    (`USER [GROUP]`, a conf.global_defs.ScriptUser works); None applies keepalived's
    default (keepalived_script if it exists, else root). `env` replaces the inherited
    environment (None: the daemon's, as keepalived does)."""

    def __init__(
        self,
        default_user: Iterable[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        kill_grace: float = KILL_GRACE,
    ) -> None:
        self.default_user = tuple(default_user) if default_user is not None else None
        self.env = dict(env) if env is not None else None
        self.kill_grace = kill_grace
        self._gate: asyncio.Lock | None = None
        self._running: set[_Child] = set()
        self._pending_kills: dict[int, asyncio.TimerHandle] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    def run_as(self, script: Script) -> RunAs | None:
        """Whom `script` runs as; None if that user or group does not exist."""
        if script.user is not None:
            words: tuple[str, ...] = (script.user,) if script.group is None else (script.user, script.group)
        elif self.default_user is not None:
            words = self.default_user
        else:
            return resolve_user(DEFAULT_SCRIPT_USER) or RunAs(0, 0, "root")
        return resolve_user(words)

    async def run(
        self,
        script: Script,
        *,
        args: Sequence[str] = (),
        timeout: float | None = None,
        label: str | None = None,
        quiet: bool = False,
    ) -> ScriptResult:
        """Run `script` with `args` appended and wait for it (at most `timeout` seconds,
        then it is terminated). Never raises for the script's sake: a script that cannot
        start is a logged NOT_FOUND / NOT_EXECUTABLE / FAILED result. `quiet`: the caller
        logs the outcome itself (a vrrp_script logs state changes, not every timeout)."""
        argv = (*script.argv, *args)
        what = label or f"script '{script.path}'"
        started = time.monotonic()
        if not script.argv:
            return self._failed(argv, Outcome.NOT_FOUND, "empty command", what, started)
        user = self.run_as(script)
        if user is None:
            who = " ".join(filter(None, (script.user, script.group))) or " ".join(self.default_user or ())
            return self._failed(argv, Outcome.FAILED, f"unknown user/group '{who}'", what, started)
        try:
            proc = await self._spawn(argv, user)
        except OSError as e:
            outcome = _SPAWN_ERRORS.get(e.errno or 0, Outcome.FAILED)
            detail = "no '#!' line" if e.errno == errno.ENOEXEC else (e.strerror or str(e))
            return self._failed(argv, outcome, detail, what, started)
        except ValueError as e:  # a NUL byte in an argument
            return self._failed(argv, Outcome.FAILED, str(e), what, started)
        child = _Child(proc, asyncio.get_running_loop())
        self._running.add(child)
        child.exited.add_done_callback(lambda _f: self._running.discard(child))
        try:
            code = await asyncio.wait_for(asyncio.shield(child.exited), timeout)
        except TimeoutError:
            log.log(
                logging.DEBUG if quiet else logging.WARNING,
                "%s (pid %d) timed out after %g s; terminating it",
                what,
                proc.pid,
                timeout,
            )
            code = await self._terminate(child)
            return _finished(argv, code, proc.pid, started, Outcome.TIMED_OUT)
        except asyncio.CancelledError:
            # Whoever waited is gone; the script still must end (and is reaped as usual).
            if not child.exited.done():
                _killpg(proc.pid, signal.SIGTERM)
                self._kill_later(proc.pid, self.kill_grace)
            raise
        result = _finished(argv, code, proc.pid, started, Outcome.SIGNALLED if code < 0 else Outcome.EXITED)
        if result.outcome is Outcome.SIGNALLED:
            log.warning("%s (pid %d) %s", what, proc.pid, result.describe())
        return result

    async def stop(self) -> None:
        """At shutdown: terminate every script still running (keepalived's
        script_killall), SIGKILL after the grace period, and reap them all; what is left
        of groups already sent SIGTERM gets its SIGKILL now rather than after we are gone."""
        children = list(self._running)
        if children:
            await asyncio.gather(*(self._terminate(c) for c in children))
        for pgid, handle in list(self._pending_kills.items()):
            handle.cancel()
            self._kill_now(pgid)

    async def _spawn(self, argv: tuple[str, ...], user: RunAs) -> subprocess.Popen[bytes]:
        if self._gate is None:
            self._gate = asyncio.Lock()
        async with self._gate:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                process_group=0,
                env=self.env,
                **_identity(user),
            )
            # Hold the gate over one loop iteration so the next spawn waits for it.
            await asyncio.sleep(0)
        return proc

    async def _terminate(self, child: _Child) -> int:
        """SIGTERM to the group; SIGKILL to the group after the grace period. Returns the
        leader's returncode (negative: the signal) as soon as it is reaped: if it ended on
        SIGTERM, the group's SIGKILL still comes at the end of the grace period, from a
        timer, for whatever it started that ignores SIGTERM. (Whether any of the group
        is still running cannot be told cheaply: orphans that died stay zombies in the
        group until PID 1 reaps them, which a container's PID 1 may never do.)"""
        pgid = child.proc.pid
        _killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace
        try:
            code = await asyncio.wait_for(asyncio.shield(child.exited), self.kill_grace)
        except TimeoutError:
            pass
        else:
            self._kill_later(pgid, deadline - time.monotonic())
            return code
        log.warning("script (pid %d) did not end on SIGTERM; sending SIGKILL to its process group", pgid)
        self._kill_now(pgid)
        return await child.exited

    def _kill_later(self, pgid: int, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._pending_kills[pgid] = loop.call_later(max(delay, 0.0), self._kill_now, pgid)

    def _kill_now(self, pgid: int) -> None:
        self._pending_kills.pop(pgid, None)
        _killpg(pgid, signal.SIGKILL)

    def _failed(self, argv: tuple[str, ...], outcome: Outcome, detail: str, what: str, started: float) -> ScriptResult:
        log.warning("Cannot run %s: %s", what, detail)
        return ScriptResult(argv, outcome, detail=detail, duration=_since(started))


class _Child:
    """A spawned script: `exited` resolves to its returncode once it has been reaped."""

    def __init__(self, proc: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.proc = proc
        self.loop = loop
        self.exited: asyncio.Future[int] = loop.create_future()
        self._pidfd = -1
        self._timer: asyncio.TimerHandle | None = None
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self._timer = loop.call_later(_POLL, self._poll)
        else:
            loop.add_reader(self._pidfd, self._check)
        self._check()

    def _check(self) -> None:
        if self.exited.done() or self.proc.poll() is None:
            return
        if self._pidfd >= 0:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self.proc.returncode is not None
        self.exited.set_result(self.proc.returncode)

    def _poll(self) -> None:
        self._timer = None
        self._check()
        if not self.exited.done():
            self._timer = self.loop.call_later(_POLL, self._poll)


_SPAWN_ERRORS = {
    errno.ENOENT: Outcome.NOT_FOUND,
    errno.ENOTDIR: Outcome.NOT_FOUND,
    errno.EACCES: Outcome.NOT_EXECUTABLE,
    errno.ENOEXEC: Outcome.NOT_EXECUTABLE,
    errno.EISDIR: Outcome.NOT_EXECUTABLE,
}


def _identity(user: RunAs) -> dict[str, Any]:
    """Popen's user/group/extra_groups for `user`, done in the child between fork and exec
    (no preexec_fn). Without root we cannot become anyone else: scripts then run as the
    daemon's own user (tests, development)."""
    if os.geteuid() != 0 or (user.uid, user.gid) == (0, 0):
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": [user.gid]}


def _finished(argv: tuple[str, ...], code: int, pid: int, started: float, outcome: Outcome) -> ScriptResult:
    """From Popen's returncode (negative: the signal that ended it)."""
    if code < 0:
        return ScriptResult(argv, outcome, signal=-code, pid=pid, duration=_since(started))
    return ScriptResult(argv, outcome, status=code, pid=pid, duration=_since(started))


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _since(started: float) -> float:
    return time.monotonic() - started


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
