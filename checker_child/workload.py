"""The checker child's workload: every virtual_server of the configuration, on one loop.

Each checker of each real server runs on the shared `Scheduler` (one loop timer for all
of them, a bound on the checks in flight). A probe's result goes through the checker's
`Attempts` (retry, delay_before_retry, recovery) and, when that gives a verdict, into
`Servers` (checker_child.state), whose events we act on in keepalived's order: log
lines, notify_up / notify_down, quorum_up / quorum_down, the lvs_notify_fifo lines, SMTP
alerts, `state` reports to the parent, and the IPVS table (diffed, applied in one go per
loop pass).

Where the kernel has no IPVS, keepalived's checker dies FATAL; we log one warning and do
everything else. FILE_CHECK follows its track_file through inotify (watchdog.trackfile),
ha_suspend follows the host's addresses through rtnetlink notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import resource
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checker_child import dumps, probes
from checker_child import ipvs as ipvs_mod
from checker_child.addresses import AddressWatch
from checker_child.checks import ping
from checker_child.checks.base import Probe, ProbeEnv, Result, Target
from checker_child.checks.tcp import TcpConnect
from checker_child.latency import Latency
from checker_child.scheduler import Attempts, Scheduler, first_delay
from checker_child.state import (
    Event,
    Log,
    QuorumDown,
    QuorumUp,
    RsDown,
    RsId,
    RsUp,
    RsWeight,
    Servers,
    SorryIn,
    SorryOut,
    fmt_rs,
    fmt_vs,
)
from checker_child.table import Table, diff
from conf.checkers import AnyChecker, FileCheck, MiscCheck, Schedule
from conf.lvs import RealServer, VirtualServer
from conf.model import Config
from conf.trackers import Weight
from conf.values import Script
from watchdog.fifo import Fifos, rs_line, vs_line
from watchdog.protocol import DumpKind, Json
from watchdog.runtime import EXIT_MISSING_PERMISSION, PermanentError, Report
from watchdog.scripts import ScriptRunner
from watchdog.smtp import Alerter, checker_alert
from watchdog.statekeys import real_server_key
from watchdog.status import NO_IPVS_IN_KERNEL, Conditions, IpvsStatus, ipvs_report
from watchdog.trackfile import FileWatcher

log = logging.getLogger("pykeepalived_healthcheckers")

NOTIFY_TIMEOUT = 30.0  # a notify/quorum script that runs longer is terminated (keepalived has none)
STOP_SCRIPTS_WAIT = 2.0  # at shutdown, how long notify_down/quorum_down (omega) may delay the exit
FD_RESERVE = 256  # descriptors kept free for everything else (scripts, netlink, pipes, logs)
MAX_INFLIGHT = 8192  # never more checks in flight than this, whatever RLIMIT_NOFILE allows
PROBE_GRACE = 5.0  # a probe that overruns its own bound by this much is abandoned as failed
WEIGHT_MAX = 2147483647
NO_IPVS_WARNING = "IPVS is not available in this kernel: health checks run and notify, the IPVS table is not programmed"


def raise_nofile() -> int:
    """RLIMIT_NOFILE soft limit up to the hard limit (each check in flight holds a
    descriptor); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("Cannot raise the open files limit from %d to %d: %s", soft, target, e)
    return soft


def freeze_heap(reload: bool = False) -> None:
    """Move the configuration and the checkers (long-lived, tens of thousands of objects
    with 10,000 real servers) out of the collector's sight: a full collection over them
    holds the loop ~100 ms every second or two and makes checks late. On reload the old
    ones are released first, so that what the reload dropped can be freed."""
    if reload:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


def inflight_bound(nofile: int) -> int:
    return max(16, min(MAX_INFLIGHT, nofile - FD_RESERVE))


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


def smtp_for_vs(vs: VirtualServer, config: Config) -> bool:
    if vs.smtp_alert is not None:
        return vs.smtp_alert
    return config.global_defs.smtp_alert_for("checker")


def smtp_for_rs(rs: RealServer, vs: VirtualServer, config: Config) -> bool:
    return rs.smtp_alert if rs.smtp_alert is not None else smtp_for_vs(vs, config)


def rs_key(rs: RsId) -> str:
    """The name a real server's state is reported under."""
    return real_server_key(rs.vs, rs.rs)


