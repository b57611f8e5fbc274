"""vrrp_child.instance on simulated time with fake edges: what an instance asks of the
socket, the address batcher, the ARP sender and the notify runner, in which order."""

from __future__ import annotations

import ipaddress
import itertools
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conf import load
from conf.rules import RuleEntry
from conf.values import Script
from conf.vrrp import VrrpInstance
from vrrp_child import fsm, packet
from vrrp_child.advertgrid import AdvertGrid
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.instance import Instance
from vrrp_child.sockets import Received
from vrrp_child.ticks import Ticks

GROUP = ipaddress.IPv4Address("224.0.0.18")
LOCAL = ipaddress.IPv4Address("192.0.2.11")
PEER = ipaddress.IPv4Address("192.0.2.12")


@dataclass
class Handle:
    when: float
    fn: Callable[..., None]
    args: tuple[Any, ...]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeLoop:
    now: float = 100.0
    handles: list[Handle] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, fn: Callable[..., None], *args: Any) -> Handle:
        h = Handle(when, fn, args)
        self.handles.append(h)
        return h

    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> Handle:
        return self.call_at(self.now + delay, fn, *args)

    def advance(self, seconds: float) -> None:
        """Run every timer due within `seconds`, in time order."""
        end = self.now + seconds
        while True:
            due = sorted((h for h in self.handles if not h.cancelled and h.when <= end), key=lambda h: h.when)
            if not due:
                break
            h = due[0]
            self.handles.remove(h)
            self.now = max(self.now, h.when)
            h.fn(*h.args)
        self.now = end


@dataclass
class FakeSocket:
    unicast: bool = False
    family: int = 4
    group: ipaddress.IPv4Address | None = GROUP
    ifname: str = "eth0"
    sent: list[tuple[bytes, Any]] = field(default_factory=list)

    def send(self, payload: bytes, dst: Any, *, ttl: int | None = None) -> bool:
        self.sent.append((payload, dst))
        return True

    def send_each(self, make: Callable[[Any], bytes], dsts: list[Any]) -> int:
        for d in dsts:
            self.send(make(d), d)
        return len(dsts)


@dataclass
class FakeEdges:
    loop: FakeLoop = field(default_factory=FakeLoop)
    dont_release: bool = False
    log: list[tuple[str, Any]] = field(default_factory=list)
    sent_frames: list[list[bytes]] = field(default_factory=list)
    later: list[Handle] = field(default_factory=list)  # after_burst's jobs, run by run_later()

    def add_vips(self, items: list[Item], then: Callable[[], None] | None = None) -> None:
        self.log.append(("add", [str(e.address) for e, _ in items]))
        if then is not None:
            then()  # the batch is flushed at once here

    def remove_vips(self, items: list[Item]) -> None:
        self.log.append(("remove", [str(e.address) for e, _ in items]))

    def send_frames(self, ifname: str, frames: list[bytes]) -> None:
        self.log.append(("frames", (ifname, len(frames))))
        self.sent_frames.append(frames)

    def after_burst(self, job: Callable[[], None]) -> Handle:
        self.log.append(("after_burst", None))
        handle = Handle(self.loop.now, job, ())
        self.later.append(handle)
        return handle

    def run_later(self) -> None:
        """What the workload does once no timer is due (vrrp_child.afterburst)."""
        jobs, self.later = self.later, []
        for h in jobs:
            if not h.cancelled:
                h.fn()

    def notify(self, inst: Instance, script: Script, args: tuple[str, ...] = ()) -> None:
        self.log.append(("notify", (script.argv, args)))

    def state_changed(self, inst: Instance, old: fsm.State) -> None:
        self.log.append(("state", inst.state.value))

    def add_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None:
        self.log.append(("add_routing", ([(str(r.to), dev) for r, dev in routes], len(rules))))

    def remove_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None:
        self.log.append(("remove_routing", ([(str(r.to), dev) for r, dev in routes], len(rules))))

    def want_master(self, inst: Instance) -> None:
        self.log.append(("want_master", inst.name))

    def rx_lower_pri(self, inst: Instance) -> None:
        self.log.append(("rx_lower_pri", inst.name))


