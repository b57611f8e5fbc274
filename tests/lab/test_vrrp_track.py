"""VRRP tracking in the lab (issue 5): the setups users run, pykeepalived on node 1 and pykeepalived or
keepalived 2.2.7 on node 2 (every two-node test runs with both peers).

1. `vrrp_script` "killall -0 SERVICE" with `weight -5`: the service dies on the master (100 -> 95 < 98),
   the backup takes the VIP; the service comes back, the VIP returns (preemption).
2. The maintenance-file script as it circulates: `script "/bin/bash -c '[[ -f F ]]' && exit 1 || exit 0"`.
   keepalived splits the quoted string into argv like a shell would split words, but it runs no shell:
   bash gets `-c`, `[[ -f F ]]` and then `&&`, `exit`, `1`, `||`, `exit`, `0` as $0, $1, ... So the
   script exits 0 when F exists and 1 when it does not: the weight applies on every node WITHOUT the
   file, and touching F raises a node's priority and pulls the VIP to it (measured with keepalived 2.2.7
   on both nodes; pykeepalived must do the same). A correct one (`/bin/sh -c '! test -f F'`) does what
   the first meant: F on the master sends the VIP to the peer, removing it brings the VIP back.
3. Two instances, each node master of one ("dual master"): each VIP on its node, both adverts on the
   wire; a node stopping hands its VIP to the other, coming back takes it back.
4. track_interface: a weight-0 interface going down puts the master in FAULT (a priority-0 advert on
   the wire, the VIP to the peer at once); with `weight -20` the priority drops instead (no FAULT).
5. notify_master/backup/fault/stop and `notify` (INSTANCE VI_1 STATE PRIO) recorded by a script, and the
   vrrp_notify_fifo lines, on both nodes through a life cycle (the sequences keepalived 2.2.7 gives).
6. nopreempt on the higher node: back after a stop it stays BACKUP.
7. (pykeepalived alone) a hanging script killed at its timeout and counted as failed; a script missing
   at start is disabled (keepalived: "Disabling track script ... since not found/accessible"), one that
   disappears later counts as failed; with enable_script_security an insecure script is disabled at
   start and never run.

advert_int 0.2 (VRRPv3): the backup at 98 takes over 0.72 s after the master's last advert above its
priority; scripts run every second. `pytest -s` prints the measured failover times.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labkit.lab import Daemon, Lab
from tests.lab.track_scenarios import (
    ADVERT_INT,
    BACKUP_PRIO,
    MASTER_PRIO,
    VIP,
    VIP2,
    FifoReader,
    Kind,
    Timeline,
    add_tracked_link,
    config,
    dump_data,
    instance,
    lines_of,
    logged_at,
    mark,
    master_down,
    processes_running,
    service_copy,
    skew,
    start,
    start_service,
    track,
    vrrp_script,
    wait_lines,
)

pytestmark = pytest.mark.lab

# Slack on top of a protocol deadline: process start-up, a script run, the sampler, two loaded cores.
SLACK = 1.5
# A script-driven change: the next run of the script (interval 1) plus the backup's Master_Down_Interval.
SCRIPT_FAILOVER = 1.0 + master_down(BACKUP_PRIO) + SLACK
SCRIPT_PREEMPT = 1.0 + master_down(MASTER_PRIO) + SLACK


@pytest.fixture(params=["pykeepalived", "keepalived"])
def peer(request: pytest.FixtureRequest) -> Kind:
    """The daemon on node 2 (node 1 always runs pykeepalived)."""
    kind: Kind = request.param
    return kind


def up_as_master(lab: Lab, peer: Kind, configs: dict[int, str], tl: Timeline) -> dict[int, Daemon]:
    """Node 1 starts alone and takes the VIP, then the peer starts and comes up BACKUP."""
    d1 = start(lab.node(1), "pykeepalived", configs[1])
    tl.settle(1, 10.0)
    d2 = start(lab.node(2), peer, configs[2])
    d2.wait_state("VI_1", "BACKUP", 10.0)
    return {1: d1, 2: d2}


def after_change(tl: Timeline, changed: float, peer: Kind) -> None:
    """The peer took the VIP one Master_Down_Interval after the last advert above its priority (RFC 5798
    section 6.4.2: lower-priority adverts are discarded, they do not restart its timer); that advert left
    at most one advert_int before node 1's priority changed."""
    took = tl.spells[-1][1] - changed
    print(f"[{peer}] node 1's priority change -> the peer holds the VIP after {took:.2f} s")
    assert master_down(BACKUP_PRIO) - ADVERT_INT - 0.1 < took < master_down(BACKUP_PRIO) + 0.6, took


