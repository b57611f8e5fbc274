"""A vrrp_sync_group of two instances, one per LAN, on two pykeepalived nodes (two bridges: eth0 on
192.0.2.0/24, eth1 on 198.51.100.0/24). The group moves as one: a fault in one member on the master
takes both VIPs to the other node, a tracked script's weight on the group moves both, a weight-0
track_interface puts the group in FAULT; each comes back by preemption. The notify scripts and the
notify FIFO (read by the test) say so with keepalived's arguments.

Node 1 runs priority 150, node 2 priority 140 (advert_int 1): node 1 preempts back after its
Master_Down_Interval of 3.41 s.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lab.lab import Daemon, Lab, wait_for
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


def start(lab: Lab, tmp: Path) -> dict[int, Daemon]:
    return {n: lab.node(n).pykeepalived(config(n, tmp, tmp / f"n{n}.fifo")) for n in (1, 2)}


def both_at(lab: Lab, node: int, timeout: float) -> float:
    started = time.monotonic()
    lab.wait_who_has(VIP_A, [node], timeout)
    lab.wait_who_has(VIP_B, [node], timeout)
    return time.monotonic() - started


def wait_lines(what: str, get: Callable[[], list[str]], want: list[str], timeout: float = 5.0) -> None:
    def has_all() -> bool:
        got = get()
        return all(w in got for w in want)

    try:
        wait_for(what, has_all, timeout)
    except Exception:
        raise AssertionError(f"{what}: want {want} in {get()}") from None


def test_the_group_fails_over_together_on_a_link_down_and_preempts_back(
    sync_lab: tuple[Lab, dict[int, FifoReader]], tmp_path: Path
) -> None:
    lab, fifo = sync_lab
    d = start(lab, tmp_path)
    both_at(lab, 1, 10.0)
    d[1].wait_log(r"VRRP_Group\(G1\) Syncing instances to MASTER state", 5.0)
    notify1 = tmp_path / "n1-notify.out"
    wait_lines(
        "node 1's notify",
        lambda: lines_of(notify1),
        ["INSTANCE VI_1 MASTER 150", "INSTANCE VI_2 MASTER 150", "GROUP G1 MASTER 0"],
    )
    assert lines_of(tmp_path / "n1-group-master.out") == ["group master"]
    wait_lines(
        "node 1's FIFO",
        lambda: fifo[1].lines,
        [instance_line("VI_1", "MASTER", 150), instance_line("VI_2", "MASTER", 150), group_line("G1", "MASTER")],
    )
    wait_lines("node 2's FIFO", lambda: fifo[2].lines, [group_line("G1", "BACKUP")])

    # eth1 down on the master: VI_2 in FAULT takes VI_1 along; node 2 takes both VIPs.
    mark = len(d[1].log_text())
    set_link(lab, 1, "eth1", False)
    took = both_at(lab, 2, 6.0)
    # VI_1's priority 0 advert gets through, VI_2's cannot (its link is down): node 2's VI_2 waits
    # its Master_Down_Interval (3.45 s), and its group goes MASTER when both members want to
    assert took < 5.0, took
    d[1].wait_log(r"VRRP_Group\(G1\) Syncing instances to FAULT state", 3.0, since=mark)
    wait_lines(
        "node 1's FAULT notifies",
        lambda: lines_of(notify1),
        ["INSTANCE VI_1 FAULT 150", "INSTANCE VI_2 FAULT 150", "GROUP G1 FAULT 0"],
    )
    wait_lines("node 1's FIFO FAULT", lambda: fifo[1].lines, [group_line("G1", "FAULT")])
    wait_lines("node 2's FIFO MASTER", lambda: fifo[2].lines, [group_line("G1", "MASTER")])
    assert not lab.node(1).has(VIP_A) and not lab.node(1).has(VIP_B)

    # the link back: node 1 leaves FAULT as BACKUP and preempts both after its Master_Down_Interval
    set_link(lab, 1, "eth1", True)
    took = both_at(lab, 1, 10.0)
    assert 2.0 < took < 7.0, took
    assert lab.who_has(VIP_A) == [1] and lab.who_has(VIP_B) == [1]
    wait_lines("node 2's FIFO BACKUP again", lambda: fifo[2].lines[-3:], [group_line("G1", "BACKUP")])


def test_a_weighted_group_script_and_a_tracked_interface_move_both_vips(
    sync_lab: tuple[Lab, dict[int, FifoReader]], tmp_path: Path
) -> None:
    lab, fifo = sync_lab
    d = start(lab, tmp_path)
    both_at(lab, 1, 10.0)

    # chk fails on node 1: 150 - 20 = 130 < 140, node 2 preempts both members
    mark = len(d[1].log_text())
    (tmp_path / "n1-fail").touch()
    both_at(lab, 2, 10.0)
    d[1].wait_log(r"\(VI_1\) Changing effective priority from 150 to 130", 1.0, since=mark)
    d[1].wait_log(r"\(VI_2\) Changing effective priority from 150 to 130", 1.0, since=mark)
    (tmp_path / "n1-fail").unlink()
    both_at(lab, 1, 10.0)

    # track_interface trk (weight 0) down on node 1: VI_1 FAULT, the group with it
    mark = len(d[1].log_text())
    set_link(lab, 1, "trk", False)
    both_at(lab, 2, 5.0)
    d[1].wait_log(r"\(VI_2\) Entering FAULT STATE", 3.0, since=mark)
    wait_lines("node 1's FIFO FAULT", lambda: fifo[1].lines, [instance_line("VI_2", "FAULT", 150)])
    set_link(lab, 1, "trk", True)
    both_at(lab, 1, 10.0)
    assert "Traceback" not in d[1].log_text() and "Traceback" not in d[2].log_text()
