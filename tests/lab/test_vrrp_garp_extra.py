"""garp_extra_if (vrrp_child/garp_extra.py): a MASTER repeats a gratuitous ARP on the other
interfaces holding its VIPs, as keepalived 2.2.7 does (vrrp_send_vmac_update), which runs the
same scenario as the reference. The VIP sits on x0, one end of a veth pair in the node; the
frames are read on the other end. `pytest -s` prints the times.

Measured here (garp_extra_if all 2, advert_int 1; the check runs at each advert, so the period
is 2 s rounded up to the next advert): keepalived gaps 2.00 2.00 2.00 s, pykeepalived 2.00 2.00 2.00 s.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from labkit.lab import Lab

pytestmark = pytest.mark.lab

KINDS = ["pykeepalived", "keepalived"]
ETH_P_ARP = b"\x08\x06"

CONF = """
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 1
    garp_master_delay 0
    garp_master_repeat 1
    garp_extra_if all 2
    virtual_ipaddress {
        192.0.2.100/24
        198.51.100.200/24 dev x0
    }
}
"""


def _is_garp_for_200(frame: bytes) -> bool:
    # ARP (ethertype 0x0806), sender and target protocol address 198.51.100.200
    return frame[12:14] == ETH_P_ARP and frame[28:32] == bytes([198, 51, 100, 200]) == frame[38:42]


@pytest.mark.parametrize("kind", KINDS)
def test_garp_extra_if(make_lab: Callable[[int], Lab], kind: str) -> None:
    node = make_lab(1).node(1)
    node.ip("link", "add", "x0", "type", "veth", "peer", "name", "x1")
    node.ip("link", "set", "x0", "up")
    node.ip("link", "set", "x1", "up")
    sniff = node.sniff("x1")
    d = node.keepalived(CONF) if kind == "keepalived" else node.pykeepalived(CONF)
    times: list[float] = []
    deadline = time.monotonic() + 15
    while len(times) < 4 and time.monotonic() < deadline:
        if sniff.frames(_is_garp_for_200, 1, timeout=deadline - time.monotonic()):
            times.append(time.monotonic())
    assert "Entering MASTER STATE" in d.log_text()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    print(f"\n{kind}: gaps between GARPs on x0 " + " ".join(f"{g:.2f}" for g in gaps))
    # the first is the MASTER's own GARP (garp_master_repeat 1), then one every 2 s, at an advert
    assert len(times) == 4
    assert all(1.9 <= g <= 3.2 for g in gaps), gaps
