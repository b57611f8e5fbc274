"""One vrrp_instance at run time: the pure parts (fsm, packet, receive) wired to the edges
the workload owns (the shared socket, the address batcher, the ARP/NA sender, scripts).

Everything here runs on the child's loop. The state machine decides; `_perform` carries
out its actions in the order it gives them, which is keepalived's: on becoming master the
advert goes first, then the VIPs, the virtual routes and rules, then the gratuitous ARPs
(keepalived vrrp_state_master_tx / vrrp_state_become_master); leaving master removes the
routes and rules, then the VIPs (vrrp_restore_interface).

An instance is in FAULT while any source reports a fault (its interface, its trackers, its
sync group): `set_faults(source, reasons)`. Its priority is the configured one plus its
trackers' weights (`set_priority_delta`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from conf.rules import RuleEntry
from conf.values import IPAddress, Script
from conf.vrrp import VrrpInstance
from vrrp_child import ah, fsm, holdings, netlink, packet
from vrrp_child.advertgrid import AdvertGrid
from vrrp_child.arp import announcement
from vrrp_child.garp_extra import extra_if_items
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.identity import identity_text
from vrrp_child.packet import AUTH_AH, Advert, DropReason, PacketError
from vrrp_child.receive import Expect, Verdict, check
from vrrp_child.sockets import Received, VrrpSocket
from vrrp_child.ticks import Ticks, Timer
from vrrp_child.tracking import effective_priority

log = logging.getLogger("pykeepalived_vrrp")

PRIO_STOP = 0
LOG_EVERY = 60.0  # a line a received packet triggers is logged again at most this often (s)


# Fault sources (set_faults); the sync group's is not the member's own fault.
FAULT_INTERFACE = "interface"
FAULT_TRACKERS = "trackers"
FAULT_GROUP = "group"


@dataclass(slots=True)
class Stats:
    """keepalived's per-instance counters (the SIGUSR2 stats file and the JSON dump)."""

    advert_rcvd: int = 0
    advert_sent: int = 0
    become_master: int = 0
    release_master: int = 0
    packet_len_err: int = 0
    advert_interval_err: int = 0
    ip_ttl_err: int = 0
    invalid_type_rcvd: int = 0
    addr_list_err: int = 0
    invalid_authtype: int = 0
    authtype_mismatch: int = 0
    auth_failure: int = 0
    pri_zero_rcvd: int = 0
    pri_zero_sent: int = 0
    other_err: int = 0  # version, checksum, VRID: keepalived has no counter of its own

    def count_drop(self, reason: DropReason) -> None:
        name = _COUNTER_OF_LINE.get(reason.stats_line, "other_err") if reason.stats_line else "other_err"
        setattr(self, name, getattr(self, name) + 1)


# keepalived's stats lines (packet.DropReason.stats_line) -> our counters
_COUNTER_OF_LINE: dict[tuple[str, str] | None, str] = {
    ("Packet Errors", "Length"): "packet_len_err",
    ("Packet Errors", "TTL"): "ip_ttl_err",
    ("Packet Errors", "Invalid Type"): "invalid_type_rcvd",
    ("Packet Errors", "Advertisement Interval"): "advert_interval_err",
    ("Packet Errors", "Address List"): "addr_list_err",
    ("Authentication Errors", "Invalid Type"): "invalid_authtype",
    ("Authentication Errors", "Type Mismatch"): "authtype_mismatch",
    ("Authentication Errors", "Failure"): "auth_failure",
}


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Edges(Protocol):
    """What an instance needs from the workload."""

    loop: asyncio.AbstractEventLoop
    dont_release: bool

    def add_vips(self, items: list[Item], then: Callable[[], None] | None = None) -> None: ...

    def remove_vips(self, items: list[Item]) -> None: ...

    def add_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None: ...

    def remove_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None: ...

    def want_master(self, inst: Instance) -> None: ...

    def rx_lower_pri(self, inst: Instance) -> None: ...

    def send_frames(self, ifname: str, frames: list[bytes]) -> None: ...

    def after_burst(self, job: Callable[[], None]) -> Cancellable: ...

    def notify(self, inst: Instance, script: Script, args: tuple[str, ...] = ()) -> None: ...

    def state_changed(self, inst: Instance, old: fsm.State) -> None: ...