def no_tracebacks(d: dict[int, Daemon]) -> None:
    for n, daemon in d.items():
        assert "Traceback" not in daemon.log_text(), f"node {n}: {daemon.log_text()[-3000:]}"


# ---------------------------------------------------------------------------------------------------------
# 1. killall -0 SERVICE, weight -5


def test_service_check_moves_the_vip_and_back(lab2: Lab, peer: Kind, tmp_path: Path) -> None:
    services = {n: service_copy(tmp_path, f"hapt{os.getpid() % 10**7}n{n}") for n in (1, 2)}
    procs = {n: start_service(lab2.node(n), services[n]) for n in (1, 2)}

    def conf(n: int, prio: int) -> str:
        chk = vrrp_script("chk_haproxy", f"killall -0 {services[n].name}", weight=-5)
        return config(n, chk, instance(prio=prio, extra=track("track_script", "chk_haproxy")))

    tl = Timeline.of(lab2)
    d = up_as_master(lab2, peer, {1: conf(1, MASTER_PRIO), 2: conf(2, BACKUP_PRIO)}, tl)
    d[2].wait_log(r"VRRP_Script\(chk_haproxy\) succeeded", 5.0)
    tl.hold(1.0)

    m1, m2 = mark(d[1]), mark(d[2])
    t = tl.act()
    procs[1].kill()
    took = tl.settle(2, SCRIPT_FAILOVER + 2.0, since=t)
    print(f"\n[{peer}] service killed on the master -> the backup holds the VIP after {took:.2f} s")
    assert took < SCRIPT_FAILOVER, took
    d[1].wait_log(r"VRRP_Script\(chk_haproxy\) failed \(exited with status 1\)", 1.0, since=m1)
    d[1].wait_log(r"\(VI_1\) Changing effective priority from 100 to 95", 1.0, since=m1)
    after_change(tl, logged_at(d[1], r"Changing effective priority from 100 to 95", m1), peer)
    # The 95 went out on the wire and the peer (keepalived or we) read it as lower than its own 98.
    d[2].wait_log(r"\(VI_1\) received lower priority \(95\) advert from 192\.0\.2\.11 - discarding", 1.0, since=m2)
    d[1].wait_state("VI_1", "BACKUP", 2.0, since=m1)
    # The dumps (SIGUSR1) say so too, on both sides: node 1 at 95 with its script BAD, the peer master.
    dump_data(d[1], r"Effective priority = 95\n(.|\n)*VRRP Script = chk_haproxy\n(.|\n)*Status = BAD")
    dump_data(d[2], r"State = MASTER\n(.|\n)*Effective priority = 98\n(.|\n)*Status = GOOD")
    tl.hold(0.5)

    m1 = mark(d[1])
    t = tl.act()
    procs[1] = start_service(lab2.node(1), services[1])
    took = tl.settle(1, SCRIPT_PREEMPT + 2.0, since=t)
    print(f"[{peer}] service back -> node 1 preempted after {took:.2f} s")
    assert took < SCRIPT_PREEMPT, took
    d[1].wait_log(r"\(VI_1\) Changing effective priority from 95 to 100", 1.0, since=m1)
    tl.hold(0.5)
    tl.check()
    no_tracebacks(d)


# ---------------------------------------------------------------------------------------------------------
# 2. The maintenance file


