"""vrrp_child.vmac: names and MACs (pure), then the macvlan and its sysctls for real,
compared with what keepalived 2.2.7 does in the same namespace (node 1 of a `Lab.pair()` of
labkit/lab.py, interface va)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import conf
from conf.vrrp import VrrpInstance
from labkit.lab import Lab, Node
from tests.vrrp_child.conftest import needs_root
from vrrp_child.macvlan import VmacManager, eui64_link_local
from vrrp_child.netlink import Rtnl
from vrrp_child.vmac import VmacError, VmacSpec, vmac_address, vmac_name


def test_vmac_address_and_name() -> None:
    assert vmac_address(51, 4) == "00:00:5e:00:01:33"
    assert vmac_address(255, 6) == "00:00:5e:00:02:ff"
    assert vmac_address(7, 4, "2:0:0:0:5") == "02:00:00:00:05:07"
    assert vmac_address(7, 6, "02:00:00:00:05:AA") == "02:00:00:00:05:aa"
    assert vmac_name(9) == "vrrp.9" and vmac_name(9, "vmac9") == "vmac9"
    assert str(eui64_link_local("52:54:00:12:34:56")) == "fe80::5054:ff:fe12:3456"
    assert eui64_link_local("") is None


def instances(tmp_path: Path, body: str) -> dict[str, VrrpInstance]:
    path = tmp_path / "keepalived.conf"
    path.write_text(body)
    config = conf.load(str(path)).config
    assert config is not None
    return dict(config.vrrp_instance.items())


def test_spec_from_config(tmp_path: Path) -> None:
    insts = instances(
        tmp_path,
        """
vrrp_instance A {
    interface eth0
    virtual_router_id 10
    use_vmac
    virtual_ipaddress { 192.0.2.1 }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 11
    use_vmac vmacB 02:11:22:33:44
    vmac_xmit_base
    virtual_ipaddress { 2001:db8::1 }
}
vrrp_instance C {
    interface eth0
    virtual_router_id 12
    virtual_ipaddress { 192.0.2.2 }
}
""",
    )
    a, b = VmacSpec.of(insts["A"]), VmacSpec.of(insts["B"])
    assert a == VmacSpec("vrrp.10", "eth0", "00:00:5e:00:01:0a", 4, 10, False)
    assert b == VmacSpec("vmacB", "eth0", "02:11:22:33:44:0b", 6, 11, True)
    assert VmacSpec.of(insts["C"]) is None


# ---------------------------------------------------------------- in a namespace


@pytest.fixture
def ns(pair: Lab) -> Node:
    """Node 1: va, 192.0.2.1/24, 2001:db8::1/64, fe80::1/64."""
    return pair.node(1)


@pytest.fixture
def manager(ns: Node) -> Iterator[VmacManager]:
    rtnl = ns.call(Rtnl)
    try:
        yield VmacManager(rtnl)
    finally:
        rtnl.close()


SPEC4 = VmacSpec("vrrp.51", "va", "00:00:5e:00:01:33", 4, 51)
SPEC6 = VmacSpec("vrrp.52", "va", "00:00:5e:00:02:34", 6, 52)

V4_KEYS = ("arp_ignore", "arp_filter", "rp_filter", "accept_local", "promote_secondaries")


def snapshot(ns: Node) -> dict[str, Any]:
    """The VMACs and sysctls keepalived's behaviour is about."""
    out: dict[str, Any] = {}
    for link in ns.ip_json("-d", "link", "show"):
        name = link["ifname"]
        if not name.startswith("vrrp."):
            continue
        info = link["linkinfo"]
        (addrs,) = ns.ip_json("addr", "show", "dev", name)
        out[name] = {
            "kind": info["info_kind"],
            "mode": info["info_data"]["mode"],
            "mac": link["address"],
            "up": "UP" in link["flags"],
            "addrgenmode": link.get("inet6_addr_gen_mode"),
            "addresses": sorted(
                (a["local"], a["prefixlen"], a.get("nodad", False), a["preferred_life_time"])
                for a in addrs["addr_info"]
            ),
        }
    for dev in ("all", "default", "va", "vrrp.51", "vrrp.52"):
        for key in V4_KEYS:
            value = _sysctl_or_none(ns, f"ipv4/conf/{dev}/{key}")
            if value is not None:
                out[f"{dev}.{key}"] = value
        for key in ("disable_ipv6", "addr_gen_mode"):
            value = _sysctl_or_none(ns, f"ipv6/conf/{dev}/{key}")
            if value is not None and dev.startswith("vrrp."):
                out[f"{dev}.v6.{key}"] = value
    return out


def _sysctl_or_none(ns: Node, path: str) -> str | None:
    try:
        return ns.sysctl(path)
    except OSError:
        return None


@pytest.mark.lab
@needs_root
def test_ipv4_vmac_created_configured_and_deleted(ns: Node, manager: VmacManager) -> None:
    before = snapshot(ns)
    with ns.inside():
        vmac = manager.ensure(SPEC4)
    assert vmac.created and vmac.advert_ifname == vmac.garp_ifname == "vrrp.51"
    (link,) = ns.ip_json("-d", "link", "show", "dev", "vrrp.51")
    assert link["ifindex"] == vmac.index and link["link"] == "va"
    assert link["address"] == "00:00:5e:00:01:33"
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert link["linkinfo"]["info_data"]["mode"] == "private"
    assert link["operstate"] in ("UP", "UNKNOWN") and "UP" in link["flags"]
    during = snapshot(ns)
    assert during["vrrp.51"]["addresses"] == []  # no EUI-64 link-local, IPv6 is off
    for key, value in {"arp_ignore": "1", "accept_local": "1", "rp_filter": "0", "promote_secondaries": "1"}.items():
        assert during[f"vrrp.51.{key}"] == value
    assert during["vrrp.51.v6.disable_ipv6"] == "1" and during["vrrp.51.v6.addr_gen_mode"] == "1"
    assert during["va.arp_ignore"] == during["va.arp_filter"] == "1"

    with ns.inside():
        assert manager.delete("vrrp.51")
        assert not manager.delete("vrrp.51")
    assert not [link for link in ns.ip_json("link", "show") if link["ifname"] == "vrrp.51"]
    assert snapshot(ns) == before


