"""A vrrp_sync_group of two instances, one per LAN, on two nodes (two bridges: eth0 on 192.0.2.0/24,
eth1 on 198.51.100.0/24), pykeepalived against pykeepalived and against keepalived 2.2.7 (issue 5).
The group moves as one: a fault in one member on the master takes both VIPs to the other node, a
tracked script's weight on the group moves both, a weight-0 track_interface puts the group in FAULT;
each comes back by preemption. The notify scripts and the notify FIFO (read by the test) say so with
keepalived's arguments, whichever daemon runs the node. Two samplers (one per VIP, 10 ms) show
exactly one holder per VIP outside the failover windows, and the failover times are printed
(`pytest -s`) next to keepalived's own on both nodes (the ka-ka runs: the reference, with
PYK_LAB_REFERENCE=1).

Node 1 runs priority 150, node 2 priority 140 (advert_int 1): node 1 preempts back after its
Master_Down_Interval of 3.41 s. A respawned VRRP child of the master node keeps the group MASTER.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from labkit.lab import Daemon, Lab, netns_inode, wait_for
from tests.lab.interop_checks import holders_between, longest_spell, rx_problems
from watchdog.fifo import group_line, instance_line

pytestmark = pytest.mark.lab

VIP_A = "192.0.2.100"
VIP_B = "198.51.100.100"
PRIO = {1: 150, 2: 140}
NOTIFY_SH = """#!/bin/sh
printf '%s\\n' "$*" >> {out}
"""


def second_lan(lab: Lab) -> None:
    """br1 in the switch namespace and eth1 (198.51.100.1i/24) in every node, plus a veth `trk`
    interface per node for track_interface."""
    sw = lab.switch

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    ip("-n", sw, "link", "add", "br1", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
    ip("-n", sw, "link", "set", "br1", "up")
    for node in lab.nodes:
        port = f"q{node.index}"
        ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", node.netns)
        ip("-n", sw, "link", "set", port, "master", "br1", "up")
        ip("-n", node.netns, "addr", "add", f"198.51.100.{10 + node.index}/24", "dev", "eth1")
        ip("-n", node.netns, "link", "set", "eth1", "up")
        ip("-n", node.netns, "link", "add", "trk", "type", "veth", "peer", "name", "trkp")
        ip("-n", node.netns, "link", "set", "trkp", "up")
        ip("-n", node.netns, "link", "set", "trk", "up")

    def ready() -> bool:
        out = subprocess.run(["ip", "-n", lab.switch, "-br", "link"], capture_output=True, text=True).stdout
        return all(f"q{n.index}@" in out and " UP " in out.split(f"q{n.index}@")[1].split("\n")[0] for n in lab.nodes)

    wait_for("second LAN up", ready, 5.0)


def set_link(lab: Lab, node: int, ifname: str, up: bool) -> None:
    state = "up" if up else "down"
    subprocess.run(["ip", "-n", lab.node(node).netns, "link", "set", ifname, state], check=True, timeout=10)


class FifoReader:
    """Reads notify FIFO lines in a thread; the FIFO is opened read-write, so it never sees EOF."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.lines: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        while not self._stop:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            with contextlib.suppress(BlockingIOError):
                buf += os.read(self.fd, 65536)
            *done, buf = buf.split(b"\n")
            self.lines += [line.decode() for line in done]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2.0)
        os.close(self.fd)


def config(node: int, tmp: Path, fifo: Path) -> str:
    notify = tmp / f"n{node}-notify.sh"
    notify.write_text(NOTIFY_SH.format(out=tmp / f"n{node}-notify.out"))
    notify.chmod(0o755)
    master = tmp / f"n{node}-group-master.sh"
    master.write_text(NOTIFY_SH.format(out=tmp / f"n{node}-group-master.out"))
    master.chmod(0o755)
    flag = tmp / f"n{node}-fail"
    prio = PRIO[node]
    return f"""
global_defs {{
    router_id node{node}
    script_user root
    vrrp_notify_fifo {fifo}
}}
vrrp_script chk {{
    script "/usr/bin/test ! -e {flag}"
    interval 1
    weight -20
}}
vrrp_sync_group G1 {{
    group {{
        VI_1
        VI_2
    }}
    track_script {{
        chk
    }}
    notify {notify}
    notify_master "{master} group master"
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {prio}
    advert_int 1
    notify {notify}
    track_interface {{
        trk
    }}
    virtual_ipaddress {{
        {VIP_A}/24
    }}
}}
vrrp_instance VI_2 {{
    state BACKUP
    interface eth1
    virtual_router_id 52
    priority {prio}
    advert_int 1
    notify {notify}
    virtual_ipaddress {{
        {VIP_B}/24 dev eth1
    }}
}}
"""


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def sync_lab(lab2: Lab, tmp_path: Path) -> Iterator[tuple[Lab, dict[int, FifoReader]]]:
    second_lan(lab2)
    readers = {n: FifoReader(tmp_path / f"n{n}.fifo") for n in (1, 2)}
    try:
        yield lab2, readers
    finally:
        for r in readers.values():
            r.close()


