"""Releasing instances whose VRRP child cannot: the parent's edge for the never-two-masters
rule (vrrp_child.liveness). It removes what a MASTER instance put on the system (see
vrrp_child.holdings) in keepalived's order: routes and rules first, then the VIPs."""

from __future__ import annotations

from collections.abc import Iterable

from conf.rules import RuleEntry
from conf.vrrp import VrrpInstance
from vrrp_child import holdings
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.netlink import Rtnl
from vrrp_child.routing import Routing


def release(instances: Iterable[VrrpInstance]) -> list[str]:
    """Remove the VIPs, virtual routes and virtual rules of `instances`; the error lines
    (an address already gone is no error)."""
    vips: list[Item] = []
    routes: list[RouteItem] = []
    rules: list[RuleEntry] = []
    for conf in instances:
        ifname = holdings.vip_ifname(conf)
        if ifname is None:
            continue
        vips += holdings.vip_items(conf, ifname)
        routes += holdings.route_items(conf, ifname)
        rules += holdings.rule_items(conf)
    errors: list[str] = []
    try:
        with Rtnl() as rtnl:
            routing = Routing(rtnl)
            if routes:
                errors += routing.remove_routes(routes).errors()
            if rules:
                errors += routing.remove_rules(rules).errors()
            if vips:
                result = rtnl.remove_addresses(vips)
                errors += [f"Cannot remove VIP {f.entry.address} from {f.ifname}: {f.message}" for f in result.failed]
    except OSError as e:
        errors.append(f"cannot release the VIPs: {e.strerror or e}")
    return errors
