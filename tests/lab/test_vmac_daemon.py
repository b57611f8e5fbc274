"""use_vmac through the whole daemon, pykeepalived and keepalived 2.2.7 on the same scenario:
the MASTER's VIP sits on its macvlan `vrrp.51` (MAC 00:00:5e:00:01:33, private mode, on eth0),
and the macvlan goes at the stop. The VRRP child loads its macvlan code (vrrp_child.macvlan)
only for such an instance; tests/vrrp_child/test_vmac.py covers the sysctls and reuse."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from labkit.lab import Lab, Node

pytestmark = pytest.mark.lab

CONF = """
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    use_vmac
    virtual_router_id 51
    priority 200
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


def _vmac(node: Node) -> dict[str, Any] | None:
    links = [link for link in node.ip_json("-d", "link", "show") if link.get("ifname") == "vrrp.51"]
    return links[0] if links else None


@pytest.mark.parametrize("kind", ["pykeepalived", "keepalived"])
def test_the_master_holds_its_vip_on_its_vmac_and_removes_it_at_the_stop(
    make_lab: Callable[[int], Lab], kind: str
) -> None:
    node = make_lab(1).node(1)
    d = node.keepalived(CONF) if kind == "keepalived" else node.pykeepalived(CONF)
    d.wait_state("VI_1", "MASTER", timeout=15)
    deadline = time.monotonic() + 5
    while not node.has("192.0.2.100") and time.monotonic() < deadline:
        time.sleep(0.05)
    link = _vmac(node)
    assert link is not None, d.log_text()
    assert link["address"] == "00:00:5e:00:01:33"
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert link["linkinfo"]["info_data"]["mode"] == "private"
    held = [a["ifname"] for a in node.ip_json("addr", "show") for i in a["addr_info"] if i["local"] == "192.0.2.100"]
    assert held == ["vrrp.51"]
    d.stop()
    assert _vmac(node) is None
