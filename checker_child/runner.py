"""Running the checkers: one `Check` per checker of each real server, started by the
shared `Scheduler` (one loop timer, a bound on the checks in flight), its result put
through the checker's `Attempts` (retry, delay_before_retry, recovery) and, when that
gives a verdict, into `Servers` (checker_child.state), whose events the workload acts on.

TCP_CHECK runs as a checks.tcp.TcpConnect (callbacks, no coroutine: 10,000 of them a
second); every other polled checker as a probe coroutine in a task. FILE_CHECK is not
polled: its track_file's changes (inotify, watchdog.trackfile) drive it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from checker_child import probes
from checker_child.checks.base import Probe, ProbeEnv, Result, Target
from checker_child.checks.tcp import ConnectPool, TcpConnect, TcpTarget
from checker_child.checks_plan import CheckPlan, plan_checks
from checker_child.latency import Latency
from checker_child.scheduler import Attempts, Scheduler, first_delay
from checker_child.state import Event, RsId, Servers, fmt_rs, fmt_vs
from conf.checkers import AnyChecker, CheckerBase, FileCheck, MiscCheck
from conf.lvs import RealServer, VirtualServer
from conf.model import Config
from conf.trackers import Weight
from watchdog.trackfile import FileWatcher

log = logging.getLogger("pykeepalived_healthcheckers")

PROBE_GRACE = 5.0  # a probe that overruns its own bound by this much is abandoned as failed
WEIGHT_MAX = 2147483647


def file_check_verdict(value: int, weight: Weight, dynamic: bool) -> tuple[bool, int | None]:
    """FILE_CHECK (keepalived.conf(5)): (up, weight contribution or None).

    With weight 0 the file says up (0) or down (anything else; `reverse` swaps them).
    With a weight, value x weight (negated by `reverse`) is the real server's weight
    contribution when `dynamic` is set; a contribution that reaches -WEIGHT_MAX can never
    leave a usable weight and means down (keepalived's convention for track files)."""
    if weight.weight == 0:
        return (value == 0) != weight.reverse, None
    contrib = max(-WEIGHT_MAX, min(WEIGHT_MAX, value * weight.weight * weight.multiplier))
    if contrib <= -WEIGHT_MAX:
        return False, None
    return True, contrib if dynamic else None


def attempts_for(conf: AnyChecker, vs: VirtualServer, is_up: bool) -> Attempts:
    """A checker's retry state from its resolved timing (conf.checkers.Schedule: delay_loop,
    retry, delay_before_retry; FILE_CHECK and BFD_CHECK run on the virtual server's)."""
    schedule = conf.schedule(vs.delay_loop)
    return Attempts(
        retry=schedule.retry,
        delay_loop=float(schedule.delay_loop),
        delay_before_retry=float(schedule.delay_before_retry),
        is_up=is_up,
        recovery_runs=probes.recovery_runs(conf),
    )


@dataclass(eq=False)
class Check:
    """One checker of one real server, at run time."""

    rs: RsId
    index: int
    conf: AnyChecker
    vs: VirtualServer
    rs_conf: RealServer
    probe: Probe | None
    target: Target
    attempts: Attempts
    fmt_rs: str
    fmt_vs: str
    file_path: str | None = None
    file_weight: Weight | None = None
    gone: bool = False
    running: bool = False
    dyn_weight: int | None = None
    runs: int = 0
    failures: int = 0
    last: str = ""
    last_ok: bool | None = None
    last_at: float = 0.0  # time.time() of the last result
    started: float = 0.0  # loop time the running check started (its duration, for the latency)
    conn: TcpConnect | None = None  # TCP_CHECK: its connects (no probe coroutine)

    @property
    def type_name(self) -> str:
        return str(self.conf.type_name)

    @property
    def polled(self) -> bool:
        """Run by the scheduler (FILE_CHECK follows its file; BFD_CHECK is not implemented)."""
        return self.conn is not None or self.probe is not None


class Tallies:
    """Results and verdicts since the start (the stats dump, the benchmark)."""

    __slots__ = ("failures", "results", "verdicts_down", "verdicts_up")

    def __init__(self) -> None:
        self.results = self.failures = self.verdicts_up = self.verdicts_down = 0


class Host(Protocol):
    """What the runner asks of the workload."""

    def handle(self, events: Iterable[Event]) -> None:
        """Act on the real servers' events."""

    def checker_alert(self, check: Check, up: bool, alive_changed: bool) -> None:
        """The SMTP alert of a checker's verdict (whether the real server's state changed)."""

    def suspended(self, vs: str) -> bool:
        """ha_suspend: whether the virtual server's checkers are paused."""

    def files_changed(self) -> None:
        """FILE_CHECKs took their track files' new values: report what changed."""


class Runner:
    """Every checker of the configuration, scheduled on one loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, servers: Servers, max_inflight: int, host: Host) -> None:
        self.loop = loop
        self.servers = servers
        self.host = host
        self.checks: list[Check] = []
        self.tallies = Tallies()
        self.latency = Latency()  # check durations per checker type (the /metrics histogram)
        self.connects = ConnectPool(loop)
        self.sched: Scheduler[Check] = Scheduler(loop, self._start, max_inflight, after_batch=self.connects.collect)
        self.files = FileWatcher(loop, self._file_changed)
        self._probes: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.config: Config | None = None
        self.env = ProbeEnv()

    # ---- the configuration ------------------------------------------------------------------

    def load(self, config: Config, env: ProbeEnv) -> None:
        """Checks for `config`; on reload an unchanged checker keeps its timer and retry
        state (checks_plan), a new one starts after its warmup, a removed one stops."""
        self.config, self.env = config, env
        plan = plan_checks(self.checks, self.servers.real_servers())
        self._apply_plan(plan, config)

    def _apply_plan(self, plan: CheckPlan[Check], config: Config) -> None:
        checks: list[Check] = []
        fresh: list[Check] = []
        for spec, old in plan.order:
            rs_id, index, conf, vs, rsc = spec
            if old is not None:
                built = probes.build(conf, rsc, vs, self.env)
                old.index, old.conf, old.vs, old.rs_conf = index, conf, vs, rsc
                old.probe, old.target = built.probe, built.target
                if old.conn is not None:
                    old.conn.target = TcpTarget(built.target)
                old.fmt_rs, old.fmt_vs = fmt_rs(vs, rsc.address, rsc.port), fmt_vs(vs)
                checks.append(old)
            else:
                check = self._new_check(rs_id, index, conf, vs, rsc)
                checks.append(check)
                fresh.append(check)
        for o in plan.removed:
            o.gone = True
            self.sched.cancel(o)
            if o.file_path is not None:
                self.files.unwatch(o.file_path)
        self.checks = checks
        now = self.loop.time()
        for check in fresh:
            if isinstance(check.conf, FileCheck):
                self._start_file_check(check, check.conf, config)
            elif check.polled and isinstance(check.conf, CheckerBase):
                self.sched.at(now + first_delay(check.conf.warmup, check.attempts.delay_loop), check)

    def _new_check(self, rs: RsId, index: int, conf: AnyChecker, vs: VirtualServer, rsc: RealServer) -> Check:
        built = probes.build(conf, rsc, vs, self.env)
        if built.why_not:
            log.warning("%s", built.why_not)
        attempts = attempts_for(conf, vs, self.servers.checker_up(rs, index))
        fmts = fmt_rs(vs, rsc.address, rsc.port), fmt_vs(vs)
        check = Check(rs, index, conf, vs, rsc, built.probe, built.target, attempts, *fmts)
        if built.tcp:
            check.conn = TcpConnect(self.connects, TcpTarget(built.target), functools.partial(self._connected, check))
        return check

    # ---- running ----------------------------------------------------------------------------

    def _start(self, check: Check) -> None:
        """The scheduler says `check` is due (and holds a slot for it)."""
        conn = check.conn
        if check.gone or self._stopped or (conn is None and check.probe is None):
            self.sched.done()
            return
        if self.host.suspended(check.rs.vs):
            # ha_suspend: paused while the virtual server's address is not here.
            self.sched.done()
            self.sched.later(check.attempts.delay_loop, check)
            return
        check.running = True
        check.started = self.loop.time()
        if conn is not None:
            conn.start()
            return
        assert check.probe is not None
        task = self.loop.create_task(self._run(check, check.probe))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _run(self, check: Check, probe: Probe) -> None:
        try:
            if isinstance(check.conf, MiscCheck):
                result = await probe(check.target)  # bounded by the script's timeout
            else:
                async with asyncio.timeout(self._probe_bound(check)):
                    result = await probe(check.target)
        except TimeoutError:
            result = Result(False, f"{check.type_name} on {check.fmt_rs} did not finish in time")
        except asyncio.CancelledError:
            check.running = False
            self.sched.done()
            raise
        except Exception as e:  # a bug in a probe: the check fails, the child goes on
            log.exception("%s on %s raised", check.type_name, check.fmt_rs)
            result = Result(False, f"{check.type_name} error: {e}")
        check.running = False
        self.sched.done()
        if check.gone or self._stopped:
            return
        self._result(check, result)

    def _connected(self, check: Check, result: Result) -> None:
        check.running = False
        self.sched.done()
        if check.gone or self._stopped:
            return
        self._result(check, result)

    @staticmethod
    def _probe_bound(check: Check) -> float:
        # a url each for HTTP_GET, the real server and each host for SMTP_CHECK
        return check.target.timeout * check.conf.schedule(check.vs.delay_loop).probes_per_run + PROBE_GRACE

    def _result(self, check: Check, result: Result) -> None:
        a = check.attempts
        was_up = a.is_up
        self.tallies.results += 1
        check.runs += 1
        check.last, check.last_ok, check.last_at = result.detail, result.ok, time.time()
        if check.started:
            self.latency.observe(check.conf.type_name, self.loop.time() - check.started)
            check.started = 0.0
        if not result.ok:
            self._failed(check, result, was_up)
        step = a.outcome(result.ok)
        weight: int | None = None
        if result.ok and isinstance(check.conf, MiscCheck) and check.conf.misc_dynamic:
            # misc_dynamic: exit 2..255 sets weight status-2; exit 0 puts the configured one back.
            want = result.weight if result.weight is not None else self._configured_weight(check)
            if want != check.dyn_weight:
                weight = want if (check.dyn_weight is not None or result.weight is not None) else None
                check.dyn_weight = want
        if step.verdict is not None or weight is not None:
            self._verdict(
                check, verdict=step.verdict, was_up=was_up, detail=result.detail, weight=weight, gave_up=step.gave_up
            )
        if not check.gone and not self._stopped:
            self.sched.later(step.delay, check)

    def _failed(self, check: Check, result: Result, was_up: bool) -> None:
        """A failed attempt (before its Attempts outcome): counted, and logged when
        keepalived logs it: the last try of an up checker (before the verdict), or every
        failure with log_all_failures / checker_log_all_failures."""
        assert self.config is not None
        self.tallies.failures += 1
        check.failures += 1
        log_all = self.config.global_defs.checker_log_all_failures or (
            isinstance(check.conf, CheckerBase) and check.conf.log_all_failures
        )
        if was_up and (check.attempts.last_try_next or log_all) and result.detail:
            log.info("%s", result.detail)

    @staticmethod
    def _configured_weight(check: Check) -> int:
        rsc = check.rs_conf
        return rsc.weight if "weight" in rsc.locations else check.vs.weight

    def _verdict(
        self,
        check: Check,
        *,
        verdict: bool | None,
        was_up: bool,
        detail: str,
        weight: int | None,
        gave_up: bool = False,
    ) -> None:
        alive_before = self.servers.is_alive(check.rs)
        if verdict is True:
            self.tallies.verdicts_up += 1
            if detail and check.polled:
                log.info("%s", detail)
        elif verdict is False:
            self.tallies.verdicts_down += 1
            if gave_up and check.polled:
                retry = check.attempts.retry
                if retry:
                    log.info("Check on service %s failed after %d retries.", check.fmt_rs, retry)
                else:
                    log.info("Check on service %s failed.", check.fmt_rs)
        up = verdict if verdict is not None else check.attempts.is_up
        events = self.servers.checker_result(check.rs, check.index, up, weight)
        if verdict is not None and verdict != was_up:
            self.host.checker_alert(check, verdict, alive_before != self.servers.is_alive(check.rs))
        self.host.handle(events)

    # ---- FILE_CHECK -----------------------------------------------------------------------------

    def _start_file_check(self, check: Check, conf: FileCheck, config: Config) -> None:
        tf = config.track_file.get(conf.track_file or "")
        if tf is None or tf.file is None:
            log.error("FILE_CHECK of %s: track_file %s not found", check.fmt_rs, conf.track_file)
            return
        check.file_path = tf.file
        # The checker's own `weight`, else the track_file's (keepalived's file_end_handler).
        check.file_weight = conf.weight if "weight" in conf.locations else tf.weight
        value = self.files.watch(tf.file)
        self._file_value(check, conf, value)

    def _file_changed(self, path: str, value: int) -> None:
        for check in self.checks:
            if check.file_path == path and not check.gone and isinstance(check.conf, FileCheck):
                self._file_value(check, check.conf, value)
        self.host.files_changed()

    def _file_value(self, check: Check, conf: FileCheck, value: int) -> None:
        assert check.file_weight is not None
        up, contrib = file_check_verdict(value, check.file_weight, conf.dynamic)
        a = check.attempts
        was_up, first = a.is_up, not a.has_run
        check.runs += 1
        check.last, check.last_ok, check.last_at = f"track file value {value}", up, time.time()
        weight = contrib if contrib is not None and contrib != check.dyn_weight else None
        if contrib is not None:
            check.dyn_weight = contrib
        verdict: bool | None = up if (up != was_up or first) else None
        a.is_up, a.has_run = up, True
        if verdict is not None or weight is not None:
            self._verdict(check, verdict=verdict, was_up=was_up, detail="", weight=weight)

    # ---- stop ---------------------------------------------------------------------------------

    async def stop(self) -> None:
        self._stopped = True
        self.sched.close()
        for check in self.checks:
            check.gone = True
            if check.conn is not None:
                check.conn.cancel()
        for task in list(self._probes):
            task.cancel()
        if self._probes:
            await asyncio.wait(list(self._probes), timeout=1.0)
        self.connects.close()
        self.files.close()
