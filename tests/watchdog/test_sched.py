"""watchdog/sched.py: the plan from the configuration (pure), keepalived's automatic raise,
and the edge applied and reset for real in a subprocess (needs root for SCHED_RR, a
negative nice and mlockall)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conf.util import config_of, parse
from watchdog.sched import ProcessScheduling, SchedPlan, next_auto_priority, plan_for, startup_notice

ROOT = Path(__file__).resolve().parents[2]


def test_plan_from_global_defs(tmp_path: Path) -> None:
    g = config_of(
        parse(
            tmp_path,
            """
            global_defs {
                vrrp_priority -5
                checker_priority 7
                vrrp_rt_priority 20
                checker_rlimit_rttime 1
                vrrp_no_swap
                vrrp_cpu_affinity 1 0
                max_auto_priority
                min_auto_priority_delay 500000
            }
            """,
        )
    ).global_defs
    assert plan_for(g, "vrrp") == SchedPlan(
        nice=-5,
        rt_priority=20,
        rlimit_rttime=10000,
        no_swap=True,
        cpus=frozenset({0, 1}),
        max_auto_priority=99,
        min_auto_priority_delay=0.5,
    )
    # keepalived takes an rlimit_rttime of 1 as 2 (its soft limit, half, must not be 0)
    assert plan_for(g, "checker") == SchedPlan(
        nice=7, rlimit_rttime=2, max_auto_priority=99, min_auto_priority_delay=0.5
    )
    assert plan_for(g, "other") == SchedPlan()
    assert startup_notice(g) is None


def test_defaults_change_nothing(tmp_path: Path) -> None:
    g = config_of(parse(tmp_path, "global_defs {\n}\n")).global_defs
    assert plan_for(g, "vrrp") == SchedPlan(rlimit_rttime=10000)
    assert startup_notice(g) is not None and "max_auto_priority" in (startup_notice(g) or "")


@pytest.mark.parametrize(
    ("current", "maximum", "expected"),
    [(0, 0, None), (0, -1, None), (0, 5, 1), (1, 5, 2), (5, 5, None), (20, 5, None)],
)
def test_next_auto_priority(current: int, maximum: int, expected: int | None) -> None:
    assert next_auto_priority(current, maximum) == expected


_PROBE = """
import json, os, resource, re
from watchdog.sched import ProcessScheduling, SchedPlan

def state():
    status = open("/proc/self/status").read()
    return {
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "sched": os.sched_getscheduler(0),
        "prio": os.sched_getparam(0).sched_priority,
        "cpus": sorted(os.sched_getaffinity(0)),
        "locked": int(re.search(r"VmLck:\\s+(\\d+)", status).group(1)) > 0,
        "rttime": list(resource.getrlimit(resource.RLIMIT_RTTIME)),
    }

s = ProcessScheduling("vrrp")
out = {"before": state()}
s.apply(SchedPlan(rt_priority=10, rlimit_rttime=400000, no_swap=True, cpus=frozenset({0}), max_auto_priority=12))
out["rt"] = state()
s.raise_priority()
out["raised"] = state()
s.reset()
out["reset"] = state()
s.apply(SchedPlan(nice=-3))
out["nice"] = state()
pid = os.fork()
if pid == 0:
    os._exit(40 + os.getpriority(os.PRIO_PROCESS, 0))  # a script's nice
out["forked_nice"] = os.waitpid(pid, 0)[1] // 256 - 40
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_RR, negative nice and mlockall need root")
def test_apply_raise_reset_for_real() -> None:
    if 0 not in os.sched_getaffinity(0):
        pytest.skip("needs CPU 0")
    res = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    rr = os.SCHED_RR | os.SCHED_RESET_ON_FORK
    assert out["rt"] == {
        "nice": out["before"]["nice"],  # keepalived sets the nice value only without SCHED_RR
        "sched": rr,
        "prio": 10,
        "cpus": [0],
        "locked": True,
        "rttime": [200000, 400000],
    }
    assert out["raised"]["sched"] == rr and out["raised"]["prio"] == 11
    # standard scheduling, unlocked; the affinity stays until the next apply (as keepalived)
    assert out["reset"]["sched"] == os.SCHED_OTHER and out["reset"]["prio"] == 0
    assert not out["reset"]["locked"] and out["reset"]["cpus"] == [0]
    # the affinity the configuration no longer has goes back to the inherited one
    assert out["nice"]["nice"] == -3 and out["nice"]["cpus"] == out["before"]["cpus"]
    # a script forked at a negative nice runs at 0 (keepalived resets it in the script)
    assert out["nice"]["sched"] == os.SCHED_OTHER | os.SCHED_RESET_ON_FORK and out["forked_nice"] == 0


def test_a_late_loop_is_logged_and_raises_the_priority_only_past_the_delay(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s = ProcessScheduling("vrrp")
    s.plan = SchedPlan(max_auto_priority=5, min_auto_priority_delay=1.0)
    raised: list[int] = []
    monkeypatch.setattr(s, "raise_priority", lambda: raised.append(1))
    caplog.set_level(logging.INFO, logger="watchdog.sched")
    s.ran_late(0.9)
    assert not raised and not caplog.records
    s.ran_late(1.25)
    assert raised == [1]
    assert [r.getMessage() for r in caplog.records] == ["A thread timer expired 1.250000 seconds ago"]
