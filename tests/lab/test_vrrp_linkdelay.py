"""interface_up_down_delays (vrrp_child/linkwatch.py): a carrier loss shorter than the
interface's down delay changes nothing, a longer one puts the instance in FAULT after the
delay, and it leaves FAULT the up delay after the carrier is back; as keepalived 2.2.7 does
(its update_interface_flags), which runs the same scenario as the reference. `pytest -s`
prints the times.

Measured here (down delay 1 s, up delay 0.5 s, advert_int 1): FAULT after keepalived 1.02 s,
pykeepalived 1.01 s; BACKUP after the carrier is back: keepalived 0.52 s, pykeepalived 0.51 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from labkit.lab import Lab

pytestmark = pytest.mark.lab

KINDS = ["pykeepalived", "keepalived"]
DOWN_DELAY = 1.0
UP_DELAY = 0.5
SLACK = 0.3  # s of log polling and scheduling on a busy 2-core machine

CONF = f"""
interface_up_down_delays {{
    eth0 {DOWN_DELAY} {UP_DELAY}
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 1
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
"""


@pytest.mark.parametrize("kind", KINDS)
def test_link_delays(make_lab: Callable[[int], Lab], kind: str) -> None:
    node = make_lab(1).node(1)
    d = node.keepalived(CONF) if kind == "keepalived" else node.pykeepalived(CONF)
    d.wait_state("VI_1", "MASTER")
    # a bounce shorter than the down delay: forgotten, the VIP never moves
    mark = len(d.log_text())
    node.link_down(side="switch")
    time.sleep(DOWN_DELAY / 3)
    node.link_up(side="switch")
    d.wait_log(r"eth0: Adding flags change from 0x11043 to 0x1003 delay by 1000000", since=mark)
    time.sleep(DOWN_DELAY + SLACK)
    assert "Entering FAULT" not in d.log_text()[mark:]
    assert node.has("192.0.2.100")
    # a real loss: FAULT once the down delay has run out, BACKUP the up delay after it is back
    mark = len(d.log_text())
    t0 = time.monotonic()
    node.link_down(side="switch")
    d.wait_state("VI_1", "FAULT", since=mark)
    to_fault = time.monotonic() - t0
    mark = len(d.log_text())
    t1 = time.monotonic()
    node.link_up(side="switch")
    d.wait_state("VI_1", "BACKUP", since=mark)
    to_backup = time.monotonic() - t1
    print(f"\n{kind}: FAULT after {to_fault:.3f} s, BACKUP after {to_backup:.3f} s")
    assert DOWN_DELAY - 0.05 <= to_fault <= DOWN_DELAY + SLACK
    assert UP_DELAY - 0.05 <= to_backup <= UP_DELAY + SLACK
    d.wait_state("VI_1", "MASTER", since=mark)
