"""vrrp_child.batching: what reaches the kernel when instances change their minds within one
loop pass. The flush removes before it adds, so without netting out a VIP added and then removed
in the same pass (MASTER, then a better advert) would stay on a BACKUP."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterable
from pathlib import Path

from conf import load
from conf.rules import RuleEntry
from conf.vrrp import VrrpInstance
from vrrp_child import batching
from vrrp_child.firewall import ChildFirewall
from vrrp_child.holdings import Item, RouteItem, route_items, rule_items, vip_items
from vrrp_child.netlink import BatchResult
from vrrp_child.routing import BatchResult as RoutingResult
from watchdog.status import Conditions

CONF = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_routes {
        198.51.100.0/24 via 192.0.2.1
    }
    virtual_rules {
        from 192.0.2.100 table 100
    }
    virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101/24
    }
}
"""


class FakeRtnl:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def add_addresses(self, items: Iterable[Item]) -> BatchResult:
        self.calls.append(("add", [str(e.address) for e, _ in items]))
        return BatchResult()

    def remove_addresses(self, items: Iterable[Item]) -> BatchResult:
        self.calls.append(("remove", [str(e.address) for e, _ in items]))
        return BatchResult()


class FakeRouting:
    def __init__(self, calls: list[tuple[str, list[str]]]) -> None:
        self.calls = calls

    def add_routes(self, routes: Iterable[RouteItem]) -> RoutingResult[RouteItem]:
        self.calls.append(("add_routes", [str(r.to) for r, _ in routes]))
        return RoutingResult()

    def remove_routes(self, routes: Iterable[RouteItem]) -> RoutingResult[RouteItem]:
        self.calls.append(("remove_routes", [str(r.to) for r, _ in routes]))
        return RoutingResult()

    def add_rules(self, rules: Iterable[RuleEntry]) -> RoutingResult[RuleEntry]:
        self.calls.append(("add_rules", [str(len(list(rules)))]))
        return RoutingResult()

    def remove_rules(self, rules: Iterable[RuleEntry]) -> RoutingResult[RuleEntry]:
        self.calls.append(("remove_rules", [str(len(list(rules)))]))
        return RoutingResult()


def instance_conf(tmp_path: Path) -> VrrpInstance:
    path = tmp_path / "k.conf"
    path.write_text(textwrap.dedent(CONF))
    result = load(str(path), config_id="x", interfaces=frozenset({"eth0"}))
    assert result.config is not None
    return result.config.vrrp_instance["VI_1"]


def make(tmp_path: Path) -> tuple[batching.NetlinkBatch, FakeRtnl, VrrpInstance, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    rtnl = FakeRtnl()
    batch = batching.NetlinkBatch(loop, rtnl, ChildFirewall(Conditions(lambda *_: None)), {})  # type: ignore[arg-type]
    batch._routing = FakeRouting(rtnl.calls)  # type: ignore[assignment]
    return batch, rtnl, instance_conf(tmp_path), loop


def test_added_then_removed_in_one_pass_ends_removed(tmp_path: Path) -> None:
    batch, rtnl, conf, loop = make(tmp_path)
    try:
        batch.add_vips(vip_items(conf, "eth0"))
        batch.add_routing(route_items(conf, "eth0"), rule_items(conf))
        batch.remove_routing(route_items(conf, "eth0"), rule_items(conf))
        batch.remove_vips(vip_items(conf, "eth0"))
        batch.flush()
    finally:
        loop.close()
    assert rtnl.calls == [
        ("remove_routes", ["198.51.100.0/24"]),
        ("remove_rules", ["1"]),
        ("remove", ["192.0.2.100/24", "192.0.2.101/24"]),
    ]


def test_removed_then_added_in_one_pass_ends_added(tmp_path: Path) -> None:
    batch, rtnl, conf, loop = make(tmp_path)
    try:
        batch.remove_vips(vip_items(conf, "eth0"))
        batch.add_vips(vip_items(conf, "eth0")[:1])
        batch.flush()
    finally:
        loop.close()
    # the second VIP's removal stands; the first is only added
    assert rtnl.calls == [("remove", ["192.0.2.101/24"]), ("add", ["192.0.2.100/24"])]


def test_requests_of_separate_passes_all_reach_the_kernel(tmp_path: Path) -> None:
    batch, rtnl, conf, loop = make(tmp_path)
    try:
        batch.add_vips(vip_items(conf, "eth0"))
        batch.flush()
        batch.remove_vips(vip_items(conf, "eth0"))
        batch.flush()
    finally:
        loop.close()
    assert [kind for kind, _ in rtnl.calls] == ["add", "remove"]
