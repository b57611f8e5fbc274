"""track_group on static entries (vrrp_child/static_track.py): the group's instances track
the entry's interface with weight 0, so a MASTER enters FAULT when that interface loses its
carrier and comes back when it returns, as keepalived 2.2.7 does (static_track_group_init),
which runs the same scenario as the reference. The static address and route sit on x0, one end
of a veth pair in the node; x1, the other end, is taken down. `pytest -s` prints the times.

Measured here (the log is polled every 20 ms): FAULT after keepalived 0.003 s, pykeepalived
0.023 s; BACKUP after the link is back keepalived 0.002 s, pykeepalived 0.005 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from labkit.lab import Lab, wait_for

pytestmark = pytest.mark.lab

KINDS = ["pykeepalived", "keepalived"]
AT_ONCE = 0.3  # s: a weight-0 interface tracker acts on the link event itself

CONF = """
track_group G1 {
    group {
        VI_1
    }
}
static_ipaddress {
    198.51.100.1/24 dev x0 track_group G1
}
static_routes {
    203.0.113.0/24 via 198.51.100.254 dev x0 track_group G1
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance VI_2 {
    state MASTER
    interface eth0
    virtual_router_id 52
    priority 200
    advert_int 1
    virtual_ipaddress {
        192.0.2.101/24
    }
}
"""


@pytest.mark.parametrize("kind", KINDS)
def test_static_track_group(make_lab: Callable[[int], Lab], kind: str) -> None:
    node = make_lab(1).node(1)
    node.ip("link", "add", "x0", "type", "veth", "peer", "name", "x1")
    node.ip("link", "set", "x0", "up")
    node.ip("link", "set", "x1", "up")
    d = node.keepalived(CONF) if kind == "keepalived" else node.pykeepalived(CONF)
    d.wait_state("VI_1", "MASTER")
    d.wait_state("VI_2", "MASTER")
    mark = len(d.log_text())
    t0 = time.monotonic()
    node.ip("link", "set", "x1", "down")  # x0 loses its carrier
    d.wait_state("VI_1", "FAULT", since=mark)
    to_fault = time.monotonic() - t0
    # the VIP goes in the netlink batch after the log line
    wait_for("VI_1's VIP removed", lambda: not node.has("192.0.2.100"), 1.0)
    # VI_2 is not in the group: untouched
    assert "(VI_2) Entering" not in d.log_text()[mark:] and node.has("192.0.2.101")
    mark = len(d.log_text())
    t1 = time.monotonic()
    node.ip("link", "set", "x1", "up")
    d.wait_state("VI_1", "BACKUP", since=mark)
    to_backup = time.monotonic() - t1
    d.wait_state("VI_1", "MASTER", since=mark)
    print(f"\n{kind}: FAULT after {to_fault:.3f} s, BACKUP after {to_backup:.3f} s")
    assert to_fault <= AT_ONCE and to_backup <= AT_ONCE