Kind = Literal["pykeepalived", "keepalived"]
PYK: Kind = "pykeepalived"
KA: Kind = "keepalived"
# node 1 (priority 150, the master) and node 2 (140); ka-ka is keepalived doing the same: the reference
# timings, which test none of our code, so they run only with PYK_LAB_REFERENCE=1 (suite time).
KINDS = [(PYK, PYK), (PYK, KA), (KA, PYK)] + ([(KA, KA)] if os.environ.get("PYK_LAB_REFERENCE") else [])
KIND_IDS = ["pyk-pyk", "pyk-ka", "ka-pyk", "ka-ka"][: len(KINDS)]
SHORT = {PYK: "pyk", KA: "ka"}
# How long two holders (preemption handover) may last: the returning master's advert and VIPs, the old
# master's removal of its VIPs on that advert, for each member.
MAX_HANDOVER = 0.15


def start(lab: Lab, tmp: Path, kinds: tuple[Kind, Kind] = (PYK, PYK)) -> dict[int, Daemon]:
    """Node 1, then node 2 once node 1 holds both VIPs: started together, a slow start of node 1 on a
    loaded machine lets node 2's timers run out first (node 1 then preempts), which these tests are not
    about."""
    d = {1: getattr(lab.node(1), kinds[0])(config(1, tmp, tmp / "n1.fifo"))}
    both_at(lab, 1, 10.0)
    d[2] = getattr(lab.node(2), kinds[1])(config(2, tmp, tmp / "n2.fifo"))
    for name in ("VI_1", "VI_2"):
        d[2].wait_state(name, "BACKUP", 10.0)
    return d


def both_at(lab: Lab, node: int, timeout: float) -> float:
    started = time.monotonic()
    lab.wait_who_has(VIP_A, [node], timeout)
    lab.wait_who_has(VIP_B, [node], timeout)
    return time.monotonic() - started


class Holders:
    """A sampler per VIP: when both VIPs reached a holder, and what was seen in a window."""

    def __init__(self, lab: Lab) -> None:
        self.s = {vip: lab.sampler(vip) for vip in (VIP_A, VIP_B)}

    def both(self, node: int, since: float, timeout: float) -> float:
        """When both VIPs are held by `node` alone (the later of the two), in seconds after `since`."""
        return max(s.wait_holders([node], timeout, since=since).t for s in self.s.values()) - since

    def seen(self, since: float, until: float | None = None) -> set[tuple[int, ...]]:
        return set().union(*(holders_between(s.samples, since, until) for s in self.s.values()))

    def only(self, node: int, since: float, until: float | None = None) -> None:
        """Exactly `node` held each VIP at every sample of the window."""
        seen = self.seen(since, until)
        assert seen == {(node,)}, f"holders {sorted(seen)} where only node {node} should hold both VIPs"

    def handover(self, since: float, until: float) -> float:
        """The longest time a VIP had two holders."""
        return max(longest_spell(s.samples, lambda h: len(h) > 1, since, until) for s in self.s.values())

    def stop(self) -> None:
        for s in self.s.values():
            s.stop()


@dataclass
class Timing:
    """Seconds, for the report (pytest -s)."""

    kinds: tuple[Kind, Kind]
    values: dict[str, float] = field(default_factory=dict)

    def report(self, scenario: str) -> None:
        tag = "-".join(SHORT[k] for k in self.kinds)
        parts = ", ".join(f"{k} {v:.3f} s" for k, v in self.values.items())
        print(f"\n[sync {scenario} {tag}] {parts}")


def wait_lines(what: str, get: Callable[[], list[str]], want: list[str], timeout: float = 5.0) -> None:
    def has_all() -> bool:
        got = get()
        return all(w in got for w in want)

    try:
        wait_for(what, has_all, timeout)
    except Exception:
        raise AssertionError(f"{what}: want {want} in {get()}") from None


