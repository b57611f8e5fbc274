"""Log lines a received packet triggers are rate-limited per instance and per kind: a flood
of lower-priority adverts (50,000/s measured: 36,196 "forcing new election" lines in 5 s)
logs one line, then one every LOG_EVERY seconds with the count left out. State transitions
are logged every time."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import pytest

from tests.vrrp_child.test_instance import GROUP, PEER, make
from vrrp_child import fsm, packet
from vrrp_child.instance import LOG_EVERY, Instance, _RateLimit
from vrrp_child.sockets import Received

FLOOD = 5000


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def advert_from(inst: Instance, priority: int, src: ipaddress.IPv4Address = PEER) -> Received:
    payload = packet.encode(packet.Advert(2, 51, priority, inst.expect.addresses, 100), src, GROUP)
    return Received(payload, src, GROUP, 255, 2)


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def master(tmp_path: Path, detail: bool = False) -> tuple[Instance, Clock]:
    inst, edges, _ = make(tmp_path)
    inst.detail = detail
    clock = Clock()
    inst._limit = _RateLimit(clock=clock)
    inst.start()
    edges.loop.advance(3.5)
    assert inst.state is fsm.State.MASTER
    return inst, clock


def test_a_flood_of_lower_priority_adverts_logs_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pykeepalived_vrrp")
    inst, clock = master(tmp_path)
    lower = advert_from(inst, 100)
    for _ in range(FLOOD):
        inst.on_packet(lower)
    got = lines(caplog, "forcing new election")
    assert got == ["(VI_1) Received advert from 192.0.2.12 with lower priority 100, ours 150, forcing new election"]
    assert inst.stats.advert_rcvd == FLOOD  # every advert is still handled (and answered)

    clock.now += LOG_EVERY / 2
    inst.on_packet(lower)
    assert len(lines(caplog, "forcing new election")) == 1
    clock.now += LOG_EVERY / 2
    inst.on_packet(lower)
    got = lines(caplog, "forcing new election")
    assert len(got) == 2 and got[1].endswith(f"forcing new election ({FLOOD} more since last logged)")


def test_each_kind_and_each_instance_has_its_own_limit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pykeepalived_vrrp")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, _ = master(tmp_path / "a")
    two, _ = master(tmp_path / "b")
    for _ in range(100):
        one.on_packet(advert_from(one, 100))
        two.on_packet(advert_from(two, 100))
        # Equal priority from our own address: another kind of line.
        one.on_packet(advert_from(one, 150, src=ipaddress.IPv4Address("192.0.2.11")))
    assert len(lines(caplog, "forcing new election")) == 2  # one per instance
    assert len(lines(caplog, "equal priority advert received from remote host with our IP")) == 1


def test_a_preempting_backup_discards_a_flood_with_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pykeepalived_vrrp")
    inst, _, _ = make(tmp_path)
    inst._limit = _RateLimit(clock=Clock())
    inst.start()
    assert inst.state is fsm.State.BACKUP
    lower = advert_from(inst, 100)
    for _ in range(FLOOD):
        inst.on_packet(lower)
    assert len(lines(caplog, "advert from 192.0.2.12 - discarding")) == 1


def test_detail_lines_from_packets_are_limited_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pykeepalived_vrrp")
    inst, _ = master(tmp_path, detail=True)
    for _ in range(FLOOD):
        inst.on_packet(advert_from(inst, 0))
    assert len(lines(caplog, "Master received priority 0 message")) == 1


def test_state_transitions_are_logged_every_time(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pykeepalived_vrrp")
    inst, edges, _ = make(tmp_path)
    inst._limit = _RateLimit(clock=Clock())
    inst.start()
    for _ in range(5):
        edges.loop.advance(3.5)  # no master heard: MASTER
        assert inst.state.value == "MASTER"
        inst.on_packet(advert_from(inst, 200))  # a better master: BACKUP
        assert inst.state.value == "BACKUP"
    assert len(lines(caplog, "Entering MASTER STATE")) == 5
    assert len(lines(caplog, "Entering BACKUP STATE")) == 6  # with the initial one
    assert len(lines(caplog, "with higher priority 200, ours 150")) == 5


def test_the_fsm_marks_the_lines_a_packet_triggers() -> None:
    p = fsm.Params(name="VI_1", version=2, priority=150, advert_int=1.0, local_ip=ipaddress.IPv4Address("192.0.2.11"))
    m, _ = fsm.step(fsm.initial(), p, fsm.Start(), 0.0)
    m, acts = fsm.step(m, p, fsm.Tick(), 10.0)
    assert m.state is fsm.State.MASTER
    assert all(a.key is None for a in acts if isinstance(a, fsm.Log))  # the transition
    _, acts = fsm.step(m, p, fsm.AdvertIn(PEER, 100, 1.0), 10.5)
    logs = [a for a in acts if isinstance(a, fsm.Log)]
    assert [a.key for a in logs] == ["rx_lower_master"]
    m2, acts = fsm.step(m, p, fsm.AdvertIn(PEER, 200, 1.0), 10.5)
    assert m2.state is fsm.State.BACKUP
    assert all(a.key is None for a in acts if isinstance(a, fsm.Log))
