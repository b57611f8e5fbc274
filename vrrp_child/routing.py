"""Routes and rules over rtnetlink: virtual_routes / virtual_rules of an instance and
static_routes / static_rules (keepalived.conf(5), "Static routes/addresses/rules").

Requests are pyroute2's rtmsg / fibmsg codecs, sent in one batch per call on the VRRP
child's own socket (vrrp_child.netlink.Rtnl.transact), as the VIPs are.

What keepalived 2.2.7 does, measured in a namespace and followed here:
- every route and rule it adds carries protocol keepalived (18) unless the line gives one
  (`ip route` shows `proto keepalived` on routes with and without `dev`, and on rules);
  a removal names that protocol too, so an administrator's identical route (another
  protocol) is never the one removed;
- a route gets no device unless the line names one: with neither `dev` nor a gateway the
  kernel refuses it ("Netlink: error: No such device(19), type=RTM_NEWROUTE(24)"), it is
  not put on the instance's interface;
- routes are added with NLM_F_CREATE (prepended, or appended with `append`) but without
  NLM_F_EXCL, so the same prefix from another protocol stays beside ours; adding a route
  that is already there answers EEXIST, which is not a failure here.
Scopes default as `ip route add` does them: host for local/nat, link for
broadcast/anycast/multicast and for a unicast route without a gateway, else universe; a
removal without a scope uses RT_SCOPE_NOWHERE, which the kernel takes as "any".

Not expressible with pyroute2 0.9's codec, logged once per entry and otherwise ignored:
`encap` (lwtunnel encodings), `ttl-propagate` (RTA_TTL_PROPAGATE is not in its map),
`fastopen_no_cookie` (nor is RTAX_FASTOPEN_NO_COOKIE).

Imported where a configuration has routes or rules (the netlink batch, static routes, the
reinstating of deleted ones, the parent's release): most have none and never load it.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pyroute2.netlink import NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_DELRULE, RTM_NEWROUTE, RTM_NEWRULE
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from conf.routes import Nexthop, RouteEntry
from conf.rules import RuleEntry
from vrrp_child.netlink import Rtnl

log = logging.getLogger(__name__)

RTPROT_KEEPALIVED = 18

# linux/rtnetlink.h
RTN = {
    "unicast": 1,
    "local": 2,
    "broadcast": 3,
    "anycast": 4,
    "multicast": 5,
    "blackhole": 6,
    "unreachable": 7,
    "prohibit": 8,
    "throw": 9,
    "nat": 10,
}
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255
RT_TABLE_MAIN = 254
RTNH_F_ONLINK = 0x4
RTAX_FEATURE_ECN = 0x1
ICMPV6_ROUTER_PREF = {"low": 3, "medium": 0, "high": 1}
RTAX = {
    "mtu": 2,
    "window": 3,
    "rtt": 4,
    "rttvar": 5,
    "ssthresh": 6,
    "cwnd": 7,
    "advmss": 8,
    "reordering": 9,
    "hoplimit": 10,
    "initcwnd": 11,
    "rto_min": 13,
    "initrwnd": 14,
    "quickack": 15,
    "congctl": 16,
}
# linux/fib_rules.h
FR_ACT_TO_TBL = 1
FR_ACT_GOTO = 2
FR_ACT_NOP = 3
FR_ACT = {"blackhole": 6, "unreachable": 7, "prohibit": 8, "nop": FR_ACT_NOP}
FIB_RULE_INVERT = 0x2

_ADD_NOOP = frozenset({errno.EEXIST})
_DEL_NOOP = frozenset({errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL})
_MSG_NAMES = {
    RTM_NEWROUTE: "RTM_NEWROUTE",
    RTM_DELROUTE: "RTM_DELROUTE",
    RTM_NEWRULE: "RTM_NEWRULE",
    RTM_DELRULE: "RTM_DELRULE",
}

E = TypeVar("E")


class NoInterface(LookupError):
    """A route names an interface that does not exist (now)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Failure(Generic[E]):
    item: E
    errno: int
    message: str
    mtype: int = 0

    def describe(self) -> str:
        """keepalived's netlink error line: `Netlink: error: No such device(19),
        type=RTM_NEWROUTE(24)`, then what it was about."""
        what = _MSG_NAMES.get(self.mtype, str(self.mtype))
        entry = self.item[0] if isinstance(self.item, tuple) else self.item
        text = os.strerror(self.errno)
        extra = f" ({self.message})" if self.message and self.message != text else ""
        return f"Netlink: error: {text}({self.errno}), type={what}({self.mtype}): {describe(entry)}{extra}"