@pytest.mark.parametrize("kinds", KINDS, ids=KIND_IDS)
def test_the_group_fails_over_together_on_a_link_down_and_preempts_back(
    sync_lab: tuple[Lab, dict[int, FifoReader]], tmp_path: Path, kinds: tuple[Kind, Kind]
) -> None:
    lab, fifo = sync_lab
    h = Holders(lab)
    d = start(lab, tmp_path, kinds)
    t = Timing(kinds)
    both_at(lab, 1, 10.0)
    d[1].wait_log(r"VRRP_Group\(G1\) Syncing instances to MASTER state", 5.0)
    notify1 = tmp_path / "n1-notify.out"
    wait_lines(
        "node 1's notify",
        lambda: lines_of(notify1),
        ["INSTANCE VI_1 MASTER 150", "INSTANCE VI_2 MASTER 150", "GROUP G1 MASTER 0"],
    )
    # notify_master and notify are separate scripts: either may finish first
    wait_lines("node 1's notify_master", lambda: lines_of(tmp_path / "n1-group-master.out"), ["group master"])
    assert lines_of(tmp_path / "n1-group-master.out") == ["group master"]
    wait_lines(
        "node 1's FIFO",
        lambda: fifo[1].lines,
        [instance_line("VI_1", "MASTER", 150), instance_line("VI_2", "MASTER", 150), group_line("G1", "MASTER")],
    )
    wait_lines("node 2's FIFO", lambda: fifo[2].lines, [group_line("G1", "BACKUP")])
    steady = time.monotonic()
    time.sleep(1.0)

    # eth1 down on the master: VI_2 in FAULT takes VI_1 along; node 2 takes both VIPs.
    mark = len(d[1].log_text())
    down = time.monotonic()
    h.only(1, steady, down)
    set_link(lab, 1, "eth1", False)
    took = h.both(2, down, 6.0)
    t.values["link down"] = took
    # VI_1's priority 0 advert gets through, VI_2's cannot (its link is down): node 2's VI_2 waits
    # its Master_Down_Interval (3.45 s), and its group goes MASTER when both members want to
    assert took < 5.0, took
    # node 1 lets go, node 2 takes over: never two holders
    assert h.seen(down, down + took - 0.02) <= {(1,), (), (2,)}
    d[1].wait_log(r"VRRP_Group\(G1\) Syncing instances to FAULT state", 3.0, since=mark)
    wait_lines(
        "node 1's FAULT notifies",
        lambda: lines_of(notify1),
        ["INSTANCE VI_1 FAULT 150", "INSTANCE VI_2 FAULT 150", "GROUP G1 FAULT 0"],
    )
    wait_lines("node 1's FIFO FAULT", lambda: fifo[1].lines, [group_line("G1", "FAULT")])
    wait_lines("node 2's FIFO MASTER", lambda: fifo[2].lines, [group_line("G1", "MASTER")])
    assert not lab.node(1).has(VIP_A) and not lab.node(1).has(VIP_B)
    time.sleep(0.5)

    # the link back: node 1 leaves FAULT as BACKUP and preempts both after its Master_Down_Interval
    up = time.monotonic()
    h.only(2, down + took, up)
    set_link(lab, 1, "eth1", True)
    back = h.both(1, up, 10.0)
    t.values["preempt after link up"] = back
    assert 2.0 < back < 7.0, back
    t.values["handover"] = h.handover(up, up + back)
    assert t.values["handover"] <= MAX_HANDOVER, t.values
    assert h.seen(up, up + back - 0.02) <= {(2,), (1, 2), (), (1,)}
    wait_lines("node 2's FIFO BACKUP again", lambda: fifo[2].lines[-3:], [group_line("G1", "BACKUP")])
    time.sleep(1.0)
    h.only(1, up + back)
    h.stop()
    t.report("link")
    for n in (1, 2):
        assert rx_problems(d[n].log_text()) == [], (kinds[n - 1], rx_problems(d[n].log_text()))


