"""The VRRP child's workload: every vrrp_instance of the configuration, on one loop.

A coordinator: it opens the edges the instances share and hands each concern to its part,

- `builder`: an instance built from its configuration, or waiting for its interface;
- `receivers`: one raw socket per (interface, family, unicast source), adverts by VRID;
- `batch`: VIPs, routes and rules of a loop pass in one netlink batch (250 instances that
  become MASTER together cost one kernel round trip);
- `paced`: GARPs and NAs, paced per interface; `notifier`: notify scripts, FIFOs, SMTP;
- `trackers` and `verdicts`: track_script/file/process/interface into effective priority
  and FAULT; `sync`: the sync groups;
- the link watcher (an interface going down puts its instances in FAULT), `holdwatch`
  (deleted VIPs put back), the VMACs, the nftables of no-accept mode, the static entries;

routes the events of the edges to them, and is the instances' `Edges`. A reload is
vrrp_child.reload's plan and steps.

Start-up, reload and respawn follow keepalived where it is sound and do better where it
drops VIPs: an instance that was MASTER before a child restart resumes as MASTER with its
VIPs in place (the parent hands the last reported state back in `resume`), and a reload
keeps every instance whose identity (VRID, interface, family, unicast source, VMAC) is
unchanged in its state, applying only the differences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from conf.model import Config
from conf.rules import RuleEntry
from conf.values import Script
from vrrp_child import ah, channels, fsm
from vrrp_child.advertgrid import AdvertGrid
from vrrp_child.afterburst import AfterBurst, Job
from vrrp_child.batching import NetlinkBatch
from vrrp_child.builder import Builder
from vrrp_child.firewall import ChildFirewall
from vrrp_child.groups import SyncGroups
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.holdwatch import HoldWatch
from vrrp_child.identity import identity_text
from vrrp_child.instance import Instance
from vrrp_child.linkwatch import LinkWatch, link_delays
from vrrp_child.logbuffer import LogBuffer
from vrrp_child.netlink import Rtnl
from vrrp_child.notifier import Notifier
from vrrp_child.paced import PacedFrames
from vrrp_child.receivers import Receivers
from vrrp_child.reload import reload_steps
from vrrp_child.static import apply_static, remove_static
from vrrp_child.ticks import Ticks
from vrrp_child.trackers import Trackers
from vrrp_child.verdicts import Verdicts
from watchdog.protocol import DumpKind, Json
from watchdog.reload import apply_steps
from watchdog.runtime import EXIT_MISSING_PERMISSION, PermanentError, Report
from watchdog.scripts import ScriptRunner
from watchdog.status import Conditions

if TYPE_CHECKING:
    from vrrp_child.macvlan import VmacManager
    from vrrp_child.syncgroup import SyncGroup

log = logging.getLogger("pykeepalived_vrrp")

PENDING_RETRY_EVERY = 0.5  # s between attempts to build an instance waiting for its interface
PENDING_RETRIES = 60


class VrrpWorkload:
    """watchdog.runtime.Workload for the VRRP child, and the instances' `Edges`."""

    def __init__(self, *, detail: bool = False, dont_release: bool = False) -> None:
        self.detail = detail
        self.dont_release = dont_release
        self.instances: dict[str, Instance] = {}  # shared (by reference) with the parts below
        self.resumed: dict[str, Mapping[str, Json]] = {}
        # global_defs vrrp_startup_delay: until then (loop time) nothing goes MASTER (fsm.Start)
        self.delay_until: float | None = None
        self.config: Config | None = None
        self.static_config: Config | None = None  # whose static entries are on the system
        self.started = time.monotonic()
        self._report: Report = lambda changes: None
        self.conditions = Conditions(self._report)  # bound to the parent's report in start()
        self._retry: asyncio.TimerHandle | None = None
        # log lines and state reports wait while a wakeup's timers run (vrrp_child.logbuffer)
        self.logs = LogBuffer()
        self._reports: list[Mapping[str, Json]] = []
        self._send_report: Report = self._report

    # ---- Workload ----------------------------------------------------------------------

    async def resume(self, state: Mapping[str, Json]) -> None:
        self.resumed = {k: v for k, v in state.items() if isinstance(v, dict)}

    async def start(self, config: Config, report: Report) -> None:
        self.loop = asyncio.get_running_loop()
        self._send_report = report
        self._report = self._report_in_order
        self.conditions = Conditions(self._report)
        self.config = config
        # Before anything is held (stop() then has nothing to release): a child that may
        # not open its sockets can never run, so it stops the daemon as keepalived does.
        self._check_permission(config)
        self._open(config)
        self.sync.configure(config)
        for line in apply_static(config, self.rtnl):
            log.error("%s", line)
        self.static_config = config
        instances = self.builder.create_all(config.vrrp_instance.values())
        self.sync.resume(self.resumed, self._resumes_master)
        self.batch.remove_stale([i for i in instances if not self._resumes_master(i)])
        self.verdicts.apply(self.config)
        delay = config.global_defs.vrrp_startup_delay
        if delay:
            # keepalived's start_vrrp, at each start of the child (never on a reload): every instance
            # sits in BACKUP, hearing adverts, and its Master_Down_Timer counts from the delay's end
            log.info("Delaying startup for %g seconds", delay)
            self.delay_until = self.loop.time() + delay
        for inst in instances:
            self.start_instance(inst)

    def _open(self, config: Config) -> None:
        """The edges the instances share, configured for `config` (start only)."""
        self.rtnl = Rtnl()
        self.ticks = Ticks(self.loop)  # one loop timer for every instance's protocol timers
        self.ticks.starting = self.logs.hold
        self.ticks.finished = self._timers_done
        # a takeover's GARP repeats, then the held log lines, once no timer is due
        self.after = AfterBurst(self.loop, self.ticks.due, self._write_logs)
        self.grid = AdvertGrid()  # the masters' adverts, one wakeup per interval (vrrp_child.advertgrid)
        self.paced = PacedFrames(self.loop)
        self._vmacs: VmacManager | None = None  # made by the first instance with use_vmac
        gdefs = config.global_defs
        self.scripts = ScriptRunner(tuple(gdefs.script_user) if gdefs.script_user else None)
        self.links = LinkWatch(self.loop, self._link_changed)
        self.configure_link_delays(config)
        # deleted VIPs, virtual routes and rules, on the link watcher's socket
        self.holdwatch = HoldWatch(self, self.links.events.join)
        self.holdwatch.configure(config)
        self.links.others = self._holdings_changed
        self.firewall = ChildFirewall(self.conditions)  # no accept mode: nftables (vrrp_child.firewall)
        self.firewall.configure(config)
        self.batch = NetlinkBatch(self.loop, self.rtnl, self.firewall, self.instances)
        self.notifier = Notifier(self.loop, self.scripts, self.conditions, gdefs, self._router_id)
        self.trackers = Trackers(self.loop, self.scripts, self._trackers_changed)
        self.trackers.configure(config)
        self.sync = SyncGroups(self.loop, self.instances, self._report, self.notifier, self.batch.flush)
        self.verdicts = Verdicts(self.instances, self.trackers, self.sync, self.notifier, self.start_instance)
        self.verdicts.configure_static(config)
        self.verdicts.watch_interfaces(self.links, self.rtnl)
        self.paced.configure(config)
        self.receivers = Receivers(self.loop)
        self.builder = Builder(
            rtnl=self.rtnl,
            vmacs=self.vmacs,
            receivers=self.receivers,
            links=self.links,
            conditions=self.conditions,
            report=self._report,
            edges=self,
            ticks=self.ticks,
            grid=self.grid,
            detail=self.detail,
            instances=self.instances,
            in_group=lambda name: name in self.sync.group_of,
        )

    def vmacs(self) -> VmacManager:
        """The VMACs' manager; it and its module (vrrp_child.macvlan) come with the first
        instance that has use_vmac, so a configuration without one never loads them."""
        if self._vmacs is None:
            from vrrp_child.macvlan import VmacManager  # noqa: PLC0415

            self._vmacs = VmacManager(self.rtnl)
        return self._vmacs

    async def reload(self, config: Config) -> None:
        """watchdog.reload's steps (vrrp_child.reload): all switched, all rolled back, or a
        ReloadFailed that says what switched."""
        assert self.config is not None and self.static_config is not None  # started
        apply_steps(reload_steps(self, self.config, config))

    async def dump(self, kind: DumpKind) -> str:
        # Imported at the first dump (SIGUSR1/SIGUSR2/SIGJSON, `pykeepalivedctl status`): the
        # layouts stay out of the memory of a child that is never asked.
        from vrrp_child import dumps  # noqa: PLC0415

        return dumps.render(kind, list(self.instances.values()), self.groups, self.group_of, self.trackers)

    async def stop(self) -> None:
        if not hasattr(self, "rtnl"):
            return  # stopped before start() got going: nothing is held
        self._send_reports()  # what the last timers reported and logged, before the stop's own
        self.logs.write_out()
        for inst in list(self.instances.values()):
            inst.shutdown()  # a MASTER sends priority 0 and releases its VIPs (unless -V)
            inst.cancel_timers()
        self.sync.drain()
        self.ticks.close()
        self.batch.flush()
        self.firewall.close()
        if not self.dont_release and self.static_config is not None:
            with contextlib.suppress(Exception):
                for line in remove_static(self.static_config, self.rtnl):
                    log.error("%s", line)
        await self.notifier.wait_scripts()
        with contextlib.suppress(Exception):
            await self.trackers.stop()
        await self.notifier.close()
        if self._retry is not None:
            self._retry.cancel()
        self.links.close()
        self.paced.cancel()
        self.receivers.close()
        if not self.dont_release and self._vmacs is not None:
            with contextlib.suppress(Exception):
                self._vmacs.delete_all()
        self.paced.close()
        self.rtnl.close()

    # ---- views for the dumps and HoldWatch --------------------------------------------------

    @property
    def groups(self) -> dict[str, SyncGroup]:
        return self.sync.groups

    @property
    def group_of(self) -> dict[str, str]:
        return self.sync.group_of

    # ---- instances: start, resume, retire -----------------------------------------------

    def _check_permission(self, config: Config) -> None:
        refused = channels.probe(inst.family for inst in config.vrrp_instance.values())
        if refused is not None:
            log.error("%s", refused.keepalived_line())
            raise PermanentError(f"Missing permission: {refused.reason()}", EXIT_MISSING_PERMISSION)

    def _resumes_master(self, inst: Instance) -> bool:
        """The predecessor child reported this instance MASTER, with the same identity."""
        prev = self.resumed.get(inst.name)
        return prev is not None and prev.get("state") == "MASTER" and prev.get("id") == identity_text(inst.conf)

    def start_instance(self, inst: Instance) -> None:
        resume = self._resumes_master(inst)
        # One that its predecessor left MASTER goes on at once, without waiting for its
        # scripts (vrrp_child.verdicts): waiting would stop its adverts and hand the VIPs over.
        if not resume and self.verdicts.hold(inst):
            return
        if resume:
            log.info("(%s) resuming as MASTER after a child restart", inst.name)
            prev = ah.reported_seq(self.resumed.get(inst.name))
            if prev is not None:
                # the predecessor's adverts went on after its last report: start above them,
                # or a keepalived backup drops ours as replays (a backup's successor starts
                # at 0 and takes the master's numbers, as keepalived's)
                inst.ah_seq.seq = ah.seq_above(*prev, time.monotonic(), inst.conf.advert_int)
        # in FAULT, the machine waits for the fault to end; a resumed MASTER is not delayed
        inst.start(resume_master=resume, delay_until=self.delay_until)

    def retire(self, inst: Instance) -> None:
        """An instance that a reload removed: release it properly (priority 0, VIPs)."""
        self.verdicts.forget(inst)
        was = inst.state
        inst.deleted = True  # no STOP notifies: keepalived sends the notifier's instead
        inst.shutdown()
        inst.cancel_timers()
        self.instances.pop(inst.name, None)
        self.receivers.unregister(inst)
        self.notifier.deleted(inst, was)
        self._report({inst.name: None})

    def _retry_pending(self, tries: int = 0) -> None:
        """Build the instances that waited for an interface. An IPv6 link-local address
        appears a moment after the link (duplicate address detection), so retry a while."""
        self._retry = None
        for name, conf in list(self.builder.pending.items()):
            inst = self.builder.create(conf)
            if inst is not None:
                log.info("(%s) leaving FAULT state: interface ready", name)
                self.batch.remove_stale([inst])
                self.start_instance(inst)
        self.verdicts.apply(self.config)
        self.batch.flush()
        if self.builder.pending and tries < PENDING_RETRIES:
            self._retry = self.loop.call_later(PENDING_RETRY_EVERY, self._retry_pending, tries + 1)

    def _timers_done(self) -> None:
        """A wakeup's timers have run. Their state reports go to the parent now, as one, before
        the netlink batch they queued puts the new masters' VIPs on the interfaces (it runs
        next in this loop pass): a child killed between the two never holds a VIP the parent
        does not know to release (the hold after a child dies, the respawn backoff). The GARP
        repeats of their takeovers and their log lines go out once that batch and its first
        GARPs are done and no timer is due (vrrp_child.afterburst)."""
        self._send_reports()
        if not self.logs.unhold() or self.after.jobs:
            self.after.wake()

    def _write_logs(self) -> None:
        # gives way to timers that are due again: they run, and their end calls _timers_done
        self.logs.write_out(self.ticks.due)

    def _send_reports(self) -> None:
        if self._reports:
            self._send_report(merged_reports(self._reports))
            self._reports.clear()

    def _report_in_order(self, changes: Mapping[str, Json]) -> None:
        """State reports to the parent, gathered while a burst of timers runs (each is a JSON
        line and a write to the pipe, and wakes the parent up) and sent as one when it ends."""
        if self.logs.holding:
            self._reports.append(changes)
        else:
            self._send_report(changes)

    # ---- events from the edges ----------------------------------------------------------

    def _link_changed(self, ifname: str, up: bool) -> None:
        for inst in self.instances.values():
            # dont_track_primary: keepalived ignores the instance's own interface faults
            if ifname in (inst.conf.interface, inst.socket.ifname) and not inst.conf.dont_track_primary:
                inst.set_fault(None if up else f"interface {ifname} down")
        if ifname in self.trackers.interfaces():
            self.trackers.set_interface(ifname, up)  # calls _trackers_changed when it matters
        self.sync.update_faults()
        self.batch.flush()
        if up and self.builder.pending:
            if self._retry is not None:
                self._retry.cancel()
            self._retry_pending()

    def _holdings_changed(self, messages: list[Any]) -> None:
        self.holdwatch.messages(messages)
        self.batch.flush()

    def _trackers_changed(self) -> None:
        self.verdicts.apply(self.config)
        self.batch.flush()

    def configure_link_delays(self, config: Config) -> None:
        """interface_up_down_delays, within keepalived's bound (vrrp_child.linkwatch)."""
        delays, notes = link_delays(config.interface_up_down_delays, config.vrrp_instance.values())
        for line in notes:
            log.info("%s", line)
        self.links.configure(delays)

    def _router_id(self) -> str:
        return self.config.global_defs.effective_router_id if self.config is not None else ""

    # ---- Edges (vrrp_child.instance): what the instances ask of the parts above ----------------

    def add_vips(self, items: list[Item], then: Callable[[], None] | None = None) -> None:
        self.batch.add_vips(items, then)

    def remove_vips(self, items: list[Item]) -> None:
        self.batch.remove_vips(items)

    def add_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None:
        self.batch.add_routing(routes, rules)

    def remove_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None:
        self.batch.remove_routing(routes, rules)

    def send_frames(self, ifname: str, frames: list[bytes]) -> None:
        self.paced.send(ifname, frames)

    def after_burst(self, job: Callable[[], None]) -> Job:
        return self.after.add(job)

    def notify(self, inst: Instance, script: Script, args: tuple[str, ...] = ()) -> None:
        self.notifier.instance_script(inst, script, args)

    def rx_lower_pri(self, inst: Instance) -> None:
        self.notifier.rx_lower_pri(inst)

    def want_master(self, inst: Instance) -> None:
        self.sync.want_master(inst)

    def state_changed(self, inst: Instance, old: fsm.State) -> None:
        self.notifier.state_changed(inst)
        self.sync.entered(inst, old)
        report: dict[str, Json] = {
            "state": inst.state.value,
            "priority": inst.params.priority,
            "id": inst.identity,
        }
        if inst.conf.auth_type == "AH":
            # so that a successor child, or the parent's priority-0 release, sends above it
            report |= {"ah_seq": inst.ah_seq.seq, "ah_at": time.monotonic()}
        self._report({inst.name: report})


def merged_reports(reports: Iterable[Mapping[str, Json]]) -> dict[str, Json]:
    """Several state reports as one: the parent applies a report key by key, the last value
    winning (haparent.supervisor merge_state), so the merge is what the reports in order do."""
    out: dict[str, Json] = {}
    for changes in reports:
        out.update(changes)
    return out