CONF = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    garp_master_delay 0
    notify_master "/bin/m arg"
    notify "/bin/n"
    virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101/24
    }
}
"""


def instance_conf(tmp_path: Path, text: str = CONF) -> VrrpInstance:
    path = tmp_path / "k.conf"
    path.write_text(textwrap.dedent(text))
    result = load(str(path), config_id="x", interfaces=frozenset({"eth0"}))
    assert result.config is not None
    return result.config.vrrp_instance["VI_1"]


def make(tmp_path: Path, text: str = CONF, **kw: Any) -> tuple[Instance, FakeEdges, FakeSocket]:
    edges = FakeEdges(**kw)
    sock = FakeSocket()
    inst = Instance(
        conf=instance_conf(tmp_path, text),
        socket=sock,  # type: ignore[arg-type]
        local_ip=LOCAL,
        ifname="eth0",
        mac="02:00:00:00:00:11",
        edges=edges,  # type: ignore[arg-type]
    )
    return inst, edges, sock


def decoded(sock: FakeSocket, i: int = -1) -> packet.Advert:
    payload, dst = sock.sent[i]
    return packet.decode(payload, LOCAL, dst, 255, multicast=True)


def test_backup_becomes_master_in_keepalived_order(tmp_path: Path) -> None:
    inst, edges, sock = make(tmp_path)
    inst.start()
    assert inst.state.value == "BACKUP" and not sock.sent
    edges.loop.advance(3.5)  # Master_Down_Interval for priority 150: 3 + 106/256 s
    assert inst.state.value == "MASTER"
    advert = decoded(sock, 0)
    assert (advert.vrid, advert.priority, advert.version) == (51, 150, 2)
    assert [str(a) for a in advert.addresses] == ["192.0.2.100", "192.0.2.101"]
    kinds = [k for k, _ in edges.log]
    assert kinds.index("add") < kinds.index("frames")  # GARPs once the VIPs are on the interface
    assert ("add", ["192.0.2.100/24", "192.0.2.101/24"]) in edges.log
    # garp_master_repeat 5: the first round at once, the other four once the burst is over
    assert [v for k, v in edges.log if k == "frames"] == [("eth0", 2)]
    edges.run_later()
    assert [v for k, v in edges.log if k == "frames"] == [("eth0", 2), ("eth0", 2 * 4)]
    one, repeats = edges.sent_frames
    assert len(set(one)) == 2 and repeats == one * 4  # round after round, as keepalived sends them
    notifies = [v for k, v in edges.log if k == "notify"]
    # keepalived notifies the initial BACKUP state too, then MASTER
    assert notifies == [
        (("/bin/n",), ("INSTANCE", "VI_1", "BACKUP", "150")),
        (("/bin/m", "arg"), ()),
        (("/bin/n",), ("INSTANCE", "VI_1", "MASTER", "150")),
    ]
    assert inst.stats.become_master == 1 and inst.stats.advert_sent == 1


def test_master_sends_an_advert_every_interval_from_a_cached_payload(tmp_path: Path) -> None:
    inst, edges, sock = make(tmp_path)
    inst.start()
    edges.loop.advance(3.5)
    first = len(sock.sent)
    edges.loop.advance(3.0)
    assert len(sock.sent) - first == 3
    assert sock.sent[-1][0] is sock.sent[-2][0]  # encoded once, sent many times


def test_higher_priority_advert_sends_master_back_to_backup(tmp_path: Path) -> None:
    inst, edges, _ = make(tmp_path)
    inst.start()
    edges.loop.advance(3.5)
    other = packet.encode(packet.Advert(2, 51, 200, inst.expect.addresses, 100), PEER, GROUP)
    inst.on_packet(Received(other, PEER, GROUP, 255, 2))
    assert inst.state is fsm.State.BACKUP
    assert ("remove", ["192.0.2.100/24", "192.0.2.101/24"]) in edges.log
    assert inst.stats.advert_rcvd == 1 and inst.stats.release_master == 1
    edges.run_later()  # the GARP repeats of a master that is gone do not go out
    assert [v for k, v in edges.log if k == "frames"] == [("eth0", 2)]


def test_bad_packets_are_counted_never_raised(tmp_path: Path) -> None:
    inst, _, _ = make(tmp_path)
    inst.start()
    inst.on_packet(Received(b"\x21\x33", PEER, GROUP, 255, 2))
    inst.on_packet(Received(packet.encode(packet.Advert(2, 51, 100, (), 100), PEER, GROUP), PEER, GROUP, 64, 2))
    wrong_auth = packet.encode(packet.Advert(2, 51, 100, inst.expect.addresses, 100, 1, b"nope"), PEER, GROUP)
    inst.on_packet(Received(wrong_auth, PEER, GROUP, 255, 2))
    s = inst.stats
    assert s.packet_len_err == 1 and s.ip_ttl_err == 1 and s.invalid_authtype + s.authtype_mismatch == 1
    assert s.advert_rcvd == 0 and inst.state is fsm.State.BACKUP


def test_shutdown_of_a_master_sends_priority_zero_and_releases(tmp_path: Path) -> None:
    inst, edges, sock = make(tmp_path)
    inst.start()
    edges.loop.advance(3.5)
    inst.shutdown()
    assert decoded(sock).priority == 0 and inst.stats.pri_zero_sent == 1
    assert edges.log[-1][0] in ("remove", "state", "notify") and any(k == "remove" for k, _ in edges.log)


def test_dont_release_keeps_the_vips(tmp_path: Path) -> None:
    inst, edges, sock = make(tmp_path, dont_release=True)
    inst.start()
    edges.loop.advance(3.5)
    inst.shutdown()
    assert decoded(sock).priority == 0
    assert not any(k == "remove" for k, _ in edges.log)


def test_reconfigure_applies_vip_differences_without_election(tmp_path: Path) -> None:
    inst, edges, sock = make(tmp_path)
    inst.start()
    edges.loop.advance(3.5)
    edges.log.clear()
    inst.reconfigure(instance_conf(tmp_path, CONF.replace("192.0.2.101/24", "192.0.2.102/24")))
    assert inst.state is fsm.State.MASTER
    assert ("remove", ["192.0.2.101/24"]) in edges.log and ("add", ["192.0.2.102/24"]) in edges.log
    assert not any(k == "state" for k, _ in edges.log)  # no transition
    edges.loop.advance(1.0)
    assert [str(a) for a in decoded(sock).addresses] == ["192.0.2.100", "192.0.2.102"]


def test_resume_as_master_keeps_vips_and_sends_at_once(tmp_path: Path) -> None:
    inst, edges, sock = make(tmp_path)
    inst.start(resume_master=True)
    assert inst.state is fsm.State.MASTER and len(sock.sent) == 1
    assert inst.stats.become_master == 0  # not a new transition
    assert not any(k == "remove" for k, _ in edges.log)


ROUTES_CONF = CONF.replace(
    "    virtual_ipaddress {",
    """    virtual_routes {
        198.51.100.0/24 via 192.0.2.1
        203.0.113.0/24 dev eth9 via 192.0.2.1
        blackhole 198.18.0.0/15
    }
    virtual_rules {
        from 192.0.2.100 table 100
    }
    virtual_ipaddress {""",
)


def test_routes_and_rules_follow_the_vips_and_go_before_them(tmp_path: Path) -> None:
    inst, edges, _ = make(tmp_path, ROUTES_CONF)
    inst.start()
    edges.loop.advance(3.5)
    kinds = [k for k, _ in edges.log]
    assert kinds.index("add") < kinds.index("add_routing")
    # no dev: the instance's interface (keepalived), except for a route type without a device
    routes = dict(edges.log)["add_routing"]
    assert routes == ([("198.51.100.0/24", "eth0"), ("203.0.113.0/24", "eth9"), ("198.18.0.0/15", None)], 1)
    other = packet.encode(packet.Advert(2, 51, 200, inst.expect.addresses, 100), PEER, GROUP)
    edges.log.clear()
    inst.on_packet(Received(other, PEER, GROUP, 255, 2))
    kinds = [k for k, _ in edges.log]
    assert kinds.index("remove_routing") < kinds.index("remove")


def test_reload_diffs_the_routes_of_a_master(tmp_path: Path) -> None:
    inst, edges, _ = make(tmp_path, ROUTES_CONF)
    inst.start()
    edges.loop.advance(3.5)
    edges.log.clear()
    inst.reconfigure(instance_conf(tmp_path, ROUTES_CONF.replace("198.51.100.0/24", "192.0.2.128/25")))
    assert ("remove_routing", ([("198.51.100.0/24", "eth0")], 0)) in edges.log
    assert ("add_routing", ([("192.0.2.128/25", "eth0")], 0)) in edges.log
    assert inst.state is fsm.State.MASTER


def test_dont_release_keeps_routes_too(tmp_path: Path) -> None:
    inst, edges, _ = make(tmp_path, ROUTES_CONF, dont_release=True)
    inst.start()
    edges.loop.advance(3.5)
    inst.shutdown()
    assert not any(k in ("remove", "remove_routing") for k, _ in edges.log)


def test_faults_from_several_sources_end_when_the_last_clears(tmp_path: Path) -> None:
    inst, edges, sock = make(tmp_path)
    inst.start()
    edges.loop.advance(3.5)
    assert inst.set_faults("trackers", ("track script chk",))
    assert inst.state is fsm.State.FAULT and decoded(sock).priority == 0
    assert inst.fault_reason == "track script chk" and inst.own_fault
    inst.set_fault("interface eth0 down")
    assert inst.fault_reason == "interface eth0 down"
    assert not inst.set_faults("trackers", ())
    assert inst.state is fsm.State.FAULT
    inst.set_faults("group", ("sync group G1: VI_2 in FAULT",))
    inst.set_fault(None)
    assert inst.state is fsm.State.FAULT and not inst.own_fault
    assert inst.set_faults("group", ())
    assert inst.state is fsm.State.BACKUP and inst.fault_reason is None


def test_tracker_weights_change_the_effective_priority_keeping_the_state(tmp_path: Path) -> None:
    inst, edges, sock = make(tmp_path)
    inst.start()
    edges.loop.advance(3.5)
    assert inst.set_priority_delta(-20)
    assert inst.state is fsm.State.MASTER and inst.params.priority == 130
    edges.loop.advance(1.0)
    assert decoded(sock).priority == 130  # the cached advert was rebuilt
    assert not inst.set_priority_delta(-20)
    assert inst.set_priority_delta(200) and inst.params.priority == 254  # clamped below the owner's 255
    notifies = [v for k, v in edges.log if k == "notify"]
    assert notifies[-1] == (("/bin/n",), ("INSTANCE", "VI_1", "MASTER", "150"))
    inst.set_faults("trackers", ("x",))
    assert [v for k, v in edges.log if k == "notify"][-1] == (("/bin/n",), ("INSTANCE", "VI_1", "FAULT", "254"))


def test_a_sync_group_member_asks_its_group_before_going_master(tmp_path: Path) -> None:
    inst, edges, _ = make(tmp_path)
    inst.set_in_sync_group(True)
    inst.start()
    edges.loop.advance(3.5)
    assert inst.state.value == "BACKUP" and ("want_master", "VI_1") in edges.log
    states = []
    for event in (fsm.SyncMaster(), fsm.SyncBackup()):
        inst.sync(event)
        states.append(inst.state)
    assert states == [fsm.State.MASTER, fsm.State.BACKUP]


def test_a_steady_backup_may_check_its_down_timer_early_but_takes_over_on_time(tmp_path: Path) -> None:
    """A BACKUP's down timer kept armed for an earlier deadline fires, finds the deadline moved
    and is armed again with fsm.down_early's window; a check in that window that finds nothing
    due arms it exact, so the takeover still comes at the last advert + Master_Down_Interval."""
    inst, edges, _ = make(tmp_path)
    inst.start()
    advert = packet.encode(packet.Advert(2, 51, 200, inst.expect.addresses, 100), PEER, GROUP)
    for _ in range(5):  # a master's adverts every second, then it dies
        last = edges.loop.now
        inst.on_packet(Received(advert, PEER, GROUP, 255, 2))
        edges.loop.advance(1.0)
    deadline = last + fsm.master_down_interval(2, 150, 1.0)
    assert inst.machine.down_deadline == deadline
    kept = inst._timer
    assert kept is not None and kept.when < deadline  # armed before the last adverts moved the deadline
    edges.loop.advance(kept.when - edges.loop.now)
    timer = inst._timer
    assert timer is not None and timer.when == deadline
    assert timer.early == fsm.down_early(inst.machine) == 0.25
    # a wakeup in the window runs it: nothing due, and the deadline did not move since: exact
    edges.loop.now = deadline - 0.1
    assert timer.callback is not None
    timer.callback()
    assert inst.state is fsm.State.BACKUP
    again = inst._timer
    assert again is not None and again.early == 0.0 and again.when == deadline
    edges.loop.advance(deadline - edges.loop.now - 1e-3)
    before = inst.state
    edges.loop.advance(2e-3)
    assert (before, inst.state) == (fsm.State.BACKUP, fsm.State.MASTER)


@dataclass
class TimedSocket(FakeSocket):
    """Records when each advert went out, on the loop's clock."""

    loop: FakeLoop = field(default_factory=FakeLoop)
    times: list[float] = field(default_factory=list)

    def send(self, payload: bytes, dst: Any, *, ttl: int | None = None) -> bool:
        self.times.append(self.loop.now)
        return super().send(payload, dst, ttl=ttl)


def test_masters_of_one_interval_move_their_adverts_together_once_never_late(tmp_path: Path) -> None:
    """Masters that took over at different moments (here 0.2 and 0.45 s apart) each send one
    advert early, onto the first one's time (vrrp_child.advertgrid), and from then on all of them
    in the same loop wakeup: no gap between two adverts of one instance above the interval or
    below half of it, and the early one replaces the one it was due, none is added."""
    edges = FakeEdges()
    ticks = Ticks(edges.loop)
    grid = AdvertGrid()
    conf = instance_conf(tmp_path)
    socks, insts = [], []
    for delay in (0.0, 0.2, 0.25):
        edges.loop.advance(delay)
        sock = TimedSocket(loop=edges.loop)
        inst = Instance(
            conf=conf,
            socket=sock,  # type: ignore[arg-type]
            local_ip=LOCAL,
            ifname="eth0",
            mac="02:00:00:00:00:11",
            edges=edges,  # type: ignore[arg-type]
            ticks=ticks,
            grid=grid,
        )
        inst.start()
        socks.append(sock)
        insts.append(inst)
    edges.loop.advance(10.0)
    assert all(i.state is fsm.State.MASTER for i in insts)
    first = [s.times[0] for s in socks]
    assert first[1] - first[0] == pytest.approx(0.2) and first[2] - first[0] == pytest.approx(0.45)
    for sock in socks:
        gaps = [b - a for a, b in itertools.pairwise(sock.times)]
        assert all(0.5 <= g <= 1.0 + 1e-9 for g in gaps)
        assert sum(g < 1.0 - 1e-9 for g in gaps) <= 1  # moved once
    # from the second advert on, the three go together, on the first one's cadence
    assert all(s.times[1:] == socks[0].times[1:] for s in socks)
    assert socks[0].times == pytest.approx([first[0] + k for k in range(len(socks[0].times))])


def test_a_lone_master_keeps_its_cadence_on_the_grid(tmp_path: Path) -> None:
    inst, edges, _ = make(tmp_path)
    timed = TimedSocket(loop=edges.loop)
    inst.socket = timed  # type: ignore[assignment]
    inst.start()
    edges.loop.advance(8.0)
    gaps = [b - a for a, b in itertools.pairwise(timed.times)]
    assert len(gaps) >= 3 and all(g == pytest.approx(1.0) for g in gaps)
