"""Sync groups on simulated time: the fsm's sync events (WantMaster, SyncMaster, SyncBackup), the
pure coordinator of vrrp_child.syncgroup, and a simulated wire of routers that each run a sync
group of two or three instances, one per LAN (keepalived 2.2.7's vrrp_sync.c semantics)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

from vrrp_child import fsm
from vrrp_child.fsm import (
    AdvertIn,
    Entered,
    Event,
    FaultOff,
    FaultOn,
    Log,
    Machine,
    Params,
    Reconfigure,
    SendAdvert,
    Start,
    State,
    SyncBackup,
    SyncMaster,
    Tick,
    WantMaster,
    initial,
    next_deadline,
    step,
)
from vrrp_child.syncgroup import GroupEntered, MemberView, SyncGroup, ToMember


def params(name: str = "VI_1", priority: int = 100, last: int = 10, **kw: object) -> Params:
    base: dict[str, object] = {
        "name": name,
        "version": 2,
        "priority": priority,
        "advert_int": 1.0,
        "local_ip": IPv4Address(f"192.0.2.{last}"),
        "in_sync_group": True,
    }
    base.update(kw)
    return Params(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the fsm's part


def test_member_down_timer_wants_master_and_rearms_instead_of_going_master() -> None:
    p = params()
    m, _ = step(initial(), p, Start(), 0.0)
    t = next_deadline(m)
    assert t is not None
    m, acts = step(m, p, Tick(), t)
    assert m.state is State.BACKUP and m.want_master
    assert [a for a in acts if not isinstance(a, Log)] == [WantMaster()]
    assert next_deadline(m) == t + fsm.master_down_interval(2, 100, 1.0)


def test_sync_master_takes_a_backup_member_to_master_advert_first() -> None:
    p = params()
    m, _ = step(initial(), p, Start(), 0.0)
    m, acts = step(m, p, SyncMaster(), 1.0)
    assert m.state is State.MASTER and not m.want_master
    effects = [a for a in acts if not isinstance(a, Log)]
    assert effects[0] == SendAdvert(100)
    assert Entered(State.MASTER, State.BACKUP) in effects


def test_sync_master_is_ignored_in_fault_and_master() -> None:
    p = params()
    m, _ = step(initial(), p, FaultOn("x"), 0.0)
    m2, acts = step(m, p, SyncMaster(), 1.0)
    assert m2 == m and acts == ()


def test_sync_backup_takes_a_master_to_backup_without_priority_0() -> None:
    p = params()
    m, _ = step(initial(), p, Start(), 0.0)
    m, _ = step(m, p, SyncMaster(), 1.0)
    m, acts = step(m, p, SyncBackup(), 2.0)
    assert m.state is State.BACKUP
    assert SendAdvert(0) not in acts
    assert fsm.LeaveMaster() in acts
    m2, acts = step(m, p, SyncBackup(), 2.5)
    assert m2 == m and acts == ()


def test_an_advert_we_defer_to_clears_want_master() -> None:
    p = params(priority=100)
    m, _ = step(initial(), p, Start(), 0.0)
    t = next_deadline(m)
    assert t is not None
    m, _ = step(m, p, Tick(), t)
    assert m.want_master
    m, _ = step(m, p, AdvertIn(IPv4Address("192.0.2.99"), 150, 1.0), t + 0.5)
    assert not m.want_master
    # a lower one is discarded (preemption): the wish stands
    m, _ = step(m, p, Tick(), t + 0.5 + fsm.master_down_interval(2, 100, 1.0))
    assert m.want_master
    m, _ = step(m, p, AdvertIn(IPv4Address("192.0.2.99"), 50, 1.0), t + 5)
    assert m.want_master


def test_a_member_not_in_a_group_still_goes_master_by_itself() -> None:
    p = params(in_sync_group=False)
    m, _ = step(initial(), p, Start(), 0.0)
    t = next_deadline(m)
    assert t is not None
    m, _ = step(m, p, Tick(), t)
    assert m.state is State.MASTER


def test_a_member_configured_master_starts_with_the_full_master_down_interval() -> None:
    # keepalived 2.2.7 measured in the lab: a non-owner sync group member with `state MASTER`
    # waits the whole Master_Down_Interval (3.43 s at priority 150, advert_int 1), not
    # vrrp_init_state's "one advert interval plus the minimum skew" (1.004 s).
    for version, advert_int in ((2, 1.0), (3, 1.0), (3, 0.1)):
        for start_master in (True, False):
            p = params(priority=150, version=version, advert_int=advert_int, start_master=start_master)
            m, _ = step(initial(), p, Start(), 10.0)
            assert m.state is State.BACKUP
            assert next_deadline(m) == 10.0 + fsm.master_down_interval(version, 150, advert_int)


def test_an_owner_member_configured_master_still_goes_master_at_once() -> None:
    p = params(priority=255, start_master=True)
    m, acts = step(initial(), p, Start(), 0.0)
    assert m.state is State.MASTER and SendAdvert(255) in acts


# ---------------------------------------------------------------- the coordinator alone


def views(**states: MemberView) -> dict[str, MemberView]:
    return dict(states)


B = MemberView(State.BACKUP)
BW = MemberView(State.BACKUP, want_master=True)
M = MemberView(State.MASTER)
F = MemberView(State.FAULT, faulted=True)


def test_coordinator_waits_until_every_member_wants_master() -> None:
    g = SyncGroup("G1", ("A", "B", "C"))
    assert g.want_master("A", views(A=BW, B=B, C=BW)) == []
    acts = g.want_master("B", views(A=BW, B=BW, C=BW))
    assert acts[0] == Log("VRRP_Group(G1) Syncing instances to MASTER state")
    assert acts[1:] == [ToMember("A", SyncMaster()), ToMember("B", SyncMaster()), ToMember("C", SyncMaster())]


def test_coordinator_counts_masters_as_willing_and_faults_as_not() -> None:
    g = SyncGroup("G1", ("A", "B"))
    assert g.want_master("A", views(A=BW, B=M)) == [
        Log("VRRP_Group(G1) Syncing instances to MASTER state"),
        ToMember("A", SyncMaster()),
    ]
    assert g.want_master("A", views(A=BW, B=F)) == []
    assert g.want_master("A", views(A=MemberView(State.BACKUP, True, faulted=True), B=M)) == []


def test_coordinator_one_member_giving_way_takes_the_masters_to_backup() -> None:
    g = SyncGroup("G1", ("A", "B", "C"))
    g.update(views(A=M, B=M, C=M))
    acts = g.entered("A", State.BACKUP, State.MASTER, views(A=B, B=M, C=M))
    assert acts == [
        Log("VRRP_Group(G1) Syncing instances to BACKUP state"),
        ToMember("B", SyncBackup()),
        ToMember("C", SyncBackup()),
    ]
    assert g.state is State.MASTER  # members in between: the group keeps its state
    assert g.entered("B", State.BACKUP, State.MASTER, views(A=B, B=B, C=M))[-1:] == [ToMember("C", SyncBackup())]
    assert g.entered("C", State.BACKUP, State.MASTER, views(A=B, B=B, C=B)) == [
        GroupEntered(State.BACKUP, State.MASTER)
    ]


def test_coordinator_group_state_and_fault_reasons() -> None:
    g = SyncGroup("G1", ("A", "B"))
    assert g.update(views(A=B, B=B)) == [GroupEntered(State.BACKUP, State.INIT)]
    assert g.fault_of("B", views(A=F, B=B)) == "sync group G1: A in FAULT"
    assert g.fault_of("A", views(A=F, B=B)) is None
    assert g.update(views(A=F, B=MemberView(State.FAULT))) == [
        Log("VRRP_Group(G1) Syncing instances to FAULT state"),
        GroupEntered(State.FAULT, State.BACKUP),
    ]
    assert g.update(views(A=B, B=MemberView(State.FAULT))) == []  # still one in FAULT
    assert g.update(views(A=B, B=B)) == [
        Log("VRRP_Group(G1) Syncing instances to BACKUP state"),
        GroupEntered(State.BACKUP, State.FAULT),
    ]


# ---------------------------------------------------------------- a simulated wire of sync groups


@dataclass
class Member:
    p: Params
    m: Machine = field(default_factory=initial)
    tick_at: float | None = None
    own_fault: str | None = None


@dataclass
class Router:
    members: dict[str, Member]
    group: SyncGroup
    alive: bool = False
    group_states: list[State] = field(default_factory=list)


@dataclass(order=True)
class _Ev:
    at: float
    seq: int
    router: int = field(compare=False)
    name: str = field(compare=False)  # the member (its LAN carries the same name)
    event: Event | str = field(compare=False)


class SyncWire:
    """Routers with one sync group each; member NAME of every router sits on LAN NAME. The
    coordinator's events are delivered at once, as the workload does within a loop pass."""

    def __init__(self, routers: list[dict[str, Params]], delay: float = 0.001) -> None:
        self.routers = [
            Router({n: Member(p) for n, p in members.items()}, SyncGroup("G1", tuple(members))) for members in routers
        ]
        self.delay = delay
        self.queue: list[_Ev] = []
        self.seq = 0
        self.now = 0.0

    def at(self, t: float, r: int, name: str, event: Event | str) -> None:
        self.seq += 1
        heapq.heappush(self.queue, _Ev(t, self.seq, r, name, event))

    def boot(self, t: float, r: int) -> None:
        self.at(t, r, "", "boot")

    def states(self, r: int) -> dict[str, State]:
        return {n: mem.m.state for n, mem in self.routers[r].members.items()}

    def masters(self, name: str) -> list[int]:
        return [i for i, r in enumerate(self.routers) if r.alive and r.members[name].m.state is State.MASTER]

    def run(self, until: float) -> None:
        while self.queue and self.queue[0].at <= until:
            ev = heapq.heappop(self.queue)
            self.now = ev.at
            router = self.routers[ev.router]
            if ev.event == "boot":
                router.alive = True
                for name in router.members:
                    self._step(ev.router, name, Start())
            elif ev.event == "crash":
                router.alive = False
            elif router.alive and not isinstance(ev.event, str):
                self._step(ev.router, ev.name, ev.event)
        self.now = until

    def view(self, r: int) -> dict[str, MemberView]:
        return {
            n: MemberView(mem.m.state, mem.m.want_master, mem.own_fault is not None)
            for n, mem in self.routers[r].members.items()
        }

    def set_fault(self, t: float, r: int, name: str, reason: str | None) -> None:
        self.at(t, r, name, FaultOn(reason) if reason else FaultOff())

    def _step(self, r: int, name: str, event: Event) -> None:
        router = self.routers[r]
        mem = router.members[name]
        if isinstance(event, (FaultOn, FaultOff)):
            mem.own_fault = event.reason if isinstance(event, FaultOn) else None
            self._apply_faults(r)
            return
        if isinstance(event, Reconfigure):
            mem.m, acts = step(mem.m, mem.p, event, self.now)
            mem.p = event.params
        else:
            mem.m, acts = step(mem.m, mem.p, event, self.now)
        follow: list[tuple[str, Event]] = []
        for a in acts:
            if isinstance(a, SendAdvert):
                adv = AdvertIn(mem.p.local_ip, a.priority, mem.p.advert_int)
                for j in range(len(self.routers)):
                    if j != r:
                        self.at(self.now + self.delay, j, name, adv)
            elif isinstance(a, WantMaster):
                follow += self._group(r, router.group.want_master(name, self.view(r)))
            elif isinstance(a, Entered):
                follow += self._group(r, router.group.entered(name, a.state, a.old, self.view(r)))
        dl = next_deadline(mem.m)
        if dl is not None and dl != mem.tick_at:
            mem.tick_at = dl
            self.at(dl, r, name, Tick())
        for target, ev in follow:
            self._step(r, target, ev)

    def _group(self, r: int, acts: Sequence[object]) -> list[tuple[str, Event]]:
        out: list[tuple[str, Event]] = []
        for a in acts:
            if isinstance(a, ToMember):
                out.append((a.name, a.event))
            elif isinstance(a, GroupEntered):
                self.routers[r].group_states.append(a.state)
        return out

    def _apply_faults(self, r: int) -> None:
        """What the workload does: own faults, plus the group's fault on the others."""
        router = self.routers[r]
        for name, mem in router.members.items():
            reason = mem.own_fault or router.group.fault_of(name, self.view(r))
            ev: Event = FaultOn(reason) if reason else FaultOff()
            if (mem.m.state is State.FAULT) != (reason is not None) or mem.m.state is State.INIT:
                self._step_raw(r, name, ev)

    def _step_raw(self, r: int, name: str, event: Event) -> None:
        # FaultOn/FaultOff to the fsm itself (the _step above treats them as the router's input)
        mem = self.routers[r].members[name]
        mem.m, acts = step(mem.m, mem.p, event, self.now)
        follow: list[tuple[str, Event]] = []
        for a in acts:
            if isinstance(a, SendAdvert):
                adv = AdvertIn(mem.p.local_ip, a.priority, mem.p.advert_int)
                for j in range(len(self.routers)):
                    if j != r:
                        self.at(self.now + self.delay, j, name, adv)
            elif isinstance(a, Entered):
                follow += self._group(r, self.routers[r].group.entered(name, a.state, a.old, self.view(r)))
        dl = next_deadline(mem.m)
        if dl is not None and dl != mem.tick_at:
            mem.tick_at = dl
            self.at(dl, r, name, Tick())
        for target, ev in follow:
            self._step(r, target, ev)


