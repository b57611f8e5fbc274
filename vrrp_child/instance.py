"""One vrrp_instance at run time: the pure parts (fsm, packet, receive) wired to the edges
the workload owns (the shared socket, the address batcher, the ARP/NA sender, scripts).

Everything here runs on the child's loop. The state machine decides; `_perform` carries
out its actions in the order it gives them, which is keepalived's: on becoming master the
advert goes first, then the VIPs, then the gratuitous ARPs (keepalived
vrrp_state_master_tx / vrrp_state_become_master).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from conf.addresses import IpAddressEntry
from conf.values import IPAddress, Script
from conf.vrrp import VrrpInstance
from vrrp_child import fsm, packet
from vrrp_child.arp import announcement
from vrrp_child.packet import Advert, DropReason, PacketError
from vrrp_child.receive import Expect, check
from vrrp_child.sockets import Received, VrrpSocket
from vrrp_child.ticks import Ticks, Timer

log = logging.getLogger("pykeepalived_vrrp")

PRIO_STOP = 0
LOG_EVERY = 60.0  # a repeated receive problem is logged again at most this often (s)

Item = tuple[IpAddressEntry, str]


@dataclass
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


class Edges(Protocol):
    """What an instance needs from the workload."""

    loop: asyncio.AbstractEventLoop
    dont_release: bool

    def add_vips(self, items: list[Item], then: Callable[[], None] | None = None) -> None: ...

    def remove_vips(self, items: list[Item]) -> None: ...

    def send_frames(self, ifname: str, frames: list[bytes]) -> None: ...

    def notify(self, inst: Instance, script: Script, args: tuple[str, ...] = ()) -> None: ...

    def state_changed(self, inst: Instance) -> None: ...


class _RateLimit:
    """Log a repeated receive problem once, then at most every LOG_EVERY seconds."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def __call__(self, key: str, text: str) -> None:
        now = time.monotonic()
        last = self.last.get(key)
        if last is not None and now - last < LOG_EVERY:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return
        extra = self.suppressed.pop(key, 0)
        self.last[key] = now
        log.info("%s%s", text, f" ({extra} more since last logged)" if extra else "")


