"""Tracked VIPs, virtual routes and virtual rules (keepalived's netlink reflector, 2.2.7).

When something outside the daemon deletes what a MASTER put on the system (`ip addr del`,
`ip addr flush`, `netplan apply`, a NetworkManager or networkd restart), keepalived sees the
RTM_DELADDR / RTM_DELROUTE / RTM_DELRULE and calls set_vrrp_backup: the instance enters
BACKUP (priority 0 advert, its VIPs, routes and rules removed, notify scripts for BACKUP) and
its Master_Down_Timer is Skew_Time, so it is MASTER again a moment later with everything back
(measured: 0.23 s at priority 200). `no_track` on the line opts out. A deleted static address,
route or rule is put back at once ("Restoring deleted static address ...").

The pure part (`decode`, `concerned`, `static_gone`) says which change concerns which
instance or static entry; `HoldWatch` feeds it the messages of the child's one rtnetlink
notification socket (vrrp_child.linkwatch) and acts on the answer. The child's own changes
never count: messages carrying the portid of its request socket are skipped (the kernel puts
the requester's portid in the notification), and an address is only reacted to if it is
really gone (IPv6 address notifications carry no portid).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_DELROUTE, RTM_DELRULE

from conf.model import Config
from conf.routes import RTPROT_KEEPALIVED, RouteEntry
from conf.rules import RuleEntry
from conf.values import IPAddress
from vrrp_child import fsm
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.netlink import Rtnl
from vrrp_child.static import address_items

log = logging.getLogger("pykeepalived_vrrp")

# rtnetlink multicast groups (linux/rtnetlink.h RTMGRP_*; the rule groups have no RTMGRP_
# name: 1 << (RTNLGRP_IPV4_RULE - 1), 1 << (RTNLGRP_IPV6_RULE - 1)).
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_ROUTE = 0x400
RTMGRP_IPV4_RULE = 0x80
RTMGRP_IPV6_RULE = 0x40000
ADDRESS_GROUPS = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR

RT_TABLE_MAIN = 254


@dataclass(frozen=True)
class AddrGone:
    ifindex: int
    address: IPAddress


@dataclass(frozen=True)
class RouteGone:
    family: int  # 4 or 6
    table: int
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    tos: int
    metric: int
    oif: int | None


@dataclass(frozen=True)
class RuleGone:
    family: int
    priority: int | None
    table: int
    src: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network | None


Gone = AddrGone | RouteGone | RuleGone


_FAMILY: dict[int, int] = {int(socket.AF_INET): 4, int(socket.AF_INET6): 6}


def _family(af: int) -> int | None:
    return _FAMILY.get(af)


def _net(addr: str | None, plen: int, family: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if addr is None:
        addr = "::" if family == 6 else "0.0.0.0"
    return ipaddress.ip_network(f"{addr}/{plen}", strict=False)


def decode(msg: Any, own_pid: int) -> Gone | None:  # pyroute2's message classes are untyped
    """A deletion another process made (pyroute2 rtnetlink message), else None. keepalived only
    watches routes and rules of protocol keepalived (the others are not ours to track)."""
    header = msg["header"]
    mtype = header["type"]
    if own_pid and header.get("pid") == own_pid:
        return None  # our own request socket made this change
    family = _family(msg.get("family", 0))
    if family is None:
        return None
    if mtype == RTM_DELADDR:
        addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        return None if addr is None else AddrGone(msg["index"], ipaddress.ip_address(addr))
    if mtype == RTM_DELROUTE:
        if msg["proto"] != RTPROT_KEEPALIVED:
            return None
        table = msg.get_attr("RTA_TABLE")
        return RouteGone(
            family,
            table if table is not None else msg["table"],
            _net(msg.get_attr("RTA_DST"), msg["dst_len"], family),
            msg["tos"],
            msg.get_attr("RTA_PRIORITY") or 0,
            msg.get_attr("RTA_OIF"),
        )
    if mtype == RTM_DELRULE:
        proto = msg.get_attr("FRA_PROTOCOL")
        if proto is not None and proto != RTPROT_KEEPALIVED:
            return None
        table = msg.get_attr("FRA_TABLE")
        src, dst = msg.get_attr("FRA_SRC"), msg.get_attr("FRA_DST")
        return RuleGone(
            family,
            msg.get_attr("FRA_PRIORITY"),
            table if table is not None else msg["table"],
            _net(src, msg["src_len"], family) if src is not None else None,
            _net(dst, msg["dst_len"], family) if dst is not None else None,
        )
    return None


@dataclass(frozen=True)
class Holder:
    """A MASTER instance and what it has put on the system."""

    name: str
    vips: Sequence[Item]
    routes: Sequence[RouteItem]
    rules: Sequence[RuleEntry]


IndexOf = Callable[[str], int | None]


def address_matches(gone: AddrGone, item: Item, index_of: IndexOf) -> bool:
    entry, ifname = item
    return not entry.no_track and entry.ip == gone.address and index_of(ifname) == gone.ifindex


def route_matches(gone: RouteGone, item: RouteItem, index_of: IndexOf, *, check_dev: bool = True) -> bool:
    """keepalived route_is_ours: table, family, prefix, metric, tos, destination and, when the
    route names a device, that device."""
    r, dev = item
    if r.no_track or r.protocol not in (None, RTPROT_KEEPALIVED) or r.family != gone.family:
        return False
    table = RT_TABLE_MAIN if r.table is None else r.table
    if (table, r.destination, r.tos or 0) != (gone.table, gone.dst, gone.tos):
        return False
    if not check_dev:
        return True
    if (r.metric or 0) != gone.metric:
        return False
    return dev is None or gone.oif is None or index_of(dev) == gone.oif


def rule_matches(gone: RuleGone, rule: RuleEntry) -> bool:
    """keepalived compare_rule, on what tells our rules apart (every one has a preference)."""
    if rule.no_track or rule.family != gone.family or rule.preference != gone.priority:
        return False
    to_table = rule.goto is None and rule.type is None and not rule.l3mdev
    if to_table and (RT_TABLE_MAIN if rule.table is None else rule.table) != gone.table:
        return False
    src = rule.from_ if rule.from_ is not None and rule.from_.prefixlen else None
    dst = rule.to if rule.to is not None and rule.to.prefixlen else None
    return (src, dst) == (gone.src, gone.dst)


def concerned(changes: Iterable[Gone], holders: Iterable[Holder], index_of: IndexOf) -> dict[str, Gone]:
    """Each holder that lost something it tracks, with the first such change."""
    out: dict[str, Gone] = {}
    changes = list(changes)
    for h in holders:
        for g in changes:
            if isinstance(g, AddrGone):
                hit = any(address_matches(g, i, index_of) for i in h.vips)
            elif isinstance(g, RouteGone):
                hit = any(route_matches(g, r, index_of) for r in h.routes)
            else:
                hit = any(rule_matches(g, r) for r in h.rules)
            if hit:
                out[h.name] = g
                break
    return out


@dataclass
class StaticGone:
    """The static entries to put back."""

    addresses: list[Item]
    routes: list[RouteEntry]
    rules: list[RuleEntry]

    @property
    def empty(self) -> bool:
        return not (self.addresses or self.routes or self.rules)


def static_gone(changes: Iterable[Gone], config: Config, index_of: IndexOf) -> StaticGone:
    """keepalived reinstate_static_address/route/rule: a deleted static entry without
    `no_track` (its static route match ignores metric and device, as keepalived's does)."""
    out = StaticGone([], [], [])
    for g in changes:
        if isinstance(g, AddrGone):
            out.addresses += [i for i in address_items(config) if address_matches(g, i, index_of)]
        elif isinstance(g, RouteGone):
            out.routes += [r for r in config.static_routes if route_matches(g, (r, r.dev), index_of, check_dev=False)]
        else:
            out.rules += [r for r in config.static_rules if rule_matches(g, r)]
    return out


def route_groups(config: Config) -> int:
    """keepalived monitor_ipv4/6_routes and _rules: route and rule notifications are read only
    when a tracked virtual route/rule (or a static one with track_group) needs them; a full
    BGP table otherwise costs nothing."""
    groups = 0
    routes: list[RouteEntry] = [r for i in config.vrrp_instance.values() for r in i.virtual_routes if not r.no_track]
    routes += [r for r in config.static_routes if r.track_group and not r.no_track]
    rules: list[RuleEntry] = [r for i in config.vrrp_instance.values() for r in i.virtual_rules if not r.no_track]
    rules += [r for r in config.static_rules if r.track_group and not r.no_track]
    for r in routes:
        groups |= RTMGRP_IPV6_ROUTE if r.family == 6 else RTMGRP_IPV4_ROUTE
    for u in rules:
        groups |= RTMGRP_IPV6_RULE if u.family == 6 else RTMGRP_IPV4_RULE
    return groups


class Edges(Protocol):
    """What HoldWatch needs from the workload."""

    detail: bool
    rtnl: Rtnl
    static_config: Config | None  # whose static entries are on the system

    @property
    def group_of(self) -> Mapping[str, str]: ...

    @property
    def instances(self) -> Mapping[str, _Inst]: ...


class _Inst(Protocol):
    vips_set: bool

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> fsm.State: ...

    def vip_items(self) -> list[Item]: ...

    def route_items(self) -> list[RouteItem]: ...

    def rule_items(self) -> list[RuleEntry]: ...

    def holding_lost(self) -> None: ...


class HoldWatch:
    """Reacts to the deletions the link watcher's socket reports (one socket for all)."""

    def __init__(self, edges: Edges, join: Callable[[int], None]) -> None:
        self.edges = edges
        self.join = join  # adds multicast groups to the shared notification socket
        self.joined = 0
        self.own_pid = edges.rtnl.portid

    def configure(self, config: Config) -> None:
        """Subscribe to what the configuration tracks (never unsubscribed: harmless)."""
        wanted = ADDRESS_GROUPS | route_groups(config)
        if wanted & ~self.joined:
            self.join(wanted & ~self.joined)
            self.joined |= wanted

    def messages(self, messages: list[Any]) -> None:
        changes = [g for g in (decode(m, self.own_pid) for m in messages) if g is not None]
        if changes:
            self.changed(changes)

    def changed(self, changes: list[Gone]) -> None:
        rtnl = self.edges.rtnl
        cache: dict[str, int | None] = {}

        def index_of(name: str) -> int | None:
            if name not in cache:
                cache[name] = rtnl.link_index(name)
            return cache[name]

        instances = self.edges.instances
        holders = [
            Holder(i.name, i.vip_items(), i.route_items(), i.rule_items())
            for i in instances.values()
            if i.state is fsm.State.MASTER and i.vips_set
        ]
        hits = concerned(changes, holders, index_of)
        for name, g in hits.items():
            inst = instances[name]
            if isinstance(g, AddrGone):
                mine = [i for i in inst.vip_items() if address_matches(g, i, index_of)]
                if not mine or rtnl.which_present(mine):
                    continue  # put back already (our own start-up clean-up, an IPv6 notification)
                if self.edges.detail:
                    log.info("Netlink reflector reports IP %s removed from %s", g.address, mine[0][1])
            self._lost(name)
        if self.edges.static_config is not None:
            self._reinstate(static_gone(changes, self.edges.static_config, index_of))

    def _lost(self, name: str) -> None:
        """keepalived set_vrrp_backup: the instance, and the MASTER members of its sync group."""
        instances = self.edges.instances
        group = self.edges.group_of.get(name)
        names = [name] + [n for n, g in self.edges.group_of.items() if group is not None and g == group and n != name]
        for n in names:
            inst = instances.get(n)
            if inst is not None and inst.state is fsm.State.MASTER:
                inst.holding_lost()

    def _reinstate(self, gone: StaticGone) -> None:
        if gone.empty:
            return
        rtnl = self.edges.rtnl
        missing = [i for i in gone.addresses if not rtnl.which_present([i])]
        for entry, _ifname in missing:
            log.info("Restoring deleted static address %s", entry)
        if missing:
            for f in rtnl.add_addresses(missing).failed:
                log.error("Cannot restore static address %s on %s: %s", f.entry.address, f.ifname, f.message)
        if not (gone.routes or gone.rules):
            return
        from vrrp_child.routing import Routing, describe  # noqa: PLC0415 (routes or rules only)

        routing = Routing(rtnl)
        for r in gone.routes:
            log.info("Restoring deleted static route %s", describe(r))
        for line in routing.add_routes((r, None) for r in gone.routes).errors() if gone.routes else []:
            log.error("%s", line)
        for u in gone.rules:
            log.info("Restoring deleted static rule %s", describe(u))
        for line in routing.add_rules(gone.rules).errors() if gone.rules else []:
            log.error("%s", line)