@dataclass(eq=False)
class Check:
    """One checker of one real server, at run time."""

    rs: RsId
    index: int
    conf: Any  # an AnyChecker
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
    tcp: bool = False  # TCP_CHECK: runs as a TcpConnect, not a probe coroutine
    conn: TcpConnect | None = None  # a TCP_CHECK connect in progress

    @property
    def type_name(self) -> str:
        return str(self.conf.type_name)

    @property
    def polled(self) -> bool:
        """Run by the scheduler (FILE_CHECK follows its file; BFD_CHECK is not implemented)."""
        return self.tcp or self.probe is not None


@dataclass
class _Tallies:
    results: int = 0
    failures: int = 0
    verdicts_up: int = 0
    verdicts_down: int = 0
    notifies: int = 0
    ipvs_errors: int = 0
    errors: list[str] = field(default_factory=list)


class CheckerWorkload:
    """watchdog.runtime.Workload for the checker child."""

    def __init__(self, *, dont_release: bool = False, max_inflight: int | None = None) -> None:
        self.dont_release = dont_release
        self.max_inflight = max_inflight
        self.config: Config | None = None
        self.checks: list[Check] = []
        self.applied = Table()
        self.ipvs: Any = None
        self.ipvs_available = False
        self.ipvs_status = IpvsStatus(False, "not opened yet")
        self.tallies = _Tallies()
        self.latency = Latency()  # check durations per checker type (the /metrics histogram)
        self.started_at = time.monotonic()
        self._report: Report = lambda changes: None
        self.conditions = Conditions(self._report)  # bound to the parent's report in start()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._probes: set[asyncio.Task[Any]] = set()
        self._table_scheduled = False
        self._reported: set[str] = set()
        self._suspended_vs: dict[str, bool] = {}
        self._dirty_rs: set[RsId] = set()  # to report to the parent
        self._dirty_vs: set[str] = set()
        self._stopped = False

    # ---- Workload ----------------------------------------------------------------------

    async def resume(self, state: Mapping[str, Json]) -> None:
        # The parent's last state is not used: like keepalived's, a restarted checker
        # starts its real servers afresh (alpha decides whether they start up or down).
        del state

    async def start(self, config: Config, report: Report) -> None:
        self.loop = asyncio.get_running_loop()
        self._report = report
        self.conditions = Conditions(report)
        self.config = config
        # First, while nothing is held: without permission for an IPVS the kernel has, the
        # child stops the daemon (exit 4) before it says ready.
        self._open_ipvs(config)
        self._report(ipvs_report(self.ipvs_status))
        nofile = raise_nofile()
        bound = self.max_inflight if self.max_inflight is not None else inflight_bound(nofile)
        self.sched: Scheduler[Check] = Scheduler(self.loop, self._start_check, bound)
        gdefs = config.global_defs
        self.scripts = ScriptRunner(tuple(gdefs.script_user) if gdefs.script_user else None)
        self.env = ProbeEnv(runner=self.scripts, ssl=config.ssl)
        self.fifos = Fifos.for_lvs(gdefs, self.scripts)
        self._fifo_conditions()
        self.alerter = Alerter(gdefs)
        self.files = FileWatcher(self.loop, self._file_changed)
        self.addrs: AddressWatch | None = None
        self.servers = Servers(config)
        self._watch_addresses(config)
        self._apply_suspension(initial=True)
        self._handle(self.servers.initial_events())
        self._build_checks(config, old=[])
        self._report_all()
        self._sync_table()
        freeze_heap()

    async def reload(self, config: Config) -> None:
        old_config = self.config
        if old_config is not None and old_config.global_defs != config.global_defs:
            # lvs_notify_fifo, SMTP settings or script_user may have changed: reopen.
            old_fifos, old_alerter = self.fifos, self.alerter
            gdefs = config.global_defs
            self.scripts.default_user = tuple(gdefs.script_user) if gdefs.script_user else None
            self.fifos = Fifos.for_lvs(gdefs, self.scripts)
            self._fifo_conditions()
            self.alerter = Alerter(gdefs)
            await old_fifos.close()
            await old_alerter.close()
        self.config = config
        self.env = ProbeEnv(runner=self.scripts, ssl=config.ssl)
        events = self.servers.reload(config)
        self._handle(events)
        self._build_checks(config, old=self.checks)
        self._watch_addresses(config)
        self._apply_suspension(initial=False)
        self._report_all(prune=True)
        self._sync_table()
        freeze_heap(reload=True)

    async def dump(self, kind: DumpKind) -> str:
        return dumps.render(kind, self)

    async def stop(self) -> None:
        if self._stopped or not hasattr(self, "sched"):
            return
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
        config = self.config
        flush = config.global_defs.lvs_flush_on_stop if config is not None else None
        # lvs_flush_on_stop: keepalived skips the real servers' notifies (quorum ones stay).
        self._handle(self.servers.shutdown(flushed=flush is not None))
        self._release_ipvs(flush)
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_SCRIPTS_WAIT)
        with contextlib.suppress(Exception):
            await self.fifos.close()
        with contextlib.suppress(Exception):
            await self.alerter.close()
        self.files.close()
        if self.addrs is not None:
            self.addrs.close()
        if self.ipvs is not None:
            with contextlib.suppress(Exception):
                self.ipvs.close()
        # PING_CHECK may have widened ping_group_range; keepalived puts it back at exit.
        ping.restore_ping_group_range()

    # ---- IPVS ----------------------------------------------------------------------------

    def _open_ipvs(self, config: Config) -> None:
        """Open the IPVS table, or say (log, STATUS=, dumps) why it is not programmed."""
        self.ipvs = None
        self.ipvs_available = False
        if ipvs_mod.kernel_has_ipvs():
            try:
                self.ipvs = ipvs_mod.Ipvs()
                self.ipvs_available = True
                self.ipvs_status = IpvsStatus(True)
            except ipvs_mod.IpvsNoPermission as e:
                # Restarting cannot grant CAP_NET_ADMIN: a permanent error, as the VRRP
                # child's sockets (keepalived's checker exits FATAL where IPVS fails).
                log.error("%s", e)
                raise PermanentError(
                    "Missing permission: the checker needs CAP_NET_ADMIN for IPVS (run it as root)",
                    EXIT_MISSING_PERMISSION,
                ) from e
            except ipvs_mod.IpvsUnavailable as e:
                log.warning("%s (%s)", NO_IPVS_WARNING, e)
                self.ipvs_status = IpvsStatus(False, f"cannot use IPVS: {e.__cause__ or e}")
            except OSError as e:
                log.warning("%s (%s)", NO_IPVS_WARNING, e.strerror or e)
                self.ipvs_status = IpvsStatus(False, f"cannot use IPVS: {e.strerror or e}")
        else:
            log.warning("%s", NO_IPVS_WARNING)
            self.ipvs_status = NO_IPVS_IN_KERNEL
        if self.ipvs is not None and config.global_defs.lvs_flush:
            # lvs_flush: start from an empty table.
            try:
                self.ipvs.flush()
            except Exception as e:
                log.error("Cannot flush the IPVS table: %s", e)

    def _fifo_conditions(self) -> None:
        failed = {f"fifo:{path}": f"notify FIFO {path}: {why}" for path, why in self.fifos.failed.items()}
        self.conditions.replace("fifo:", failed)

    def _sync_table_soon(self) -> None:
        if not self._table_scheduled:
            self._table_scheduled = True
            self.loop.call_soon(self._sync_table)

    def _sync_table(self) -> None:
        """Apply what changed since the last call (every verdict of a loop pass at once)."""
        self._table_scheduled = False
        if self._stopped:
            return
        new = self.servers.table()
        change = diff(self.applied, new)
        if change and self.ipvs is not None:
            try:
                errors = self.ipvs.apply(change)
            except Exception as e:
                errors = [f"IPVS update failed: {e}"]
            for line in errors:
                self.tallies.ipvs_errors += 1
                log.error("%s", line)
        self.applied = new

    def _release_ipvs(self, flush: str | None) -> None:
        """At stop: keep the table (-I), flush it (lvs_flush_on_stop), remove our
        services (lvs_flush_on_stop VS), or remove what we added entry by entry."""
        if self.ipvs is None or self.dont_release:
            return
        try:
            if flush == "all":
                self.ipvs.flush()
            elif flush == "VS":
                self.ipvs.remove(list(self.applied.services))
            else:
                for line in self.ipvs.apply(diff(self.applied, Table())):
                    log.error("%s", line)
        except Exception as e:
            log.error("Cannot release the IPVS table: %s", e)
        self.applied = Table()

    # ---- checks ----------------------------------------------------------------------------

    def _new_check(self, rs: RsId, index: int, conf: AnyChecker, vs: VirtualServer, rsc: RealServer) -> Check:
        built = probes.build(conf, rsc, vs, self.env)
        if built.why_not:
            log.warning("%s", built.why_not)
        schedule = conf.schedule(vs.delay_loop)
        attempts = Attempts(
            retry=schedule.retry,
            delay_loop=schedule.delay_loop,
            delay_before_retry=schedule.delay_before_retry,
            is_up=self.servers.checker_up(rs, index),
            recovery_runs=probes.recovery_runs(conf),
        )
        return Check(
            rs=rs,
            index=index,
            conf=conf,
            vs=vs,
            rs_conf=rsc,
            probe=built.probe,
            tcp=built.tcp,
            target=built.target,
            attempts=attempts,
            fmt_rs=fmt_rs(vs, rsc.address, rsc.port),
            fmt_vs=fmt_vs(vs),
        )

    def _build_checks(self, config: Config, old: list[Check]) -> None:
        """Checks for the configuration; on reload an unchanged checker (same real server,
        same type and settings, matched in order as Servers matches them) keeps its timer
        and retry state, a new one starts after its warmup, a removed one stops."""
        by_rs: dict[RsId, list[Check]] = {}
        for c in old:
            by_rs.setdefault(c.rs, []).append(c)
        kept: set[int] = set()
        checks: list[Check] = []
        fresh: list[Check] = []
        for rs_id, vs, rsc, checkers in self.servers.real_servers():
            olds = by_rs.get(rs_id, [])
            taken: set[int] = set()
            for i, conf in enumerate(checkers):
                match = None
                for j, o in enumerate(olds):
                    if j not in taken and type(o.conf) is type(conf) and o.conf == conf:
                        match = o
                        taken.add(j)
                        break
                if match is not None and not match.gone:
                    kept.add(id(match))
                    built = probes.build(conf, rsc, vs, self.env)
                    match.index, match.conf, match.vs, match.rs_conf = i, conf, vs, rsc
                    match.probe, match.tcp, match.target = built.probe, built.tcp, built.target
                    match.fmt_rs, match.fmt_vs = fmt_rs(vs, rsc.address, rsc.port), fmt_vs(vs)
                    checks.append(match)
                    continue
                check = self._new_check(rs_id, i, conf, vs, rsc)
                checks.append(check)
                fresh.append(check)
        for o in old:
            if id(o) not in kept:
                o.gone = True
                self.sched.cancel(o)
                if o.file_path is not None:
                    self.files.unwatch(o.file_path)
        self.checks = checks
        now = self.loop.time()
        for check in fresh:
            if isinstance(check.conf, FileCheck):
                self._start_file_check(check, config)
            elif check.polled:
                self.sched.at(now + first_delay(check.conf.warmup, check.attempts.delay_loop), check)

    def _start_check(self, check: Check) -> None:
        """The scheduler says `check` is due (and holds a slot for it)."""
        if check.gone or self._stopped or not check.polled:
            self.sched.done()
            return
        if self._suspended_vs.get(check.rs.vs):
            # ha_suspend: paused while the virtual server's address is not here.
            self.sched.done()
            self.sched.later(check.attempts.delay_loop, check)
            return
        check.running = True
        check.started = self.loop.time()
        if check.tcp:
            check.conn = TcpConnect(self.loop, check.target, functools.partial(self._connected, check))
            check.conn.start()
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
        check.conn = None
        self.sched.done()
        if check.gone or self._stopped:
            return
        self._result(check, result)

    @staticmethod
    def _probe_bound(check: Check) -> float:
        schedule: Schedule = check.conf.schedule(check.vs.delay_loop)
        return check.target.timeout * schedule.probes_per_run + PROBE_GRACE

    def _result(self, check: Check, result: Result) -> None:
        assert self.config is not None
        a = check.attempts
        was_up = a.is_up
        last_try = a.last_try_next
        t = self.tallies
        t.results += 1
        check.runs += 1
        check.last, check.last_ok, check.last_at = result.detail, result.ok, time.time()
        if check.started:
            self.latency.observe(check.type_name, self.loop.time() - check.started)
            check.started = 0.0
        if not result.ok:
            t.failures += 1
            check.failures += 1
            # keepalived logs a failed attempt of an up checker when it is the last one
            # (before the verdict) or with log_all_failures / checker_log_all_failures.
            log_all = self.config.global_defs.checker_log_all_failures or check.conf.log_all_failures
            if was_up and (last_try or log_all) and result.detail:
                log.info("%s", result.detail)
        step = a.outcome(result.ok)
        weight: int | None = None
        if result.ok and isinstance(check.conf, MiscCheck) and check.conf.misc_dynamic:
            # misc_dynamic: exit 2..255 sets weight status-2; exit 0 puts the configured one back.
            want = result.weight if result.weight is not None else self._configured_weight(check)
            if want != check.dyn_weight:
                weight = want if (check.dyn_weight is not None or result.weight is not None) else None
                check.dyn_weight = want
        self._verdict(
            check, verdict=step.verdict, was_up=was_up, detail=result.detail, weight=weight, gave_up=step.gave_up
        )
        if not check.gone and not self._stopped:
            self.sched.later(step.delay, check)

    def _configured_weight(self, check: Check) -> int:
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
        assert self.config is not None
        if verdict is None and weight is None:
            return
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
        if verdict is not None and verdict != was_up and smtp_for_rs(check.rs_conf, check.vs, self.config):
            alive_after = self.servers.is_alive(check.rs)
            if alive_before != alive_after or not self.config.global_defs.no_checker_emails:
                what = "succeed" if verdict else "failed"
                body = f"=> {probes.short_name(check.conf)} CHECK {what} on service <="
                self.alerter.alert(
                    *checker_alert(self._router_id(), check.fmt_vs, rs=check.fmt_rs, up=verdict, body=body)
                )
        self._handle(events)

    # ---- FILE_CHECK ---------------------------------------------------------------------------

    def _start_file_check(self, check: Check, config: Config) -> None:
        conf: FileCheck = check.conf
        tf = config.track_file.get(conf.track_file or "")
        if tf is None or tf.file is None:
            log.error("FILE_CHECK of %s: track_file %s not found", check.fmt_rs, conf.track_file)
            return
        check.file_path = tf.file
        # The checker's own `weight`, else the track_file's (keepalived's file_end_handler).
        check.file_weight = conf.weight if "weight" in conf.locations else tf.weight
        value = self.files.watch(tf.file)
        self._file_value(check, value)

    def _file_changed(self, path: str, value: int) -> None:
        for check in self.checks:
            if check.file_path == path and not check.gone:
                self._file_value(check, value)
        self._report_changes()

    def _file_value(self, check: Check, value: int) -> None:
        assert check.file_weight is not None
        up, contrib = file_check_verdict(value, check.file_weight, check.conf.dynamic)
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

    # ---- ha_suspend ---------------------------------------------------------------------------

    def _watch_addresses(self, config: Config) -> None:
        wanted = any(vs.ha_suspend and vs.address is not None for vs in config.virtual_server)
        if wanted and self.addrs is None:
            try:
                self.addrs = AddressWatch(self.loop, self._addresses_changed)
            except OSError as e:
                log.error("Cannot watch the host's addresses for ha_suspend: %s", e.strerror)
        elif not wanted and self.addrs is not None:
            self.addrs.close()
            self.addrs = None

    def _addresses_changed(self) -> None:
        self._apply_suspension(initial=False)
        self._report_changes()
        self._sync_table_soon()

    def _apply_suspension(self, initial: bool) -> None:
        """ha_suspend: a virtual server whose address is not on this host has its
        checkers paused and no service in the table."""
        states: dict[str, bool] = {}
        for name, vs in self.servers.virtual_servers():
            suspended = False
            if vs.ha_suspend and vs.address is not None:
                suspended = self.addrs is None or not self.addrs.has(vs.address)
            states[name] = suspended
            before = self.servers.suspended(name)
            if suspended != before or initial:
                self._handle(self.servers.set_suspended(name, suspended))
            if vs.ha_suspend and suspended != self._suspended_vs.get(name, False):
                what = "Suspending" if suspended else "Activating"
                for check in self.checks:
                    if check.rs.vs == name:
                        log.info("%s healthchecker for service %s for VS %s", what, check.fmt_rs, check.fmt_vs)
                self._dirty_vs.add(name)
        self._suspended_vs = states

    # ---- events ---------------------------------------------------------------------------------

    def _handle(self, events: Iterable[Event]) -> None:
        """Act on Servers' events in their order."""
        assert self.config is not None
        router = self._router_id()
        any_event = False
        for e in events:
            any_event = True
            if isinstance(e, Log):
                log.info("%s", e.text)
            elif isinstance(e, (RsUp, RsDown)):
                up = isinstance(e, RsUp)
                self._dirty_rs.add(e.rs)
                script = e.rs_conf.notify_up if up else e.rs_conf.notify_down
                if script is not None:
                    self._run_script(script, f"Notify script for {e.fmt_rs} of VS {e.fmt_vs}")
                self.fifos.send(rs_line(e.fmt_rs, e.fmt_vs, up))
                if (
                    isinstance(e, RsDown)
                    and (e.stopping or e.removed)
                    and smtp_for_rs(e.rs_conf, e.vs_conf, self.config)
                ):
                    body = "=> Shutting down <=" if e.stopping else "=> Removing <="
                    self.alerter.alert(
                        *checker_alert(router, e.fmt_vs, rs=e.fmt_rs, up=False, body=body, stopping=e.stopping)
                    )
            elif isinstance(e, RsWeight):
                self._dirty_rs.add(e.rs)
            elif isinstance(e, (QuorumUp, QuorumDown)):
                up = isinstance(e, QuorumUp)
                self._dirty_vs.add(e.vs)
                script = e.vs_conf.quorum_up if up else e.vs_conf.quorum_down
                if script is not None:
                    self._run_script(script, f"Quorum script for VS {e.fmt_vs}")
                self.fifos.send(vs_line(e.fmt_vs, up))
                if smtp_for_vs(e.vs_conf, self.config):
                    q = e.vs_conf
                    stopping = isinstance(e, QuorumDown) and e.stopping
                    self.alerter.alert(
                        *checker_alert(
                            router,
                            e.fmt_vs,
                            up=up,
                            quorum=(q.quorum, q.hysteresis, e.threshold, e.weight_sum),
                            init=e.init,
                            stopping=stopping,
                        )
                    )
            elif isinstance(e, (SorryIn, SorryOut)):
                self._dirty_vs.add(e.vs)
        if any_event:
            self._report_changes()
            self._sync_table_soon()

    def _run_script(self, script: Script, label: str) -> None:
        self.tallies.notifies += 1
        task = self.loop.create_task(self.scripts.run(script, timeout=NOTIFY_TIMEOUT, label=label))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _router_id(self) -> str:
        return self.config.global_defs.effective_router_id if self.config is not None else ""

    # ---- reports to the parent --------------------------------------------------------------

    @staticmethod
    def _rs_value(view: Mapping[str, Any]) -> dict[str, Json]:
        return {"state": "UP" if view["alive"] else "DOWN", "weight": view["weight"]}

    @staticmethod
    def _vs_value(view: Mapping[str, Any]) -> dict[str, Json]:
        return {
            "state": "QUORUM_UP" if view["quorum_up"] else "QUORUM_DOWN",
            "sorry_server": view["sorry_server_active"],
            "suspended": view["suspended"],
            "weight_sum": view["weight_sum"],
        }

    def _report_changes(self) -> None:
        """Only what changed, looked up one by one: a mass failure reports n servers in n
        steps, not n snapshots of the whole table."""
        if not self._dirty_rs and not self._dirty_vs:
            return
        changes: dict[str, Json] = {}
        for rs in self._dirty_rs:
            rs_view = self.servers.rs_view(rs)
            if rs_view is not None:
                changes[rs_key(rs)] = self._rs_value(rs_view)
        for name in self._dirty_vs:
            vs_view = self.servers.vs_view(name)
            if vs_view is not None:
                changes[name] = self._vs_value(vs_view)
        self._dirty_rs, self._dirty_vs = set(), set()
        if changes:
            self._reported.update(changes)
            self._report(changes)

    def _report_all(self, prune: bool = False) -> None:
        snap: Any = self.servers.snapshot()
        changes: dict[str, Json] = {}
        for name, v in snap.items():
            changes[name] = self._vs_value(v)
            for rs, rs_view in v["real_servers"].items():
                changes[rs_key(RsId(name, rs))] = self._rs_value(rs_view)
        if prune:
            for key in self._reported - set(changes):
                changes[key] = None
        self._reported = {k for k, v in changes.items() if v is not None}
        self._dirty_rs, self._dirty_vs = set(), set()
        self._report(changes)