class _RateLimit:
    """Log a line a received packet triggers (a receive problem, an election message) once
    per kind, then at most every `every` seconds, saying how many were left out: a flood
    of adverts must not flood the log. One per instance, so one noisy peer does not hide
    another instance's lines."""

    def __init__(self, every: float = LOG_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def __call__(self, key: str, text: str) -> None:
        now = self.clock()
        last = self.last.get(key)
        if last is not None and now - last < self.every:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return
        extra = self.suppressed.pop(key, 0)
        self.last[key] = now
        log.info("%s%s", text, f" ({extra} more since last logged)" if extra else "")


EXTRA_IF_SLACK = 0.01  # s; garp_extra_if is due at the advert this close to its time


@dataclass(slots=True)
class Instance:
    """The run-time side of one vrrp_instance."""

    conf: VrrpInstance
    socket: VrrpSocket
    local_ip: IPAddress  # our advert source: the tie-break address (RFC 5798 section 6.4.3)
    ifname: str  # where the VIPs go (the VMAC interface with use_vmac)
    mac: str  # the MAC GARPs announce (the VMAC with use_vmac)
    edges: Edges
    detail: bool = False  # -D: keepalived's detail lines
    v3_checksum_as_v2: bool = False
    router_flag: bool = False  # unsolicited NAs carry R when the interface forwards IPv6
    # The protocol timers; the workload shares one among its instances (None: a private one).
    ticks: Ticks | None = field(default=None, repr=False)
    # When masters of one interval send (vrrp_child.advertgrid); shared like the timers.
    grid: AdvertGrid | None = field(default=None, repr=False)
    machine: fsm.Machine = field(default_factory=fsm.initial)
    stats: Stats = field(default_factory=Stats)
    params: fsm.Params = field(init=False)
    expect: Expect = field(init=False)
    _payloads: dict[tuple[int, IPAddress], bytes] = field(default_factory=dict, repr=False)
    # The multicast adverts by priority alone: hashing an address key costs as much as the rest
    # of a master's advert tick in Python.
    _group_payloads: dict[int, bytes] = field(default_factory=dict, repr=False)
    _timer: Timer | None = field(default=None, repr=False)
    _timer_at: float | None = field(default=None, repr=False)
    # While on_tick runs: the deadline the timer that fired was armed for (see _arm)
    _fired_for: float | None = field(default=None, repr=False)
    # garp_master_delay, garp_master_refresh and a takeover's GARP repeats (Edges.after_burst)
    _garp_timers: list[Cancellable] = field(default_factory=list, repr=False)
    # garp_extra_if (vrrp_child.garp_extra): when the next frames are due, and them per interface
    _extra_if_at: float | None = field(default=None, repr=False)
    _extra_if_frames: dict[str, bytes] = field(default_factory=dict, repr=False)
    _limit: _RateLimit = field(default_factory=_RateLimit, repr=False)
    vips_set: bool = False
    # removed by a reload: its stop runs no STOP notifies (keepalived sends DELETED or FAULT
    # instead: vrrp_child.workload._retire)
    deleted: bool = False
    in_sync_group: bool = False
    priority_delta: int = 0  # the trackers' weights (tracking.Verdict.delta)
    faults: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source -> reasons
    # wall-clock time of the last state change (keepalived's JSON "last_transition"): for people
    last_transition: float = 0.0
    # auth_type AH: the sequence number and IP ID, kept across reloads as keepalived does
    ah_seq: ah.SeqCounter = field(default_factory=ah.SeqCounter, repr=False)
    _announcements: dict[tuple[IPAddress, str, bool], bytes] = field(default_factory=dict, repr=False)
    # the last datagram decoded and the last verdict (a master repeats the same advert)
    _last_decoded: tuple[tuple[bytes, IPAddress, IPAddress, int], Advert] | None = field(default=None, repr=False)
    _last_verdict: tuple[Advert, Expect, bool, Verdict] | None = field(default=None, repr=False)
    # identity_text of `_identity_of` (the configuration it was worked out for)
    _identity: str = field(default="", repr=False)
    _identity_of: VrrpInstance | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.params = self._params(self.conf)
        self.expect = Expect.from_instance(self.conf)
        if self.ticks is None:
            self.ticks = Ticks(self.edges.loop)
        if self.grid is None:
            self.grid = AdvertGrid()

    # ---- identity and addresses -------------------------------------------------------

    @property
    def name(self) -> str:
        return self.conf.name

    @property
    def vrid(self) -> int:
        return self.conf.virtual_router_id or 0

    @property
    def state(self) -> fsm.State:
        return self.machine.state

    @property
    def identity(self) -> str:
        """vrrp_child.identity's text for the current configuration (in every state report),
        worked out once per configuration."""
        if self._identity_of is not self.conf:
            self._identity = identity_text(self.conf)
            self._identity_of = self.conf
        return self._identity

    def vip_items(self) -> list[Item]:
        return holdings.vip_items(self.conf, self.ifname)

    def route_items(self) -> list[RouteItem]:
        return holdings.route_items(self.conf, self.ifname)

    def rule_items(self) -> list[RuleEntry]:
        return holdings.rule_items(self.conf)

    def _params(self, conf: VrrpInstance) -> fsm.Params:
        prio = effective_priority(conf.priority, self.priority_delta)
        return fsm.Params.from_instance(conf, self.local_ip, priority=prio, in_sync_group=self.in_sync_group)

    def advert_addresses(self) -> tuple[IPAddress, ...]:
        return self.expect.addresses

    # ---- the state machine ---------------------------------------------------------------

    def start(self, *, resume_master: bool = False, delay_until: float | None = None) -> None:
        self._step(fsm.Start(resume_master=resume_master, delay_until=delay_until))

    def shutdown(self) -> None:
        self._step(fsm.Shutdown())

    def set_fault(self, reason: str | None) -> None:
        """The instance's interface: FAULT while `reason`; None: that fault is over."""
        self.set_faults(FAULT_INTERFACE, (reason,) if reason else ())

    def set_faults(self, source: str, reasons: tuple[str, ...]) -> bool:
        """The faults `source` reports now; FAULT while any source has one. True when the
        instance's fault changed."""
        if reasons:
            self.faults[source] = reasons
        else:
            self.faults.pop(source, None)
        reason = self.fault_reason
        if reason is not None:
            if self.machine.state is fsm.State.FAULT and self.machine.fault_reason == reason:
                return False
            self._step(fsm.FaultOn(reason))
            return True
        if self.machine.fault_reason is None and self.machine.state is not fsm.State.FAULT:
            return False
        self._step(fsm.FaultOff())
        return True

    @property
    def fault_reason(self) -> str | None:
        """The first of the current faults (interface, trackers, group), None without one."""
        for source in (FAULT_INTERFACE, FAULT_TRACKERS, FAULT_GROUP):
            reasons = self.faults.get(source)
            if reasons:
                return reasons[0]
        return None

    @property
    def own_fault(self) -> bool:
        """A fault of the instance itself, not one its sync group gave it."""
        return any(reasons for source, reasons in self.faults.items() if source != FAULT_GROUP)

    def set_priority_delta(self, delta: int) -> bool:
        """The trackers' weights changed: the effective priority (keepalived's "Changing
        effective priority" line comes from the fsm). True when the priority changed."""
        self.priority_delta = delta
        return self._apply_params(self._params(self.conf))

    def set_in_sync_group(self, member: bool) -> None:
        self.in_sync_group = member
        self._apply_params(self._params(self.conf))

    def _apply_params(self, params: fsm.Params) -> bool:
        if params == self.params:
            return False
        old = self.params.priority
        self._payloads.clear()
        self._group_payloads.clear()
        self._step(fsm.Reconfigure(params))
        self.params = params
        return params.priority != old

    def holding_lost(self) -> None:
        """A VIP, virtual route or rule was deleted under this MASTER (vrrp_child.holdwatch)."""
        self._step(fsm.HoldingLost())

    def sync(self, event: fsm.SyncMaster | fsm.SyncBackup) -> None:
        """The sync group moves this member (syncgroup.ToMember)."""
        self._step(event)

    def reconfigure(self, conf: VrrpInstance) -> None:
        """A reload that kept this instance (same VRID, interface, family, unicast source):
        new parameters, VIP differences applied while MASTER, no election."""
        old_items = self.vip_items()
        old_routes, old_rules = self.route_items(), self.rule_items()
        self.conf = conf
        self.expect = Expect.from_instance(conf)
        self._payloads.clear()
        self._group_payloads.clear()
        self._apply_params(self._params(conf))
        if self.state is fsm.State.MASTER and self.vips_set:
            new_items = self.vip_items()
            old_keys = {_key(i) for i in old_items}
            new_keys = {_key(i) for i in new_items}
            gone = [i for i in old_items if _key(i) not in new_keys]
            added = [i for i in new_items if _key(i) not in old_keys]
            if gone:
                self.edges.remove_vips(gone)
            if added:
                self.edges.add_vips(added, then=lambda: self._garp(added, self._garp_repeat()))
            new_routes, new_rules = self.route_items(), self.rule_items()
            gone_routes = [r for r in old_routes if r not in new_routes]
            gone_rules = [r for r in old_rules if r not in new_rules]
            if gone_routes or gone_rules:
                self.edges.remove_routing(gone_routes, gone_rules)
            added_routes = [r for r in new_routes if r not in old_routes]
            added_rules = [r for r in new_rules if r not in old_rules]
            if added_routes or added_rules:
                self.edges.add_routing(added_routes, added_rules)

    def on_tick(self) -> None:
        fired_for = self._timer_at
        self._timer = None
        self._timer_at = None
        now = self.edges.loop.time()
        # A steady master's advert: the state machine's own Adver_Timer rule, without the
        # general event path (this runs for every advert of every master).
        fired = fsm.advert_timer(self.machine, self.params, now)
        if fired is not None:
            self.machine = fired
            self.send_advert(fsm.effective_priority(fired, self.params))
            # keepalived's check sees its advert timer's time, a hair after the due time when
            # the interval is a whole number of adverts; ours may run a little early (EXTRA_IF_SLACK)
            if self._extra_if_at is not None and now > self._extra_if_at - EXTRA_IF_SLACK:
                self._garp_extra_if()
            self._arm_advert(fired, now)
            return
        self._fired_for = fired_for
        try:
            self._step(fsm.Tick())
        finally:
            self._fired_for = None

    def on_packet(self, rx: Received) -> None:
        """An advert for our VRID on our socket (the workload demultiplexes)."""
        seq: int | None = None
        try:
            if self.expect.auth_type == AUTH_AH:
                seq = self._unseal(rx)
            advert = self._decode(rx, seq is None)
        except ah.NotVrrp:
            return  # an AH for another protocol: keepalived ignores it silently
        except PacketError as e:
            self.stats.count_drop(e.reason)
            self._limit(e.reason.name, f"({self.name}) Invalid advert from {rx.src}: {e.detail}")
            return
        if seq is not None and not self.ah_seq.accept(seq):
            # RFC 2402 section 3.4.3 anti-replay, keepalived's wording and counter
            self.stats.count_drop(DropReason.AUTH_FAILURE)
            self._limit(
                "ah_seq",
                f"({self.name}) IPSEC-AH : sequence number {seq} already processed. Packet dropped. "
                f"Local({self.ah_seq.seq})",
            )
            return
        self.on_advert(advert, rx.src)

    def _decode(self, rx: Received, reuse: bool) -> Advert:
        """packet.decode, pure: the master sends the same bytes every interval, so the last
        advert decoded is taken again when the same datagram comes (`reuse`: not for AH)."""
        key = (rx.payload, rx.src, rx.dst, rx.ttl)
        last = self._last_decoded
        if reuse and last is not None and last[0] == key:
            return last[1]
        advert = packet.decode(rx.payload, rx.src, rx.dst, rx.ttl, multicast=not self.socket.unicast)
        self._last_decoded = (key, advert)
        return advert

    def _check(self, advert: Advert, check_addresses: bool) -> Verdict:
        """receive.check, pure: the verdict on the last advert is kept with it."""
        last = self._last_verdict
        if last is not None and last[0] is advert and last[1] is self.expect and last[2] == check_addresses:
            return last[3]
        verdict = check(advert, self.expect, check_addresses=check_addresses)
        self._last_verdict = (advert, self.expect, check_addresses, verdict)
        return verdict

    def _unseal(self, rx: Received) -> int:
        """auth_type AH: check the ICV and SPI of the whole datagram; its sequence number."""
        sealed = ah.unseal(rx.datagram, ah.key_of(self.expect.auth_pass), unicast=self.socket.unicast)
        if sealed.payload != rx.payload:  # the socket cut the message after the AH
            raise PacketError(DropReason.LENGTH, "IPv4 VRRP packet with AH too short")
        return sealed.seq

    def on_advert(self, advert: Advert, src: IPAddress) -> None:
        skip = self.conf.skip_check_adv_addr and src == self.machine.master_ip
        verdict = self._check(advert, not skip)
        if verdict.reason is not None:
            self.stats.count_drop(verdict.reason)
        if verdict.log:
            self._limit(verdict.reason.name if verdict.reason else "log", verdict.log)
        if not verdict.accept:
            return
        self.stats.advert_rcvd += 1
        if advert.priority == PRIO_STOP:
            self.stats.pri_zero_rcvd += 1
        self._step(fsm.AdvertIn(src, advert.priority, advert.adver_int_cs / 100))

    def _step(self, event: fsm.Event) -> None:
        now = self.edges.loop.time()
        self.machine, actions = fsm.step(self.machine, self.params, event, now)
        for action in actions:
            self._perform(action)
        self._arm()

    def _arm(self) -> None:
        deadline = fsm.next_deadline(self.machine)
        if deadline is not None and deadline != self._timer_at and self.machine.state is fsm.State.MASTER:
            deadline = self._on_grid(self.machine, deadline, self.edges.loop.time())
        if deadline == self._timer_at:
            return
        armed = self._timer_at
        if self._timer is not None and deadline is not None and armed is not None and armed < deadline:
            # A deadline that moved later (a BACKUP's Master_Down_Timer, with every advert
            # from its master) keeps the timer armed for the earlier time: it fires once, finds
            # nothing due, and is armed again then. Re-arming a timer per received advert cost
            # as much as the rest of the receive path.
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        assert self.ticks is not None
        if self.machine.state is fsm.State.MASTER:
            early = fsm.advert_early(self.params)
        elif self._fired_for is not None and deadline is not None and deadline > self._fired_for:
            # the kept timer fired and the deadline had moved on: a steady BACKUP (fsm.down_early)
            early = fsm.down_early(self.machine)
        else:
            # a first deadline, an earlier one (a priority 0 advert) or one checked early that
            # did not move since: exact
            early = 0.0
        self._timer = None if deadline is None else self.ticks.call_at(deadline, self.on_tick, early)

    def _arm_advert(self, m: fsm.Machine, now: float) -> None:
        """_arm for a master whose Adver_Timer fired and whose advert went out (on_tick): no timer
        is armed, the next deadline is the advert's (the whole of a steady master's work)."""
        deadline = m.advert_deadline
        assert deadline is not None and self.ticks is not None
        placed = self._on_grid(m, deadline, now)
        self._timer_at = placed
        self._timer = self.ticks.call_at(placed, self.on_tick, fsm.advert_early(self.params))

    def _on_grid(self, m: fsm.Machine, deadline: float, now: float) -> float:
        """A master's next advert, on the time of the other masters of its interval when that is
        not later (vrrp_child.advertgrid): their adverts then share one loop wakeup. A MASTER's
        master_adver_int is its own interval, already the new one while a reload applies it."""
        assert self.grid is not None
        placed = self.grid.place(m.master_adver_int, deadline, now)
        if placed != deadline:
            self.machine = fsm.advert_moved(m, placed)
        return placed

    def cancel_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None
        for t in self._garp_timers:
            t.cancel()
        self._garp_timers.clear()

    # ---- actions ----------------------------------------------------------------------

    def _perform(self, action: fsm.Action) -> None:
        # by the action's class (a takeover performs five actions per instance; a chain of
        # isinstance tests cost as much as some of the actions themselves)
        _PERFORM[type(action)](self, action)

    def _log(self, action: fsm.Log) -> None:
        if action.detail and not self.detail:
            return
        if action.key is None:
            log.info("%s", action.text)
        else:
            self._limit(action.key, action.text)

    def send_advert(self, priority: int) -> None:
        if self.expect.auth_type == AUTH_AH:
            sent = self._send_ah(priority)
        elif self.socket.unicast:
            peers = [p.address for p in self.conf.unicast_peer if p.address.version == self.socket.family]
            sent = self.socket.send_each(lambda dst: self._payload(priority, dst), peers) > 0
        else:
            group = self.socket.group
            assert group is not None
            data = self._group_payloads.get(priority)
            if data is None:
                data = self._group_payloads[priority] = self._payload(priority, group)
            sent = self.socket.send(data, group)
        if sent:
            self.stats.advert_sent += 1
            if priority == PRIO_STOP:
                self.stats.pri_zero_sent += 1

    def _send_ah(self, priority: int) -> bool:
        """auth_type AH (vrrp_child.ah): every advert has its own sequence number, IP ID and
        ICV, so nothing is cached; every unicast peer gets the same numbers (keepalived)."""
        seq, ip_id = self.ah_seq.next_advert()
        key = ah.key_of(self.expect.auth_pass)
        advert = self.expect.advert(priority)
        src = self.local_ip
        assert isinstance(src, ipaddress.IPv4Address)  # conf.vrrp refuses AH with IPv6
        unicast = self.socket.unicast
        if unicast:
            dsts = [p.address for p in self.conf.unicast_peer if isinstance(p.address, ipaddress.IPv4Address)]
            ttl = 255 if self.conf.unicast_ttl is None else self.conf.unicast_ttl
        else:
            assert isinstance(self.socket.group, ipaddress.IPv4Address)
            dsts, ttl = [self.socket.group], 255
        sent = 0
        for dst in dsts:
            message = packet.encode(advert, src, dst)
            data = ah.seal(message, src, dst, key=key, seq=seq, ip_id=ip_id, ttl=ttl, unicast=unicast)
            sent += self.socket.send(data, dst)
        return sent > 0

    def _payload(self, priority: int, dst: IPAddress) -> bytes:
        """The encoded advert; cached, since it only changes with priority or config."""
        key = (priority, dst)
        data = self._payloads.get(key)
        if data is None:
            advert = self.expect.advert(priority)
            data = packet.encode(advert, self.local_ip, dst, v3_checksum_as_v2=self.v3_checksum_as_v2)
            self._payloads[key] = data
        return data

    def _become_master(self, *, resumed: bool) -> None:
        self.vips_set = True
        items = self.vip_items()
        log.debug("(%s) setting VIPs.", self.name)  # keepalived's -D line, at LOG_INFO (haparent.logs)
        repeat = self._garp_repeat()
        # The VIPs of all instances that become master in this loop pass go in as one
        # netlink batch; the first GARPs follow once they are on the interface, their repeats
        # once the burst of takeovers is over (_garp_takeover).
        self.edges.add_vips(items, then=lambda: self._garp_takeover(items, repeat))
        routes, rules = self.route_items(), self.rule_items()
        if routes or rules:
            # after the VIPs (a route may use one as its src); a resumed master's are already
            # in place, and adding them again repairs any that went missing
            self.edges.add_routing(routes, rules)
        delay = self.conf.garp_master_delay
        if delay > 0:
            self._garp_timers.append(self.edges.loop.call_later(delay, self._garp, items, repeat))
        refresh = self.conf.garp_master_refresh
        if refresh > 0:
            self._garp_timers.append(self.edges.loop.call_later(refresh, self._refresh, items, refresh))
        self._arm_extra_if(items)

    def _arm_extra_if(self, items: list[Item]) -> None:
        """garp_extra_if: the frames (from each interface's own MAC, as keepalived) and the
        first due time, one interval after becoming MASTER."""
        extra = extra_if_items(self.conf, items, self.ifname)
        self._extra_if_frames = {}
        for entry, ifname in extra:
            ip = entry.ip
            link = netlink.interface(ifname)
            if link is None or not link.mac or not isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                continue
            self._extra_if_frames[ifname] = announcement(link.mac, ip, router=self.router_flag)
        every = self.conf.garp_extra_if.interval if self.conf.garp_extra_if is not None else 0
        self._extra_if_at = self.edges.loop.time() + every if self._extra_if_frames else None

    def _garp_extra_if(self) -> None:
        every = self.conf.garp_extra_if.interval if self.conf.garp_extra_if is not None else 0
        for ifname, frame in self._extra_if_frames.items():
            self.edges.send_frames(ifname, [frame])
        self._extra_if_at = self.edges.loop.time() + every if every > 0 else None

    def _leave_master(self) -> None:
        for t in self._garp_timers:
            t.cancel()
        self._garp_timers.clear()
        self._extra_if_at = None
        if self.vips_set and not self.edges.dont_release:
            routes, rules = self.route_items(), self.rule_items()
            if routes or rules:
                self.edges.remove_routing(routes, rules)
            log.debug("(%s) removing VIPs.", self.name)
            self.edges.remove_vips(self.vip_items())
        self.vips_set = False

    def _garp_repeat(self) -> int:
        return self.conf.garp_master_repeat

    def _garp(self, items: list[Item], repeat: int) -> None:
        """Gratuitous ARP / unsolicited NA for each VIP, `repeat` rounds (keepalived's
        garp_master_repeat), on the interface each VIP is on."""
        if self.state is not fsm.State.MASTER:
            return
        self._send_rounds(self._garp_round(items), repeat)

    def _garp_takeover(self, items: list[Item], repeat: int) -> None:
        """A new master's GARPs / NAs: the first round now, right after its VIPs went on the
        interface, the other `repeat - 1` rounds once no protocol timer is due (vrrp_child.afterburst):
        in a burst of takeovers, every instance's first frames go before any instance's repeats."""
        if self.state is not fsm.State.MASTER:
            return
        frames = self._garp_round(items)
        self._send_rounds(frames, min(repeat, 1))
        if repeat > 1:
            self._garp_timers.append(self.edges.after_burst(lambda: self._garp_repeats(frames, repeat - 1)))

    def _garp_repeats(self, by_if: dict[str, list[bytes]], rounds: int) -> None:
        # cancelled when the instance leaves MASTER (_leave_master); checked again all the same
        if self.state is fsm.State.MASTER:
            self._send_rounds(by_if, rounds)

    def _garp_round(self, items: list[Item]) -> dict[str, list[bytes]]:
        """One frame per VIP, by interface, in the VIPs' order; with -D keepalived's line per VIP,
        which it logs with the first round only (vrrp_send_link_update)."""
        by_if: dict[str, list[bytes]] = {}
        for entry, ifname in items:
            ip = entry.ip
            frame = self._announcement(ip) if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else None
            if frame is not None:
                by_if.setdefault(ifname, []).append(frame)
                kind = "gratuitous ARPs" if ip.version == 4 else "Unsolicited Neighbour Adverts"
                log.debug("(%s) Sending/queueing %s on %s for %s", self.name, kind, ifname, ip)
        return by_if

    def _send_rounds(self, by_if: dict[str, list[bytes]], rounds: int) -> None:
        """`rounds` times every VIP's frame, round after round as keepalived sends them."""
        if rounds > 0:
            for ifname, frames in by_if.items():
                self.edges.send_frames(ifname, frames * rounds)

    def _announcement(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
        """arp.announcement for a VIP, built once per (VIP, MAC, R flag): every takeover,
        garp_master_delay and refresh sends the same frames."""
        key = (ip, self.mac, self.router_flag)
        frame = self._announcements.get(key)
        if frame is None:
            frame = self._announcements[key] = announcement(self.mac, ip, router=self.router_flag)
        return frame

    def _refresh(self, items: list[Item], every: float) -> None:
        """garp_master_refresh: repeat the GARPs while master."""
        self._garp(items, self.conf.garp_master_refresh_repeat)
        if self.state is fsm.State.MASTER:
            self._garp_timers.append(self.edges.loop.call_later(every, self._refresh, items, every))

    def _rx_lower_pri(self) -> None:
        repeat = self.conf.garp_lower_prio_repeat
        if repeat:
            self._garp(self.vip_items(), repeat)
        if self.conf.notify_master_rx_lower_pri is not None:
            self.edges.notify(self, self.conf.notify_master_rx_lower_pri)
        self.edges.rx_lower_pri(self)

    def _entered(self, action: fsm.Entered) -> None:
        if not action.resumed:
            self.last_transition = time.time()
        if action.state is fsm.State.MASTER and not action.resumed:
            self.stats.become_master += 1
        if action.old is fsm.State.MASTER and action.state is not fsm.State.MASTER:
            self.stats.release_master += 1
        if self.deleted:
            return
        script = {
            fsm.State.MASTER: self.conf.notify_master,
            fsm.State.BACKUP: self.conf.notify_backup,
            fsm.State.FAULT: self.conf.notify_fault,
            fsm.State.STOP: self.conf.notify_stop,
        }.get(action.state)
        if script is not None:
            self.edges.notify(self, script)
        if self.conf.notify is not None and action.state in _NOTIFY_STATES:
            # keepalived.conf(5) notify: "INSTANCE|GROUP" name state priority
            args = ("INSTANCE", self.name, action.state.value, str(self.params.priority))
            self.edges.notify(self, self.conf.notify, args)
        # FIFO, SMTP, report and the sync group after the instance's own scripts (keepalived
        # runs the group's notify after its members')
        self.edges.state_changed(self, action.old)


def _send_advert(inst: Instance, action: fsm.SendAdvert) -> None:
    inst.send_advert(action.priority)


def _become_master(inst: Instance, action: fsm.BecomeMaster) -> None:
    inst._become_master(resumed=action.resumed)


def _leave_master(inst: Instance, action: fsm.LeaveMaster) -> None:
    inst._leave_master()


def _rx_lower_pri(inst: Instance, action: fsm.MasterRxLowerPri) -> None:
    inst._rx_lower_pri()


def _want_master(inst: Instance, action: fsm.WantMaster) -> None:
    inst.edges.want_master(inst)


# fsm.Action's classes -> what the instance does for them (Instance._perform)
_PERFORM: dict[type, Callable[[Instance, Any], None]] = {
    fsm.SendAdvert: _send_advert,
    fsm.BecomeMaster: _become_master,
    fsm.LeaveMaster: _leave_master,
    fsm.Entered: Instance._entered,
    fsm.MasterRxLowerPri: _rx_lower_pri,
    fsm.WantMaster: _want_master,
    fsm.Log: Instance._log,
}

_NOTIFY_STATES = frozenset({fsm.State.MASTER, fsm.State.BACKUP, fsm.State.FAULT, fsm.State.STOP})


def _key(item: Item) -> tuple[str, str]:
    entry, ifname = item
    return (str(entry), ifname)