def pair(names: tuple[str, ...] = ("X", "Y"), a_prio: int = 100, b_prio: int = 110) -> SyncWire:
    a = {n: params(n, a_prio, 1) for n in names}
    b = {n: params(n, b_prio, 2) for n in names}
    return SyncWire([a, b])


def test_wire_one_router_alone_takes_its_whole_group_master() -> None:
    w = pair()
    w.boot(0.0, 0)
    w.run(3.0)
    assert w.states(0) == {"X": State.BACKUP, "Y": State.BACKUP}
    w.run(4.0)  # Master_Down_Interval 3.609 s: both want, the group goes
    assert w.states(0) == {"X": State.MASTER, "Y": State.MASTER}
    assert w.routers[0].group_states == [State.BACKUP, State.MASTER]


def test_wire_a_better_router_preempts_the_whole_group() -> None:
    w = pair()
    w.boot(0.0, 0)
    w.run(5.0)
    w.boot(5.0, 1)
    w.run(10.0)
    assert w.masters("X") == [1] and w.masters("Y") == [1]
    assert w.states(0) == {"X": State.BACKUP, "Y": State.BACKUP}
    assert w.routers[0].group_states[-1] is State.BACKUP
    assert w.routers[1].group_states[-1] is State.MASTER


def test_wire_a_fault_in_one_member_moves_the_whole_group_and_recovery_preempts_back() -> None:
    w = pair(a_prio=110, b_prio=100)  # router 0 is the preferred master
    w.boot(0.0, 0)
    w.boot(0.0, 1)
    w.run(6.0)
    assert w.masters("X") == [0] and w.masters("Y") == [0]
    w.set_fault(6.0, 0, "X", "interface down")
    w.run(6.01)
    assert w.states(0) == {"X": State.FAULT, "Y": State.FAULT}
    assert w.routers[0].group_states[-1] is State.FAULT
    # the priority 0 adverts of both masters: router 1 takes both after Skew_Time
    w.run(7.0)
    assert w.masters("X") == [1] and w.masters("Y") == [1]
    w.set_fault(10.0, 0, "X", None)
    w.run(10.01)
    assert w.states(0) == {"X": State.BACKUP, "Y": State.BACKUP}
    w.run(15.0)  # higher priority: both members discard router 1's adverts and preempt together
    assert w.masters("X") == [0] and w.masters("Y") == [0]
    assert w.states(1) == {"X": State.BACKUP, "Y": State.BACKUP}


