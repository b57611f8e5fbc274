"""The VRRP child's workload: every vrrp_instance of the configuration, on one loop.

It owns the edges the instances share: one raw socket per (interface, family, unicast
source) demultiplexed by VRID, one netlink socket whose address requests are batched per
loop pass (so 250 instances that become master together cost one kernel round trip), one
AF_PACKET sender for GARPs and NAs, a link watcher (an interface going down puts its
instances in FAULT), the VMACs, and the script runner for notify scripts.

Start-up, reload and respawn follow keepalived where it is sound and do better where it
drops VIPs: an instance that was MASTER before a child restart resumes as MASTER with its
VIPs in place (the parent hands the last reported state back in `resume`), and a reload
keeps every instance whose identity (VRID, interface, family, unicast source, VMAC) is
unchanged in its state, applying only the differences.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from conf.model import Config
from conf.values import Script
from conf.vrrp import VrrpInstance
from vrrp_child import fsm
from vrrp_child.arp import FrameSender, ipv6_forwarding
from vrrp_child.instance import Instance, Item
from vrrp_child.linkwatch import LinkWatch
from vrrp_child.netlink import Rtnl
from vrrp_child.pacing import Intervals, Pacer
from vrrp_child.sockets import PeerTable, Received, VrrpSocket
from vrrp_child.ticks import Ticks
from vrrp_child.vmac import VmacError, VmacManager, VmacSpec
from watchdog.protocol import DumpKind, Json
from watchdog.runtime import Report
from watchdog.scripts import ScriptRunner

log = logging.getLogger("pykeepalived_vrrp")

PENDING_RETRY_EVERY = 0.5  # s between attempts to build an instance waiting for its interface
PENDING_RETRIES = 60
NOTIFY_TIMEOUT = 30.0  # a notify script that runs longer is terminated (keepalived has none)
STOP_SCRIPTS_WAIT = 2.0  # at shutdown, how long notify_stop scripts may delay the exit

SocketKey = tuple[str, int, object]


@dataclass
class _Batch:
    adds: list[Item] = field(default_factory=list)
    removes: list[Item] = field(default_factory=list)
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
        self.config: Config | None = None
        self.started = time.monotonic()
        self._batch = _Batch()
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._report: Report = lambda changes: None
        self.pacer = Pacer()
        self.pending: dict[str, VrrpInstance] = {}  # waiting for their interface (FAULT)
        self._retry: asyncio.TimerHandle | None = None
        self._pacing: dict[str, asyncio.TimerHandle] = {}

    # ---- Workload ----------------------------------------------------------------------

    async def resume(self, state: Mapping[str, Json]) -> None:
        self.resumed = {k: v for k, v in state.items() if isinstance(v, dict)}

    async def start(self, config: Config, report: Report) -> None:
        self.loop = asyncio.get_running_loop()
        self._report = report
        self.config = config
        self.rtnl = Rtnl()
        self.ticks = Ticks(self.loop)  # one loop timer for every instance's protocol timers
        self.frames = FrameSender()
        self.vmacs = VmacManager(self.rtnl)
        gdefs = config.global_defs
        self.scripts = ScriptRunner(tuple(gdefs.script_user) if gdefs.script_user else None)
        self.links = LinkWatch(self.loop, self._link_changed)
        self._configure_pacing(config)
        created = [self._create(inst) for inst in config.vrrp_instance.values()]
        instances = [i for i in created if i is not None]
        self._remove_stale([i for i in instances if not self._resumes_master(i)])
        for inst in instances:
            self._start(inst)

    async def reload(self, config: Config) -> None:
        # A copy: _retire() pops from self.instances while the loop below walks the old set.
        old = dict(self.instances)
        kept: dict[str, Instance] = {}
        for name, conf in config.vrrp_instance.items():
            inst = old.get(name)
            if inst is not None and identity(inst.conf) == identity(conf):
                inst.reconfigure(conf)
                kept[name] = inst
        for name, inst in old.items():
            if name not in kept:
                log.info("(%s) removed by the reload", name)
                self._retire(inst)
        for name in list(self.pending):
            if name not in config.vrrp_instance:
                del self.pending[name]
                self._report({name: None})
        self.config = config
        self._configure_pacing(config)
        for name, conf in config.vrrp_instance.items():
            if name not in kept:
                new = self._create(conf)
                if new is not None:
                    self._remove_stale([new])
                    self._start(new)
        self._close_unused_sockets()
        self._flush()

    async def dump(self, kind: DumpKind) -> str:
        if kind is DumpKind.JSON:
            return json.dumps([self._json(i) for i in self.instances.values()], indent=2) + "\n"
        if kind is DumpKind.STATS:
            return "".join(self._stats_text(i) for i in self.instances.values())
        return "".join(self._data_text(i) for i in self.instances.values())

    async def stop(self) -> None:
        if not hasattr(self, "rtnl"):
            return  # stopped before start() got going: nothing is held
        for inst in list(self.instances.values()):
            inst.shutdown()  # a MASTER sends priority 0 and releases its VIPs (unless -V)
            inst.cancel_timers()
        self.ticks.close()
        self._flush()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_SCRIPTS_WAIT)
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
                return None
            advert_if, vip_if, mac = vmac.advert_ifname, vmac.name, vmac_spec.mac
        if advert_if is None:
            log.error("(%s) has no interface", name)
            return None
        base = self.rtnl.interface(conf.interface or advert_if)
        if base is None:
            self._wait_for_interface(conf, conf.interface or advert_if, "interface does not exist")
            return None
        local = conf.src_ip or (base.primary_ipv4 if conf.family == 4 else base.link_local_ipv6)
        if local is None:
            self._wait_for_interface(conf, base.name, f"no IPv{conf.family} address for interface")
            return None
        self.pending.pop(name, None)
        try:
            sock = self._socket(conf, advert_if, local)
        except OSError as e:
            log.error("(%s) cannot open its VRRP socket on %s: %s", name, advert_if, e)
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
        )
        key = (sock.key, inst.vrid)
        if key in self.by_vrid:
            log.error("(%s) VRID %d is already used on %s by %s", name, inst.vrid, advert_if, self.by_vrid[key].name)
            return None
        self.by_vrid[key] = inst
        self.instances[name] = inst
        up = base.running and base.up
        self.links.watch(base.name, up)
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
        self.pending[conf.name] = conf
        self.links.watch(ifname, False)

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
        self._flush()
        if self.pending and tries < PENDING_RETRIES:
            self._retry = self.loop.call_later(PENDING_RETRY_EVERY, self._retry_pending, tries + 1)

    def _socket(self, conf: VrrpInstance, ifname: str, local: object) -> VrrpSocket:
        unicast = conf.is_unicast
        key: SocketKey = (ifname, conf.family, local if unicast else None)
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
        if resume:
            log.info("(%s) resuming as MASTER after a child restart", inst.name)
        inst.start(resume_master=resume)  # in FAULT, the machine waits for the fault to end

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
        inst.shutdown()
        inst.cancel_timers()
        self.instances.pop(inst.name, None)
        self.by_vrid = {k: v for k, v in self.by_vrid.items() if v is not inst}
        self._report({inst.name: None})

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
        self._flush()
        if up and self.pending:
            if self._retry is not None:
                self._retry.cancel()
            self._retry_pending()

    # ---- Edges (for the instances) ---------------------------------------------------------

    def add_vips(self, items: list[Item], then: Callable[[], None] | None = None) -> None:
        self._batch.adds.extend(items)
        if then is not None:
            self._batch.then.append(then)
        self._schedule_flush()

    def remove_vips(self, items: list[Item]) -> None:
        self._batch.removes.extend(items)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """One netlink batch for everything the instances asked this loop pass."""
        self._flush_scheduled = False
        batch, self._batch = self._batch, _Batch()
        if batch.removes:
            result = self.rtnl.remove_addresses(batch.removes)
            for f in result.failed:
                log.error("Cannot remove VIP %s from %s: %s", f.entry.address, f.ifname, f.message)
        if batch.adds:
            result = self.rtnl.add_addresses(batch.adds)
            for f in result.failed:
                log.error("Cannot add VIP %s to %s: %s", f.entry.address, f.ifname, f.message)
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
        task = self.loop.create_task(
            self.scripts.run(script, args=args, timeout=NOTIFY_TIMEOUT, label=f"({inst.name}) notify script")
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def state_changed(self, inst: Instance) -> None:
        self._report(
            {
                inst.name: {
                    "state": inst.state.value,
                    "priority": inst.params.priority,
                    "id": _id_text(inst.conf),
                }
            }
        )

    # ---- dumps ---------------------------------------------------------------------------

    def _data_text(self, inst: Instance) -> str:
        c, m = inst.conf, inst.machine
        vips = "".join(f"     {e.address} dev {ifname}\n" for e, ifname in inst.vip_items())
        return (
            f" VRRP Instance = {inst.name}\n"
            f"   State = {m.state.value}\n"
            f"   Interface = {c.interface}\n"
            f"   Using src_ip = {inst.local_ip}\n"
            f"   Virtual Router ID = {inst.vrid}\n"
            f"   Version = {inst.params.version}\n"
            f"   Priority = {inst.params.priority}\n"
            f"   Effective priority = {inst.params.priority}\n"
            f"   Advert interval = {c.advert_int} sec\n"
            f"   Master advert interval = {m.master_adver_int} sec\n"
            f"   Preempt = {'disabled' if c.nopreempt else 'enabled'}\n"
            f"   Preempt delay = {c.preempt_delay} secs\n"
            f"   Master router = {m.master_ip}\n"
            f"   Master priority = {m.master_priority}\n"
            f"   Unicast = {'yes' if c.is_unicast else 'no'}\n"
            f"   Virtual IP = {len(inst.vip_items())}\n{vips}"
        )

    def _stats_text(self, inst: Instance) -> str:
        s = inst.stats
        return (
            f"VRRP Instance: {inst.name}\n"
            f"  Advertisements:\n    Received: {s.advert_rcvd}\n    Sent: {s.advert_sent}\n"
            f"  Became master: {s.become_master}\n"
            f"  Released master: {s.release_master}\n"
            f"  Packet Errors:\n    Length: {s.packet_len_err}\n    TTL: {s.ip_ttl_err}\n"
            f"    Invalid Type: {s.invalid_type_rcvd}\n    Advertisement Interval: {s.advert_interval_err}\n"
            f"    Address List: {s.addr_list_err}\n"
            f"  Authentication Errors:\n    Invalid Type: {s.invalid_authtype}\n"
            f"    Type Mismatch: {s.authtype_mismatch}\n    Failure: {s.auth_failure}\n"
            f"  Priority Zero:\n    Received: {s.pri_zero_rcvd}\n    Sent: {s.pri_zero_sent}\n"
        )

    def _json(self, inst: Instance) -> dict[str, object]:
        """keepalived's JSON dump layout: [{"data": {...}, "stats": {...}}, ...]."""
        c, m = inst.conf, inst.machine
        state_number = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3, "STOP": 98}
        return {
            "data": {
                "iname": inst.name,
                "ifp_ifname": c.interface,
                "vrid": inst.vrid,
                "base_priority": c.effective_priority,
                "effective_priority": inst.params.priority,
                "state": state_number.get(m.state.value, 0),
                "state_name": m.state.value,
                "version": inst.params.version,
                "adver_int": c.advert_int,
                "master_adver_int": m.master_adver_int,
                "nopreempt": int(c.nopreempt),
                "preempt_delay": c.preempt_delay,
                "master_saddr": str(m.master_ip) if m.master_ip is not None else None,
                "src_ip": str(inst.local_ip),
                "vipset": int(inst.vips_set),
                "vips": [str(e.address) for e in c.virtual_ipaddress],
                "evips": [str(e.address) for e in c.virtual_ipaddress_excluded],
            },
            "stats": dict(vars(inst.stats)),
        }


def _id_text(conf: VrrpInstance) -> str:
    return repr(identity(conf))