@dataclass
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
    _garp_timers: list[asyncio.TimerHandle] = field(default_factory=list, repr=False)
    _limit: _RateLimit = field(default_factory=_RateLimit, repr=False)
    vips_set: bool = False

    def __post_init__(self) -> None:
        self.params = fsm.Params.from_instance(self.conf, self.local_ip)
        self.expect = Expect.from_instance(self.conf)
        if self.ticks is None:
            self.ticks = Ticks(self.edges.loop)

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

    def vip_items(self, conf: VrrpInstance | None = None) -> list[Item]:
        """virtual_ipaddress and virtual_ipaddress_excluded, each on its interface."""
        c = conf or self.conf
        return [(e, e.dev or self.ifname) for e in (*c.virtual_ipaddress, *c.virtual_ipaddress_excluded)]

    def advert_addresses(self) -> tuple[IPAddress, ...]:
        return self.expect.addresses

    # ---- the state machine ---------------------------------------------------------------

    def start(self, *, resume_master: bool = False) -> None:
        self._step(fsm.Start(resume_master=resume_master))

    def shutdown(self) -> None:
        self._step(fsm.Shutdown())

    def set_fault(self, reason: str | None) -> None:
        """FAULT while `reason` (an interface down, ...); None: the fault is over."""
        self._step(fsm.FaultOn(reason) if reason else fsm.FaultOff())

    def reconfigure(self, conf: VrrpInstance) -> None:
        """A reload that kept this instance (same VRID, interface, family, unicast source):
        new parameters, VIP differences applied while MASTER, no election."""
        old_items = self.vip_items()
        self.conf = conf
        self.expect = Expect.from_instance(conf)
        self._payloads.clear()
        self._group_payloads.clear()
        params = fsm.Params.from_instance(conf, self.local_ip)
        if params != self.params:
            self._step(fsm.Reconfigure(params))
            self.params = params
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

    def on_tick(self) -> None:
        self._timer = None
        self._timer_at = None
        # A steady master's advert: the state machine's own Adver_Timer rule, without the
        # general event path (this runs for every advert of every master).
        fired = fsm.advert_timer(self.machine, self.params, self.edges.loop.time())
        if fired is not None:
            self.machine = fired
            self.send_advert(fsm.effective_priority(fired, self.params))
            self._arm()
            return
        self._step(fsm.Tick())

    def on_packet(self, rx: Received) -> None:
        """An advert for our VRID on our socket (the workload demultiplexes)."""
        try:
            advert = packet.decode(rx.payload, rx.src, rx.dst, rx.ttl, multicast=not self.socket.unicast)
        except PacketError as e:
            self.stats.count_drop(e.reason)
            self._limit(e.reason.name, f"({self.name}) Invalid advert from {rx.src}: {e.detail}")
            return
        self.on_advert(advert, rx.src)

    def on_advert(self, advert: Advert, src: IPAddress) -> None:
        skip = bool(self.conf.skip_check_adv_addr) and src == self.machine.master_ip
        verdict = check(advert, self.expect, check_addresses=not skip)
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
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        assert self.ticks is not None
        early = fsm.advert_early(self.params) if self.machine.state is fsm.State.MASTER else 0.0
        self._timer = None if deadline is None else self.ticks.call_at(deadline, self.on_tick, early)

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
        if isinstance(action, fsm.SendAdvert):
            self.send_advert(action.priority)
        elif isinstance(action, fsm.BecomeMaster):
            self._become_master(resumed=action.resumed)
        elif isinstance(action, fsm.LeaveMaster):
            self._leave_master()
        elif isinstance(action, fsm.Entered):
            self._entered(action)
        elif isinstance(action, fsm.MasterRxLowerPri):
            self._rx_lower_pri()
        elif isinstance(action, fsm.Log):
            if action.detail:
                if self.detail:
                    log.info("%s", action.text)
            else:
                log.info("%s", action.text)

    def send_advert(self, priority: int) -> None:
        if self.socket.unicast:
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

    def _payload(self, priority: int, dst: IPAddress) -> bytes:
        """The encoded advert; cached, since it only changes with priority or config."""
        key = (priority, dst)
        data = self._payloads.get(key)
        if data is None:
            auth = self.conf.auth_pass if self.expect.version == 2 and self.expect.auth_type else None
            advert = Advert(
                version=self.expect.version,
                vrid=self.vrid,
                priority=priority,
                addresses=self.advert_addresses(),
                adver_int_cs=self.expect.adver_int_cs,
                auth_type=self.expect.auth_type if self.expect.version == 2 else 0,
                auth_data=(auth or "").encode()[:8],
            )
            data = packet.encode(advert, self.local_ip, dst, v3_checksum_as_v2=self.v3_checksum_as_v2)
            self._payloads[key] = data
        return data

    def _become_master(self, *, resumed: bool) -> None:
        self.vips_set = True
        items = self.vip_items()
        repeat = self._garp_repeat()
        # The VIPs of all instances that become master in this loop pass go in as one
        # netlink batch; the GARPs follow once they are on the interface.
        self.edges.add_vips(items, then=lambda: self._garp(items, repeat))
        delay = self.conf.garp_master_delay or 0
        if delay > 0:
            self._garp_timers.append(self.edges.loop.call_later(delay, self._garp, items, repeat))
        refresh = self.conf.garp_master_refresh or 0
        if refresh > 0:
            self._garp_timers.append(self.edges.loop.call_later(refresh, self._refresh, items, refresh))

    def _leave_master(self) -> None:
        for t in self._garp_timers:
            t.cancel()
        self._garp_timers.clear()
        if self.vips_set and not self.edges.dont_release:
            self.edges.remove_vips(self.vip_items())
        self.vips_set = False

    def _garp_repeat(self) -> int:
        return self.conf.garp_master_repeat or 1

    def _garp(self, items: list[Item], repeat: int) -> None:
        """Gratuitous ARP / unsolicited NA for each VIP, `repeat` times (keepalived's
        garp_master_repeat), on the interface each VIP is on."""
        if self.state is not fsm.State.MASTER:
            return
        by_if: dict[str, list[bytes]] = {}
        for entry, ifname in items:
            ip = entry.ip
            frame = (
                announcement(self.mac, ip, router=self.router_flag)
                if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address))
                else None
            )
            if frame is not None:
                by_if.setdefault(ifname, []).extend([frame] * repeat)
        for ifname, frames in by_if.items():
            self.edges.send_frames(ifname, frames)

    def _refresh(self, items: list[Item], every: float) -> None:
        """garp_master_refresh: repeat the GARPs while master."""
        self._garp(items, self.conf.garp_master_refresh_repeat or 1)
        if self.state is fsm.State.MASTER:
            self._garp_timers.append(self.edges.loop.call_later(every, self._refresh, items, every))

    def _rx_lower_pri(self) -> None:
        repeat = self.conf.garp_lower_prio_repeat or 0
        if repeat:
            self._garp(self.vip_items(), repeat)
        if self.conf.notify_master_rx_lower_pri is not None:
            self.edges.notify(self, self.conf.notify_master_rx_lower_pri)

    def _entered(self, action: fsm.Entered) -> None:
        if action.state is fsm.State.MASTER and not action.resumed:
            self.stats.become_master += 1
        if action.old is fsm.State.MASTER and action.state is not fsm.State.MASTER:
            self.stats.release_master += 1
        self.edges.state_changed(self)
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


_NOTIFY_STATES = frozenset({fsm.State.MASTER, fsm.State.BACKUP, fsm.State.FAULT, fsm.State.STOP})


def _key(item: Item) -> tuple[str, str]:
    entry, ifname = item
    return (str(entry.address), ifname)