def test_wire_three_members_a_lower_priority_in_one_alone_moves_nothing() -> None:
    # keepalived prefers BACKUP to thrashing: router 1's X wants MASTER, but its Y and Z still
    # hear a better master, so its group cannot go (this is why members' weights are ignored
    # unless sync_group_tracking_weight, and group trackers apply to every member).
    names = ("X", "Y", "Z")
    w = pair(names, a_prio=110, b_prio=100)
    w.boot(0.0, 0)
    w.boot(0.0, 1)
    w.run(6.0)
    assert all(w.masters(n) == [0] for n in names)
    w.at(6.0, 0, "X", Reconfigure(params("X", 90, 1)))
    w.run(20.0)
    assert all(w.masters(n) == [0] for n in names), {n: w.masters(n) for n in names}
    assert w.routers[1].members["X"].m.want_master


def test_wire_three_members_a_group_weight_moves_all_and_back() -> None:
    names = ("X", "Y", "Z")
    w = pair(names, a_prio=110, b_prio=100)
    w.boot(0.0, 0)
    w.boot(0.0, 1)
    w.run(6.0)
    for n in names:  # a group tracker's weight -20 applies to every member
        w.at(6.0, 0, n, Reconfigure(params(n, 90, 1)))
    w.run(12.0)
    assert all(w.masters(n) == [1] for n in names), {n: w.masters(n) for n in names}
    assert w.routers[0].group_states[-1] is State.BACKUP
    for n in names:
        w.at(12.0, 0, n, Reconfigure(params(n, 110, 1)))
    w.run(18.0)
    assert all(w.masters(n) == [0] for n in names), {n: w.masters(n) for n in names}
    assert w.routers[1].group_states[-1] is State.BACKUP


