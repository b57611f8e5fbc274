"""global_defs vrrp_startup_delay in the state machine (keepalived 2.2.7's vrrp_delayed_start_time,
vrrp_init_instance_sands): BACKUP at once, Master_Down_Timer counted from the delay's end while it
runs, an owner MASTER right at its end, a resumed MASTER not delayed. The lab test
(tests/lab/test_startup_delay.py) runs it beside keepalived."""

from __future__ import annotations

from ipaddress import IPv4Address

from tests.vrrp_child.test_fsm import HIGHER_IP, advert, params
from vrrp_child.fsm import FaultOff, FaultOn, Start, State, Tick, initial, master_down_interval, next_deadline, step

MDI = master_down_interval(2, 100, 1.0)  # 3.609375


def test_backup_at_once_master_down_timer_from_the_end_of_the_delay() -> None:
    p = params()
    m, _ = step(initial(), p, Start(delay_until=5.0), 0.0)
    assert m.state is State.BACKUP
    assert next_deadline(m) == 5.0 + MDI
    m, _ = step(m, p, Tick(), 5.0 + MDI)
    assert m.state is State.MASTER


def test_an_advert_during_the_delay_counts_from_its_end_after_it_from_now() -> None:
    p = params()
    m, _ = step(initial(), p, Start(delay_until=5.0), 0.0)
    m, _ = step(m, p, advert(HIGHER_IP, 200), 2.0)
    assert next_deadline(m) == 5.0 + master_down_interval(2, 100, 1.0)
    m, _ = step(m, p, advert(HIGHER_IP, 200), 6.0)
    assert next_deadline(m) == 6.0 + MDI
    # priority 0 from the master: Skew_Time, also from the end of the delay while it runs
    m2, _ = step(initial(), p, Start(delay_until=5.0), 0.0)
    m2, _ = step(m2, p, advert(HIGHER_IP, 0), 1.0)
    assert next_deadline(m2) == 5.0 + 0.609375


def test_owner_goes_master_when_the_delay_ends() -> None:
    p = params(priority=255, start_master=True)
    m, _ = step(initial(), p, Start(delay_until=5.0), 0.0)
    assert m.state is State.BACKUP and next_deadline(m) == 5.0
    m, _ = step(m, p, Tick(), 5.0)
    assert m.state is State.MASTER
    m, _ = step(initial(), p, Start(delay_until=5.0), 6.0)  # the delay already over: at once
    assert m.state is State.MASTER


def test_resumed_master_is_not_delayed() -> None:
    m, _ = step(initial(), params(), Start(resume_master=True, delay_until=5.0), 0.0)
    assert m.state is State.MASTER


def test_fault_first_keeps_the_delay() -> None:
    p = params()
    m, _ = step(initial(), p, FaultOn("link down"), 0.0)
    m, _ = step(m, p, Start(delay_until=5.0), 0.0)
    m, _ = step(m, p, FaultOff(), 1.0)
    assert m.state is State.BACKUP and next_deadline(m) == 5.0 + MDI


def test_no_delay_unchanged() -> None:
    m, _ = step(initial(), params(local_ip=IPv4Address("192.0.2.10")), Start(), 2.0)
    assert next_deadline(m) == 2.0 + MDI
