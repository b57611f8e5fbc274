"""Never two masters under faults of the daemon itself (the hold rule, vrrp_child.liveness).

Each test provokes one fault that made two masters before the rule existed, with the numbers
measured then, and samples who holds the VIP every 10 ms:
- SIGKILLs of the master's VRRP child 2.5 s apart: the respawn backoff (0, 1, 2, 4, 8 s) kept the
  child dead past the peer's Master_Down_Interval while the VIP stayed (0.86 s on both nodes);
- a SIGSTOPped VRRP child with VRRPv3 advert_int 0.2: the peer took over after 0.97 s, the parent
  noticed after its 3 s heartbeat timeout (1.65 s on both nodes);
- SIGTERM to the parent while the VRRP child waits for its respawn: the VIP stayed with no daemon;
- the parent SIGKILLed while its VRRP child is stopped, and a new daemon started: the old child,
  continued, removed the new one's VIPs (31 s and counting without any VIP);
- a slow parent (SIGSTOPped past the heartbeat timeout) must not kill healthy children.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from typing import Literal

import pytest

from labkit.configs import VIP, config, instance
from labkit.lab import ROOT, Daemon, Lab, Sample, longest_overlap, wait_for
from tests.lab.test_vrrp_pyk import start

pytestmark = pytest.mark.lab

Peer = Literal["pykeepalived", "keepalived"]

# A preemption's own overlap (the new master adds its VIP before the old one hears its advert).
PREEMPT_OVERLAP = 0.1


def double_windows(samples: list[Sample], since: float) -> float:
    return longest_overlap([x for x in samples if x.t >= since])


def longest_missing(samples: list[Sample], since: float) -> float:
    """The longest time nobody held the address (from the first empty sample to the next held one)."""
    longest, start = 0.0, None
    for x in samples:
        if x.t < since:
            continue
        if not x.holders and start is None:
            start = x.t
        elif x.holders and start is not None:
            longest, start = max(longest, x.t - start), None
    return longest


def start_pair(lab: Lab, peer: Peer, node1: str, node2: str) -> dict[int, Daemon]:
    """pykeepalived on node 1 (the master under test), `peer` on node 2."""
    daemons = {1: lab.node(1).pykeepalived(node1)}
    node = lab.node(2)
    daemons[2] = node.keepalived(node2) if peer == "keepalived" else node.pykeepalived(node2)
    return daemons


@pytest.mark.parametrize("peer", ["pykeepalived", "keepalived"])
def test_repeated_child_kills_in_backoff_never_make_two_masters(lab2: Lab, peer: Peer) -> None:
    d = start_pair(lab2, peer, config(1, instance(prio=200, state="MASTER")), config(2, instance(prio=100)))
    s = lab2.sampler(VIP)
    s.wait_holders([1], timeout=10.0)
    time.sleep(1.0)
    first = time.monotonic()
    for _ in range(5):
        child = wait_for("a VRRP child", lambda: d[1].pid_of("vrrp"), 15.0)
        os.kill(child, signal.SIGKILL)
        time.sleep(2.5)
    # The last kill's backoff (8 s) outlasts the peer's Master_Down_Interval: node 2 takes over,
    # node 1's parent released the VIP before that; the respawned child preempts back later.
    s.wait(lambda h: h == (1,), timeout=30.0, since=time.monotonic() + 1.0)
    overlap, missing = double_windows(s.samples, first), longest_missing(s.samples, first)
    log = d[1].log_text()
    print(f"\n[{peer} peer] 5 SIGKILLs 2.5 s apart: on both nodes {overlap:.3f} s, on none {missing:.3f} s")
    assert re.search(r"\(VI_1\) VRRP child process not running: removing VIPs", log), log[-3000:]
    assert overlap < PREEMPT_OVERLAP
    # The parent's priority-0 advert hands over after the peer's Skew_Time (0.61 s), not its
    # Master_Down_Interval (3.61 s); generous for a loaded machine.
    assert missing < 1.5
    assert "Traceback" not in log


@pytest.mark.parametrize("peer", ["pykeepalived", "keepalived"])
def test_stopped_child_with_fast_adverts_is_found_hung_before_the_peer_takes_over(lab2: Lab, peer: Peer) -> None:
    d = start_pair(
        lab2,
        peer,
        config(1, instance(prio=200, state="MASTER", version=3, advert_int="0.2")),
        config(2, instance(prio=100, version=3, advert_int="0.2")),
    )
    s = lab2.sampler(VIP)
    s.wait_holders([1], timeout=10.0)
    time.sleep(1.0)
    child = d[1].pid_of("vrrp")
    assert child is not None
    m = len(d[1].log_text())
    stopped = time.monotonic()
    os.kill(child, signal.SIGSTOP)
    try:
        hung = d[1].wait_log(r"VRRP child process\(\d+\) hung: no heartbeat for ([\d.]+) s", timeout=5.0, since=m)
        s.wait(lambda h: 2 in h, timeout=5.0, since=stopped)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the parent has SIGKILLed it
            os.kill(child, signal.SIGCONT)
    s.wait(lambda h: h == (1,), timeout=10.0, since=time.monotonic() + 0.5)
    overlap, missing = double_windows(s.samples, stopped), longest_missing(s.samples, stopped)
    print(
        f"\n[{peer} peer] SIGSTOPped child (v3, advert_int 0.2): hung after {hung.group(1)} s, "
        f"on both nodes {overlap:.3f} s, on none {missing:.3f} s"
    )
    assert missing < 0.6  # Skew_Time 0.12 s after the release (Master_Down_Interval: 0.72 s)
    assert float(hung.group(1)) < 0.6  # 2 x advert_int bounded by the hold time (0.35 s), plus a loop pass
    assert overlap < PREEMPT_OVERLAP
    assert "Traceback" not in d[1].log_text()


def test_sigterm_while_the_child_waits_for_its_respawn_releases_the_vips(lab2: Lab) -> None:
    d = start(lab2, {1: config(1, instance(prio=200, state="MASTER")), 2: config(2, instance(prio=100))})
    s = lab2.sampler(VIP)
    s.wait_holders([1], timeout=10.0)
    # Two quick deaths: the second one waits 1 s for its respawn, the third 2 s.
    for _ in range(3):
        child = wait_for("a VRRP child", lambda: d[1].pid_of("vrrp"), 15.0)
        os.kill(child, signal.SIGKILL)
        time.sleep(0.3)
    assert "delayed" in d[1].log_text()
    assert lab2.node(1).has(VIP)  # within the hold time the VIP stays (a quick respawn resumes)
    assert d[1].stop() == 0
    assert not lab2.node(1).has(VIP)
    s.wait(lambda h: h == (2,), timeout=10.0)
    assert longest_overlap(s.samples) < PREEMPT_OVERLAP


def test_a_new_daemon_never_runs_beside_a_child_of_a_dead_parent(lab2: Lab) -> None:
    node = lab2.node(1)
    d = node.pykeepalived(config(1, instance(prio=200, state="MASTER")))
    wait_for("VIP", lambda: node.has(VIP), 10.0)
    child = d.pid_of("vrrp")
    assert child is not None
    os.kill(child, signal.SIGSTOP)
    os.kill(d.pid, signal.SIGKILL)  # the OOM killer's choice
    d.wait(5.0)
    argv = [sys.executable, "-m", "haparent.cli", "-n", "-l", "-G", "-f", str(d.config)]
    argv += ["-p", str(d.pidfiles["parent"]), "-r", str(d.pidfiles["vrrp"]), "-c", str(d.pidfiles["checker"])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        refused = subprocess.run(
            ["ip", "netns", "exec", node.netns, *argv], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        print(f"\nsecond daemon: exit {refused.returncode}: {refused.stderr.strip()}")
        assert refused.returncode == 75  # EX_TEMPFAIL: systemd's Restart= tries again
        assert f"(pid {child}) is still running" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert node.has(VIP)  # nothing was touched
    finally:
        os.kill(child, signal.SIGCONT)
    # The continued child sees its parent gone, releases and exits; then a new daemon starts.
    wait_for("the old child to exit", lambda: not os.path.exists(f"/proc/{child}"), 10.0)
    assert not node.has(VIP)
    d.start()
    wait_for("VIP again", lambda: node.has(VIP), 10.0)


def test_a_stopped_parent_does_not_kill_healthy_children(lab2: Lab) -> None:
    d = start(lab2, {1: config(1, instance(prio=200, state="MASTER")), 2: config(2, instance(prio=100))})
    s = lab2.sampler(VIP)
    first = s.wait_holders([1], timeout=10.0)
    child = d[1].pid_of("vrrp")
    m = len(d[1].log_text())
    os.kill(d[1].pid, signal.SIGSTOP)
    time.sleep(4.0)  # longer than --heartbeat-timeout (3 s)
    os.kill(d[1].pid, signal.SIGCONT)
    time.sleep(2.0)
    assert d[1].pid_of("vrrp") == child
    assert "hung" not in d[1].log_text()[m:]
    assert all(x.holders == (1,) for x in s.samples if x.t > first.t)
