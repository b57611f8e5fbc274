"""Scheduling of the children (watchdog/sched.py), read from /proc as an operator would, with
keepalived 2.2.7 started on the same configuration in the other node as the reference.

keepalived's checker child stops the whole daemon where the kernel has no IPVS, so keepalived
runs with -P (VRRP only) there and our checker child is compared with what keepalived's
code applies (lib/process.c); with IPVS, keepalived's checker is read too.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit.lab import Daemon, Lab, wait_for

pytestmark = pytest.mark.lab

VRRP_AND_CHECKER = """
global_defs {{
    router_id sched
{globals}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
virtual_server 192.0.2.100 80 {{
    delay_loop 6
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.12 80 {{
        TCP_CHECK {{
            connect_timeout 3
        }}
    }}
}}
"""

# vrrp_rlimit_rttime: a wide margin, so that neither loop is SIGKILLed on a busy test host
STARTED = """
    vrrp_priority -5
    checker_priority 7
    vrrp_rt_priority 20
    vrrp_rlimit_rttime 500000
    vrrp_no_swap
    checker_no_swap
    vrrp_cpu_affinity 1
    checker_cpu_affinity 0
"""
# after SIGHUP: no more SCHED_RR nor mlockall; the nice value applies now; other CPUs
RELOADED = """
    vrrp_priority -5
    checker_priority 3
    vrrp_cpu_affinity 0
    checker_cpu_affinity 1
"""
AUTO = """
    max_auto_priority 5
    vrrp_rlimit_rttime 500000
"""

STALL = {"keepalived": 5.0, "pykeepalived": 1.5}  # s
SCHED_RR = os.SCHED_RR
RESET_ON_FORK = os.SCHED_RESET_ON_FORK


@dataclass(frozen=True)
class Sched:
    nice: int  # /proc/PID/stat field 19
    rt_priority: int  # field 40
    policy: int  # field 41
    scheduler: int  # os.sched_getscheduler (with SCHED_RESET_ON_FORK)
    cpus: tuple[int, ...]  # os.sched_getaffinity
    vm_lck_kb: int  # /proc/PID/status VmLck
    rttime: tuple[str, str]  # /proc/PID/limits "Max realtime timeout" soft, hard

    @classmethod
    def of(cls, pid: int) -> Sched:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
        m = re.search(r"^VmLck:\s+(\d+) kB", status, re.M)
        limits = Path(f"/proc/{pid}/limits").read_text()
        lim = re.search(r"^Max realtime timeout\s+(\S+)\s+(\S+)", limits, re.M)
        assert m and lim
        return cls(
            nice=int(stat[16]),
            rt_priority=int(stat[37]),
            policy=int(stat[38]),
            scheduler=os.sched_getscheduler(pid),
            cpus=tuple(sorted(os.sched_getaffinity(pid))),
            vm_lck_kb=int(m.group(1)),
            rttime=(lim.group(1), lim.group(2)),
        )

    def row(self) -> str:
        return (
            f"nice {self.nice:>3}  rt_prio {self.rt_priority:>2}  policy {self.policy}  "
            f"sched {self.scheduler:#x}  cpus {list(self.cpus)}  VmLck {self.vm_lck_kb} kB  "
            f"RTTIME {self.rttime[0]}/{self.rttime[1]}"
        )


def _pid(d: Daemon, which: str) -> int:
    return wait_for(f"{d.kind}'s {which} pid", lambda: d.pid_of(which), 10)  # type: ignore[arg-type]


def _settled(pid: int, want: dict[str, object], timeout: float = 10) -> Sched:
    """The child's scheduling once it shows what it applies at the end of its start or reload."""

    def probe() -> Sched | None:
        s = Sched.of(pid)
        return s if all(getattr(s, k) == v for k, v in want.items()) else None

    try:
        return wait_for(f"{pid}: {want}", probe, timeout, 0.05)
    except AssertionError:
        raise AssertionError(f"{pid}: {Sched.of(pid).row()}, want {want}") from None


def _show(title: str, rows: dict[str, Sched | None]) -> None:
    print(f"\n{title}")
    for name, s in rows.items():
        print(f"  {name:<22} {s.row() if s else '(not running: no IPVS in this kernel)'}")


def _keepalived_checker_runs() -> bool:
    return Path("/proc/net/ip_vs").exists()


def _cpus_available() -> None:
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")


def test_children_scheduling_as_keepalived(lab2: Lab) -> None:
    _cpus_available()
    conf = VRRP_AND_CHECKER.format(globals=STARTED)
    with_checker = _keepalived_checker_runs()
    ka = lab2.node(1).keepalived(conf, args=() if with_checker else ("-P",))
    pk = lab2.node(2).pykeepalived(conf)

    rr = {"policy": SCHED_RR, "rt_priority": 20, "cpus": (1,)}
    ka_vrrp = _settled(_pid(ka, "vrrp"), rr)
    pk_vrrp = _settled(_pid(pk, "vrrp"), rr)
    checker = {"nice": 7, "cpus": (0,)}
    pk_check = _settled(_pid(pk, "checker"), checker)
    ka_check = _settled(_pid(ka, "checker"), checker) if with_checker else None
    _show(
        "started (vrrp_rt_priority 20, vrrp_rlimit_rttime 500000, *_no_swap, affinity 1/0, checker_priority 7)",
        {
            "keepalived vrrp": ka_vrrp,
            "pykeepalived vrrp": pk_vrrp,
            "keepalived checker": ka_check,
            "pykeepalived checker": pk_check,
        },
    )

    # VRRP: SCHED_RR|SCHED_RESET_ON_FORK at 20, nice untouched under SCHED_RR (keepalived sets
    # one or the other), RLIMIT_RTTIME half/whole, locked in memory, on CPU 1
    for s in (ka_vrrp, pk_vrrp):
        assert s.scheduler == SCHED_RR | RESET_ON_FORK
        assert s.nice == 0 and s.rttime == ("250000", "500000") and s.vm_lck_kb > 0
    assert (pk_vrrp.nice, pk_vrrp.rt_priority, pk_vrrp.policy, pk_vrrp.scheduler, pk_vrrp.cpus, pk_vrrp.rttime) == (
        ka_vrrp.nice,
        ka_vrrp.rt_priority,
        ka_vrrp.policy,
        ka_vrrp.scheduler,
        ka_vrrp.cpus,
        ka_vrrp.rttime,
    )
    # checker: nice 7, SCHED_OTHER, no real-time limit, locked, on CPU 0
    assert pk_check.scheduler == 0 and pk_check.rt_priority == 0 and pk_check.vm_lck_kb > 0
    assert pk_check.rttime == ("unlimited", "unlimited")
    if ka_check is not None:
        assert (pk_check.nice, pk_check.scheduler, pk_check.cpus) == (ka_check.nice, ka_check.scheduler, ka_check.cpus)

    # Reload: keepalived resets to standard scheduling (SCHED_OTHER, original nice,
    # munlockall) and applies the new settings
    mark = len(pk.log_text())
    ka.reconfigure(VRRP_AND_CHECKER.format(globals=RELOADED))
    pk.reconfigure(VRRP_AND_CHECKER.format(globals=RELOADED))
    pk.wait_log("Reload complete", since=mark)
    after = {"policy": 0, "nice": -5, "cpus": (0,), "vm_lck_kb": 0}
    ka_vrrp2 = _settled(ka.pid_of("vrrp") or 0, after)
    pk_vrrp2 = _settled(pk.pid_of("vrrp") or 0, after)
    pk_check2 = _settled(pk.pid_of("checker") or 0, {"nice": 3, "cpus": (1,), "vm_lck_kb": 0})
    ka_check2 = _settled(ka.pid_of("checker") or 0, {"nice": 3, "cpus": (1,)}) if with_checker else None
    _show(
        "after SIGHUP (vrrp_priority -5 without rt_priority, no *_no_swap, affinity 0/1, checker_priority 3)",
        {
            "keepalived vrrp": ka_vrrp2,
            "pykeepalived vrrp": pk_vrrp2,
            "keepalived checker": ka_check2,
            "pykeepalived checker": pk_check2,
        },
    )
    assert ka_vrrp2.rt_priority == pk_vrrp2.rt_priority == 0
    # Ours keeps SCHED_RESET_ON_FORK with a negative nice, so that scripts run at nice 0
    # (keepalived resets it in each forked script); the policy is SCHED_OTHER on both.
    assert ka_vrrp2.scheduler == 0 and pk_vrrp2.scheduler == RESET_ON_FORK
    # RLIMIT_RTTIME binds only real-time threads: ours leaves it (raising a hard limit back
    # needs CAP_SYS_RESOURCE); keepalived writes back a zeroed one, 0/0
    assert pk_vrrp2.rttime == ("250000", "500000")
    # same daemons: nothing was restarted
    assert "Starting VRRP child" not in pk.log_text()[mark:]


def test_max_auto_priority_after_a_stall(lab2: Lab) -> None:
    """A VRRP child that runs late (SIGSTOP, SIGCONT) goes SCHED_RR at the lowest priority,
    then one higher at the next stall, as keepalived does with max_auto_priority. keepalived
    measures the lateness against its earliest timer, up to Master_Down_Interval (3.61 s)
    away in BACKUP, so it is stalled 5 s; ours checks every 0.25 s and is stalled 1.5 s, below
    the 1.91 s after which our parent kills a hung VRRP child (keepalived never does)."""
    conf = VRRP_AND_CHECKER.format(globals=AUTO)
    ka = lab2.node(1).keepalived(conf, args=("-P",))
    pk = lab2.node(2).pykeepalived(conf, args=("-P",))
    pids = {"keepalived": _pid(ka, "vrrp"), "pykeepalived": _pid(pk, "vrrp")}
    ka.wait_state("VI_1", "BACKUP")
    pk.wait_state("VI_1", "BACKUP")
    for pid in pids.values():
        assert Sched.of(pid).policy == 0
    rows: dict[str, Sched | None] = {}
    for stall in (1, 2):
        for pid in pids.values():
            os.kill(pid, signal.SIGSTOP)
        time.sleep(STALL["pykeepalived"])
        os.kill(pids["pykeepalived"], signal.SIGCONT)
        time.sleep(STALL["keepalived"] - STALL["pykeepalived"])
        os.kill(pids["keepalived"], signal.SIGCONT)
        for name, pid in pids.items():
            rows[f"{name} stall {stall}"] = _settled(pid, {"policy": SCHED_RR, "rt_priority": stall})
    _show("max_auto_priority 5, after stalls of 5 s (keepalived) and 1.5 s (pykeepalived)", rows)
    for d in (ka, pk):
        d.wait_log(r"A thread timer expired \d+\.\d+ seconds ago")
        d.wait_log("Set realtime priority 2")
    for name, pid in pids.items():
        assert rows[f"{name} stall 2"] == Sched.of(pid)
        assert Sched.of(pid).rttime == ("250000", "500000")
