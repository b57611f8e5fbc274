"""vrrp_child.firewall without a kernel: the entries, the commands, the table's life."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from conf.addresses import IpAddressEntry
from conf.vrrp import VrrpInstance
from vrrp_child import droptable, firewall
from vrrp_child.droptable import Element, Firewall, JsonObj
from vrrp_child.firewall import Settings


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[JsonObj]] = []

    def run(self, commands: Sequence[JsonObj]) -> None:
        self.batches.append(list(commands))


def vip(text: str, dev: str | None = None) -> IpAddressEntry:
    return IpAddressEntry(address=ipaddress.ip_interface(text), dev=dev)


def test_elements_by_family_and_link_local() -> None:
    conf = VrrpInstance(name="VI_1", virtual_router_id=1, interface="eth0")
    items = [(vip("192.0.2.1/24"), "eth0"), (vip("2001:db8::1/64"), "eth0"), (vip("fe80::1/64"), "eth0")]
    out = droptable.elements(conf, items, Settings(), lambda name: 7)
    assert out == [
        Element("ip", "vips", "192.0.2.1"),
        Element("ip6", "vips", "2001:db8::1"),
        Element("ip6", "vips_link_local", "fe80::1", 7),
    ]
    # dont_track_primary: by name, unless nftables_ifindex
    conf = VrrpInstance(name="VI_1", virtual_router_id=1, interface="eth0", dont_track_primary=True)
    assert droptable.elements(conf, items[2:], Settings(), lambda name: 7) == [
        Element("ip6", "vips_link_local_name", "fe80::1", "eth0")
    ]
    assert droptable.elements(conf, items[2:], Settings(ifindex=True), lambda name: 7)[0].iface == 7


def test_table_priority_and_counters() -> None:
    cmds = droptable.table_commands(Settings(table="t", priority=-5, counters=True), "ip")
    chains = [c["add"]["chain"] for c in cmds if "chain" in c["add"]]  # type: ignore[index,operator]
    assert [(c["name"], c["hook"], c["prio"]) for c in chains] == [("out", "output", -5), ("in", "input", -5)]
    rules = [c["add"]["rule"] for c in cmds if "rule" in c["add"]]  # type: ignore[index,operator]
    assert all({"counter": None} in r["expr"] for r in rules)
    assert all(r["table"] == "t" for r in rules)


def test_tables_follow_the_entries() -> None:
    rec = Recorder()
    fw = Firewall(Settings(), rec)
    fw.start()
    assert [c["delete"]["table"]["family"] for c in rec.batches[0] if "delete" in c] == ["ip", "ip6"]  # type: ignore[index]
    a, b = Element("ip", "vips", "192.0.2.1"), Element("ip", "vips", "192.0.2.2")
    fw.add({a})
    assert any("table" in c.get("add", {}) for c in rec.batches[-1])  # type: ignore[operator]
    fw.add({a, b})  # the table exists: only the new element
    assert rec.batches[-1] == [
        {"add": {"element": {"family": "ip", "table": "keepalived", "name": "vips", "elem": ["192.0.2.2"]}}}
    ]
    fw.retain({b})
    assert rec.batches[-1][0]["delete"]["element"]["elem"] == ["192.0.2.1"]  # type: ignore[index]
    fw.retain(set())  # the last entry: the table goes
    assert rec.batches[-1] == [{"delete": {"table": {"family": "ip", "name": "keepalived"}}}]
    n = len(rec.batches)
    fw.close()  # nothing left
    assert len(rec.batches) == n


def test_release_tables_reports_failure() -> None:
    class Broken:
        def run(self, commands: Sequence[JsonObj]) -> None:
            raise firewall.FirewallError("Operation not permitted")

    assert firewall.release_tables("keepalived", Broken()) == [
        "cannot remove the keepalived nftables tables: Operation not permitted"
    ]
    assert firewall.release_tables("keepalived", Recorder()) == []
