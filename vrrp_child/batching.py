"""The instances' addresses, routes and rules, batched per loop pass: what every instance asks
for during one pass goes to the kernel in one netlink batch when the pass ends (250 instances
that become MASTER together cost one round trip), in keepalived's order, with the nftables
drop set of no-accept mode around it (vrrp_child.firewall)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from conf.rules import RuleEntry
from vrrp_child.firewall import ChildFirewall
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.instance import Instance
from vrrp_child.netlink import Rtnl
from watchdog.coalesce import OncePerPass

if TYPE_CHECKING:
    from vrrp_child.routing import BatchResult, Routing

log = logging.getLogger("pykeepalived_vrrp")

T = TypeVar("T", Item, RouteItem, RuleEntry)


@dataclass
class _Batch:
    adds: list[Item] = field(default_factory=list)
    removes: list[Item] = field(default_factory=list)
    route_adds: list[RouteItem] = field(default_factory=list)
    route_removes: list[RouteItem] = field(default_factory=list)
    rule_adds: list[RuleEntry] = field(default_factory=list)
    rule_removes: list[RuleEntry] = field(default_factory=list)
    then: list[Callable[[], None]] = field(default_factory=list)


class NetlinkBatch:
    """Collects the instances' requests and flushes them once per loop pass."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        rtnl: Rtnl,
        firewall: ChildFirewall,
        instances: Mapping[str, Instance],
    ) -> None:
        self.rtnl = rtnl
        self._routing: Routing | None = None
        self.firewall = firewall
        self.instances = instances  # the workload's: the firewall's holders at each flush
        self._batch = _Batch()
        self._pass = OncePerPass(loop, self._flush)

    @property
    def routing(self) -> Routing:
        """Routes and rules over rtnetlink, made (and vrrp_child.routing imported) by the first
        virtual_routes or virtual_rules: a configuration without any never loads them."""
        if self._routing is None:
            from vrrp_child.routing import Routing  # noqa: PLC0415

            self._routing = Routing(self.rtnl)
        return self._routing

    def add_vips(self, items: list[Item], then: Callable[[], None] | None = None) -> None:
        _cancel(self._batch.removes, items)
        self._batch.adds.extend(items)
        if then is not None:
            self._batch.then.append(then)
        self._pass.soon()

    def remove_vips(self, items: list[Item]) -> None:
        _cancel(self._batch.adds, items)
        self._batch.removes.extend(items)
        self._pass.soon()

    def add_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None:
        _cancel(self._batch.route_removes, routes)
        _cancel(self._batch.rule_removes, rules)
        self._batch.route_adds.extend(routes)
        self._batch.rule_adds.extend(rules)
        self._pass.soon()

    def remove_routing(self, routes: list[RouteItem], rules: list[RuleEntry]) -> None:
        _cancel(self._batch.route_adds, routes)
        _cancel(self._batch.rule_adds, rules)
        self._batch.route_removes.extend(routes)
        self._batch.rule_removes.extend(rules)
        self._pass.soon()

    def flush(self) -> None:
        """Now rather than at the end of the loop pass."""
        self._pass.run()

    def _flush(self) -> None:
        """One netlink batch for everything the instances asked this loop pass."""
        batch, self._batch = self._batch, _Batch()
        # a VIP of a non-accept master is in the drop set before it is on the interface
        fw_wanted = self.firewall.before(self.instances.values())
        # keepalived's order: routes and rules go before the VIPs they may use, and come after them
        if batch.route_removes:
            _log_failed(self.routing.remove_routes(batch.route_removes))
        if batch.rule_removes:
            _log_failed(self.routing.remove_rules(batch.rule_removes))
        if batch.removes:
            result = self.rtnl.remove_addresses(batch.removes)
            for f in result.failed:
                log.error("Cannot remove VIP %s from %s: %s", f.entry.address, f.ifname, f.message)
        if batch.adds:
            result = self.rtnl.add_addresses(batch.adds)
            for f in result.failed:
                log.error("Cannot add VIP %s to %s: %s", f.entry.address, f.ifname, f.message)
        if batch.route_adds:
            _log_failed(self.routing.add_routes(batch.route_adds))
        if batch.rule_adds:
            _log_failed(self.routing.add_rules(batch.rule_adds))
        self.firewall.after(fw_wanted)  # ... and leaves it once off the interface
        for then in batch.then:
            then()

    def remove_stale(self, instances: Iterable[Instance]) -> None:
        """keepalived removes its VIPs left on the interfaces by an earlier run when it starts
        as BACKUP; one batch for all instances."""
        items = [item for inst in instances for item in inst.vip_items()]
        if items:
            self.rtnl.prepare(items)  # encoded now: a takeover pays only for the kernel's work
            result = self.rtnl.remove_stale(items)
            for entry, ifname in result.changed:
                log.info("Removed stale VIP %s from %s", entry.address, ifname)


def _cancel(pending: list[T], items: Iterable[T]) -> None:
    """A request cancels the opposite one still pending for the same address, route or rule:
    the flush removes before it adds, so an instance that became MASTER and then BACKUP in one
    loop pass would otherwise keep its VIPs (and one that went the other way would lose them
    only for the pass). The last request is what the kernel must end with."""
    if pending:
        drop = set(items)
        pending[:] = [p for p in pending if p not in drop]


def _log_failed(result: BatchResult[Any]) -> None:
    """A routing batch's failures in keepalived's netlink error words."""
    for line in result.errors():
        log.error("%s", line)
