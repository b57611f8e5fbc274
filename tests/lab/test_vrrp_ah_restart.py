"""`auth_type AH` across the VRRP child's restarts (vrrp_child/ah.py seq_above): pykeepalived
MASTER on node 1, keepalived 2.2.7 BACKUP on node 2, which drops any advert whose sequence
number is not above the last it accepted.

- the VRRP child is SIGKILLed: its successor resumes as MASTER and goes on above every number
  its predecessor can have used (its last state report, plus twice the advert rate since), so
  keepalived accepts its adverts and stays BACKUP (a successor counting from 0 again had its
  adverts dropped as replays and keepalived took over after Master_Down_Interval);
- the child is SIGSTOPped: the parent finds it hung and releases its VIP with an AH-sealed
  priority 0 above the same bound, so keepalived takes over after Skew_Time (0.61 s) rather
  than Master_Down_Interval (3.61 s).

Measured here: keepalived MASTER 0.61 s after the parent's release (Skew_Time 0.61 s).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from labkit.lab import Lab, wait_for
from tests.lab.test_vrrp_ah import conf

pytestmark = pytest.mark.lab

REPLAY = "already processed"


def test_ah_sequence_survives_a_child_restart_and_the_release(lab2: Lab) -> None:
    p1 = lab2.node(1).pykeepalived(conf(1, 150))
    k2 = lab2.node(2).keepalived(conf(2, 100))
    p1.wait_state("VI_1", "MASTER", timeout=10.0)
    time.sleep(3.0)  # adverts beyond the number reported on entering MASTER
    child = p1.pid_of("vrrp")
    assert child is not None
    km, pm = len(k2.log_text()), len(p1.log_text())
    os.kill(child, signal.SIGKILL)
    p1.wait_log(r"\(VI_1\) resuming as MASTER after a child restart", timeout=10.0, since=pm)
    time.sleep(5.0)  # longer than keepalived's Master_Down_Interval (3.61 s)
    assert REPLAY not in k2.log_text()[km:], k2.log_text()[km:]
    assert "Entering MASTER" not in k2.log_text()[km:]
    assert lab2.who_has("192.0.2.100") == [1]

    child = wait_for("the new VRRP child", lambda: p1.pid_of("vrrp"), 5.0)
    km, pm = len(k2.log_text()), len(p1.log_text())
    os.kill(child, signal.SIGSTOP)
    try:
        p1.wait_log(r"VRRP child process\(\d+\) hung", timeout=5.0, since=pm)
        released = time.monotonic()
        k2.wait_state("VI_1", "MASTER", timeout=5.0, since=km)
        took = time.monotonic() - released
    finally:
        with contextlib.suppress(ProcessLookupError):  # the parent has SIGKILLed it
            os.kill(child, signal.SIGCONT)
    print(f"\nkeepalived MASTER {took:.3f} s after the parent's AH priority 0")
    ktext, ptext = k2.log_text()[km:], p1.log_text()[pm:]
    assert "Backup received priority 0 advertisement" in ktext, ktext
    assert REPLAY not in ktext and "IPSEC" not in ktext, ktext
    assert "cannot send priority 0" not in ptext, ptext
    assert took < 2.0  # Skew_Time 0.61 s; without the priority 0, Master_Down_Interval 3.61 s