SEED_SCRIPT = "/bin/bash -c '[[ -f {down} ]]' && exit 1 || exit 0"
ARGV_PROBE = "/bin/bash -c 'echo $0 $* > {out}' && exit 1 || exit 0"


def test_seed_maintenance_script_is_inverted(lab2: Lab, peer: Kind, tmp_path: Path) -> None:
    """keepalived 2.2.7 runs this without a shell: bash sees only `[[ -f F ]]` (the rest are positional
    parameters), so it FAILS without the file (weight -10 on both nodes from the start) and succeeds with
    it. A node whose `down` file appears gets its priority back and takes the VIP."""
    down = {n: tmp_path / f"n{n}-down" for n in (1, 2)}
    argv = {n: tmp_path / f"n{n}-argv" for n in (1, 2)}

    def conf(n: int, prio: int) -> str:
        chk = vrrp_script("chk_maint", SEED_SCRIPT.format(down=down[n]), weight=-10)
        # The same shape, printing what bash got after its command: $0 and the positional parameters
        # (succeeds, so its weight never applies; no double quotes: they would end the config string).
        probe = vrrp_script("argv_probe", ARGV_PROBE.format(out=argv[n]), weight=-1, interval=5)
        tracked = track("track_script", "chk_maint", "argv_probe")
        return config(n, chk, probe, instance(prio=prio, extra=tracked))

    tl = Timeline.of(lab2)
    d1 = start(lab2.node(1), "pykeepalived", conf(1, MASTER_PRIO))
    # No file anywhere: exit status 1, the weight applies at once.
    d1.wait_log(r"VRRP_Script\(chk_maint\) failed \(exited with status 1\)", 5.0)
    d1.wait_log(r"\(VI_1\) Changing effective priority from 100 to 90", 1.0)
    tl.settle(1, 10.0)
    d2 = start(lab2.node(2), peer, conf(2, BACKUP_PRIO))
    d2.wait_log(r"VRRP_Script\(chk_maint\) failed \(exited with status 1\)", 5.0)
    d2.wait_log(r"\(VI_1\) Changing effective priority from 98 to 88", 1.0)
    d2.wait_state("VI_1", "BACKUP", 5.0)
    for n in (1, 2):
        wait_lines(f"node {n}'s argv probe", lambda n=n: lines_of(argv[n]), ["&& exit 1 || exit 0"])  # type: ignore[misc]
    tl.hold(1.0)

    # "Maintenance" on the backup: its script now succeeds, 98 > 90, and the VIP goes TO it.
    m1, m2 = mark(d1), mark(d2)
    t = tl.act()
    down[2].touch()
    took = tl.settle(2, SCRIPT_FAILOVER + 2.0, since=t)
    print(f"\n[{peer}] down file on the backup -> it takes the VIP after {took:.2f} s")
    d2.wait_log(r"VRRP_Script\(chk_maint\) succeeded", 1.0, since=m2)
    d2.wait_log(r"\(VI_1\) Changing effective priority from 88 to 98", 1.0, since=m2)
    d1.wait_state("VI_1", "BACKUP", 2.0, since=m1)
    tl.hold(1.0)

    # The same file on node 1: 100 > 98, node 1 takes it back.
    m1 = mark(d1)
    t = tl.act()
    down[1].touch()
    took = tl.settle(1, SCRIPT_PREEMPT + 2.0, since=t)
    print(f"[{peer}] down file on node 1 too -> node 1 preempts after {took:.2f} s")
    d1.wait_log(r"\(VI_1\) Changing effective priority from 90 to 100", 1.0, since=m1)
    tl.hold(0.5)
    tl.check()
    no_tracebacks({1: d1, 2: d2})


