"""The checker child's workload: every virtual_server of the configuration, on one loop.

A thin coordinator of the parts, each in its own module:

- runner: the checkers (one `Check` each), scheduled on one loop timer; their results
  give verdicts, the verdicts go into `Servers`;
- state: real and virtual server states, quorum, sorry server (pure): events out;
- notify: the events' notify scripts, lvs_notify_fifo lines and SMTP alerts;
- reports: `state` reports to the parent;
- ipvs_sync: the IPVS table the states want, sent to the kernel once per loop pass in
  which something changed, with what the kernel refused retried;
- suspend: ha_suspend, by the host's addresses;
- dumps: the data, stats and JSON dumps.

Events are acted on in keepalived's order: log lines, scripts, FIFO lines, SMTP alerts,
then the reports and the IPVS table.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import time
from collections.abc import Iterable, Mapping

from checker_child import dumps, probes
from checker_child.checks import ping
from checker_child.checks.base import ProbeEnv
from checker_child.ipvs_sync import IpvsSync, IpvsTable
from checker_child.latency import Latency
from checker_child.notify import Notifier
from checker_child.reports import Reporter
from checker_child.runner import Check, Runner, Tallies
from checker_child.scheduler import Scheduler
from checker_child.state import Event, Log, Servers
from checker_child.suspend import Suspension
from conf.model import Config
from watchdog.protocol import DumpKind, Json
from watchdog.reload import Step, apply_steps
from watchdog.runtime import Report
from watchdog.status import Conditions, ipvs_report

log = logging.getLogger("pykeepalived_healthcheckers")

STOP_SCRIPTS_WAIT = 2.0  # at shutdown, how long notify_down/quorum_down (omega) may delay the exit
FD_RESERVE = 256  # descriptors kept free for everything else (scripts, netlink, pipes, logs)
MAX_INFLIGHT = 8192  # never more checks in flight than this, whatever RLIMIT_NOFILE allows


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


class CheckerWorkload:
    """watchdog.runtime.Workload for the checker child."""

    def __init__(
        self, *, dont_release: bool = False, max_inflight: int | None = None, ipvs: IpvsTable | None = None
    ) -> None:
        self.dont_release = dont_release
        self.max_inflight = max_inflight
        self._kernel = ipvs  # a fake IPVS table in tests; None: the kernel's
        self.config: Config | None = None
        self.started_at = time.monotonic()
        self.conditions = Conditions(lambda changes: None)  # bound to the parent's report in start()
        self.runner: Runner | None = None
        self._table_scheduled = False
        self._stopped = False

    # ---- what the dumps and the benchmark read ----------------------------------------------

    @property
    def checks(self) -> list[Check]:
        return self.runner.checks if self.runner is not None else []

    @property
    def sched(self) -> Scheduler[Check]:
        assert self.runner is not None
        return self.runner.sched

    @property
    def tallies(self) -> Tallies:
        assert self.runner is not None
        return self.runner.tallies

    @property
    def latency(self) -> Latency:
        assert self.runner is not None
        return self.runner.latency

    # ---- Workload ----------------------------------------------------------------------

    async def resume(self, state: Mapping[str, Json]) -> None:
        # The parent's last state is not used: like keepalived's, a restarted checker
        # starts its real servers afresh (alpha decides whether they start up or down).
        del state

    async def start(self, config: Config, report: Report) -> None:
        self.loop = asyncio.get_running_loop()
        self.conditions = Conditions(report)
        self.config = config
        self.servers = Servers(config)
        kernel = self._kernel
        self.ipvs = IpvsSync(self.loop, self.conditions, self.servers.table, None if kernel is None else lambda: kernel)
        # First, while nothing is held: without permission for an IPVS the kernel has, the
        # child stops the daemon (exit 4) before it says ready.
        self.ipvs.open(config)
        report(ipvs_report(self.ipvs.status))
        nofile = raise_nofile()
        bound = self.max_inflight if self.max_inflight is not None else inflight_bound(nofile)
        self.reporter = Reporter(report)
        self.notifier = Notifier(self.loop, config)
        self._fifo_conditions()
        self.suspension = Suspension(
            self.loop,
            self.servers,
            handle=self.handle,
            changed=self.reporter.mark_vs,
            addresses_changed=self._addresses_changed,
        )
        self.runner = Runner(self.loop, self.servers, bound, self)
        self.suspension.watch(config)
        self._apply_suspension(initial=True)
        self.handle(self.servers.initial_events())
        self.runner.load(config, self._env(config))
        self.reporter.everything(self.servers)
        self._sync_table()
        freeze_heap()

    async def reload(self, config: Config) -> None:
        """The new configuration in named steps (watchdog.reload): only the notify settings
        can be rolled back; once the servers' states have migrated (their notifies ran), a
        failure is reported as what switched, not as the running configuration kept."""
        assert self.runner is not None
        runner = self.runner
        try:
            apply_steps(
                [
                    Step("notify FIFOs and SMTP alerts", lambda: self._notify_switch(config), self._notify_back),
                    Step("real and virtual servers", lambda: self._servers_switch(config)),
                    Step("checkers", lambda: runner.load(config, self._env(config))),
                    Step("ha_suspend", lambda: self._suspension_switch(config)),
                ]
            )
        finally:
            await self.notifier.retire()
        self.reporter.everything(self.servers, prune=True)
        self._sync_table()
        freeze_heap(reload=True)

    def _notify_switch(self, config: Config) -> None:
        self.notifier.switch(config)
        self._fifo_conditions()

    def _notify_back(self) -> None:
        self.notifier.switch_back()
        self._fifo_conditions()

    def _servers_switch(self, config: Config) -> None:
        self.config = config
        self.handle(self.servers.reload(config))

    def _suspension_switch(self, config: Config) -> None:
        self.suspension.watch(config)
        self._apply_suspension(initial=False)

    async def dump(self, kind: DumpKind) -> str:
        return dumps.render(kind, self)

    async def stop(self) -> None:
        if self._stopped or self.runner is None:
            return
        self._stopped = True
        await self.runner.stop()
        config = self.config
        flush = config.global_defs.lvs_flush_on_stop if config is not None else None
        # lvs_flush_on_stop: keepalived skips the real servers' notifies (quorum ones stay).
        self.handle(self.servers.shutdown(flushed=flush is not None))
        self.ipvs.release(flush, self.dont_release)
        await self.notifier.close(wait=STOP_SCRIPTS_WAIT)
        self.suspension.close()
        self.ipvs.close()
        # PING_CHECK may have widened ping_group_range; keepalived puts it back at exit.
        ping.restore_ping_group_range()

    # ---- the parts, wired ---------------------------------------------------------------------

    def _env(self, config: Config) -> ProbeEnv:
        return ProbeEnv(runner=self.notifier.scripts, ssl=config.ssl)

    def _fifo_conditions(self) -> None:
        failed = {f"fifo:{path}": f"notify FIFO {path}: {why}" for path, why in self.notifier.fifos.failed.items()}
        self.conditions.replace("fifo:", failed)

    def handle(self, events: Iterable[Event]) -> None:
        """Act on Servers' events in their order, then report and update the table."""
        any_event = False
        for e in events:
            any_event = True
            if isinstance(e, Log):
                log.info("%s", e.text)
                continue
            self.notifier.act(e)
            self.reporter.mark(e)
        if any_event:
            self._report_changes()
            self._sync_table_soon()

    def checker_alert(self, check: Check, up: bool, alive_changed: bool) -> None:
        self.notifier.checker_alert(
            check.rs_conf,
            check.vs,
            fmt=(check.fmt_rs, check.fmt_vs),
            short=probes.short_name(check.conf),
            up=up,
            alive_changed=alive_changed,
        )

    def suspended(self, vs: str) -> bool:
        return self.suspension.suspended(vs)

    def files_changed(self) -> None:
        self._report_changes()

    def _report_changes(self) -> None:
        self.reporter.changes(self.servers)

    def _sync_table_soon(self) -> None:
        if not self._table_scheduled:
            self._table_scheduled = True
            self.loop.call_soon(self._sync_table)

    def _sync_table(self) -> None:
        """Apply what changed since the last call (every verdict of a loop pass at once)."""
        self._table_scheduled = False
        if not self._stopped:
            self.ipvs.sync()

    def _addresses_changed(self) -> None:
        self._apply_suspension(initial=False)
        self._report_changes()
        self._sync_table_soon()

    def _apply_suspension(self, initial: bool) -> None:
        self.suspension.apply(initial, ((c.rs.vs, c.fmt_rs, c.fmt_vs) for c in self.checks))
