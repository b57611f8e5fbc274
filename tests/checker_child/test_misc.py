"""MISC_CHECK with real scripts run by the watchdog ScriptRunner."""

from __future__ import annotations

import asyncio
import os
import pwd
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import TypeVar

import pytest

from checker_child.checks import misc
from checker_child.checks.base import ProbeEnv, Result, Target
from conf.checkers import MiscCheck
from conf.values import Script
from watchdog.scripts import Outcome, ScriptResult, ScriptRunner

T = TypeVar("T")
RS = Target(ip_address("10.0.0.1"), 80)


def run(coro: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro()

    return asyncio.run(main())


@pytest.fixture
def scripts() -> Iterator[Path]:
    """A directory anyone may enter (for the `user` test), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pyk-misc-", dir="/tmp") as d:
        os.chmod(d, 0o755)
        yield Path(d)


def script(where: Path, name: str, body: str) -> Path:
    path = where / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def misc_check(path: Path | str, **kw: object) -> MiscCheck:
    return MiscCheck(misc_path=Script((str(path),)), delay_loop=5.0, **kw)  # type: ignore[arg-type]


def probe_once(checker: MiscCheck, runner: ScriptRunner | None = None) -> Result:
    async def body() -> Result:
        r = runner or ScriptRunner(kill_grace=0.5)
        try:
            return await misc.probe(checker, ProbeEnv(runner=r))(RS)
        finally:
            await r.stop()

    return run(body)


# ---------------------------------------------------------------- pure parts


def result(status: int | None = None, outcome: Outcome = Outcome.EXITED, sig: int | None = None) -> ScriptResult:
    return ScriptResult(("x",), outcome, status=status, signal=sig)


@pytest.mark.parametrize(
    ("status", "dynamic", "up", "weight"),
    [
        (0, False, True, None),
        (1, False, False, None),
        (2, False, False, None),
        (255, False, False, None),
        (0, True, True, None),  # the configured weight
        (1, True, False, None),
        (2, True, True, 0),
        (12, True, True, 10),
        (255, True, True, 253),
    ],
)
def test_verdict_exit_codes(status: int, dynamic: bool, up: bool, weight: int | None) -> None:
    got_up, got_weight, _what = misc.verdict(result(status), dynamic)
    assert (got_up, got_weight) == (up, weight)


def test_verdict_other_outcomes() -> None:
    assert misc.verdict(result(outcome=Outcome.TIMED_OUT, sig=15), True) == (False, None, "timed out")
    assert misc.verdict(result(outcome=Outcome.SIGNALLED, sig=9), True) == (False, None, "failed (due to signal 9)")
    up, _w, what = misc.verdict(ScriptResult(("x",), Outcome.NOT_FOUND, detail="No such file"), False)
    assert not up and what == "failed (not found: No such file)"


def test_timeout_and_user() -> None:
    assert misc.timeout_of(MiscCheck(misc_timeout=7, delay_loop=30.0)) == 7.0
    assert misc.timeout_of(MiscCheck(misc_timeout=0, delay_loop=30.0)) == 30.0  # 0: unset, as keepalived
    assert misc.timeout_of(MiscCheck(delay_loop=30.0)) == 30.0
    assert misc.timeout_of(MiscCheck()) == 60.0
    s = misc.script_of(MiscCheck(misc_path=Script(("/bin/check", "-v")), user=("nobody", "nogroup")))
    assert s == Script(("/bin/check", "-v"), "nobody", "nogroup")
    assert misc.script_of(MiscCheck(misc_path=Script(("/bin/true",)))) == Script(("/bin/true",))


# ---------------------------------------------------------------- real scripts


def test_exit_codes_of_real_scripts(scripts: Path) -> None:
    ok = probe_once(misc_check(script(scripts, "ok", "exit 0")))
    assert ok.ok and ok.weight is None
    assert ok.detail == f"Misc check for [[10.0.0.1]:tcp:80] by [{scripts}/ok] succeeded."
    bad = probe_once(misc_check(script(scripts, "bad", "exit 1")))
    assert not bad.ok and bad.detail.endswith("failed (exited with status 1).")
    three = probe_once(misc_check(script(scripts, "three", "exit 3")))
    assert not three.ok  # without misc_dynamic only 0 passes


@pytest.mark.parametrize(
    ("status", "up", "weight"), [(0, True, None), (1, False, None), (2, True, 0), (12, True, 10), (255, True, 253)]
)
def test_dynamic_weights_of_real_scripts(scripts: Path, status: int, up: bool, weight: int | None) -> None:
    got = probe_once(misc_check(script(scripts, f"dyn{status}", f"exit {status}"), misc_dynamic=True))
    assert (got.ok, got.weight) == (up, weight), got.detail


def test_arguments_are_passed(scripts: Path) -> None:
    path = script(scripts, "args", '[ "$1" = "-p" ] && [ "$2" = "8080" ]')
    checker = MiscCheck(misc_path=Script((str(path), "-p", "8080")), delay_loop=5.0)
    assert probe_once(checker).ok


def test_hanging_script_is_killed_at_misc_timeout(scripts: Path) -> None:
    path = script(scripts, "hang", "exec sleep 60")
    t0 = time.monotonic()
    got = probe_once(misc_check(path, misc_timeout=1))
    took = time.monotonic() - t0
    assert not got.ok and got.detail.endswith("timed out.")
    assert 0.9 < took < 5.0


def test_script_ignoring_sigterm_is_killed_too(scripts: Path) -> None:
    path = script(scripts, "stubborn", "trap '' TERM\nwhile :; do sleep 0.1; done")
    t0 = time.monotonic()
    got = probe_once(misc_check(path, misc_timeout=1))
    took = time.monotonic() - t0
    assert not got.ok and "timed out" in got.detail
    assert took < 6.0


def test_killed_by_a_signal(scripts: Path) -> None:
    got = probe_once(misc_check(script(scripts, "suicide", "kill -KILL $$")))
    assert not got.ok and got.detail.endswith("failed (due to signal 9).")


def test_missing_and_not_executable(scripts: Path) -> None:
    missing = probe_once(misc_check(scripts / "nope"))
    assert not missing.ok and "failed (not found" in missing.detail
    plain = scripts / "plain"
    plain.write_text("#!/bin/sh\nexit 0\n")
    plain.chmod(0o644)
    not_exec = probe_once(misc_check(plain))
    assert not not_exec.ok and "not executable" in not_exec.detail


def test_no_runner_is_a_failure_not_a_crash() -> None:
    got = run(lambda: misc.probe(misc_check("/bin/true"), ProbeEnv())(RS))
    assert not got.ok and "no script runner" in got.detail


def test_runs_as_the_configured_user(scripts: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    path = script(scripts, "whoami", f'[ "$(id -u)" = "{nobody.pw_uid}" ]')
    assert probe_once(misc_check(path, user=("nobody",))).ok
    assert not probe_once(misc_check(path)).ok  # the default user here is not nobody