def test_correct_maintenance_script_moves_the_vip_away_and_back(lab2: Lab, peer: Kind, tmp_path: Path) -> None:
    down = {n: tmp_path / f"n{n}-down" for n in (1, 2)}

    def conf(n: int, prio: int) -> str:
        chk = vrrp_script("chk_maint", f"/bin/sh -c '! test -f {down[n]}'", weight=-10)
        return config(n, chk, instance(prio=prio, extra=track("track_script", "chk_maint")))

    tl = Timeline.of(lab2)
    d = up_as_master(lab2, peer, {1: conf(1, MASTER_PRIO), 2: conf(2, BACKUP_PRIO)}, tl)
    d[2].wait_log(r"VRRP_Script\(chk_maint\) succeeded", 5.0)
    assert "Changing effective priority" not in d[1].log_text() + d[2].log_text()
    tl.hold(1.0)

    m1 = mark(d[1])
    t = tl.act()
    down[1].touch()
    took = tl.settle(2, SCRIPT_FAILOVER + 2.0, since=t)
    print(f"\n[{peer}] maintenance on the master -> the peer holds the VIP after {took:.2f} s")
    assert took < SCRIPT_FAILOVER, took
    d[1].wait_log(r"\(VI_1\) Changing effective priority from 100 to 90", 1.0, since=m1)
    after_change(tl, logged_at(d[1], r"Changing effective priority from 100 to 90", m1), peer)
    tl.hold(1.0)

    m1 = mark(d[1])
    t = tl.act()
    down[1].unlink()
    took = tl.settle(1, SCRIPT_PREEMPT + 2.0, since=t)
    print(f"[{peer}] maintenance over -> node 1 preempted after {took:.2f} s")
    assert took < SCRIPT_PREEMPT, took
    d[1].wait_log(r"\(VI_1\) Changing effective priority from 90 to 100", 1.0, since=m1)
    tl.hold(0.5)
    tl.check()
    no_tracebacks(d)


# ---------------------------------------------------------------------------------------------------------
# 3. Dual master


def test_dual_master(lab2: Lab, peer: Kind) -> None:
    def conf(n: int) -> str:
        one, two = (MASTER_PRIO, BACKUP_PRIO) if n == 1 else (BACKUP_PRIO, MASTER_PRIO)
        return config(n, instance("VI_1", vrid=51, prio=one, vip=VIP), instance("VI_2", vrid=52, prio=two, vip=VIP2))

    tl1, tl2 = Timeline.of(lab2, VIP), Timeline.of(lab2, VIP2)
    kinds: dict[int, Kind] = {1: "pykeepalived", 2: peer}
    d = {1: start(lab2.node(1), kinds[1], conf(1))}
    tl1.settle(1, 10.0)
    tl2.settle(1, 10.0)  # alone, node 1 holds both
    t = tl2.act()
    d[2] = start(lab2.node(2), kinds[2], conf(2))
    took = tl2.settle(2, 10.0, since=t)
    print(f"\n[{peer}] node 2 started -> VI_2 on it after {took:.2f} s")
    d[2].wait_state("VI_1", "BACKUP", 5.0)

    # Both masters speak, each for its own VRID, and nobody else does.
    cap = lab2.capture()
    time.sleep(1.2)
    packets = [p for p in cap.packets() if p["priority"] != 0]
    by_vrid = {v: [(p["src"], p["priority"], p["addresses"]) for p in packets if p["vrid"] == v] for v in (51, 52)}
    assert all(a == [VIP] for _, _, a in by_vrid[51]) and all(a == [VIP2] for _, _, a in by_vrid[52]), by_vrid
    assert {p["src"] for p in packets if p["vrid"] == 51} == {"192.0.2.11"}, by_vrid
    assert {p["src"] for p in packets if p["vrid"] == 52} == {"192.0.2.12"}, by_vrid
    assert {p["priority"] for p in packets} == {100}, by_vrid
    expected = 1.2 / ADVERT_INT
    for v in (51, 52):
        assert expected - 3 <= len(by_vrid[v]) <= expected + 2, (v, len(by_vrid[v]))
    assert all(p["version"] == 3 and p["adver_int"] == 20 and p["checksum_ok"] for p in packets), packets

    # Each node stops in turn: the survivor holds both VIPs; back, it takes its own back.
    for n, other in ((2, 1), (1, 2)):
        mine = tl2 if n == 2 else tl1
        theirs = tl1 if n == 2 else tl2
        t = mine.act()
        d[n].stop()
        took = mine.settle(other, 1.0 + skew(BACKUP_PRIO) + SLACK, since=t)
        print(f"[{peer}] node {n} stopped -> node {other} holds both after {took:.2f} s")
        assert lab2.who_has(VIP if n == 1 else VIP2) == [other]
        time.sleep(0.5)
        assert lab2.who_has(VIP) == [other] and lab2.who_has(VIP2) == [other]
        t = mine.act()
        d[n] = start(lab2.node(n), kinds[n], conf(n))
        took = mine.settle(n, 10.0, since=t)
        print(f"[{peer}] node {n} back -> its VIP returns after {took:.2f} s")
        assert took < 1.5 + master_down(MASTER_PRIO) + SLACK, took
        theirs.hold(0.5)
    tl1.check()
    tl2.check()
    assert lab2.who_has(VIP) == [1] and lab2.who_has(VIP2) == [2]
    no_tracebacks(d)


