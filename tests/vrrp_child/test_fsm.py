"""The VRRP state machine on simulated time: RFC 5798 section 6.4 row by row, the timer numbers
of vrrp-wire.md, keepalived 2.2.7's deviations, and a simulated wire of several routers."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vrrp_child.fsm as fsm_mod
from tests.conf.util import clean, parse
from vrrp_child.fsm import (
    Action,
    AdvertIn,
    BecomeMaster,
    Entered,
    Event,
    FaultOff,
    FaultOn,
    IPAddress,
    LeaveMaster,
    Log,
    Machine,
    MasterRxLowerPri,
    Params,
    Reconfigure,
    SendAdvert,
    Shutdown,
    Start,
    State,
    Tick,
    initial,
    master_down_interval,
    next_deadline,
    skew_time,
    step,
)

LOCAL = IPv4Address("192.0.2.10")
LOWER_IP = IPv4Address("192.0.2.9")
HIGHER_IP = IPv4Address("192.0.2.11")


def params(**kw: object) -> Params:
    base: dict[str, object] = {
        "name": "VI_1",
        "version": 2,
        "priority": 100,
        "advert_int": 1.0,
        "local_ip": LOCAL,
    }
    base.update(kw)
    return Params(**base)  # type: ignore[arg-type]


def logs(acts: tuple[Action, ...], *, detail: bool | None = None) -> list[str]:
    return [a.text for a in acts if isinstance(a, Log) and (detail is None or a.detail == detail)]


def effects(acts: tuple[Action, ...]) -> list[Action]:
    """The actions other than log lines."""
    return [a for a in acts if not isinstance(a, Log)]


def backup(p: Params, now: float = 0.0) -> Machine:
    m, _ = step(initial(), p, Start(), now)
    assert m.state is State.BACKUP
    return m


def master(p: Params, now: float = 0.0) -> tuple[Machine, float]:
    """A machine that went MASTER by its down timer; returns it and the time it did."""
    m = backup(p, now)
    t = next_deadline(m)
    assert t is not None
    m, _ = step(m, p, Tick(), t)
    assert m.state is State.MASTER
    return m, t


def advert(src: IPAddress, priority: int, adver_int: float = 1.0) -> AdvertIn:
    return AdvertIn(src=src, priority=priority, adver_int=adver_int)


# ---------------------------------------------------------------- timers (RFC 5798 section 6.1)


def test_v2_prio_100_skew_and_master_down_interval() -> None:
    # vrrp-wire.md: prio 100, 1 s -> skew 0.609 s, MDI 3.609 s.
    assert skew_time(2, 100, 1.0) == 0.609375
    assert master_down_interval(2, 100, 1.0) == 3.609375


def test_v2_skew_does_not_scale_with_the_interval() -> None:
    # RFC 3768 section 6.1: Skew_Time = (256 - Priority) / 256 seconds, whatever the interval.
    assert skew_time(2, 100, 2.0) == 0.609375
    assert master_down_interval(2, 100, 2.0) == 6.609375


def test_v3_10cs_prio_100() -> None:
    # vrrp-wire.md: prio 100 at 10 cs -> about 0.36 s; keepalived's whole microseconds.
    assert skew_time(3, 100, 0.1) == 0.060937
    assert master_down_interval(3, 100, 0.1) == 0.360937


def test_v3_1cs_prio_100_is_about_36ms() -> None:
    assert master_down_interval(3, 100, 0.01) == pytest.approx(0.036, abs=0.0002)


def test_v3_prio_200_100cs_uses_keepalived_microseconds_not_frr_centiseconds() -> None:
    # FRR truncates to 21 cs (210 ms); keepalived computes 56 * 100 * 625 / 16 us = 218.75 ms.
    assert skew_time(3, 200, 1.0) == 0.21875
    assert master_down_interval(3, 200, 1.0) == 3.21875


def test_down_timer_adverts_replaces_the_3() -> None:
    assert master_down_interval(2, 100, 1.0, 5) == 5.609375
    m = backup(params(down_timer_adverts=5))
    assert m.down_deadline == 5.609375


def test_owner_skew_is_one_256th_in_whole_microseconds() -> None:
    # keepalived: 1 * 1000000 / 256 in integer microseconds
    assert skew_time(2, 255, 1.0) == 0.003906


# ---------------------------------------------------------------- RFC 5798 section 6.4.1 Initialize


def test_init_owner_sends_advert_and_goes_master_at_once() -> None:
    p = params(priority=255, start_master=True)
    m, acts = step(initial(), p, Start(), 10.0)
    assert m.state is State.MASTER
    assert effects(acts) == [SendAdvert(255), BecomeMaster(False), Entered(State.MASTER, State.INIT)]
    assert logs(acts) == ["(VI_1) Entering MASTER STATE"]
    assert m.advert_deadline == 11.0 and next_deadline(m) == 11.0
    assert m.down_deadline is None


def test_init_non_owner_goes_backup_with_master_down_interval() -> None:
    p = params()
    m, acts = step(initial(), p, Start(), 10.0)
    assert m.state is State.BACKUP
    assert m.master_adver_int == 1.0
    assert m.down_deadline == 10.0 + 3.609375 == next_deadline(m)
    assert effects(acts) == [Entered(State.BACKUP, State.INIT)]
    assert logs(acts) == ["(VI_1) Entering BACKUP STATE (init)"]


def test_init_state_master_non_owner_waits_the_full_master_down_interval() -> None:
    # keepalived 2.2.7 measured in a namespace: `state MASTER` priority 110 took 3.55 s to
    # become MASTER, the same as `state BACKUP` (3 s + 146/256 s in whole microseconds).
    m = backup(params(priority=110, start_master=True), 0.0)
    assert m.down_deadline == master_down_interval(2, 110, 1.0) == 3.570312


def test_init_owner_configured_backup_runs_the_down_timer() -> None:
    m = backup(params(priority=255, start_master=False), 0.0)
    assert m.down_deadline == 3.003906


def test_resume_master_keeps_vips_and_skips_the_election() -> None:
    p = params()
    m, acts = step(initial(), p, Start(resume_master=True), 5.0)
    assert m.state is State.MASTER
    assert effects(acts) == [SendAdvert(100), BecomeMaster(True), Entered(State.MASTER, State.INIT, True)]
    assert m.advert_deadline == 6.0


def test_start_is_ignored_once_running() -> None:
    p = params()
    m = backup(p)
    m2, acts = step(m, p, Start(resume_master=True), 1.0)
    assert m2 == m and acts == ()


# ---------------------------------------------------------------- RFC 5798 section 6.4.2 Backup


def test_backup_shutdown_cancels_the_timer_and_stops_silently() -> None:
    p = params()
    m, acts = step(backup(p), p, Shutdown(), 1.0)
    assert m.state is State.STOP
    assert effects(acts) == [Entered(State.STOP, State.BACKUP)]
    assert next_deadline(m) is None


def test_backup_master_down_timer_fires_advert_first_then_master() -> None:
    p = params()
    m = backup(p)
    m, acts = step(m, p, Tick(), 3.609375)
    assert m.state is State.MASTER
    # keepalived sends the advert before adding the VIPs, so the old master lets go first.
    assert list(acts) == [
        Log("(VI_1) Receive advertisement timeout", True),
        SendAdvert(100),
        Log("(VI_1) Entering MASTER STATE"),
        BecomeMaster(False),
        Entered(State.MASTER, State.BACKUP),
    ]
    assert m.advert_deadline == 3.609375 + 1.0


def test_backup_tick_before_the_deadline_does_nothing() -> None:
    p = params()
    m = backup(p)
    m2, acts = step(m, p, Tick(), 3.6)
    assert m2 == m and acts == ()


def test_backup_priority_0_sets_the_timer_to_skew_time() -> None:
    p = params()
    m = backup(p)
    m, acts = step(m, p, advert(HIGHER_IP, 0), 2.0)
    assert m.state is State.BACKUP
    assert m.down_deadline == 2.0 + 0.609375
    assert logs(acts, detail=True) == ["(VI_1) Backup received priority 0 advertisement"]
    assert effects(acts) == []


def test_backup_no_preempt_accepts_a_lower_priority_master() -> None:
    p = params(preempt=False)
    m = backup(p)
    m, acts = step(m, p, advert(LOWER_IP, 50), 2.0)
    assert m.down_deadline == 2.0 + 3.609375
    assert m.master_ip == LOWER_IP and m.master_priority == 50
    assert acts == ()


@pytest.mark.parametrize("prio", [100, 101, 254])
def test_backup_priority_not_lower_resets_the_timer(prio: int) -> None:
    p = params()
    m = backup(p)
    m, acts = step(m, p, advert(LOWER_IP, prio), 2.0)
    assert m.state is State.BACKUP
    assert m.down_deadline == 2.0 + 3.609375
    assert m.master_ip == LOWER_IP and m.master_priority == prio
    assert acts == ()


def test_backup_v3_adopts_the_masters_interval() -> None:
    p = params(version=3, advert_int=1.0)
    m = backup(p)
    m, acts = step(m, p, advert(HIGHER_IP, 150, adver_int=0.1), 2.0)
    assert m.master_adver_int == 0.1
    assert m.down_deadline == pytest.approx(2.0 + 0.360937)
    assert logs(acts, detail=True) == ["(VI_1) advertisement interval updated from 1000ms to 100ms by master"]


def test_backup_v2_keeps_its_interval() -> None:
    p = params(version=2)
    m = backup(p)
    m, _ = step(m, p, advert(HIGHER_IP, 150, adver_int=2.0), 2.0)
    assert m.master_adver_int == 1.0
    assert m.down_deadline == 2.0 + 3.609375


def test_backup_preempt_discards_a_lower_priority_advert() -> None:
    p = params()
    m = backup(p)
    m2, acts = step(m, p, advert(IPv4Address("10.0.0.12"), 98), 2.0)
    assert m2.down_deadline == m.down_deadline  # the timer keeps running: preemption
    assert m2.state is State.BACKUP
    assert logs(acts, detail=False) == ["(VI_1) received lower priority (98) advert from 10.0.0.12 - discarding"]
    assert effects(acts) == []


def test_backup_ignores_adverts_in_other_states() -> None:
    p = params()
    for m in (initial(), replace(initial(), state=State.FAULT), replace(initial(), state=State.STOP)):
        m2, acts = step(m, p, advert(HIGHER_IP, 200), 1.0)
        assert m2 == m and acts == ()


# ---------------------------------------------------------------- RFC 5798 section 6.4.3 Master


def test_master_shutdown_sends_priority_0_and_leaves() -> None:
    p = params()
    m, _ = master(p)
    m, acts = step(m, p, Shutdown(), 10.0)
    assert m.state is State.STOP
    assert effects(acts) == [SendAdvert(0), LeaveMaster(), Entered(State.STOP, State.MASTER)]
    assert logs(acts) == ["(VI_1) sent 0 priority"]
    assert next_deadline(m) is None


def test_master_adver_timer_fires_and_rearms() -> None:
    p = params()
    m, t = master(p)
    m, acts = step(m, p, Tick(), t + 1.0)
    assert list(acts) == [SendAdvert(100)]
    assert m.advert_deadline == t + 2.0


def test_master_late_tick_does_not_drift() -> None:
    p = params()
    m, t = master(p)
    m, _ = step(m, p, Tick(), t + 1.3)
    assert m.advert_deadline == t + 2.0


def test_master_after_a_stall_schedules_from_now() -> None:
    p = params()
    m, t = master(p)
    m, acts = step(m, p, Tick(), t + 5.5)
    assert list(acts) == [SendAdvert(100)]  # one advert, not a burst of missed ones
    assert m.advert_deadline == t + 6.5


def test_master_tick_a_hair_early_counts() -> None:
    p = params()
    m, t = master(p)
    _, acts = step(m, p, Tick(), t + 1.0 - 1e-9)
    assert list(acts) == [SendAdvert(100)]


def test_master_priority_0_answers_at_once_and_resets_adver_timer() -> None:
    p = params()
    m, t = master(p)
    m, acts = step(m, p, advert(HIGHER_IP, 0), t + 0.4)
    assert m.state is State.MASTER
    assert effects(acts) == [SendAdvert(100)]
    assert logs(acts, detail=True) == ["(VI_1) Master received priority 0 message"]
    assert m.advert_deadline == t + 1.4


def test_master_higher_priority_goes_backup() -> None:
    p = params()
    m, t = master(p)
    m, acts = step(m, p, advert(IPv4Address("10.0.0.2"), 110), t + 0.5)
    assert m.state is State.BACKUP
    assert list(acts) == [
        Log("(VI_1) Master received advert from 10.0.0.2 with higher priority 110, ours 100"),
        Log("(VI_1) Entering BACKUP STATE"),
        LeaveMaster(),
        Entered(State.BACKUP, State.MASTER),
    ]
    assert m.down_deadline == t + 0.5 + 3.609375
    assert m.advert_deadline is None
    assert m.master_ip == IPv4Address("10.0.0.2") and m.master_priority == 110


def test_master_v3_goes_backup_with_the_new_masters_interval() -> None:
    p = params(version=3, advert_int=1.0)
    m, t = master(p)
    m, acts = step(m, p, advert(HIGHER_IP, 150, adver_int=0.5), t + 0.2)
    assert m.state is State.BACKUP
    assert m.master_adver_int == 0.5
    assert m.down_deadline == pytest.approx(t + 0.2 + master_down_interval(3, 100, 0.5))
    assert "(VI_1) advertisement interval updated from 1000ms to 500ms by master" in logs(acts, detail=True)


def test_master_equal_priority_higher_address_goes_backup() -> None:
    p = params()
    m, t = master(p)
    m, acts = step(m, p, advert(HIGHER_IP, 100), t + 0.5)
    assert m.state is State.BACKUP
    assert logs(acts)[0] == (
        "(VI_1) Master received advert from 192.0.2.11 with same priority 100 but higher IP address than ours"
    )


def test_master_equal_priority_lower_address_answers_and_stays() -> None:
    p = params()
    m, t = master(p)
    m, acts = step(m, p, advert(LOWER_IP, 100), t + 0.5)
    assert m.state is State.MASTER
    assert effects(acts) == [SendAdvert(100), MasterRxLowerPri(LOWER_IP, 100)]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        # unsigned, numeric, network byte order: not a string compare ("10.0.0.200" < "10.0.0.3")
        ("10.0.0.3", "10.0.0.200"),
        # not a signed compare: 128.x is above 127.x
        ("127.255.255.255", "128.0.0.1"),
        ("fe80::2", "fe80::1:0"),
        ("fe80::ff", "fe81::1"),
    ],
)
def test_tie_break_compares_addresses_as_unsigned_integers(ours: str, theirs: str) -> None:
    p = params(local_ip=ip_address(ours), version=3)
    m, t = master(p)
    m2, _ = step(m, p, advert(ip_address(theirs), 100), t + 0.5)
    assert m2.state is State.BACKUP
    p_rev = params(local_ip=ip_address(theirs), version=3)
    m3, t3 = master(p_rev)
    m4, _ = step(m3, p_rev, advert(ip_address(ours), 100), t3 + 0.5)
    assert m4.state is State.MASTER


def test_master_lower_priority_answers_at_once_rfc9568() -> None:
    p = params()
    m, t = master(p)
    m2, acts = step(m, p, advert(IPv4Address("10.0.0.12"), 98), t + 0.5)
    assert m2.state is State.MASTER
    assert effects(acts) == [SendAdvert(100), MasterRxLowerPri(IPv4Address("10.0.0.12"), 98)]
    forcing = "(VI_1) Received advert from 10.0.0.12 with lower priority 98, ours 100, forcing new election"
    assert logs(acts) == [forcing]
    assert m2.advert_deadline == m.advert_deadline


def test_master_lower_priority_with_lower_prio_no_advert_stays_quiet() -> None:
    p = params(lower_prio_no_advert=True)
    m, t = master(p)
    m2, acts = step(m, p, advert(LOWER_IP, 98), t + 0.5)
    assert m2.state is State.MASTER
    assert effects(acts) == [MasterRxLowerPri(LOWER_IP, 98)]
    assert logs(acts) == ["(VI_1) Received advert from 192.0.2.9 with lower priority 98, ours 100"]


def test_master_higher_prio_send_advert_sends_before_giving_way() -> None:
    p = params(higher_prio_send_advert=True)
    m, t = master(p)
    m, acts = step(m, p, advert(HIGHER_IP, 200), t + 0.5)
    assert m.state is State.BACKUP
    assert effects(acts) == [SendAdvert(100), LeaveMaster(), Entered(State.BACKUP, State.MASTER)]


def test_master_equal_priority_from_our_own_address_is_only_a_warning() -> None:
    p = params()
    m, t = master(p)
    m2, acts = step(m, p, advert(LOCAL, 100), t + 0.5)
    assert m2 == m
    assert logs(acts) == ["(VI_1) WARNING - equal priority advert received from remote host with our IP address."]


def test_two_owners_demote_the_local_one_to_254() -> None:
    p = params(priority=255, start_master=True)
    m, _ = step(initial(), p, Start(), 0.0)
    m, acts = step(m, p, advert(HIGHER_IP, 255), 0.5)
    assert logs(acts)[0].startswith("(VI_1) CONFIGURATION ERROR: local instance and a remote instance are both")
    assert m.owner_conflict and m.state is State.BACKUP
    assert "(VI_1) Master received advert from 192.0.2.11 with higher priority 255, ours 254" in logs(acts)
    # now a 254 backup: its down timer has the 254 skew
    assert m.down_deadline == 0.5 + master_down_interval(2, 254, 1.0)
    # a reload re-reads priority 255
    m, _ = step(m, p, Reconfigure(p), 1.0)
    assert not m.owner_conflict


# ---------------------------------------------------------------- preemption


def test_higher_priority_backup_preempts_by_letting_its_timer_expire() -> None:
    p = params(priority=150)
    m = backup(p)
    t = 0.0
    while m.state is State.BACKUP:
        t += 1.0
        m, acts = step(m, p, advert(LOWER_IP, 100), t)
        assert "discarding" in logs(acts)[0]
        dl = next_deadline(m)
        assert dl is not None
        if dl <= t + 1.0:
            m, acts = step(m, p, Tick(), dl)
    assert m.state is State.MASTER
    assert t == 3.0  # takeover at Master_Down_Interval after start, whatever the lower master says


def test_preempt_delay_accepts_a_lower_master_until_the_delay_has_passed() -> None:
    p = params(priority=150, preempt_delay=5.0)
    m = backup(p)
    m, acts = step(m, p, advert(LOWER_IP, 100), 1.0)
    assert logs(acts, detail=True) == ["(VI_1) start preempt delay (5.000000)"]
    assert m.preempt_deadline == 6.0 and m.down_deadline == 1.0 + master_down_interval(2, 150, 1.0)
    for t in (2.0, 3.0, 4.0, 5.0):
        m, acts = step(m, p, advert(LOWER_IP, 100), t)
        assert acts == () and m.down_deadline == t + master_down_interval(2, 150, 1.0)
    last_accepted = m.down_deadline
    assert last_accepted is not None
    m, acts = step(m, p, advert(LOWER_IP, 100), 6.0)
    assert "discarding" in logs(acts)[0]
    assert m.down_deadline == last_accepted
    m, acts = step(m, p, Tick(), last_accepted)
    assert m.state is State.MASTER


def test_preempt_delay_stops_when_a_better_master_is_heard() -> None:
    p = params(priority=150, preempt_delay=5.0)
    m = backup(p)
    m, _ = step(m, p, advert(LOWER_IP, 100), 1.0)
    m, acts = step(m, p, advert(HIGHER_IP, 200), 2.0)
    assert m.preempt_deadline is None
    assert logs(acts, detail=True) == ["(VI_1) stop preempt delay"]
    # a lower master seen later starts a fresh delay
    m, _ = step(m, p, advert(LOWER_IP, 100), 3.0)
    assert m.preempt_deadline == 8.0


def test_nopreempt_backup_never_takes_over_from_a_live_lower_master() -> None:
    p = params(priority=200, preempt=False)
    m = backup(p)
    for t in range(1, 30):
        m, _ = step(m, p, advert(LOWER_IP, 100), float(t))
        dl = next_deadline(m)
        assert dl is not None and dl > t + 1
        m, _ = step(m, p, Tick(), t + 0.999)
        assert m.state is State.BACKUP


# ---------------------------------------------------------------- FAULT


def test_fault_from_backup() -> None:
    p = params()
    m, acts = step(backup(p), p, FaultOn("interface eth0 down"), 1.0)
    assert m.state is State.FAULT and m.fault_reason == "interface eth0 down"
    assert list(acts) == [Log("(VI_1) Entering FAULT STATE"), Entered(State.FAULT, State.BACKUP)]
    assert next_deadline(m) is None


def test_fault_from_master_sends_priority_0_and_leaves() -> None:
    p = params()
    m, t = master(p)
    m, acts = step(m, p, FaultOn("script chk down"), t + 0.5)
    assert m.state is State.FAULT
    assert list(acts) == [
        Log("(VI_1) Entering FAULT STATE"),
        SendAdvert(0),
        LeaveMaster(),
        Entered(State.FAULT, State.MASTER),
    ]


def test_fault_state_ignores_adverts_ticks_and_repeated_faults() -> None:
    p = params()
    m, _ = step(backup(p), p, FaultOn("a"), 1.0)
    for ev in (advert(HIGHER_IP, 0), advert(LOWER_IP, 50), Tick(), Start()):
        m2, acts = step(m, p, ev, 100.0)
        assert m2 == m and acts == ()
    m2, acts = step(m, p, FaultOn("b"), 2.0)
    assert m2.state is State.FAULT and m2.fault_reason == "b" and acts == ()


def test_fault_off_goes_backup_with_the_configured_interval() -> None:
    p = params(version=3, advert_int=1.0)
    m = backup(p)
    m, _ = step(m, p, advert(HIGHER_IP, 200, adver_int=0.2), 0.5)
    assert m.master_adver_int == 0.2
    m, _ = step(m, p, FaultOn("x"), 1.0)
    m, acts = step(m, p, FaultOff(), 5.0)
    assert m.state is State.BACKUP and m.fault_reason is None
    assert m.master_adver_int == 1.0
    assert m.down_deadline == 5.0 + master_down_interval(3, 100, 1.0)
    assert list(acts) == [Log("(VI_1) Entering BACKUP STATE"), Entered(State.BACKUP, State.FAULT)]


def test_fault_off_owner_goes_master_at_once() -> None:
    p = params(priority=255, start_master=True)
    m, _ = step(initial(), p, Start(), 0.0)
    m, _ = step(m, p, FaultOn("x"), 1.0)
    m, acts = step(m, p, FaultOff(), 2.0)
    assert m.state is State.MASTER
    assert effects(acts) == [SendAdvert(255), BecomeMaster(False), Entered(State.MASTER, State.FAULT)]


def test_fault_before_start_is_fault_init_and_start_waits_for_fault_off() -> None:
    p = params()
    m, acts = step(initial(), p, FaultOn("interface eth0 down"), 0.0)
    assert m.state is State.FAULT
    assert logs(acts) == ["(VI_1) Entering FAULT STATE (init)"]
    assert effects(acts) == [Entered(State.FAULT, State.INIT)]
    m, acts = step(m, p, Start(), 0.1)
    assert m.state is State.FAULT and acts == ()
    m, _ = step(m, p, FaultOff(), 1.0)
    assert m.state is State.BACKUP and m.down_deadline == 1.0 + 3.609375


def test_fault_off_when_not_in_fault_is_harmless() -> None:
    p = params()
    m = backup(p)
    m2, acts = step(m, p, FaultOff(), 1.0)
    assert m2 == m and acts == ()


def test_shutdown_from_fault_sends_nothing() -> None:
    p = params()
    m, _ = step(backup(p), p, FaultOn("x"), 1.0)
    m, acts = step(m, p, Shutdown(), 2.0)
    assert m.state is State.STOP
    assert effects(acts) == [Entered(State.STOP, State.FAULT)]


def test_stop_is_final() -> None:
    p = params()
    m, _ = step(backup(p), p, Shutdown(), 1.0)
    for ev in (Start(), advert(HIGHER_IP, 200), Tick(), FaultOn("x"), FaultOff(), Shutdown()):
        m2, acts = step(m, p, ev, 2.0)
        assert m2.state is State.STOP and acts == ()


# ---------------------------------------------------------------- Reconfigure


def test_master_whose_priority_drops_stays_master_until_a_better_advert() -> None:
    p = params(priority=150)
    m, t = master(p)
    low = replace(p, priority=90)
    m, acts = step(m, p, Reconfigure(low), t + 0.2)
    assert m.state is State.MASTER
    assert logs(acts) == ["(VI_1) Changing effective priority from 150 to 90"]
    assert effects(acts) == []
    _, acts = step(m, low, Tick(), t + 1.0)
    assert list(acts) == [SendAdvert(90)]
    m, _ = step(m, low, advert(LOWER_IP, 100), t + 1.5)
    assert m.state is State.BACKUP


def test_backup_reconfigure_rearms_with_the_new_skew() -> None:
    p = params(priority=100)
    m = backup(p, 0.0)
    assert m.down_deadline == 3.609375
    m, acts = step(m, p, Reconfigure(replace(p, priority=200)), 1.0)
    assert m.state is State.BACKUP
    # the time already waited counts; only the skew changed (0.609375 -> 0.21875)
    assert m.down_deadline == pytest.approx(3.21875)
    assert not [a for a in acts if isinstance(a, Entered)]


def test_v3_backup_reconfigure_keeps_the_interval_learned_from_the_master() -> None:
    p = params(version=3, advert_int=1.0, priority=100)
    m = backup(p, 0.0)
    m, _ = step(m, p, advert(HIGHER_IP, 200, adver_int=0.1), 1.0)
    assert m.down_deadline == pytest.approx(1.0 + 0.360937)
    m, _ = step(m, p, Reconfigure(replace(p, priority=150, advert_int=2.0)), 1.1)
    assert m.master_adver_int == 0.1
    assert m.down_deadline == pytest.approx(1.0 + master_down_interval(3, 150, 0.1))


def test_backup_reconfigure_never_sets_the_timer_in_the_past() -> None:
    p = params(priority=100, down_timer_adverts=10)
    m = backup(p, 0.0)
    m, _ = step(m, p, Reconfigure(replace(p, down_timer_adverts=1)), 5.0)
    assert m.down_deadline == 5.0


def test_master_reconfigure_shorter_interval_takes_effect_now() -> None:
    p = params(version=3, advert_int=2.0)
    m, t = master(p)
    m, _ = step(m, p, Reconfigure(replace(p, advert_int=0.5)), t + 0.1)
    assert m.advert_deadline == pytest.approx(t + 0.6)
    assert m.master_adver_int == 0.5


def test_reconfigure_keeps_state_in_fault() -> None:
    p = params()
    m, _ = step(backup(p), p, FaultOn("x"), 1.0)
    m2, _ = step(m, p, Reconfigure(replace(p, advert_int=2.0)), 2.0)
    assert m2.state is State.FAULT and m2.master_adver_int == 2.0


# ---------------------------------------------------------------- one change_state


def test_every_state_change_logs_and_notifies_once() -> None:
    p = params()
    m = initial()
    script: list[tuple[Event, float]] = [
        (Start(), 0.0),
        (Tick(), 3.609375),
        (advert(HIGHER_IP, 200), 4.0),
        (FaultOn("x"), 5.0),
        (FaultOff(), 6.0),
        (Tick(), 6.0 + 3.609375),
        (Shutdown(), 11.0),
    ]
    seen: list[tuple[State, State]] = []
    for ev, now in script:
        old = m.state
        m, acts = step(m, p, ev, now)
        entered = [a for a in acts if isinstance(a, Entered)]
        if m.state is old:
            assert not entered
            continue
        assert entered == [Entered(m.state, old)]
        assert m.last_transition == now
        entering = [t for t in logs(acts) if "Entering" in t]
        suffix = " (init)" if old is State.INIT else ""
        assert entering == ([] if m.state is State.STOP else [f"(VI_1) Entering {m.state.value} STATE{suffix}"])
        seen.append((old, m.state))
    assert seen == [
        (State.INIT, State.BACKUP),
        (State.BACKUP, State.MASTER),
        (State.MASTER, State.BACKUP),
        (State.BACKUP, State.FAULT),
        (State.FAULT, State.BACKUP),
        (State.BACKUP, State.MASTER),
        (State.MASTER, State.STOP),
    ]


# ---------------------------------------------------------------- Params


def test_params_validation() -> None:
    with pytest.raises(ValueError, match="version"):
        params(version=4)
    with pytest.raises(ValueError, match="priority"):
        params(priority=0)
    with pytest.raises(ValueError, match="advert_int"):
        params(advert_int=0)
    with pytest.raises(ValueError, match="down_timer_adverts"):
        params(down_timer_adverts=0)


def test_params_from_a_parsed_instance(tmp_path: Path) -> None:
    cfg = clean(
        parse(
            tmp_path,
            """
            vrrp_instance VI_7 {
              interface eth0
              virtual_router_id 7
              version 3
              priority 120
              advert_int 0.5
              preempt_delay 4
              lower_prio_no_advert
              virtual_ipaddress {
                192.0.2.100/24
              }
            }
            vrrp_instance VI_8 {
              state MASTER
              interface eth0
              virtual_router_id 8
              virtual_ipaddress {
                192.0.2.101/24
              }
            }
            """,
        )
    )
    p = Params.from_instance(cfg.vrrp_instance["VI_7"], LOCAL)
    assert p == Params(
        name="VI_7",
        version=3,
        priority=120,
        advert_int=0.5,
        local_ip=LOCAL,
        preempt=True,
        preempt_delay=4.0,
        start_master=False,
        down_timer_adverts=3,
        lower_prio_no_advert=True,
    )
    assert Params.from_instance(cfg.vrrp_instance["VI_7"], LOCAL, priority=90).priority == 90
    # `state MASTER` without a priority is the owner
    owner = Params.from_instance(cfg.vrrp_instance["VI_8"], LOCAL)
    assert owner.is_owner and owner.start_master and owner.preempt and owner.version == 2


# ---------------------------------------------------------------- a simulated wire


@dataclass
class Node:
    p: Params
    m: Machine = field(default_factory=initial)
    alive: bool = False  # a crashed or not yet started router hears nothing
    tick_at: float | None = None


@dataclass(order=True)
class _Ev:
    at: float
    seq: int
    node: int = field(compare=False)
    event: Event | str = field(compare=False)  # "crash" / "boot" are the simulation's own


class Wire:
    """Routers on one lossless LAN: every advert reaches every other live router after `delay`."""

    def __init__(self, params: list[Params], delay: float = 0.001) -> None:
        self.nodes = [Node(p) for p in params]
        self.delay = delay
        self.queue: list[_Ev] = []
        self.seq = 0
        self.now = 0.0

    def at(self, t: float, node: int, event: Event | str) -> None:
        self.seq += 1
        heapq.heappush(self.queue, _Ev(t, self.seq, node, event))

    def masters(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.alive and n.m.state is State.MASTER]

    def run(self, until: float, check: object = None) -> None:
        while self.queue and self.queue[0].at <= until:
            ev = heapq.heappop(self.queue)
            self.now = ev.at
            self._deliver(ev)
            if callable(check):
                check(self)

    def _deliver(self, ev: _Ev) -> None:
        node = self.nodes[ev.node]
        if ev.event == "boot":
            node.m, node.alive, node.tick_at = initial(), True, None
            self._step(ev.node, Start())
        elif ev.event == "crash":
            node.alive = False  # SIGKILL: nothing sent, VIPs gone with the box
        elif node.alive and not isinstance(ev.event, str):
            self._step(ev.node, ev.event)

    def _step(self, i: int, event: Event) -> None:
        node = self.nodes[i]
        if isinstance(event, Reconfigure):
            node.m, acts = step(node.m, node.p, event, self.now)
            node.p = event.params
        else:
            node.m, acts = step(node.m, node.p, event, self.now)
        for a in acts:
            if isinstance(a, SendAdvert):
                adv = AdvertIn(node.p.local_ip, a.priority, node.p.advert_int)
                for j in range(len(self.nodes)):
                    if j != i:
                        self.at(self.now + self.delay, j, adv)
        dl = next_deadline(node.m)
        if dl is not None and dl != node.tick_at:
            node.tick_at = dl
            self.at(dl, i, Tick())


def _two(p1: Params, p2: Params) -> Wire:
    w = Wire([p1, p2])
    w.at(0.0, 0, "boot")
    return w


def test_wire_election_takeover_and_preemption_back() -> None:
    a = params(name="VI_1", priority=100, local_ip=IPv4Address("192.0.2.1"))
    b = params(name="VI_1", priority=110, local_ip=IPv4Address("192.0.2.2"))
    w = _two(a, b)
    w.run(4.0)
    assert w.masters() == [0]  # A alone: master after 3.609 s
    w.at(5.0, 1, "boot")
    w.run(9.5)
    assert w.masters() == [1]  # B preempts after its own 3.57 s
    w.at(12.0, 1, Shutdown())
    w.run(12.0 + 0.001 + 0.609375 - 1e-6)
    assert w.masters() == []  # graceful stop: A waits Skew_Time after the priority 0 advert
    w.run(12.0 + 0.001 + 0.609375 + 1e-6)
    assert w.masters() == [0]


def test_wire_sigkill_of_the_master_takes_master_down_interval() -> None:
    a = params(priority=100, local_ip=IPv4Address("192.0.2.1"))
    b = params(priority=110, local_ip=IPv4Address("192.0.2.2"))
    w = _two(a, b)
    w.at(0.0, 1, "boot")
    w.run(10.0)
    assert w.masters() == [1]
    # B became master at 3.570312 s and advertises every second after: its last advert before
    # the crash at 10 s left at 9.570312 s and reached A 1 ms later.
    w.at(10.0, 1, "crash")
    w.run(30.0)
    assert w.masters() == [0]
    assert w.nodes[0].m.last_transition is not None
    gap = w.nodes[0].m.last_transition - (9.570312 + 0.001)
    assert gap == pytest.approx(3.609375)


# ---------------------------------------------------------------- property: one master, the right one


@dataclass(frozen=True)
class Scenario:
    nodes: list[Params]
    plan: list[tuple[float, int, Event | str]]
    end: float
    clean: bool  # simultaneous boot, one interval, nothing else happens


@st.composite
def scenario(draw: st.DrawFn) -> Scenario:
    version = draw(st.sampled_from([2, 3]))
    n = draw(st.integers(2, 4))
    clean = draw(st.booleans())
    owner = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    # v2 adverts with another interval are dropped by receive.check: one interval for all
    shared_int = draw(st.sampled_from([1.0, 2.0] if version == 2 else [0.1, 0.5, 1.0]))
    nodes: list[Params] = []
    for i in range(n):
        prio = 255 if owner == i else draw(st.integers(1, 254))
        # keepalived resets nopreempt and preempt_delay for an owner
        preempt = True if prio == 255 else draw(st.booleans())
        nodes.append(
            Params(
                name="VI_1",
                version=version,
                priority=prio,
                advert_int=shared_int if version == 2 or clean else draw(st.sampled_from([0.1, 0.5, 1.0])),
                local_ip=IPv4Address(f"192.0.2.{draw(st.integers(1, 254))}"),
                preempt=preempt,
                preempt_delay=draw(st.sampled_from([0.0, 0.0, 2.0])) if preempt and prio != 255 else 0.0,
                start_master=prio == 255 or draw(st.booleans()),
                lower_prio_no_advert=draw(st.booleans()),
            )
        )
    if len({p.local_ip for p in nodes}) != n:
        nodes = [replace(p, local_ip=IPv4Address(f"198.51.100.{i + 1}")) for i, p in enumerate(nodes)]
    plan: list[tuple[float, int, Event | str]] = [
        (0.0 if clean else draw(st.floats(0.0, 8.0)), i, "boot") for i in range(n)
    ]
    for _ in range(0 if clean else draw(st.integers(0, 4))):
        i = draw(st.integers(0, n - 1))
        t = draw(st.floats(0.5, 20.0))
        back = t + draw(st.floats(0.1, 6.0))
        kind = draw(st.sampled_from(["shutdown", "crash", "fault", "prio"]))
        if kind == "shutdown":
            plan += [(t, i, Shutdown()), (back, i, "boot")]
        elif kind == "crash":
            plan += [(t, i, "crash"), (back, i, "boot")]
        elif kind == "fault":
            plan += [(t, i, FaultOn("track")), (back, i, FaultOff())]
        elif nodes[i].priority != 255:
            plan.append((t, i, Reconfigure(replace(nodes[i], priority=draw(st.integers(1, 254))))))
    end = max(t for t, _, _ in plan) + 0.5
    if not clean:
        plan += [(end, i, Shutdown()) for i in draw(st.sets(st.integers(0, n - 1), max_size=n - 1))]
    return Scenario(nodes, plan, end, clean)


def _settle_time(nodes: list[Params], end: float) -> float:
    longest = max(p.advert_int for p in nodes)
    worst_mdi = max(master_down_interval(p.version, 1, longest, p.down_timer_adverts) for p in nodes)
    worst_delay = max(p.preempt_delay for p in nodes)
    return end + worst_delay + 2 * worst_mdi + 2 * longest + 1.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_one_master_and_the_best_one_after_the_timers_settle(case: Scenario) -> None:
    w = Wire(case.nodes)
    for t, i, ev in case.plan:
        w.at(t, i, ev)
    settle = _settle_time(case.nodes, case.end)
    w.run(settle)
    running = [i for i, n in enumerate(w.nodes) if n.alive and n.m.state in (State.BACKUP, State.MASTER)]
    masters = w.masters()
    state = [(n.p.priority, str(n.p.local_ip), n.p.preempt, n.alive, n.m.state.value) for n in w.nodes]
    if not running:
        assert masters == [], state
        return
    assert len(masters) == 1, state
    top = max(w.nodes[i].p.priority for i in running)
    if any(w.nodes[i].p.preempt for i in running if w.nodes[i].p.priority == top):
        # A preempting router of the highest priority always ends up master (RFC 5798 section
        # 6.4.2: it discards lower adverts and its down timer runs out). An equal-priority
        # backup does not preempt a master, so among equals the first one up keeps it ...
        assert w.nodes[masters[0]].p.priority == top, state
    if case.clean:
        # ... and when they come up together the tie-break on the address decides (section 6.4.3).
        best = max(running, key=lambda i: (w.nodes[i].p.priority, int(w.nodes[i].p.local_ip)))
        assert masters == [best], state

    def stable(wire: Wire) -> None:
        assert wire.masters() == masters, wire.now

    # and it stays that way: no flapping while the adverts keep flowing
    w.run(settle + 10 * max(p.advert_int for p in case.nodes), check=stable)


def test_ipv6_addresses_work_on_the_wire() -> None:
    a = params(version=3, priority=100, local_ip=IPv6Address("fe80::1"))
    b = params(version=3, priority=100, local_ip=IPv6Address("fe80::2"))
    w = Wire([a, b])
    w.at(0.0, 0, "boot")
    w.at(0.0, 1, "boot")
    w.run(20.0)
    assert w.masters() == [1]  # equal priority: the higher link-local address wins


def test_a_master_may_send_a_little_early_but_keeps_its_cadence() -> None:
    """fsm_mod.advert_timer accepts a tick up to 2% of the interval (20 ms at most) early, so the
    adverts of many masters share loop wakeups; the next deadline stays on the cadence."""
    p = fsm_mod.Params(
        name="VI_1", version=2, priority=255, advert_int=1.0, local_ip=ip_address("10.0.0.1"), start_master=True
    )
    m, _ = fsm_mod.step(fsm_mod.initial(), p, fsm_mod.Start(), 0.0)
    assert m.state is fsm_mod.State.MASTER and m.advert_deadline == pytest.approx(1.0)
    assert fsm_mod.advert_timer(m, p, 0.97) is None  # 30 ms early: too early
    fired = fsm_mod.advert_timer(m, p, 0.985)
    assert fired is not None and fired.advert_deadline == pytest.approx(2.0)
    assert fsm_mod.advert_early(p) == pytest.approx(0.02)
    assert fsm_mod.advert_early(replace(p, advert_int=0.1)) == pytest.approx(0.002)


def test_a_masters_adver_timer_may_only_be_brought_forward() -> None:
    """fsm_mod.advert_moved (vrrp_child.advertgrid's masters sending together): earlier only, MASTER only."""
    p = fsm_mod.Params(
        name="VI_1", version=2, priority=255, advert_int=1.0, local_ip=ip_address("10.0.0.1"), start_master=True
    )
    m, _ = fsm_mod.step(fsm_mod.initial(), p, fsm_mod.Start(), 0.0)
    assert fsm_mod.advert_moved(m, 0.7).advert_deadline == pytest.approx(0.7)
    assert fsm_mod.advert_moved(m, 1.2) is m
    backup, _ = fsm_mod.step(fsm_mod.initial(), replace(p, priority=100, start_master=False), fsm_mod.Start(), 0.0)
    assert fsm_mod.advert_moved(backup, 0.5) is backup