def test_wire_the_group_never_splits_after_it_settles() -> None:
    names = ("X", "Y")
    w = pair(names, a_prio=110, b_prio=100)
    w.boot(0.0, 0)
    w.boot(0.5, 1)
    for t in range(1, 40):
        w.run(float(t))
        if t in (10, 20, 30):
            w.set_fault(float(t), 0, "Y", "track" if t != 20 else None)
        # never both routers master of one member for long; after settling, one router has all
        if t in (9, 19, 29, 39):
            holders = {n: w.masters(n) for n in names}
            assert len({tuple(h) for h in holders.values()}) == 1, (t, holders)
            assert all(len(h) == 1 for h in holders.values()), (t, holders)


def test_group_state_with_replace_keeps_frozen_views() -> None:
    v = MemberView(State.BACKUP)
    assert replace(v, want_master=True).want_master


def test_coordinator_syncs_to_master_once_per_election() -> None:
    g = SyncGroup("G1", ("A", "B"))
    g.update(views(A=B, B=B))
    first = g.want_master("A", views(A=BW, B=BW))
    assert len(first) == 3
    # A's Entered(MASTER) while B is still on its way: no second "Syncing" line
    assert g.entered("A", State.MASTER, State.BACKUP, views(A=M, B=BW)) == []
    assert g.entered("B", State.MASTER, State.BACKUP, views(A=M, B=M)) == [GroupEntered(State.MASTER, State.BACKUP)]
    g.entered("A", State.BACKUP, State.MASTER, views(A=B, B=M))
    g.entered("B", State.BACKUP, State.MASTER, views(A=B, B=B))
    assert len(g.want_master("A", views(A=BW, B=BW))) == 3  # a later election syncs again


def test_a_group_resumed_as_master_enters_nothing_when_its_members_resume() -> None:
    # A respawned child sets the group MASTER (the parent's "group:G1" report) before its
    # members resume as MASTER one by one: no GroupEntered, so no group notify runs again.
    g = SyncGroup("G1", ("VI_1", "VI_2"))
    g.state = State.MASTER
    init = MemberView(State.INIT)
    assert g.entered("VI_1", State.MASTER, State.INIT, views(VI_1=M, VI_2=init)) == []
    assert g.entered("VI_2", State.MASTER, State.INIT, views(VI_1=M, VI_2=M)) == []
    assert g.state is State.MASTER
    # a group that was not resumed goes MASTER once, with its notifies
    g2 = SyncGroup("G1", ("VI_1", "VI_2"))
    g2.entered("VI_1", State.MASTER, State.INIT, views(VI_1=M, VI_2=init))
    acts = g2.entered("VI_2", State.MASTER, State.INIT, views(VI_1=M, VI_2=M))
    assert acts == [GroupEntered(State.MASTER, State.INIT)]