# ---------------------------------------------------------------------------------------------------------
# 4. track_interface


def test_track_interface_down_is_fault(lab2: Lab, peer: Kind) -> None:
    add_tracked_link(lab2)

    def conf(n: int, prio: int) -> str:
        return config(n, instance(prio=prio, extra=track("track_interface", "trk")))

    tl = Timeline.of(lab2)
    d = up_as_master(lab2, peer, {1: conf(1, MASTER_PRIO), 2: conf(2, BACKUP_PRIO)}, tl)
    tl.hold(0.5)

    cap = lab2.capture()
    m1 = mark(d[1])
    t = tl.act()
    lab2.node(1).ip("link", "set", "trk", "down")
    # The master leaving for FAULT sends priority 0 (RFC 5798 section 6.4.3): the peer waits Skew_Time only.
    took = tl.settle(2, skew(BACKUP_PRIO) + SLACK, since=t)
    print(f"\n[{peer}] tracked link down on the master -> the peer holds the VIP after {took:.2f} s")
    d[1].wait_log(r"Netlink reports trk down", 1.0, since=m1)
    d[1].wait_state("VI_1", "FAULT", 1.0, since=m1)
    d[2].wait_log(r"\(VI_1\) Backup received priority 0 advertisement", 1.0)
    assert not lab2.node(1).has(VIP)
    tl.hold(1.0)
    t_up = time.time()

    m1 = mark(d[1])
    t = tl.act()
    lab2.node(1).ip("link", "set", "trk", "up")
    took = tl.settle(1, master_down(MASTER_PRIO) + SLACK + 1.0, since=t)
    print(f"[{peer}] tracked link up -> node 1 preempted after {took:.2f} s")
    d[1].wait_state("VI_1", "BACKUP", 1.0, since=m1)
    d[1].wait_state("VI_1", "MASTER", 1.0, since=m1)
    tl.hold(0.5)

    packets = [p for p in cap.packets() if p["vrid"] == 51]
    zero = [p for p in packets if p["priority"] == 0]
    assert [p["src"] for p in zero] == ["192.0.2.11"], zero
    # While node 1 was in FAULT it sent nothing; the peer sent at its own priority.
    faulted = [p for p in packets if zero[0]["time"] < p["time"] < t_up]
    assert faulted and {(p["src"], p["priority"]) for p in faulted} == {("192.0.2.12", BACKUP_PRIO)}, faulted
    tl.check()
    no_tracebacks(d)


