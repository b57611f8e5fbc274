"""global_defs `startup_script` and `shutdown_script`: run by the parent, once, before the first
child starts and after the last one has stopped (keepalived.conf(5)).

What keepalived 2.2.7 does (keepalived/core/main.c: run_startup_script, stop_keepalived,
startup_shutdown_script_completed, handle_child_timeout), and so what this does:
- the startup script runs from the parent's loop; the children start only once it has ended
  (whatever its outcome: a failure or a timeout does not stop the daemon). It is not run again
  on a reload. The shutdown script runs once every child has stopped, and the parent exits
  once it has ended; a reload's configuration decides which shutdown script that is.
- as the script's `username [groupname]`, else `script_user`, else keepalived_script or root,
  in its own process group, stdio on /dev/null (lib/notify.c system_call_script: the same
  set-up as every other script, watchdog.scripts).
- past `*_script_timeout` seconds: `startup script timed out`, SIGTERM to its process group;
  2 s later SIGKILL to the group; 2 s after that `... failed to terminate after kill` and one
  more SIGKILL; 10 s later it is given up. A script that ended on our SIGTERM gets SIGKILL to
  its group (what it started must go too).
- its exit status is logged as keepalived words it, `startup script script failed, status 3`
  (the doubled "script" is keepalived's); success only with -D.
- a script that is missing, not executable or disabled by script security is not run
  (conf.security already said why); the daemon goes on.

It blocks the thread it runs in: the startup script runs in a thread of the parent
(`System.background`, so signals, the control socket and WATCHDOG=1 go on), the shutdown
script after the loop has nothing left to supervise.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from conf.global_defs import GlobalDefs
from conf.security import find_executable
from conf.values import Script
from watchdog.scripts import ScriptRunner, _identity

log = logging.getLogger("pykeepalived")

# handle_child_timeout's steps after the timeout: (signal, seconds to wait for the exit after it)
TERM_WAIT = 2.0
KILL_WAIT = 2.0
GIVE_UP_WAIT = 10.0


@dataclass(frozen=True)
class StartStop:
    """One of the two scripts, as the configuration gives it."""

    kind: str  # "startup script" / "shutdown script": keepalived's words in the log
    script: Script
    timeout: float


def startup(gdefs: GlobalDefs) -> StartStop | None:
    if gdefs.startup_script is None:
        return None
    return StartStop("startup script", gdefs.startup_script, float(gdefs.startup_script_timeout))


def shutdown(gdefs: GlobalDefs) -> StartStop | None:
    if gdefs.shutdown_script is None:
        return None
    return StartStop("shutdown script", gdefs.shutdown_script, float(gdefs.shutdown_script_timeout))


Wait = Callable[[subprocess.Popen[bytes], float], int | None]


def _wait(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def run(item: StartStop, gdefs: GlobalDefs, *, detail: bool, wait: Wait = _wait) -> int | None:
    """Run it to its end (or until it is given up); the returncode (negative: the signal), or
    None when it did not run or was given up."""
    script = item.script
    if find_executable(script.path) is None:
        # keepalived drops it at start (check_start_stop_script_secure: SC_NOTFOUND); the
        # configuration check has already warned about it.
        return None
    if detail:
        log.info("Running %s %s", item.kind, script.path)
    user = ScriptRunner(gdefs.effective_script_user).run_as(script)
    if user is None:
        log.info("Call of %s %s failed", item.kind, script.path)
        return None
    try:
        proc = subprocess.Popen(
            script.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            process_group=0,  # so that a timeout reaches whatever it started
            **_identity(user),
        )
    except (OSError, ValueError) as e:
        log.info("Call of %s %s failed (%s)", item.kind, script.path, e)
        return None
    code = wait(proc, item.timeout)
    sent_term = False
    if code is None:
        log.info("%s timed out", item.kind)
        code = _escalate(item, proc, wait)
        sent_term = True
    if code is None:
        return None
    if code >= 0:
        if code:
            log.info("%s script failed, status %d", item.kind, code)
        elif detail:
            log.info("%s script succeeded", item.kind)
    elif sent_term and -code == signal.SIGTERM:
        _killpg(proc.pid, signal.SIGKILL)  # it ended on our SIGTERM: now what it started
    return code


def _escalate(item: StartStop, proc: subprocess.Popen[bytes], wait: Wait) -> int | None:
    """SIGTERM, SIGKILL, SIGKILL again, then give up (handle_child_timeout)."""
    steps = ((signal.SIGTERM, TERM_WAIT), (signal.SIGKILL, KILL_WAIT), (signal.SIGKILL, GIVE_UP_WAIT))
    for n, (sig, seconds) in enumerate(steps):
        if n == 2:
            log.info("%s (PID %d) failed to terminate after kill", item.kind, proc.pid)
        if not _killpg(proc.pid, sig):
            log.info("%s (PID %d) lost", item.kind, proc.pid)
        code = wait(proc, seconds)
        if code is not None:
            return code
    return None


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_quietly(item: StartStop | None, gdefs: GlobalDefs, *, detail: bool) -> None:
    """For the parent: never let a script's trouble take the daemon down."""
    if item is None:
        return
    try:
        run(item, gdefs, detail=detail)
    except Exception as e:  # a bug here must not stop the children from starting
        log.error("Cannot run %s %s: %s: %s", item.kind, item.script.path, type(e).__name__, e)
