"""How a child is scheduled: keepalived's `vrrp_priority`/`checker_priority` (nice),
`vrrp_rt_priority`/`checker_rt_priority` (SCHED_RR) with `*_rlimit_rttime`,
`max_auto_priority`/`min_auto_priority_delay` (SCHED_RR when the loop runs late),
`*_no_swap` (mlockall) and `*_cpu_affinity`, as lib/process.c of keepalived 2.2.7 applies
them (set_process_priorities, reset_process_priorities, increment_process_priority).

A Python loop suffers more than keepalived's C loop on a busy host (an advert that leaves
late makes the backup take over), so these are the operator's protection. `plan_for` is
pure (the configuration -> what to apply); `ProcessScheduling` is the edge, run by the
child runtime on its loop thread: after the workload started, and around each reload.

Only the loop thread is made real-time: every scheduling change carries
SCHED_RESET_ON_FORK, so scripts the child forks and the threads it starts later (the
reload parser) run SCHED_OTHER at nice 0, as keepalived resets them in its forked scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
from dataclasses import dataclass

from conf.global_defs import GlobalDefs

log = logging.getLogger(__name__)

# mlockall(2) flags; MCL_ONFAULT (Linux 4.4) locks pages as they are touched, as keepalived
# does, instead of faulting in every mapping (thread stacks, arenas) at once.
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4
LATENESS_PROBE = 0.25  # s between the loop's checks of how late it runs (max_auto_priority)

# keepalived's words in its messages: "VRRP process has used too much CPU time, ..."
_LABEL = {"vrrp": "VRRP", "checker": "Checker"}


@dataclass(frozen=True)
class SchedPlan:
    """What a child applies (keepalived's global_data fields for one process)."""

    nice: int = 0  # setpriority; 0: left alone (keepalived sets it only when non-zero)
    rt_priority: int = 0  # SCHED_RR priority; 0: not real-time
    rlimit_rttime: int = 0  # us: RLIMIT_RTTIME hard limit (the soft one is half) under SCHED_RR
    no_swap: bool = False  # mlockall
    cpus: frozenset[int] = frozenset()  # sched_setaffinity; empty: left alone
    max_auto_priority: int = 0  # 0 or -1: never raised automatically
    min_auto_priority_delay: float = 1.0  # s late before an automatic raise


def plan_for(globals_: GlobalDefs, role: str) -> SchedPlan:
    """The plan of the `role` child ("vrrp" or "checker") from global_defs."""
    if role not in _LABEL:
        return SchedPlan()
    g = globals_
    return SchedPlan(
        nice=getattr(g, f"{role}_priority"),
        rt_priority=getattr(g, f"{role}_rt_priority") or 0,
        # keepalived takes 1 as 2: the soft limit is half of it and must not be 0
        rlimit_rttime=max(2, getattr(g, f"{role}_rlimit_rttime")),
        no_swap=getattr(g, f"{role}_no_swap"),
        cpus=frozenset(getattr(g, f"{role}_cpu_affinity")),
        max_auto_priority=g.max_auto_priority,
        min_auto_priority_delay=g.min_auto_priority_delay / 1e6,
    )


def next_auto_priority(current: int, maximum: int, lowest: int = 1) -> int | None:
    """keepalived's increment_process_priority: the SCHED_RR priority to move to when the
    loop ran late (the lowest one first, then one more each time, up to `maximum`), or
    None to stay (no automatic raise configured, or already at the maximum)."""
    if maximum <= 0:
        return None
    if current:
        return current + 1 if current < maximum else None
    return lowest


def startup_notice(globals_: GlobalDefs) -> str | None:
    """The line keepalived's parent logs at start when max_auto_priority is not set."""
    if globals_.max_auto_priority == 0:
        return "NOTICE: setting config option max_auto_priority should result in better pykeepalived performance"
    return None


def _mlockall(flags: int) -> int:
    """mlockall(2): psutil has no memory locking and the os module none either. 0 or errno.
    ctypes is imported here, with *_no_swap only: it stays out of every other child's memory."""
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(ctypes.c_int(flags)) == 0:
        return 0
    return ctypes.get_errno()


def _munlockall() -> None:
    import ctypes  # noqa: PLC0415 (as _mlockall)

    ctypes.CDLL(None, use_errno=True).munlockall()


def _tasks() -> list[int]:
    """The threads of this process (affinity is per thread in Linux)."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


class ProcessScheduling:
    """Applies a SchedPlan to this process's loop thread and undoes it (the edge)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.label = _LABEL.get(role, role)
        self.plan = SchedPlan()
        self.rt_priority = 0  # the SCHED_RR priority in force (configured or raised)
        self.locked = False
        self.affinity_set = False
        self.orig_nice = os.getpriority(os.PRIO_PROCESS, 0)
        self.cur_nice = self.orig_nice
        self.orig_affinity = os.sched_getaffinity(0)

    # start and stop ----------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """SIGXCPU (the RLIMIT_RTTIME soft limit) would end the process by default: log it
        as keepalived does. How late the loop runs comes to `ran_late` (max_auto_priority)."""
        loop.add_signal_handler(signal.SIGXCPU, self._sigxcpu)

    def _sigxcpu(self) -> None:
        log.info(
            "%s process has used too much CPU time, %s_rlimit_rttime may need to be increased", self.label, self.role
        )

    def ran_late(self, late: float) -> None:
        """A timer of the loop's own ran `late` seconds after its time (the child runtime's
        heartbeat timer, every LATENESS_PROBE at most): keepalived compares each epoll wake-up
        with its earliest timer, which tells the same."""
        if late > self.plan.min_auto_priority_delay:
            log.info("A thread timer expired %.6f seconds ago", late)
            self.raise_priority()

    # keepalived's set/reset/increment_process_priorities ----------------------------

    def apply(self, plan: SchedPlan) -> None:
        """set_process_priorities and set_process_cpu_affinity (start, and after a reload)."""
        self.plan = plan
        if plan.rt_priority:
            self._set_rt(plan.rt_priority, plan.rlimit_rttime)
        elif plan.nice:
            self._set_nice(plan.nice)
        if plan.no_swap and not self.locked:
            self._lock()
        self._set_affinity(plan.cpus)
        self._log_applied()

    def reset(self) -> None:
        """reset_process_priorities: standard scheduling while reloading (a long reload under
        SCHED_RR would starve the host and meet RLIMIT_RTTIME's SIGKILL)."""
        if self.rt_priority:
            try:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            except OSError:
                log.warning("child process: cannot reset realtime scheduling")
            else:
                # RLIMIT_RTTIME stays: it binds only real-time threads, and raising a hard
                # limit back needs CAP_SYS_RESOURCE (keepalived writes a zeroed one here)
                self.rt_priority = 0
        if self.cur_nice != self.orig_nice:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, self.orig_nice)
                self.cur_nice = self.orig_nice
            except OSError as e:
                log.info("Unable to reset process priority - %s", e.strerror)
        if self.locked:
            _munlockall()
            self.locked = False

    def raise_priority(self) -> None:
        """increment_process_priority: the loop ran late; go real-time, or one step higher."""
        lowest = os.sched_get_priority_min(os.SCHED_RR)
        target = next_auto_priority(self.rt_priority, self.plan.max_auto_priority, lowest)
        if target is None:
            return
        self._set_rt(target, self.plan.rlimit_rttime)
        log.info("Set realtime priority %d", target)

    # the system calls ----------------------------------------------------------------

    def _set_rt(self, priority: int, rlimit_us: int) -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
        except OSError:
            log.warning("child process: cannot raise priority")
            return
        self.rt_priority = priority
        # The soft limit (half) sends SIGXCPU, logged as a warning; the hard one SIGKILLs a
        # loop that computes that long without blocking, so that it cannot lock up a CPU.
        wanted = (rlimit_us // 2, rlimit_us)
        if rlimit_us and resource.getrlimit(resource.RLIMIT_RTTIME) != wanted:
            try:
                resource.setrlimit(resource.RLIMIT_RTTIME, wanted)
            except (OSError, ValueError):  # ValueError: a higher hard limit without CAP_SYS_RESOURCE
                log.warning("child process cannot set realtime rlimit")

    def _set_nice(self, nice: int) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as e:
            log.info("Unable to set process priority to %d - %s", nice, e.strerror)
            return
        self.cur_nice = nice
        if nice < 0:
            # keepalived resets a forked script's priority; the kernel does it for us (a
            # negative nice is not inherited under SCHED_RESET_ON_FORK)
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_OTHER | os.SCHED_RESET_ON_FORK, os.sched_param(0))

    def _lock(self) -> None:
        err = _mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)
        if err == 22:  # EINVAL: a kernel before 4.4 has no MCL_ONFAULT
            err = _mlockall(MCL_CURRENT | MCL_FUTURE)
        if err:
            log.info("Unable to lock process in memory - %s", os.strerror(err))
        else:
            self.locked = True

    def _set_affinity(self, cpus: frozenset[int]) -> None:
        """Every thread of the process. An affinity the configuration no longer has goes
        back to the inherited one (keepalived keeps it until the child restarts)."""
        if not cpus and not self.affinity_set:
            return
        target = cpus or self.orig_affinity
        try:
            for tid in _tasks():
                with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                    os.sched_setaffinity(tid, target)
        except OSError as e:
            log.warning("unable to set cpu affinity to %s process (%s)", self.role, e.strerror)
            return
        self.affinity_set = bool(cpus)

    def _log_applied(self) -> None:
        p = self.plan
        parts = []
        if self.rt_priority:
            parts.append(f"SCHED_RR priority {self.rt_priority} (RLIMIT_RTTIME {p.rlimit_rttime} us)")
        elif self.cur_nice != self.orig_nice:
            parts.append(f"nice {self.cur_nice}")
        if self.locked:
            parts.append("locked in memory")
        if self.affinity_set:
            parts.append("CPUs " + " ".join(map(str, sorted(p.cpus))))
        if parts:
            log.info("%s process scheduling: %s", self.label, ", ".join(parts))
