"""The VRRP child's workload: every vrrp_instance of the configuration, on one loop.

It owns the edges the instances share: one raw socket per (interface, family, unicast
source) demultiplexed by VRID, one netlink socket whose address requests are batched per
loop pass (so 250 instances that become master together cost one kernel round trip), one
AF_PACKET sender for GARPs and NAs, a link watcher (an interface going down puts its
instances in FAULT), the VMACs, the script runner for notify scripts, the trackers hub
(track_script/file/process/interface: effective priority and FAULT), the sync group
coordinators, the notify FIFOs and the SMTP alerter, and the static addresses, routes and rules.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conf.model import Config
from conf.rules import RuleEntry
from conf.trackers import TrackRef
from conf.values import Script
from conf.vrrp import VrrpInstance, VrrpSyncGroup
from vrrp_child import ah, channels, dumps, fsm, holdings
from vrrp_child.ah import AH_PROTO
from vrrp_child.arp import FrameSender, ipv6_forwarding
from vrrp_child.firewall import ChildFirewall
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.holdwatch import HoldWatch
from vrrp_child.instance import FAULT_GROUP, FAULT_TRACKERS, Instance
from vrrp_child.linkwatch import LinkWatch, link_delays
from vrrp_child.netlink import Rtnl
from vrrp_child.pacing import Intervals, Pacer
from vrrp_child.packet import VRRP_PROTO
from vrrp_child.routing import BatchResult, Routing
from vrrp_child.sockets import PeerTable, Received, VrrpSocket
from vrrp_child.static import apply_static, remove_static, static_diff
from vrrp_child.static_track import static_track_refs
from vrrp_child.syncgroup import GroupAction, GroupEntered, MemberView, SyncGroup, ToMember
from vrrp_child.ticks import Ticks
from vrrp_child.trackers import Trackers
from vrrp_child.tracking import group_verdict, instance_verdict, static_verdict
from vrrp_child.vmac import VmacError, VmacManager, VmacSpec
from watchdog.fifo import Fifos, group_line, instance_line
from watchdog.protocol import DumpKind, Json
from watchdog.runtime import EXIT_MISSING_PERMISSION, PermanentError, Report
from watchdog.scripts import ScriptRunner
from watchdog.smtp import Alerter, vrrp_alert
from watchdog.statekeys import group_key
from watchdog.status import Conditions

log = logging.getLogger("pykeepalived_vrrp")

PENDING_RETRY_EVERY = 0.5  # s between attempts to build an instance waiting for its interface
PENDING_RETRIES = 60
NOTIFY_TIMEOUT = 30.0  # a notify script that runs longer is terminated (keepalived has none)
STOP_SCRIPTS_WAIT = 2.0  # at shutdown, how long notify_stop scripts may delay the exit

SocketKey = tuple[str, int, object, int]


@dataclass
class _Batch:
    adds: list[Item] = field(default_factory=list)
    removes: list[Item] = field(default_factory=list)
    route_adds: list[RouteItem] = field(default_factory=list)
    route_removes: list[RouteItem] = field(default_factory=list)
    rule_adds: list[RuleEntry] = field(default_factory=list)
    rule_removes: list[RuleEntry] = field(default_factory=list)
    then: list[Callable[[], None]] = field(default_factory=list)


def identity(inst: VrrpInstance) -> tuple[object, ...]:
    """What must not change for an instance to keep its state across a reload (keepalived's
    vrrp_exist: VRID, family, interface, unicast or not and its source, VMAC)."""
    vmac = inst.use_vmac
    return (
        inst.virtual_router_id,
        inst.family,
        inst.interface,
        inst.is_unicast,
        inst.unicast_src_ip if inst.is_unicast else None,
        None if inst.is_unicast else inst.mcast_dst_ip,  # the multicast group joined
        (vmac.ifname, vmac.mac) if vmac is not None else None,
        inst.vmac_xmit_base,
        inst.auth_type == "AH",  # its own socket (protocol 51)
    )


class VrrpWorkload:
    """watchdog.runtime.Workload for the VRRP child."""

    def __init__(self, *, detail: bool = False, dont_release: bool = False) -> None:
        self.detail = detail
        self.dont_release = dont_release
        self.instances: dict[str, Instance] = {}
        self.sockets: dict[SocketKey, VrrpSocket] = {}
        self.by_vrid: dict[tuple[SocketKey, int], Instance] = {}
        self.resumed: dict[str, Mapping[str, Json]] = {}
        # global_defs vrrp_startup_delay: until then (loop time) nothing goes MASTER (fsm.Start)
        self.delay_until: float | None = None
        self.config: Config | None = None
        self.started = time.monotonic()
        self._batch = _Batch()
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._report: Report = lambda changes: None
        self.conditions = Conditions(self._report)  # bound to the parent's report in start()
        self.pacer = Pacer()
        self.pending: dict[str, VrrpInstance] = {}  # waiting for their interface (FAULT)
        self._retry: asyncio.TimerHandle | None = None
        self._pacing: dict[str, asyncio.TimerHandle] = {}
        self.groups: dict[str, SyncGroup] = {}
        self.group_conf: dict[str, VrrpSyncGroup] = {}
        self.group_of: dict[str, str] = {}  # instance -> its sync group
        self._sync_queue: list[tuple[str, fsm.SyncMaster | fsm.SyncBackup]] = []
        self._sync_scheduled = False
        self.holding: list[Instance] = []  # built, waiting for the first result of every script
        self._waiting: dict[str, tuple[str, ...]] = {}  # instance -> its scripts without a result
        self.static_refs: dict[str, tuple[TrackRef, ...]] = {}  # track_group of static entries

    # ---- Workload ----------------------------------------------------------------------

    async def resume(self, state: Mapping[str, Json]) -> None:
        self.resumed = {k: v for k, v in state.items() if isinstance(v, dict)}

    async def start(self, config: Config, report: Report) -> None:
        self.loop = asyncio.get_running_loop()
        self._report = report
        self.conditions = Conditions(report)
        self.config = config
        # Before anything is held (stop() then has nothing to release): a child that may
        # not open its sockets can never run, so it stops the daemon as keepalived does.
        self._check_permission(config)
        self.rtnl = Rtnl()
        self.ticks = Ticks(self.loop)  # one loop timer for every instance's protocol timers
        self.frames = FrameSender()
        self.vmacs = VmacManager(self.rtnl)
        gdefs = config.global_defs
        self.scripts = ScriptRunner(tuple(gdefs.script_user) if gdefs.script_user else None)
        self.links = LinkWatch(self.loop, self._link_changed)
        self._configure_link_delays(config)
        self._configure_static_tracking(config)
        # deleted VIPs, virtual routes and rules, on the link watcher's socket
        self.holdwatch = HoldWatch(self, self.links.events.join)
        self.holdwatch.configure(config)
        self.links.others = self._holdings_changed
        self.routing = Routing(self.rtnl)
        self.firewall = ChildFirewall(self.conditions)  # no accept mode: nftables (vrrp_child.firewall)
        self.firewall.configure(config)
        self.fifos = Fifos.for_vrrp(gdefs, self.scripts)
        self._fifo_conditions()
        self.alerter = Alerter(gdefs)
        self.trackers = Trackers(self.loop, self.scripts, self._trackers_changed)
        self.trackers.configure(config)
        self._watch_tracked_interfaces()
        self._configure_pacing(config)
        self._configure_groups(config)
        for line in apply_static(config, self.rtnl):
            log.error("%s", line)
        created = [self._create(inst) for inst in config.vrrp_instance.values()]
        instances = [i for i in created if i is not None]
        self._resume_groups()
        self._remove_stale([i for i in instances if not self._resumes_master(i)])
        self._apply_tracking()
        delay = gdefs.vrrp_startup_delay
        if delay:
            # keepalived's start_vrrp, at each start of the child (never on a reload): every instance
            # sits in BACKUP, hearing adverts, and its Master_Down_Timer counts from the delay's end
            log.info("Delaying startup for %g seconds", delay)
            self.delay_until = self.loop.time() + delay
        for inst in instances:
            self._start(inst)

    async def reload(self, config: Config) -> None:
        old_config = self.config
        if old_config is not None:
            diff = static_diff(old_config, config)
            if not diff.empty:
                for line in diff.describe():
                    log.info("%s", line)
                for line in diff.apply(self.rtnl):
                    log.error("%s", line)
            if old_config.global_defs != config.global_defs:
                # notify FIFOs and SMTP settings may have changed: reopen them
                old_fifos, old_alerter = self.fifos, self.alerter
                self.fifos = Fifos.for_vrrp(config.global_defs, self.scripts)
                self._fifo_conditions()
                self.alerter = Alerter(config.global_defs)
                # in the background: mail still queued may take the alerter's close timeout
                for closing in (old_fifos.close(), old_alerter.close()):
                    task: asyncio.Task[object] = self.loop.create_task(closing)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        self.firewall.configure(config)
        self.holdwatch.configure(config)
        # The trackers keep the results of the scripts/files/processes that stay.
        self.trackers.configure(config)
        self._watch_tracked_interfaces()
        self._configure_groups(config)
        # A copy: _retire() pops from self.instances while the loop below walks the old set.
        old = dict(self.instances)
        kept: dict[str, Instance] = {}
        for name, conf in config.vrrp_instance.items():
            inst = old.get(name)
            if inst is not None and identity(inst.conf) == identity(conf):
                inst.reconfigure(conf)
                kept[name] = inst
        for inst in kept.values():
            inst.set_in_sync_group(inst.name in self.group_of)
        for name, inst in old.items():
            if name not in kept:
                log.info("(%s) removed by the reload", name)
                self._retire(inst)
        for name in list(self.pending):
            if name not in config.vrrp_instance:
                del self.pending[name]
                self._report({name: None})
        for name in {key.split(":", 1)[1] for key in self.conditions.raised if key.startswith(_INSTANCE_CONDITIONS)}:
            if name not in config.vrrp_instance:
                self._clear_conditions(name)
        self.config = config
        self._configure_pacing(config)
        self._configure_link_delays(config)
        self._configure_static_tracking(config)
        created = [self._create(conf) for name, conf in config.vrrp_instance.items() if name not in kept]
        added = [i for i in created if i is not None]
        self._remove_stale(added)
        self._apply_tracking()  # the new instances start at their effective priority
        for new in added:
            self._start(new)
        self._close_unused_sockets()
        self._update_groups()
        self._flush()

    async def dump(self, kind: DumpKind) -> str:
        return dumps.render(kind, list(self.instances.values()), self.groups, self.group_of, self.trackers)

    async def stop(self) -> None:
        if not hasattr(self, "rtnl"):
            return  # stopped before start() got going: nothing is held
        for inst in list(self.instances.values()):
            inst.shutdown()  # a MASTER sends priority 0 and releases its VIPs (unless -V)
            inst.cancel_timers()
        self._drain_sync()
        self.ticks.close()
        self._flush()
        self.firewall.close()
        if not self.dont_release and self.config is not None:
            with contextlib.suppress(Exception):
                for line in remove_static(self.config, self.rtnl):
                    log.error("%s", line)
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_SCRIPTS_WAIT)
        with contextlib.suppress(Exception):
            await self.trackers.stop()
        with contextlib.suppress(Exception):
            await self.fifos.close()
        with contextlib.suppress(Exception):
            await self.alerter.close()
        if self._retry is not None:
            self._retry.cancel()
        self.links.close()
        for handle in self._pacing.values():
            handle.cancel()
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        if not self.dont_release:
            with contextlib.suppress(Exception):
                self.vmacs.delete_all()
        self.frames.close()
        self.rtnl.close()

    # ---- building instances -------------------------------------------------------------

    def _create(self, conf: VrrpInstance) -> Instance | None:
        name = conf.name
        vmac_spec = VmacSpec.of(conf)
        advert_if = conf.interface
        vip_if = conf.interface
        mac = ""
        if vmac_spec is not None:
            try:
                vmac = self.vmacs.ensure(vmac_spec)
            except (VmacError, OSError) as e:
                log.error("(%s) cannot set up its VMAC: %s", name, e)
                self.conditions.set(f"vmac:{name}", f"({name}) cannot set up its VMAC: {e}")
                return None
            advert_if, vip_if, mac = vmac.advert_ifname, vmac.name, vmac_spec.mac
        if advert_if is None:
            log.error("(%s) has no interface", name)
            return None
        base = self.rtnl.interface(conf.interface or advert_if)
        if base is None:
            self._wait_for_interface(conf, conf.interface or advert_if, "interface does not exist")
            return None
        local = holdings.source_address(conf, base)
        if local is None:
            self._wait_for_interface(conf, base.name, f"no IPv{conf.family} address for interface")
            return None
        self.pending.pop(name, None)
        try:
            sock = self._socket(conf, advert_if, local)
        except OSError as e:
            log.error("(%s) cannot open its VRRP socket on %s: %s", name, advert_if, e)
            why = e.strerror or str(e)
            self.conditions.set(f"socket:{name}", f"({name}) cannot open its VRRP socket on {advert_if}: {why}")
            return None
        inst = Instance(
            conf=conf,
            socket=sock,
            local_ip=local,
            ifname=vip_if or advert_if,
            mac=mac or base.mac,
            edges=self,
            detail=self.detail,
            router_flag=conf.family == 6 and ipv6_forwarding(vip_if or advert_if),
            ticks=self.ticks,
            in_sync_group=name in self.group_of,
        )
        key = (sock.key, inst.vrid)
        if key in self.by_vrid:
            log.error("(%s) VRID %d is already used on %s by %s", name, inst.vrid, advert_if, self.by_vrid[key].name)
            return None
        self.by_vrid[key] = inst
        self.instances[name] = inst
        self._clear_conditions(name)
        up = base.running and base.up
        self.links.watch(base.name, up, base.flags)
        if not up and not conf.dont_track_primary:
            inst.set_fault(f"interface {base.name} down")
        return inst

    def _wait_for_interface(self, conf: VrrpInstance, ifname: str, reason: str) -> None:
        """An instance that cannot run yet (its interface is missing, or has no address of
        the family, as an IPv6 link-local address is gone while the link is down): FAULT,
        as keepalived's "entering FAULT state (no IPv6 address for interface)"; it is
        built when the interface comes up (and its address appears)."""
        if conf.name not in self.pending:
            log.info("(%s) entering FAULT state (%s)", conf.name, reason)
            self._report({conf.name: {"state": fsm.State.FAULT.value, "id": _id_text(conf)}})
        self.conditions.set(f"interface:{conf.name}", f"({conf.name}) {reason}: {ifname}")
        self.pending[conf.name] = conf
        self.links.watch(ifname, False)

    # ---- what the child cannot do (watchdog.status) --------------------------------------

    def _check_permission(self, config: Config) -> None:
        refused = channels.probe(inst.family for inst in config.vrrp_instance.values())
        if refused is not None:
            log.error("%s", refused.keepalived_line())
            raise PermanentError(f"Missing permission: {refused.reason()}", EXIT_MISSING_PERMISSION)

    def _fifo_conditions(self) -> None:
        failed = {f"fifo:{path}": f"notify FIFO {path}: {why}" for path, why in self.fifos.failed.items()}
        self.conditions.replace("fifo:", failed)

    def _clear_conditions(self, name: str) -> None:
        for kind in _INSTANCE_CONDITIONS:
            self.conditions.clear(f"{kind}{name}")

    def _retry_pending(self, tries: int = 0) -> None:
        """Build the instances that waited for an interface. An IPv6 link-local address
        appears a moment after the link (duplicate address detection), so retry a while."""
        self._retry = None
        for name, conf in list(self.pending.items()):
            inst = self._create(conf)
            if inst is not None:
                log.info("(%s) leaving FAULT state: interface ready", name)
                self._remove_stale([inst])
                self._start(inst)
        self._apply_tracking()
        self._flush()
        if self.pending and tries < PENDING_RETRIES:
            self._retry = self.loop.call_later(PENDING_RETRY_EVERY, self._retry_pending, tries + 1)

    def _socket(self, conf: VrrpInstance, ifname: str, local: object) -> VrrpSocket:
        unicast = conf.is_unicast
        # IPsec AH: a socket of its own, protocol 51 (keepalived's sockpool proto(51))
        proto = AH_PROTO if conf.auth_type == "AH" else VRRP_PROTO
        key: SocketKey = (ifname, conf.family, local if unicast else None, proto)
        sock = self.sockets.get(key)
        if sock is None:
            peers = PeerTable.of(conf.unicast_peer, check_unicast_src=bool(conf.check_unicast_src)) if unicast else None
            sock = VrrpSocket(
                ifname,
                local,  # type: ignore[arg-type]
                unicast=unicast,
                group=conf.mcast_dst_ip,
                unicast_ttl=conf.unicast_ttl,
                peers=peers,
                proto=proto,
            )
            sock.attach(self.loop, self._receiver(sock))
            self.sockets[key] = sock
        return sock

    def _receiver(self, sock: VrrpSocket) -> Callable[[Received], None]:
        def receive(rx: Received) -> None:
            self._on_rx(sock, rx)

        return receive

    def _resumes_master(self, inst: Instance) -> bool:
        """The predecessor child reported this instance MASTER, with the same identity."""
        prev = self.resumed.get(inst.name)
        return prev is not None and prev.get("state") == "MASTER" and prev.get("id") == _id_text(inst.conf)

    def _start(self, inst: Instance) -> None:
        resume = self._resumes_master(inst)
        if self._waiting.get(inst.name) and not resume:
            # keepalived num_script_init: an instance waits for the first result of the weight-0
            # scripts it tracks before it takes part (it stays in INIT, or FAULT if one faults
            # it). One that its predecessor left MASTER goes on at once: waiting would stop its
            # adverts and hand the VIPs to the backup.
            if inst not in self.holding:
                self.holding.append(inst)
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

    def _remove_stale(self, instances: list[Instance]) -> None:
        """keepalived removes its VIPs left on the interfaces by an earlier run when it starts
        as BACKUP; one batch for all instances."""
        items = [item for inst in instances for item in inst.vip_items()]
        if items:
            result = self.rtnl.remove_stale(items)
            for entry, ifname in result.changed:
                log.info("Removed stale VIP %s from %s", entry.address, ifname)

    def _retire(self, inst: Instance) -> None:
        """An instance that a reload removed: release it properly (priority 0, VIPs)."""
        if inst in self.holding:
            self.holding.remove(inst)
        self._waiting.pop(inst.name, None)
        was = inst.state
        inst.deleted = True  # no STOP notifies: keepalived sends the ones below instead
        inst.shutdown()
        inst.cancel_timers()
        self.instances.pop(inst.name, None)
        self.by_vrid = {k: v for k, v in self.by_vrid.items() if v is not inst}
        self._deleted_notifies(inst, was)
        self._report({inst.name: None})

    def _deleted_notifies(self, inst: Instance, was: fsm.State) -> None:
        """keepalived 2.2.7 clear_diff_vrrp / send_instance_notifies: a removed instance's
        notifies say FAULT (`notify ... FAULT`, the FIFO, SMTP), none at all if it was in FAULT
        already; with notify_deleted they say DELETED, and its script runs if it has one. Never
        notify_fault: keepalived picks the state's script while the state is still DELETED (seen
        beside keepalived, tests/lab/test_notify_deleted.py)."""
        conf = inst.conf
        deleted = conf.notify_deleted
        if deleted is None and was is fsm.State.FAULT:
            return
        word = "FAULT" if deleted is None else "DELETED"
        if deleted is not None and deleted.script is not None:
            self.notify(inst, deleted.script)
        if conf.notify is not None:
            self.notify(inst, conf.notify, ("INSTANCE", inst.name, word, str(inst.params.priority)))
        self.fifos.send(instance_line(inst.name, word, inst.params.priority))
        if conf.smtp_alert:
            self.alerter.alert(*vrrp_alert(self._router_id(), "INSTANCE", inst.name, word))

    def _close_unused_sockets(self) -> None:
        used = {id(i.socket) for i in self.instances.values()}
        for key, sock in list(self.sockets.items()):
            if id(sock) not in used:
                sock.close()
                del self.sockets[key]

    # ---- events from the edges ----------------------------------------------------------

    def _on_rx(self, sock: VrrpSocket, rx: Received) -> None:
        if len(rx.payload) < 2:
            return
        inst = self.by_vrid.get((sock.key, rx.payload[1]))
        if inst is None or rx.src == inst.local_ip:
            return  # not one of ours (another VRID on the LAN), or our own advert looped back
        inst.on_packet(rx)

    def _link_changed(self, ifname: str, up: bool) -> None:
        for inst in self.instances.values():
            # dont_track_primary: keepalived ignores the instance's own interface faults
            if ifname in (inst.conf.interface, inst.socket.ifname) and not inst.conf.dont_track_primary:
                inst.set_fault(None if up else f"interface {ifname} down")
        if ifname in self.trackers.interfaces():
            self.trackers.set_interface(ifname, up)  # calls _trackers_changed when it matters
        self._update_faults()
        self._flush()
        if up and self.pending:
            if self._retry is not None:
                self._retry.cancel()
            self._retry_pending()

    def _holdings_changed(self, messages: list[Any]) -> None:
        self.holdwatch.messages(messages)
        self._flush()

    # ---- trackers: effective priority and FAULT ----------------------------------------------

    def _watch_tracked_interfaces(self) -> None:
        """track_interface: the link watcher reports them too; the trackers learn their state now."""
        for ifname in sorted(self.trackers.interfaces()):
            if ifname in self.links.state:
                up = self.links.state[ifname]
            else:
                link = self.rtnl.interface(ifname)
                up = link is not None and link.up and link.running
                self.links.watch(ifname, up, link.flags if link is not None else None)
            self.trackers.set_interface(ifname, up)

    def _trackers_changed(self) -> None:
        self._apply_tracking()
        self._flush()

    def _apply_tracking(self) -> None:
        """Every instance's Verdict (its trackers and its sync group's): effective priority and
        the trackers' faults; then the instances that waited for their scripts start."""
        if self.config is None:
            return
        status = self.trackers.status
        for inst in list(self.instances.values()):
            group = self.group_conf.get(self.group_of.get(inst.name, ""))
            verdict = instance_verdict(inst.conf, status, group)
            if group is not None:
                verdict = verdict + group_verdict(group, status)
            static = self.static_refs.get(inst.name)
            if static:
                verdict = verdict + static_verdict(static, status)
            delta, faults = verdict.delta, tuple(verdict.faults)
            self._waiting[inst.name] = tuple(verdict.waiting)
            old_prio = inst.params.priority
            if inst.set_priority_delta(delta):
                self._priority_changed(inst, old_prio)
            inst.set_faults(FAULT_TRACKERS, faults)
        self._update_faults()
        if self.holding:
            held, self.holding = self.holding, []
            for inst in held:
                if self.instances.get(inst.name) is inst:
                    self._start(inst)

    def _priority_changed(self, inst: Instance, old: int) -> None:
        # notify_priority_changes (or the global vrrp_notify_priority_changes): FIFO lines
        # MASTER_PRIORITY / BACKUP_PRIORITY with the new priority (keepalived.conf(5) notify).
        g = self.config.global_defs if self.config is not None else None
        wanted = inst.conf.notify_priority_changes
        if wanted is None and g is not None:
            wanted = g.vrrp_notify_priority_changes
        if wanted and inst.state in (fsm.State.MASTER, fsm.State.BACKUP):
            self.fifos.send(instance_line(inst.name, f"{inst.state.value}_PRIORITY", inst.params.priority))

    # ---- sync groups ---------------------------------------------------------------------------

    def _configure_groups(self, config: Config) -> None:
        """vrrp_sync_group: a coordinator per group with members (keepalived keeps a group of
        one, with a warning, and removes an empty one); a reload keeps a group's state when its
        name stays."""
        groups: dict[str, SyncGroup] = {}
        self.group_conf = {}
        self.group_of = {}
        for name, conf in config.vrrp_sync_group.items():
            members = tuple(m for m in conf.group if m in config.vrrp_instance)
            if not members:
                continue
            old = self.groups.get(name)
            group = SyncGroup(name, members)
            if old is not None:
                group.state = old.state
                if old.members != members and group.state is not fsm.State.INIT:
                    self._report_group(group)  # the parent's copy names the members
            groups[name] = group
            self.group_conf[name] = conf
            for m in members:
                self.group_of[m] = name
        for gone in sorted(self.groups.keys() - groups.keys()):
            self._report({group_key(gone): None})
        self.groups = groups

    def _resume_groups(self) -> None:
        """A respawned child takes a MASTER group over as MASTER when every member resumes as
        MASTER (same members, same identities): the group changes no state, so its notify
        scripts, FIFO line and SMTP alert do not run again for a state it never left."""
        for name, group in self.groups.items():
            prev = self.resumed.get(group_key(name))
            if prev is None or prev.get("state") != fsm.State.MASTER.value:
                continue
            if prev.get("members") != list(group.members):
                continue
            members = [self.instances.get(m) for m in group.members]
            if all(i is not None and self._resumes_master(i) for i in members):
                group.state = fsm.State.MASTER
                log.info("VRRP_Group(%s) resuming as MASTER after a child restart", name)
                self._report_group(group)

    def _report_group(self, group: SyncGroup) -> None:
        """The group's state to the parent (STATUS=, and the resume of a respawned child)."""
        self._report({group_key(group.name): {"state": group.state.value, "members": list(group.members)}})

    def _views(self, group: SyncGroup) -> dict[str, MemberView]:
        views: dict[str, MemberView] = {}
        for name in group.members:
            inst = self.instances.get(name)
            if inst is not None:
                views[name] = MemberView(inst.state, inst.machine.want_master, inst.own_fault)
            else:
                # not built (its interface is missing, its VMAC failed): FAULT of its own
                views[name] = MemberView(fsm.State.FAULT, faulted=True)
        return views

    def _update_faults(self) -> None:
        """A member with a fault of its own puts the rest of its group in FAULT (keepalived
        vrrp_sync_fault); the group leaves FAULT when no member has one."""
        for group in self.groups.values():
            views = self._views(group)
            for name in group.members:
                inst = self.instances.get(name)
                if inst is not None:
                    reason = group.fault_of(name, views)
                    inst.set_faults(FAULT_GROUP, (reason,) if reason else ())
            self._group_actions(group, group.update(self._views(group)))

    def _update_groups(self) -> None:
        for group in self.groups.values():
            self._group_actions(group, group.update(self._views(group)))

    def want_master(self, inst: Instance) -> None:
        group = self.groups.get(self.group_of.get(inst.name, ""))
        if group is not None:
            self._group_actions(group, group.want_master(inst.name, self._views(group)))

    def _group_actions(self, group: SyncGroup, actions: list[GroupAction]) -> None:
        for action in actions:
            if isinstance(action, ToMember):
                # after the current instance has finished its own step (no re-entry into it)
                self._sync_queue.append((action.name, action.event))
                if not self._sync_scheduled:
                    self._sync_scheduled = True
                    self.loop.call_soon(self._drain_sync)
            elif isinstance(action, GroupEntered):
                self._group_entered(group, action)
            else:
                log.info("%s", action.text)

    def _drain_sync(self) -> None:
        self._sync_scheduled = False
        while self._sync_queue:
            name, event = self._sync_queue.pop(0)
            inst = self.instances.get(name)
            if inst is not None:
                inst.sync(event)
        self._flush()

    def _group_entered(self, group: SyncGroup, action: GroupEntered) -> None:
        """The group's notify scripts, FIFO line and SMTP alert (keepalived notify_group_exec)."""
        conf = self.group_conf.get(group.name)
        if conf is None or action.state is fsm.State.INIT:
            return
        self._report_group(group)
        state = action.state.value
        # keepalived 2.2.7 sends GROUP ... STOP too (measured), whatever keepalived.conf(5) says
        self.fifos.send(group_line(group.name, state))
        script = {
            fsm.State.MASTER: conf.notify_master,
            fsm.State.BACKUP: conf.notify_backup,
            fsm.State.FAULT: conf.notify_fault,
            fsm.State.STOP: conf.notify_stop,
        }.get(action.state)
        label = f"VRRP_Group({group.name}) notify script"
        if script is not None:
            self._run_script(script, (), label)
        if conf.notify is not None:
            self._run_script(conf.notify, ("GROUP", group.name, state, "0"), label)
        if conf.smtp_alert and action.state is not fsm.State.STOP:
            self.alerter.alert(*vrrp_alert(self._router_id(), "GROUP", group.name, state))

    def _router_id(self) -> str:
        return self.config.global_defs.effective_router_id if self.config is not None else ""

    # ---- Edges (for the instances) ---------------------------------------------------------

    def add_vips(self, items: list[Item], then: Callable[[], None] | None = None) -> None:
        self._batch.adds.extend(items)
        if then is not None:
            self._batch.then.append(then)
        self._schedule_flush()

    def remove_vips(self, items: list[Item]) -> None:
        self._batch.removes.extend(items)
        self._schedule_flush()

    def add_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None:
        self._batch.route_adds.extend(routes)
        self._batch.rule_adds.extend(rules)
        self._schedule_flush()

    def remove_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None:
        self._batch.route_removes.extend(routes)
        self._batch.rule_removes.extend(rules)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """One netlink batch for everything the instances asked this loop pass."""
        self._flush_scheduled = False
        batch, self._batch = self._batch, _Batch()
        # a VIP of a non-accept master is in the drop set before it is on the interface
        fw_wanted = self.firewall.before(self.instances.values())
        # keepalived's order: routes and rules go before the VIPs they may use, and come after them
        if batch.route_removes:
            _log_failed(self.routing.remove_routes(batch.route_removes))
        if batch.rule_removes:
            _log_failed(self.routing.remove_rules(batch.rule_removes))
        if batch.removes:
            result = self.rtnl.remove_addresses(batch.removes)
            for f in result.failed:
                log.error("Cannot remove VIP %s from %s: %s", f.entry.address, f.ifname, f.message)
        if batch.adds:
            result = self.rtnl.add_addresses(batch.adds)
            for f in result.failed:
                log.error("Cannot add VIP %s to %s: %s", f.entry.address, f.ifname, f.message)
        if batch.route_adds:
            _log_failed(self.routing.add_routes(batch.route_adds))
        if batch.rule_adds:
            _log_failed(self.routing.add_rules(batch.rule_adds))
        self.firewall.after(fw_wanted)  # ... and leaves it once off the interface
        for then in batch.then:
            then()

    def send_frames(self, ifname: str, frames: list[bytes]) -> None:
        now = self.loop.time()
        ready, wake = self.pacer.offer(ifname, frames, now)
        self._send_paced(ifname, ready, wake)

    def _send_paced(self, ifname: str, ready: list[bytes], wake: float | None) -> None:
        if ready:
            self.frames.send_many(ifname, ready)
        if wake is not None and ifname not in self._pacing:
            self._pacing[ifname] = self.loop.call_at(wake, self._pace, ifname)

    def _pace(self, ifname: str) -> None:
        self._pacing.pop(ifname, None)
        ready, wake = self.pacer.due(ifname, self.loop.time())
        self._send_paced(ifname, ready, wake)

    def _configure_static_tracking(self, config: Config) -> None:
        """track_group on static entries: the interfaces each instance tracks (weight 0)."""
        self.static_refs, notes = static_track_refs(config)
        for line in notes:
            log.info("%s", line)

    def _configure_link_delays(self, config: Config) -> None:
        """interface_up_down_delays, within keepalived's bound (vrrp_child.linkwatch)."""
        delays, notes = link_delays(config.interface_up_down_delays, config.vrrp_instance.values())
        for line in notes:
            log.info("%s", line)
        self.links.configure(delays)

    def _configure_pacing(self, config: Config) -> None:
        """vrrp_garp_interval / vrrp_gna_interval, and garp_group per interface."""
        g = config.global_defs
        self.pacer.default = Intervals(g.vrrp_garp_interval, g.vrrp_gna_interval)
        self.pacer.intervals = {
            ifname: Intervals(
                group.garp_interval if group.garp_interval is not None else g.vrrp_garp_interval,
                group.gna_interval if group.gna_interval is not None else g.vrrp_gna_interval,
            )
            for group in config.garp_group
            for ifname in group.all_interfaces
        }

    def notify(self, inst: Instance, script: Script, args: tuple[str, ...] = ()) -> None:
        self._run_script(script, args, f"({inst.name}) notify script")

    def _run_script(self, script: Script, args: tuple[str, ...], label: str) -> None:
        task = self.loop.create_task(self.scripts.run(script, args=args, timeout=NOTIFY_TIMEOUT, label=label))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def rx_lower_pri(self, inst: Instance) -> None:
        self.fifos.send(instance_line(inst.name, "MASTER_RX_LOWER_PRI", inst.params.priority))

    def state_changed(self, inst: Instance, old: fsm.State) -> None:
        state = inst.state.value
        self.fifos.send(instance_line(inst.name, state, inst.params.priority))
        if inst.conf.smtp_alert and inst.state is not fsm.State.STOP:
            self.alerter.alert(*vrrp_alert(self._router_id(), "INSTANCE", inst.name, state))
        group = self.groups.get(self.group_of.get(inst.name, ""))
        if group is not None:
            self._group_actions(group, group.entered(inst.name, inst.state, old, self._views(group)))
        report: dict[str, Json] = {
            "state": inst.state.value,
            "priority": inst.params.priority,
            "id": _id_text(inst.conf),
        }
        if inst.conf.auth_type == "AH":
            # so that a successor child, or the parent's priority-0 release, sends above it
            report |= {"ah_seq": inst.ah_seq.seq, "ah_at": time.monotonic()}
        self._report({inst.name: report})


# Conditions raised per instance until it is built (or removed by a reload).
_INSTANCE_CONDITIONS = ("socket:", "vmac:", "interface:")


def _id_text(conf: VrrpInstance) -> str:
    return repr(identity(conf))


def _log_failed(result: BatchResult[Any]) -> None:
    """A routing batch's failures in keepalived's netlink error words."""
    for line in result.errors():
        log.error("%s", line)