def test_track_interface_with_weight_lowers_the_priority(lab2: Lab, peer: Kind) -> None:
    add_tracked_link(lab2)

    def conf(n: int, prio: int) -> str:
        return config(n, instance(prio=prio, extra=track("track_interface", "trk weight -20")))

    tl = Timeline.of(lab2)
    d = up_as_master(lab2, peer, {1: conf(1, MASTER_PRIO), 2: conf(2, BACKUP_PRIO)}, tl)
    tl.hold(0.5)

    m1, m2 = mark(d[1]), mark(d[2])
    t = tl.act()
    lab2.node(1).ip("link", "set", "trk", "down")
    took = tl.settle(2, master_down(BACKUP_PRIO) + SLACK, since=t)
    print(f"\n[{peer}] weighted tracked link down -> the peer holds the VIP after {took:.2f} s")
    d[1].wait_log(r"\(VI_1\) Changing effective priority from 100 to 80", 1.0, since=m1)
    after_change(tl, logged_at(d[1], r"Changing effective priority from 100 to 80", m1), peer)
    d[2].wait_log(r"\(VI_1\) received lower priority \(80\) advert from 192\.0\.2\.11 - discarding", 1.0, since=m2)
    d[1].wait_state("VI_1", "BACKUP", 1.0, since=m1)
    tl.hold(1.0)
    assert "FAULT" not in d[1].log_text()[m1:]

    m1 = mark(d[1])
    t = tl.act()
    lab2.node(1).ip("link", "set", "trk", "up")
    took = tl.settle(1, master_down(MASTER_PRIO) + SLACK, since=t)
    print(f"[{peer}] weighted tracked link up -> node 1 preempted after {took:.2f} s")
    d[1].wait_log(r"\(VI_1\) Changing effective priority from 80 to 100", 1.0, since=m1)
    tl.hold(0.5)
    tl.check()
    no_tracebacks(d)


# ---------------------------------------------------------------------------------------------------------
# 5. notify scripts and the notify FIFO


RECORDER = """#!/bin/sh
out=$1; shift
printf '%s\\n' "$*" >> "$out"
"""


@pytest.fixture
def fifos(tmp_path: Path) -> Iterator[dict[int, FifoReader]]:
    readers = {n: FifoReader(tmp_path / f"n{n}.fifo") for n in (1, 2)}
    try:
        yield readers
    finally:
        for r in readers.values():
            r.close()


def test_notify_scripts_and_fifo(lab2: Lab, peer: Kind, tmp_path: Path, fifos: dict[int, FifoReader]) -> None:
    add_tracked_link(lab2)
    rec = tmp_path / "rec.sh"
    rec.write_text(RECORDER)
    rec.chmod(0o755)
    out = {n: tmp_path / f"n{n}.out" for n in (1, 2)}

    def conf(n: int, prio: int) -> str:
        notify = [
            *track("track_interface", "trk"),
            *(f'notify_{s} "{rec} {out[n]} {s}"' for s in ("master", "backup", "fault", "stop")),
            f'notify "{rec} {out[n]}"',
        ]
        return config(
            n,
            instance(prio=prio, extra=notify),
            global_extra=("script_user root", f"vrrp_notify_fifo {fifos[n].path}"),
        )

    tl = Timeline.of(lab2)
    d = up_as_master(lab2, peer, {1: conf(1, MASTER_PRIO), 2: conf(2, BACKUP_PRIO)}, tl)
    tl.hold(0.5)
    t = tl.act()
    lab2.node(1).ip("link", "set", "trk", "down")
    tl.settle(2, 5.0, since=t)
    tl.hold(0.5)
    t = tl.act()
    lab2.node(1).ip("link", "set", "trk", "up")
    tl.settle(1, 5.0, since=t)
    tl.hold(0.5)
    t = tl.act()
    d[1].stop()
    tl.settle(2, 5.0, since=t)
    tl.hold(0.3)
    tl.act()
    d[2].stop()

    # keepalived 2.2.7 (measured on both nodes): one line per transition, the initial BACKUP included;
    # `notify` gets INSTANCE NAME STATE PRIORITY, notify_stop runs at shutdown. The generic and the
    # specific script of one transition are started together, so only each one's own order is fixed.
    states = {
        1: ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"],
        2: ["BACKUP", "MASTER", "BACKUP", "MASTER", "STOP"],
    }
    for n, prio in ((1, MASTER_PRIO), (2, BACKUP_PRIO)):
        generic = [f"INSTANCE VI_1 {s} {prio}" for s in states[n]]
        specific = [s.lower() for s in states[n]]
        wait_lines(
            f"node {n}'s ({'pykeepalived' if n == 1 else peer}) notify scripts",
            lambda n=n: [x for x in lines_of(out[n]) if x.startswith("INSTANCE")],  # type: ignore[misc]
            generic,
        )
        wait_lines(
            f"node {n}'s notify_* scripts",
            lambda n=n: [x for x in lines_of(out[n]) if not x.startswith("INSTANCE")],  # type: ignore[misc]
            specific,
        )
        fifo = [f'INSTANCE "VI_1" {s} {prio}' for s in states[n]]
        wait_lines(f"node {n}'s FIFO", lambda n=n: fifos[n].lines, fifo)  # type: ignore[misc]
    tl.check()
    no_tracebacks(d)


