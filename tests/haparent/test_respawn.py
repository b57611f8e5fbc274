"""The respawn policy (keepalived's calc_restart_delay and permanent exit codes), applied by
one function."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from haparent.respawn import Decision, Exit, RespawnPolicy, decide

POLICY = RespawnPolicy()


def test_quick_deaths_back_off_0_1_2_4_up_to_60() -> None:
    delays, deaths = [], 0
    for _ in range(10):
        d = decide(POLICY, Exit(signal=signal.SIGKILL), ran_for=5.0, quick_deaths=deaths)
        assert d.respawn
        delays.append(d.delay)
        deaths = d.quick_deaths
    assert delays == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_child_that_ran_over_a_minute_restarts_at_once_and_forgets_its_backoff() -> None:
    d = decide(POLICY, Exit(code=0), ran_for=60.5, quick_deaths=6)
    assert d == Decision(True, 0.0, 0)
    # Exactly 60 s is still quick (keepalived: "more than a minute").
    assert decide(POLICY, Exit(code=0), ran_for=60.0, quick_deaths=6).delay == 32


@pytest.mark.parametrize(
    ("code", "name", "err"),
    [(1, "FATAL", errno.EINVAL), (2, "CONFIG", errno.EINVAL), (4, "missing permission", errno.EPERM)],
)
def test_permanent_exit_codes_stop_the_daemon_with_that_status(code: int, name: str, err: int) -> None:
    d = decide(POLICY, Exit(code=code), ran_for=1000.0, quick_deaths=0)
    assert (d.respawn, d.daemon_exit, d.errno, d.permanent) == (False, code, err, name)


def test_permanent_wins_over_dont_respawn() -> None:
    d = decide(RespawnPolicy(respawn=False), Exit(code=2), ran_for=1.0, quick_deaths=0)
    assert (d.daemon_exit, d.permanent) == (2, "CONFIG")


def test_dont_respawn_stops_the_daemon_cleanly() -> None:
    d = decide(RespawnPolicy(respawn=False), Exit(signal=signal.SIGKILL), ran_for=100.0, quick_deaths=0)
    assert d == Decision(False)


def test_other_exit_codes_and_signals_respawn() -> None:
    for ended in (Exit(code=0), Exit(code=70), Exit(signal=signal.SIGSEGV)):
        assert decide(POLICY, ended, ran_for=1.0, quick_deaths=0).respawn


def test_exit_from_a_wait_status() -> None:
    assert Exit.from_status(2 << 8) == Exit(code=2)
    assert Exit.from_status(signal.SIGKILL) == Exit(signal=signal.SIGKILL)
    assert str(Exit(signal=signal.SIGKILL)) == "killed by SIGKILL" and str(Exit(code=3)) == "exit status 3"
    assert os.WIFSIGNALED(signal.SIGKILL)