@pytest.mark.lab
@needs_root
def test_rp_filter_is_cleared_and_restored(ns: Node, manager: VmacManager) -> None:
    with ns.inside():
        for path, value in (("all", 1), ("va", 0), ("default", 2)):
            Path(f"/proc/sys/net/ipv4/conf/{path}/rp_filter").write_text(str(value))
        manager.ensure(SPEC4)
    assert ns.sysctl("ipv4/conf/all/rp_filter") == "0"
    assert ns.sysctl("ipv4/conf/va/rp_filter") == "1"  # raised to all's 1
    assert ns.sysctl("ipv4/conf/default/rp_filter") == "2"  # already stricter
    assert ns.sysctl("ipv4/conf/lo/rp_filter") == "0"
    assert ns.sysctl("ipv4/conf/vrrp.51/rp_filter") == "0"
    with ns.inside():
        manager.delete_all()
    assert [ns.sysctl(f"ipv4/conf/{p}/rp_filter") for p in ("all", "va", "default")] == ["1", "0", "2"]


@pytest.mark.lab
@needs_root
def test_ipv6_vmac_gets_the_base_link_local(ns: Node, manager: VmacManager) -> None:
    with ns.inside():
        vmac = manager.ensure(VmacSpec("vrrp.52", "va", "00:00:5e:00:02:34", 6, 52, xmit_base=True))
    assert vmac.advert_ifname == "va" and vmac.garp_ifname == "vrrp.52"
    state = snapshot(ns)["vrrp.52"]
    assert state["mac"] == "00:00:5e:00:02:34" and state["mode"] == "private"
    # The base's fe80::1, without DAD and deprecated; nothing generated from the VMAC.
    assert state["addresses"] == [("fe80::1", 64, True, 0)]
    assert ns.sysctl("ipv4/conf/va/arp_ignore") == "0"  # IPv4 ARP is not its business


@pytest.mark.lab
@needs_root
def test_existing_macvlan_is_reused_and_foreign_name_refused(ns: Node, manager: VmacManager) -> None:
    ns.ip("link", "add", "link", "va", "name", "vrrp.51", "address", "02:00:00:00:00:51", "type", "macvlan")
    ns.ip("link", "add", "vrrp.9", "type", "veth", "peer", "name", "vrrp.9p")
    with ns.inside():
        vmac = manager.ensure(SPEC4)
        with pytest.raises(VmacError, match="not a macvlan"):
            manager.ensure(VmacSpec("vrrp.9", "va", "00:00:5e:00:01:09", 4, 9))
        with pytest.raises(VmacError, match="no interface"):
            manager.ensure(VmacSpec("vrrp.8", "nosuch0", "00:00:5e:00:01:08", 4, 8))
    assert not vmac.created
    (link,) = ns.ip_json("link", "show", "dev", "vrrp.51")
    assert link["address"] == "00:00:5e:00:01:33" and "UP" in link["flags"]
    with ns.inside():
        manager.delete_all()
    names = {link["ifname"] for link in ns.ip_json("link", "show")}
    assert "vrrp.51" not in names and "vrrp.9" in names  # the foreign one is left alone


KEEPALIVED_VMAC = """
vrrp_instance V4 {
    interface va
    use_vmac
    state MASTER
    virtual_router_id 51
    priority 255
    advert_int 1
    virtual_ipaddress {
        192.0.2.51/24
    }
}
vrrp_instance V6 {
    interface va
    use_vmac
    state MASTER
    virtual_router_id 52
    priority 255
    advert_int 1
    virtual_ipaddress {
        2001:db8::52/64
    }
}
"""


def _wait_for(ns: Node, names: set[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if names <= {link["ifname"] for link in ns.ip_json("link", "show")}:
            time.sleep(1.0)  # keepalived sets its sysctls right after creating them
            return
        time.sleep(0.1)
    raise AssertionError(f"{names} did not appear")


@pytest.mark.lab
@needs_root
@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
def test_same_vmacs_and_sysctls_as_keepalived() -> None:
    """keepalived 2.2.7 and we, each in a fresh lab with all.rp_filter 1: the VMACs, their
    own addresses and every sysctl keepalived touches are the same."""
    with Lab.pair() as theirs:
        a = theirs.node(1)
        a.write_sysctl("ipv4/conf/all/rp_filter", 1)
        with a.keepalived(KEEPALIVED_VMAC, args=["-P"]):
            _wait_for(a, {"vrrp.51", "vrrp.52"})
            expected = snapshot(a)
    for name in ("vrrp.51", "vrrp.52"):  # keepalived is master by now: its VIPs are not the VMAC's
        vmac = expected[name]
        vmac["addresses"] = [a for a in vmac["addresses"] if a[0] not in ("192.0.2.51", "2001:db8::52")]
    with Lab.pair() as ours:
        a = ours.node(1)
        with a.inside():
            Path("/proc/sys/net/ipv4/conf/all/rp_filter").write_text("1")
            rtnl = Rtnl()
            mine = VmacManager(rtnl)
            mine.ensure(SPEC4)
            mine.ensure(SPEC6)
        got = snapshot(a)
        with a.inside():
            mine.delete_all()
            rtnl.close()
    assert got == expected