# ---------------------------------------------------------------------------------------------------------
# 6. nopreempt


def test_nopreempt_on_the_higher_node(lab2: Lab, peer: Kind) -> None:
    def conf(n: int, prio: int) -> str:
        return config(n, instance(prio=prio, extra=["nopreempt"] if n == 1 else []))

    tl = Timeline.of(lab2)
    d = up_as_master(lab2, peer, {1: conf(1, MASTER_PRIO), 2: conf(2, BACKUP_PRIO)}, tl)
    tl.hold(0.5)

    t = tl.act()
    d[1].stop()
    took = tl.settle(2, skew(BACKUP_PRIO) + SLACK, since=t)
    print(f"\n[{peer}] node 1 stopped -> the peer holds the VIP after {took:.2f} s")
    d[1] = start(lab2.node(1), "pykeepalived", conf(1, MASTER_PRIO))
    d[1].wait_state("VI_1", "BACKUP", 5.0)
    # Many times its Master_Down_Interval: a preempting node would have taken over after 0.72 s.
    tl.hold(4 * master_down(MASTER_PRIO))
    assert "Entering MASTER STATE" not in d[1].log_text()

    # It still takes over when the master goes away.
    t = tl.act()
    d[2].stop()
    took = tl.settle(1, skew(MASTER_PRIO) + SLACK, since=t)
    print(f"[{peer}] the peer stopped -> node 1 holds the VIP after {took:.2f} s")
    tl.hold(0.3)
    tl.check()
    no_tracebacks(d)


# ---------------------------------------------------------------------------------------------------------
# 7. Script failures (pykeepalived alone)


@pytest.fixture
def lab1(make_lab: Callable[[int], Lab]) -> Lab:
    return make_lab(1)


def test_hanging_script_is_killed_at_its_timeout_and_counts_as_failed(lab1: Lab, tmp_path: Path) -> None:
    hang = service_copy(tmp_path, f"hang{os.getpid() % 10**7}")
    chk = vrrp_script("chk_hang", f"{hang} 100", weight=-10, interval=2, extra=["timeout 1"])
    d = start(lab1.node(1), "pykeepalived", config(1, chk, instance(extra=track("track_script", "chk_hang"))))
    d.wait_state("VI_1", "MASTER", 10.0)
    d.wait_log(r"VRRP_Script\(chk_hang\) timed_out", 5.0)
    d.wait_log(r"\(VI_1\) Changing effective priority from 100 to 90", 1.0)
    # Over two more runs, never more than one copy alive and none older than its timeout (plus the
    # TERM-to-exit time and the sampling).
    oldest, most = 0.0, 0
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        running = processes_running(hang)
        most = max(most, len(running))
        oldest = max([oldest, *(age for _, age in running)])
        time.sleep(0.05)
    assert most == 1, most
    assert oldest < 1.0 + 0.8, oldest
    assert len(re.findall(r"VRRP_Script\(chk_hang\) timed_out", d.log_text())) == 1  # logged once, on the change
    assert "Changing effective priority from 90" not in d.log_text()
    dump_data(d, r"Effective priority = 90\n(.|\n)*VRRP Script = chk_hang\n(.|\n)*Status = BAD")
    d.stop()
    assert not processes_running(hang)