@pytest.mark.parametrize("kinds", KINDS, ids=KIND_IDS)
def test_a_weighted_group_script_and_a_tracked_interface_move_both_vips(
    sync_lab: tuple[Lab, dict[int, FifoReader]], tmp_path: Path, kinds: tuple[Kind, Kind]
) -> None:
    lab, fifo = sync_lab
    h = Holders(lab)
    d = start(lab, tmp_path, kinds)
    t = Timing(kinds)
    both_at(lab, 1, 10.0)
    steady = time.monotonic()
    time.sleep(0.5)

    # chk fails on node 1: 150 - 20 = 130 < 140, node 2 preempts both members
    mark = len(d[1].log_text())
    failed = time.monotonic()
    h.only(1, steady, failed)
    (tmp_path / "n1-fail").touch()
    took = h.both(2, failed, 10.0)
    t.values["script fails"] = took
    d[1].wait_log(r"\(VI_1\) Changing effective priority from 150 to 130", 1.0, since=mark)
    d[1].wait_log(r"\(VI_2\) Changing effective priority from 150 to 130", 1.0, since=mark)
    t.values["handover 1"] = h.handover(failed, failed + took)
    time.sleep(0.5)
    fixed = time.monotonic()
    h.only(2, failed + took, fixed)
    (tmp_path / "n1-fail").unlink()
    back = h.both(1, fixed, 10.0)
    t.values["script recovers"] = back
    t.values["handover 2"] = h.handover(fixed, fixed + back)
    time.sleep(0.5)

    # track_interface trk (weight 0) down on node 1: VI_1 FAULT, the group with it
    mark = len(d[1].log_text())
    down = time.monotonic()
    h.only(1, fixed + back, down)
    set_link(lab, 1, "trk", False)
    took = h.both(2, down, 5.0)
    t.values["track_interface down"] = took
    assert h.seen(down, down + took - 0.02) <= {(1,), (), (2,)}
    d[1].wait_log(r"\(VI_2\) Entering FAULT STATE", 3.0, since=mark)
    wait_lines("node 1's FIFO FAULT", lambda: fifo[1].lines, [instance_line("VI_2", "FAULT", 150)])
    time.sleep(0.5)
    up = time.monotonic()
    h.only(2, down + took, up)
    set_link(lab, 1, "trk", True)
    back = h.both(1, up, 10.0)
    t.values["track_interface up"] = back
    t.values["handover 3"] = h.handover(up, up + back)
    time.sleep(0.5)
    h.only(1, up + back)
    h.stop()
    t.report("script+trk")
    assert max(v for k, v in t.values.items() if k.startswith("handover")) <= MAX_HANDOVER, t.values
    for n in (1, 2):
        assert rx_problems(d[n].log_text()) == [], (kinds[n - 1], rx_problems(d[n].log_text()))


@pytest.mark.parametrize("peer", [PYK, KA], ids=["pyk-pyk", "pyk-ka"])
def test_a_respawned_vrrp_child_keeps_the_group_master(
    sync_lab: tuple[Lab, dict[int, FifoReader]], tmp_path: Path, peer: Kind
) -> None:
    """SIGKILL of node 1's VRRP child: the parent respawns it, it resumes both members and the
    group as MASTER (no election, the VIPs never leave), and the group's notify_master and FIFO
    line do not come again."""
    lab, fifo = sync_lab
    h = Holders(lab)
    d = start(lab, tmp_path, (PYK, peer))
    both_at(lab, 1, 10.0)
    wait_lines("node 1's FIFO", lambda: fifo[1].lines, [group_line("G1", "MASTER")])
    time.sleep(1.0)
    child = d[1].pid_of("vrrp")
    assert child is not None and child != d[1].pid
    assert os.stat(f"/proc/{child}/ns/net").st_ino == netns_inode(lab.node(1).netns)
    m1, m2 = len(d[1].log_text()), len(d[2].log_text())
    killed = time.monotonic()
    os.kill(child, signal.SIGKILL)
    for inst in ("VI_1", "VI_2"):
        d[1].wait_log(rf"\({inst}\) resuming as MASTER after a child restart", 5.0, since=m1)
    d[1].wait_log(r"VRRP_Group\(G1\) resuming as MASTER after a child restart", 1.0, since=m1)
    resumed = time.monotonic() - killed
    assert d[1].pid_of("vrrp") not in (None, child)
    # past node 2's Master_Down_Interval (3.45 s) from the last advert before the kill
    time.sleep(4.5)
    h.only(1, killed)
    h.stop()
    print(f"\n[sync respawn pyk-{SHORT[peer]}] the group resumed as MASTER {resumed:.3f} s after the SIGKILL")
    assert "Entering MASTER STATE" not in d[2].log_text()[m2:]
    assert "Syncing instances to MASTER state" not in d[1].log_text()[m1:]
    assert lines_of(tmp_path / "n1-group-master.out") == ["group master"]
    assert fifo[1].lines.count(group_line("G1", "MASTER")) == 1
