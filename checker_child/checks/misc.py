"""MISC_CHECK: run `misc_path`; its exit status says whether the real server is up
(keepalived's check_misc.c).

- The script runs through the child's ScriptRunner (no shell, own process group,
  stdin/stdout/stderr on /dev/null) as the checker's `user [group]`, else global_defs
  script_user (the runner applies that default).
- Timeout: `misc_timeout` seconds, else (unset or 0) delay_loop, as keepalived. At the
  timeout the script gets SIGTERM, then SIGKILL after 2 s (the runner's escalation, the
  same as keepalived's); a timed out script is a failure.
- Exit 0: up. Any other status, or death by a signal: down.
- With `misc_dynamic` (man page): exit 1 is down, exit 0 is up at the real server's
  configured weight (Result.weight None: the workload puts the configured weight back if
  a dynamic weight was set before), exit 2..255 is up with weight status - 2 (0..253).
- A script that cannot run (missing, not executable, unknown user) is a failure whose
  detail says why.

Detail texts are keepalived's log line without the virtual server, which the probe does
not know: "Misc check for [[10.0.0.1]:tcp:80] by [/usr/local/bin/check] failed
(exited with status 1)." (keepalived: "Misc check for [<RS> VS <VS>] by [...] ...").
"""

from __future__ import annotations

from conf.checkers import DEFAULT_DELAY_LOOP, MiscCheck
from conf.values import Script
from watchdog.scripts import Outcome, ScriptResult

from .base import Probe, ProbeEnv, Result, Target, failed
from .tcp import fmt_check

DYNAMIC_DOWN = 1  # misc_dynamic: the one failing status
DYNAMIC_OFFSET = 2  # misc_dynamic: weight = status - 2


def script_of(checker: MiscCheck) -> Script | None:
    """misc_path with the checker's `user [group]` (None: the runner's default user)."""
    path = checker.misc_path
    if path is None:
        return None
    if not checker.user:
        return path
    group = checker.user[1] if len(checker.user) > 1 else None
    return Script(path.argv, checker.user[0], group)


def timeout_of(checker: MiscCheck) -> float:
    """misc_timeout, else delay_loop (keepalived treats a misc_timeout of 0 as unset)."""
    if checker.misc_timeout:
        return float(checker.misc_timeout)
    return checker.delay_loop if checker.delay_loop is not None else DEFAULT_DELAY_LOOP


def verdict(res: ScriptResult, dynamic: bool) -> tuple[bool, int | None, str]:
    """(up, weight, what happened in keepalived's words) for one run of the script."""
    if res.outcome is Outcome.EXITED and res.status is not None:
        status = res.status
        if status == 0:
            return True, None, "succeeded"
        if dynamic and status != DYNAMIC_DOWN:
            return True, status - DYNAMIC_OFFSET, f"succeeded (weight {status - DYNAMIC_OFFSET})"
        return False, None, f"failed (exited with status {status})"
    if res.outcome is Outcome.TIMED_OUT:
        return False, None, "timed out"
    if res.outcome is Outcome.SIGNALLED and res.signal is not None:
        return False, None, f"failed (due to signal {res.signal})"
    return False, None, f"failed ({res.describe()})"


def probe(checker: MiscCheck, env: ProbeEnv) -> Probe:
    """One run of the script per call; retries and timers are the workload's."""
    script = script_of(checker)
    timeout = timeout_of(checker)
    dynamic = checker.misc_dynamic
    runner = env.runner

    async def run(target: Target) -> Result:
        path = script.path if script is not None else ""
        prefix = f"Misc check for [{fmt_check(target)}] by [{path}]"
        if script is None:
            return failed(f"{prefix} failed (no misc_path)")
        if runner is None:
            return failed(f"{prefix} failed (no script runner)")
        res = await runner.run(script, timeout=timeout, label=f"MISC_CHECK script '{path}'")
        up, weight, what = verdict(res, dynamic)
        return Result(up, f"{prefix} {what}.", weight)

    return run