def test_missing_script(lab1: Lab, tmp_path: Path) -> None:
    """Missing at start: keepalived 2.2.7 logs "Script X cannot be accessed - No such file or directory"
    and "Disabling track script NAME since not found/accessible": the script is dropped and its weight
    never applies. Removed while running: counted as failed (keepalived 2.2.7 counts an exec failure as
    a success, exit status 0 from its forked child; pykeepalived deliberately does not)."""
    gone = tmp_path / "gone.sh"
    gone.write_text("#!/bin/sh\nexit 0\n")
    gone.chmod(0o755)
    blocks = [
        vrrp_script("chk_missing", str(tmp_path / "nope.sh"), weight=-20),
        vrrp_script("chk_gone", str(gone), weight=-5),
        instance(extra=track("track_script", "chk_missing", "chk_gone")),
    ]
    d = start(lab1.node(1), "pykeepalived", config(1, *blocks))
    d.wait_state("VI_1", "MASTER", 10.0)
    d.wait_log(r"VRRP_Script\(chk_gone\) succeeded", 3.0)
    text = d.log_text()
    assert "nope.sh" in text, text  # reported (the words: test_script_problems_use_keepalived_words)
    assert "Changing effective priority" not in text  # the missing one is not counted as failed

    m = mark(d)
    gone.unlink()
    d.wait_log(r"VRRP_Script\(chk_gone\) failed", 3.0, since=m)
    d.wait_log(r"\(VI_1\) Changing effective priority from 100 to 95", 1.0, since=m)
    assert "from 100 to 80" not in d.log_text() and "from 95 to 75" not in d.log_text()


def insecure_setup(tmp_path: Path) -> tuple[str, Path]:
    ran = tmp_path / "ran"
    bad = tmp_path / "insecure.sh"
    bad.write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    bad.chmod(0o777)  # world-writable, run as root: anyone could make root run anything
    blocks = [
        vrrp_script("chk_insecure", str(bad), weight=-40),
        instance(extra=track("track_script", "chk_insecure")),
    ]
    text = config(1, *blocks, global_extra=("script_user root", "enable_script_security"))
    return text, ran


def test_insecure_script_never_runs(lab1: Lab, tmp_path: Path) -> None:
    text, ran = insecure_setup(tmp_path)
    d = start(lab1.node(1), "pykeepalived", text)
    d.wait_state("VI_1", "MASTER", 10.0)
    log = d.log_text()
    assert "insecure.sh" in log and re.search(r"(?i)insecure|unsafe", log), log
    time.sleep(2.5)  # two and a half script intervals
    assert not ran.exists()
    assert "Changing effective priority" not in d.log_text()
    assert d.running()


def test_script_problems_use_keepalived_words(lab1: Lab, tmp_path: Path) -> None:
    """Users' log watchers look for keepalived 2.2.7's lines (measured): "Script PATH cannot be accessed -
    No such file or directory" / "Disabling track script NAME since not found/accessible" and "Unsafe
    permissions found for script 'PATH' - disabling." / "Disabling track script NAME due to insecure"."""
    text, _ran = insecure_setup(tmp_path)
    missing = tmp_path / "nope.sh"
    text = text.replace(
        "vrrp_instance", vrrp_script("chk_missing", str(missing), weight=-20) + "vrrp_instance", 1
    ).replace("    chk_insecure\n", "    chk_insecure\n    chk_missing\n")
    d = start(lab1.node(1), "pykeepalived", text)
    d.wait_state("VI_1", "MASTER", 10.0)
    log = d.log_text()
    bad = tmp_path / "insecure.sh"
    assert f"Script {missing} cannot be accessed - No such file or directory" in log
    assert "Disabling track script chk_missing since not found/accessible" in log
    assert f"Unsafe permissions found for script '{bad}' - disabling." in log
    assert "Disabling track script chk_insecure due to insecure" in log