@dataclass(frozen=True)
class BatchResult(Generic[E]):
    """What one batch did: `changed` were added/removed now, `unchanged` were already
    present (add) or already absent (remove)."""

    changed: tuple[E, ...] = ()
    unchanged: tuple[E, ...] = ()
    failed: tuple[Failure[E], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed

    def errors(self) -> list[str]:
        return [f.describe() for f in self.failed]


RouteItem = tuple[RouteEntry, str | None]


def describe(entry: object) -> str:
    """A short text for logs: the `ip route`/`ip rule` words of an entry."""
    if isinstance(entry, RouteEntry):
        words = [] if entry.type == "unicast" else [entry.type]
        words.append(str(entry.to) if entry.to is not None else "default")
        if entry.via is not None:
            words += ["via", str(entry.via)]
        if entry.dev is not None:
            words += ["dev", entry.dev]
        if entry.table is not None:
            words += ["table", str(entry.table)]
        return "route " + " ".join(words)
    if isinstance(entry, RuleEntry):
        words = ["not"] if entry.not_ else []
        words += ["from", str(entry.from_) if entry.from_ is not None else "all"]
        if entry.to is not None:
            words += ["to", str(entry.to)]
        if entry.table is not None:
            words += ["table", str(entry.table)]
        if entry.preference is not None:
            words += ["preference", str(entry.preference)]
        return "rule " + " ".join(words)
    return str(entry)


# ---------------------------------------------------------------- requests (pure)


def _af(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def _table_fields(table: int | None) -> tuple[int, int]:
    """(header byte, RTA/FRA_TABLE value): tables above 255 go only in the attribute."""
    tid = RT_TABLE_MAIN if table is None else table
    return (tid if tid < 256 else 0), tid


def _nexthop(nh: Nexthop, index_of: Callable[[str], int | None]) -> dict[str, Any]:
    attrs: list[tuple[str, Any]] = []
    if nh.via is not None:
        attrs.append(("RTA_GATEWAY", str(nh.via)))
    if nh.realms is not None:
        attrs.append(("RTA_FLOW", nh.realms))
    oif = 0
    if nh.dev is not None:
        idx = index_of(nh.dev)
        if idx is None:
            raise NoInterface(nh.dev)
        oif = idx
    return {
        "flags": RTNH_F_ONLINK if nh.onlink else 0,
        "hops": (nh.weight or 1) - 1,
        "oif": oif,
        "attrs": attrs,
    }


def _metrics(entry: RouteEntry) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    lock = 0
    for name, rtax in RTAX.items():
        value = getattr(entry, name, None)
        if value is None:
            continue
        out.append((f"RTAX_{'CC_ALGO' if name == 'congctl' else name.upper()}", value))
        if name in entry.lock:
            lock |= 1 << rtax
    if "ecn" in entry.features:
        out.append(("RTAX_FEATURES", RTAX_FEATURE_ECN))
    if lock:
        out.insert(0, ("RTAX_LOCK", lock))
    return out


def _scope(entry: RouteEntry, add: bool) -> int:
    """The route's scope: the line's, or ip route's default for its type (a delete matches
    any scope)."""
    if entry.scope is not None:
        return entry.scope
    if not add:
        return RT_SCOPE_NOWHERE
    if entry.type in ("local", "nat"):
        return RT_SCOPE_HOST
    if entry.type in ("broadcast", "multicast", "anycast") or (
        entry.type == "unicast" and entry.via is None and not entry.nexthop
    ):
        return RT_SCOPE_LINK
    return RT_SCOPE_UNIVERSE


def route_request(
    entry: RouteEntry, index_of: Callable[[str], int | None], add: bool, default_dev: str | None = None
) -> bytes:
    """RTM_NEWROUTE / RTM_DELROUTE for one route line, without its sequence number.

    `default_dev` (the instance's interface) is deliberately not used: keepalived puts no
    device on a route whose line names none (see the module docstring). A missing
    interface raises NoInterface."""
    del default_dev
    msg = rtmsg()
    family = entry.family
    dest = entry.destination
    rtype = RTN[entry.type]
    msg["family"] = _af(family)
    msg["dst_len"] = dest.prefixlen
    msg["src_len"] = entry.from_.prefixlen if entry.from_ is not None else 0
    msg["tos"] = entry.tos or 0
    msg["table"], table = _table_fields(entry.table)
    msg["proto"] = RTPROT_KEEPALIVED if entry.protocol is None else entry.protocol
    msg["type"] = rtype
    msg["flags"] = RTNH_F_ONLINK if entry.onlink else 0
    msg["scope"] = _scope(entry, add)
    attrs: list[tuple[str, Any]] = [("RTA_TABLE", table)]
    if entry.to is not None and dest.prefixlen:
        attrs.append(("RTA_DST", str(dest.network_address)))
    if entry.from_ is not None and entry.from_.prefixlen:
        attrs.append(("RTA_SRC", str(entry.from_.network_address)))
    if entry.src is not None:
        attrs.append(("RTA_PREFSRC", str(entry.src)))
    if entry.via is not None:
        attrs.append(("RTA_GATEWAY", str(entry.via)))
    if entry.dev is not None:
        idx = index_of(entry.dev)
        if idx is None:
            raise NoInterface(entry.dev)
        attrs.append(("RTA_OIF", idx))
    if entry.metric is not None:
        attrs.append(("RTA_PRIORITY", entry.metric))
    if entry.realms is not None:
        attrs.append(("RTA_FLOW", entry.realms))
    if entry.nexthop:
        attrs.append(("RTA_MULTIPATH", [_nexthop(nh, index_of) for nh in entry.nexthop]))
    if add:
        metrics = _metrics(entry)
        if metrics:
            attrs.append(("RTA_METRICS", {"attrs": metrics}))
        if entry.pref is not None:
            attrs.append(("RTA_PREF", ICMPV6_ROUTER_PREF[entry.pref]))
        if entry.expires is not None:
            # RTA_EXPIRES is a u32 of seconds; pyroute2 maps it as raw bytes.
            attrs.append(("RTA_EXPIRES", struct.pack("=I", entry.expires)))
    msg["attrs"] = attrs
    if add:
        flags = NLM_F_REQUEST | NLM_F_CREATE | (NLM_F_APPEND if entry.append else 0)
        return Rtnl._encode(msg, RTM_NEWROUTE, flags, 0)
    return Rtnl._encode(msg, RTM_DELROUTE, NLM_F_REQUEST, 0)


def rule_request(entry: RuleEntry, index_of: Callable[[str], int | None], add: bool) -> bytes:
    """RTM_NEWRULE / RTM_DELRULE for one rule line. Rules name interfaces by name (the
    kernel keeps a rule for an interface that does not exist yet), so `index_of` is not
    needed; it is taken for symmetry with route_request."""
    del index_of
    msg = fibmsg()
    msg["family"] = _af(entry.family)
    msg["dst_len"] = entry.to.prefixlen if entry.to is not None else 0
    msg["src_len"] = entry.from_.prefixlen if entry.from_ is not None else 0
    msg["tos"] = entry.tos or 0
    msg["flags"] = FIB_RULE_INVERT if entry.not_ else 0
    attrs: list[tuple[str, Any]] = []
    if entry.goto is not None:
        msg["action"] = FR_ACT_GOTO
        attrs.append(("FRA_GOTO", entry.goto))
    elif entry.type is not None:
        msg["action"] = FR_ACT[entry.type]
    else:
        msg["action"] = FR_ACT_TO_TBL
        if entry.l3mdev:
            attrs.append(("FRA_L3MDEV", 1))
        elif entry.table is not None:
            msg["table"], table = _table_fields(entry.table)
            attrs.append(("FRA_TABLE", table))
    if entry.from_ is not None and entry.from_.prefixlen:
        attrs.append(("FRA_SRC", str(entry.from_.network_address)))
    if entry.to is not None and entry.to.prefixlen:
        attrs.append(("FRA_DST", str(entry.to.network_address)))
    if entry.preference is not None:
        attrs.append(("FRA_PRIORITY", entry.preference))
    if entry.fwmark is not None:
        attrs.append(("FRA_FWMARK", entry.fwmark))
    if entry.fwmask is not None:
        attrs.append(("FRA_FWMASK", entry.fwmask))
    if entry.realms is not None:
        attrs.append(("FRA_FLOW", entry.realms))
    if entry.iif is not None:
        attrs.append(("FRA_IIFNAME", entry.iif))
    if entry.oif is not None:
        attrs.append(("FRA_OIFNAME", entry.oif))
    if entry.suppress_prefixlength is not None:
        attrs.append(("FRA_SUPPRESS_PREFIXLEN", entry.suppress_prefixlength))
    if entry.suppress_ifgroup is not None:
        attrs.append(("FRA_SUPPRESS_IFGROUP", entry.suppress_ifgroup))
    if entry.uidrange is not None:
        attrs.append(("FRA_UID_RANGE", f"{entry.uidrange[0]}:{entry.uidrange[1]}"))
    if entry.sport is not None:
        attrs.append(("FRA_SPORT_RANGE", f"{entry.sport[0]}:{entry.sport[1]}"))
    if entry.dport is not None:
        attrs.append(("FRA_DPORT_RANGE", f"{entry.dport[0]}:{entry.dport[1]}"))
    if entry.ipproto is not None:
        attrs.append(("FRA_IP_PROTO", entry.ipproto))
    attrs.append(("FRA_PROTOCOL", RTPROT_KEEPALIVED if entry.protocol is None else entry.protocol))
    msg["attrs"] = attrs
    if add:
        # Unlike routes, the kernel would add an identical rule twice without EXCL; a
        # restarted child must not stack copies.
        return Rtnl._encode(msg, RTM_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, 0)
    return Rtnl._encode(msg, RTM_DELRULE, NLM_F_REQUEST, 0)


def unsupported(entry: RouteEntry) -> list[str]:
    """The options of a route line we cannot give the kernel."""
    out = []
    if entry.encap or any(nh.encap for nh in entry.nexthop):
        out.append("encap")
    if entry.ttl_propagate is not None:
        out.append("ttl-propagate")
    if entry.fastopen_no_cookie is not None:
        out.append("fastopen_no_cookie")
    return out


# ---------------------------------------------------------------- the edge


class Routing:
    """Adds and removes routes and rules in batches on the VRRP child's Rtnl."""

    def __init__(self, rtnl: Rtnl) -> None:
        self.rtnl = rtnl
        self._warned: set[RouteEntry] = set()

    def add_routes(self, routes: Iterable[RouteItem]) -> BatchResult[RouteItem]:
        return self._routes(routes, add=True)

    def remove_routes(self, routes: Iterable[RouteItem]) -> BatchResult[RouteItem]:
        return self._routes(routes, add=False)

    def add_rules(self, rules: Iterable[RuleEntry]) -> BatchResult[RuleEntry]:
        return self._rules(rules, add=True)

    def remove_rules(self, rules: Iterable[RuleEntry]) -> BatchResult[RuleEntry]:
        return self._rules(rules, add=False)

    def vrf_table(self, name: str) -> int | None:
        """The routing table of VRF device `name` (IFLA_VRF_TABLE), None if it is not one."""
        for link in self.rtnl.links(name=name):
            info = link.get_attr("IFLA_LINKINFO")
            if info is None or info.get_attr("IFLA_INFO_KIND") != "vrf":
                return None
            data = info.get_attr("IFLA_INFO_DATA")
            table = data.get_attr("IFLA_VRF_TABLE") if data is not None else None
            return int(table) if table is not None else None
        return None

    def _routes(self, routes: Iterable[RouteItem], add: bool) -> BatchResult[RouteItem]:
        cache: dict[str, int | None] = {}

        def index_of(name: str) -> int | None:
            if name not in cache:
                cache[name] = self.rtnl.link_index(name)
            return cache[name]

        items: list[RouteItem] = []
        data: list[bytes] = []
        failed: list[Failure[RouteItem]] = []
        mtype = RTM_NEWROUTE if add else RTM_DELROUTE
        for item in routes:
            entry, dev = item
            if add:
                self._warn_unsupported(entry)
            try:
                if entry.vrf is not None:
                    entry = self._in_vrf(entry)
                data.append(route_request(entry, index_of, add, dev))
            except NoInterface as e:
                failed.append(Failure(item, errno.ENODEV, f"no interface {e.name}", mtype))
                continue
            except LookupError as e:
                failed.append(Failure(item, errno.ENODEV, str(e), mtype))
                continue
            items.append(item)
        return _collect(items, self.rtnl.transact(data), add, failed, mtype)

    def _rules(self, rules: Iterable[RuleEntry], add: bool) -> BatchResult[RuleEntry]:
        items = list(rules)
        data = [rule_request(r, self.rtnl.link_index, add) for r in items]
        return _collect(items, self.rtnl.transact(data), add, [], RTM_NEWRULE if add else RTM_DELRULE)

    def _in_vrf(self, entry: RouteEntry) -> RouteEntry:
        """`vrf NAME`: the route goes in the VRF's table (keepalived reads it from the device)."""
        assert entry.vrf is not None
        table = self.vrf_table(entry.vrf)
        if table is None:
            raise LookupError(f"VRF {entry.vrf} not found")
        return dataclasses.replace(entry, table=table, vrf=None)

    def _warn_unsupported(self, entry: RouteEntry) -> None:
        missing = unsupported(entry)
        if missing and entry not in self._warned:
            self._warned.add(entry)
            log.warning("%s: %s not supported; adding the route without it", describe(entry), ", ".join(missing))


def _collect(
    items: list[E], answers: list[tuple[int, str]], add: bool, failed: list[Failure[E]], mtype: int
) -> BatchResult[E]:
    noop = _ADD_NOOP if add else _DEL_NOOP
    changed: list[E] = []
    unchanged: list[E] = []
    for item, (err, text) in zip(items, answers, strict=True):
        if not err:
            changed.append(item)
        elif err in noop:
            unchanged.append(item)
        else:
            failed.append(Failure(item, err, text or os.strerror(err), mtype))
    return BatchResult(tuple(changed), tuple(unchanged), tuple(failed))
