"""Route lines: static_routes and virtual_routes entries (keepalived.conf(5), "Static
routes/addresses/rules"; the syntax is `ip route add`'s, without abbreviations).

Also the iproute2 name tables (rt_tables, rt_protos, rt_scopes, rt_realms) that route,
rule and address lines resolve names with, as keepalived does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conf.diagnostics import Location
from conf.schema import KW, ConfigValueError, Context, KeywordSpec
from conf.syntax import Stmt
from conf.values import IPAddress, IPNetwork, ip_address

# ---------------------------------------------------------------- iproute2 names

_BUILTIN: dict[str, dict[str, int]] = {
    "rt_tables": {"default": 253, "main": 254, "local": 255},
    "rt_protos": {
        "unspec": 0,
        "redirect": 1,
        "kernel": 2,
        "boot": 3,
        "static": 4,
        "gated": 8,
        "ra": 9,
        "mrt": 10,
        "zebra": 11,
        "bird": 12,
        "dnrouted": 13,
        "xorp": 14,
        "ntk": 15,
        "dhcp": 16,
        "keepalived": 18,
        "babel": 42,
        "bgp": 186,
        "isis": 187,
        "ospf": 188,
        "rip": 189,
        "eigrp": 192,
    },
    "rt_scopes": {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255},
    "rt_realms": {"unspec": 0, "inr.ruhep": 1, "unknown": 0},
}
_NAMES: dict[str, dict[str, int]] = {}


def rt_names(kind: str) -> dict[str, int]:
    """name -> number for an iproute2 table ('rt_tables', ...): the built-in names plus
    /etc/iproute2/KIND (and KIND.d/*.conf), read once."""
    names = _NAMES.get(kind)
    if names is None:
        names = dict(_BUILTIN.get(kind, {}))
        paths = [f"/usr/share/iproute2/{kind}", f"/etc/iproute2/{kind}"]
        paths += sorted(glob.glob(f"/etc/iproute2/{kind}.d/*.conf"))
        for path in paths:
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        words = line.split("#", 1)[0].split()
                        if len(words) >= 2:
                            with contextlib.suppress(ValueError):
                                names[words[1]] = int(words[0], 0)
            except OSError:
                continue
        _NAMES[kind] = names
    return names


def parse_uint(text: str, lo: int = 0, hi: int = 0xFFFFFFFF, what: str = "value") -> int:
    """An unsigned number, decimal, 0x hex or 0 octal (keepalived's strtoul base 0)."""
    try:
        value = int(text, 0) if not text.isdigit() else int(text, 10)
    except ValueError:
        raise ConfigValueError(f"invalid {what} '{text}'") from None
    if value < lo or value > hi:
        raise ConfigValueError(f"{what} {text} is outside the range [{lo}, {hi}]")
    return value


def parse_named(text: str, kind: str, what: str, hi: int) -> int:
    """A number or an iproute2 name (table, protocol, scope, realm)."""
    value = rt_names(kind).get(text)
    if value is not None:
        return value
    try:
        return parse_uint(text, 0, hi, what)
    except ConfigValueError:
        raise ConfigValueError(f"{what} '{text}' not found") from None


def parse_table(text: str) -> int:
    table = parse_named(text, "rt_tables", "routing table", 0xFFFFFFFF)
    if table == 0:
        raise ConfigValueError("table 0 is not valid")
    return table


def parse_tos(text: str) -> int:
    # keepalived: "TOS value 300 is invalid"; names as in rt_dsfield are rare, numbers only.
    try:
        value = int(text, 16) if not text.startswith("0x") else int(text, 0)
    except ValueError:
        raise ConfigValueError(f"TOS value {text} is invalid") from None
    if not 0 <= value <= 255:
        raise ConfigValueError(f"TOS value {text} is invalid")
    return value


def parse_realms(text: str) -> int:
    """`[FROM/]TO` realms, as the kernel's 32-bit RTA_FLOW value (from << 16 | to)."""

    def one(word: str) -> int:
        try:
            return parse_named(word, "rt_realms", "realm", 0xFFFF)
        except ConfigValueError:
            raise ConfigValueError(f"invalid realms {text}") from None

    if "/" in text:
        src, dst = text.split("/", 1)
        return one(src) << 16 | one(dst)
    return one(text)


def parse_ip(text: str, what: str = "address") -> IPAddress:
    try:
        return ip_address(text)
    except ValueError:
        raise ConfigValueError(f"invalid {what} '{text}'") from None


def parse_net(text: str, what: str = "address") -> IPNetwork | None:
    """ADDR[/LEN] as a network, or None for `default`/`all`/`any` (no prefix)."""
    if text in ("default", "all", "any"):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigValueError(f"invalid {what} '{text}'") from None


def _need(words: list[str], i: int, word: str) -> str:
    if i >= len(words):
        raise ConfigValueError(f"missing a value after '{word}'")
    return words[i]


def dump_as(keyword: str) -> dict[str, Any]:
    """Field metadata naming the keyword a field is dumped under (for options that are
    Python keywords or not identifiers: from, not, -nodad, ttl-propagate)."""
    return {KW: KeywordSpec(_NoConvert(), keyword)}


class _NoConvert:
    takes_block = False
    syntax = ""

    def __call__(self, stmt: Stmt, ctx: Context) -> Any:
        raise NotImplementedError


def check_interface(name: str, what: str, ctx: Context, location: Location) -> None:
    """Note an interface that does not exist here. finish_global reports them once
    global_defs is known: `keepalived -t` fails on them ("Non-existent interface specified
    in configuration") unless global_defs dynamic_interfaces is set."""
    if ctx.interfaces is not None and name not in ctx.interfaces:
        missing = ctx.settings.setdefault("missing_interfaces", [])
        missing.append((f"interface {name} for {what} doesn't exist", location))


def check_track_group(name: str, ctx: Context, location: Location) -> str | None:
    """track_group must name a track_group block defined earlier in the file."""
    known = ctx.settings.get("track_groups")
    if known is None or name not in known:
        ctx.diags.reset(f"track_group {name} not found (it must be defined before use); not tracking", location)
        return None
    return name


# ---------------------------------------------------------------- routes

ROUTE_TYPES = (
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
)
# Metrics of `ip route` that take a number and may be preceded by `lock`.
METRICS: dict[str, int] = {
    "mtu": 0xFFFFFFFF,
    "hoplimit": 255,
    "advmss": 0xFFFFFFFF,
    "rtt": 0xFFFFFFFF,
    "rttvar": 0xFFFFFFFF,
    "reordering": 0xFFFFFFFF,
    "window": 0xFFFFFFFF,
    "cwnd": 0xFFFFFFFF,
    "ssthresh": 0xFFFFFFFF,
    "rto_min": 0xFFFFFFFF,
    "initcwnd": 0xFFFFFFFF,
    "initrwnd": 0xFFFFFFFF,
}
RTPROT_KEEPALIVED = 18


@dataclass(frozen=True)
class Nexthop:
    """One `nexthop [via ADDR] [dev IF] [onlink] [weight N] [realms R] [encap ...]`."""

    via: IPAddress | None = None
    dev: str | None = None
    weight: int | None = None  # 1..256
    onlink: bool = False
    realms: int | None = None
    encap: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteEntry:
    """One static/virtual route line; fields are named after the `ip route` options.
    Numbers are what the kernel gets (names of tables, protocols, scopes resolved)."""

    to: IPNetwork | None = None  # the destination; None for `default` (family from `inet6`/addresses)
    type: str = "unicast"  # blackhole|unreachable|prohibit|throw|local|broadcast|anycast|multicast|nat
    src: IPAddress | None = None  # preferred source (`src`)
    from_: IPNetwork | None = field(default=None, metadata=dump_as("from"))  # IPv6 source prefix
    via: IPAddress | None = None  # gateway; `gw` is the deprecated spelling
    dev: str | None = None  # `dev` or `oif`
    table: int | None = None
    metric: int | None = None  # `metric`, `priority` or `preference`
    scope: int | None = None
    protocol: int | None = None  # `protocol`
    tos: int | None = None  # `tos` or `dsfield`
    realms: int | None = None
    mtu: int | None = None
    hoplimit: int | None = None
    advmss: int | None = None
    rtt: int | None = None
    rttvar: int | None = None
    reordering: int | None = None
    window: int | None = None
    cwnd: int | None = None
    ssthresh: int | None = None
    rto_min: int | None = None
    initcwnd: int | None = None
    initrwnd: int | None = None
    lock: frozenset[str] = frozenset()  # metrics given with `lock`
    features: tuple[str, ...] = ()  # ecn
    quickack: int | None = None
    fastopen_no_cookie: int | None = None
    congctl: str | None = None
    pref: str | None = None  # IPv6 router preference: low|medium|high
    expires: int | None = None  # IPv6 only
    ttl_propagate: bool | None = field(default=None, metadata=dump_as("ttl-propagate"))
    vrf: str | None = None
    encap: tuple[str, ...] = ()  # the words after `encap`, kept as written
    onlink: bool = False
    nexthop: tuple[Nexthop, ...] = ()
    inet6: bool = False
    append: bool = False
    no_track: bool = False
    track_group: str | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    @property
    def family(self) -> int:
        """4 or 6: from the addresses, else 6 if `inet6` was given, else 4 (man page)."""
        for a in (self.to, self.via, self.src, self.from_, *(n.via for n in self.nexthop)):
            if a is not None:
                return a.version
        return 6 if self.inet6 else 4

    @property
    def destination(self) -> IPNetwork:
        if self.to is not None:
            return self.to
        return ipaddress.ip_network("::/0" if self.family == 6 else "0.0.0.0/0")


# Words that end an encap specification (the next route option).
_ROUTE_OPTIONS = frozenset(
    {
        "src",
        "from",
        "via",
        "gw",
        "or",
        "dev",
        "oif",
        "table",
        "metric",
        "priority",
        "preference",
        "scope",
        "protocol",
        "tos",
        "dsfield",
        "realms",
        "lock",
        "features",
        "quickack",
        "fastopen_no_cookie",
        "congctl",
        "pref",
        "expires",
        "ttl-propagate",
        "vrf",
        "encap",
        "onlink",
        "nexthop",
        "inet6",
        "inet",
        "append",
        "prepend",
        "add",
        "no_track",
        "track_group",
        "weight",
        "to",
        *METRICS,
    }
)


class RouteLine:
    """A static_routes / virtual_routes line. Errors that make keepalived skip the route
    raise ConfigValueError (the entry is dropped); lesser ones are reported and fixed up."""

    takes_block = False
    syntax = (
        "[TYPE] [to] PREFIX|default [src ADDR] [via ADDR] [dev IF] [table T] [metric N] [scope S] "
        "[protocol P] [tos N] [METRIC [lock] N]... [nexthop ...]... [onlink] [inet6] [append] "
        "[no_track] [track_group G]"
    )

    def __init__(self, static: bool) -> None:
        self.static = static

    def __call__(self, stmt: Stmt, ctx: Context) -> RouteEntry:
        return self.parse(list(stmt.words), stmt.location, ctx)

    def parse(self, words: list[str], loc: Location, ctx: Context) -> RouteEntry:
        v: dict[str, Any] = {}
        locks: set[str] = set()
        nexthops: list[Nexthop] = []
        i = 0
        have_dest = False
        while i < len(words):
            w = words[i]
            i += 1
            if w in ROUTE_TYPES and not have_dest and "type" not in v:
                v["type"] = w
            elif w == "to" or (w not in _ROUTE_OPTIONS and not have_dest):
                dest = words[i] if w == "to" else w
                if w == "to":
                    _need(words, i, w)
                    i += 1
                v["to"] = _route_dest(dest)
                have_dest = True
            elif w in ("via", "gw"):
                if w == "gw":
                    ctx.diags.warning("'gw' for routes is deprecated; use 'via'", loc)
                arg = _need(words, i, w)
                i += 1
                if arg in ("inet", "inet6"):
                    arg = _need(words, i, w)
                    i += 1
                v["via"] = parse_ip(arg, "gateway")
            elif w == "or":
                # Deprecated: a second gateway, i.e. a two-way multipath route.
                ctx.diags.warning("'or' for routes is deprecated; use 'nexthop'", loc)
                alt = parse_ip(_need(words, i, w), "gateway")
                i += 1
                if not nexthops and "via" in v:
                    nexthops.append(Nexthop(via=v.pop("via"), dev=v.get("dev")))
                nexthops.append(Nexthop(via=alt, dev=v.get("dev")))
            elif w == "src":
                v["src"] = parse_ip(_need(words, i, w), "source address")
                i += 1
            elif w == "from":
                v["from_"] = parse_net(_need(words, i, w), "source prefix")
                i += 1
            elif w in ("dev", "oif"):
                v["dev"] = _need(words, i, w)
                i += 1
            elif w == "table":
                # keepalived takes table 0 for a route (not for a rule).
                v["table"] = parse_named(_need(words, i, w), "rt_tables", "routing table", 0xFFFFFFFF)
                i += 1
            elif w in ("metric", "priority", "preference"):
                arg = _need(words, i, w)
                i += 1
                if arg.startswith("-"):
                    raise ConfigValueError(f"invalid metric {arg}")
                v["metric"] = parse_uint(arg, what="metric")
            elif w == "scope":
                v["scope"] = parse_named(_need(words, i, w), "rt_scopes", "scope", 255)
                i += 1
            elif w == "protocol":
                v["protocol"] = parse_named(_need(words, i, w), "rt_protos", "protocol", 255)
                i += 1
            elif w in ("tos", "dsfield"):
                v["tos"] = parse_tos(_need(words, i, w))
                i += 1
            elif w == "realms":
                v["realms"] = parse_realms(_need(words, i, w))
                i += 1
            elif w in METRICS:
                arg = _need(words, i, w)
                i += 1
                if arg == "lock":
                    locks.add(w)
                    arg = _need(words, i, "lock")
                    i += 1
                v[w] = parse_uint(arg, 0, METRICS[w], w)
            elif w == "features":
                # One feature per `features` keyword; ecn is the only one.
                feature = _need(words, i, w)
                i += 1
                if feature != "ecn":
                    raise ConfigValueError(f"feature {feature} not supported")
                if feature not in v.setdefault("features", ()):
                    v["features"] += (feature,)
            elif w in ("quickack", "fastopen_no_cookie"):
                v[w] = parse_uint(_need(words, i, w), 0, 1, w)
                i += 1
            elif w == "congctl":
                arg = _need(words, i, w)
                i += 1
                if arg == "lock":
                    locks.add(w)
                    arg = _need(words, i, "lock")
                    i += 1
                v["congctl"] = arg
            elif w == "pref":
                arg = _need(words, i, w)
                i += 1
                if arg not in ("low", "medium", "high"):
                    raise ConfigValueError(f"pref '{arg}' is not low|medium|high")
                v["pref"] = arg
            elif w == "expires":
                v["expires"] = parse_uint(_need(words, i, w), what="expires")
                i += 1
            elif w == "ttl-propagate":
                arg = _need(words, i, w)
                i += 1
                if arg not in ("enabled", "disabled"):
                    raise ConfigValueError(f"ttl-propagate value {arg} not recognised")
                v["ttl_propagate"] = arg == "enabled"
            elif w == "vrf":
                v["vrf"] = _need(words, i, w)
                i += 1
                # keepalived reads the VRF's table from the interface, so it must exist.
                if ctx.interfaces is not None and v["vrf"] not in ctx.interfaces:
                    raise ConfigValueError(f"VRF {v['vrf']} not found")
            elif w == "encap":
                start = i
                while i < len(words) and (i == start or words[i] not in _ROUTE_OPTIONS):
                    i += 1
                if i == start:
                    raise ConfigValueError("missing a value after 'encap'")
                v["encap"] = tuple(words[start:i])
            elif w == "onlink":
                v["onlink"] = True
            elif w == "nexthop":
                nh, i = _nexthop(words, i, loc, ctx)
                nexthops.append(nh)
            elif w == "inet6":
                v["inet6"] = True
            elif w == "inet":
                v["inet"] = True
            elif w == "append":
                v["append"] = True
            elif w == "prepend":
                v["append"] = False  # the default
            elif w == "add":
                pass  # as in `ip route add` (the man page's example has it)
            elif w == "no_track":
                v["no_track"] = True
            elif w == "track_group" and self.static:
                name = _need(words, i, w)
                i += 1
                v["track_group"] = check_track_group(name, ctx, loc)
            else:
                raise ConfigValueError(f"unknown route option '{w}'")
        if not have_dest:
            raise ConfigValueError("route must have a destination")
        inet = v.pop("inet", False)
        if locks:
            v["lock"] = frozenset(locks)
        if nexthops:
            v["nexthop"] = tuple(nexthops)
        route = RouteEntry(location=loc, **v)
        return _check_route(route, inet, loc, ctx)


def _route_dest(text: str) -> IPNetwork | None:
    if text == "default":
        return None
    if text.count("/") > 1:
        raise ConfigValueError(f"invalid destination '{text}'")
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigValueError(f"invalid destination '{text}'") from None
    return net


def _nexthop(words: list[str], i: int, loc: Location, ctx: Context) -> tuple[Nexthop, int]:
    v: dict[str, Any] = {}
    while i < len(words):
        w = words[i]
        if w in ("via", "gw"):
            arg = _need(words, i + 1, w)
            i += 2
            if arg in ("inet", "inet6"):
                arg = _need(words, i, w)
                i += 1
            v["via"] = parse_ip(arg, "nexthop gateway")
        elif w == "dev":
            v["dev"] = _need(words, i + 1, w)
            i += 2
        elif w == "weight":
            arg = _need(words, i + 1, w)
            i += 2
            try:
                v["weight"] = parse_uint(arg, 1, 256, "weight")
            except ConfigValueError:
                raise ConfigValueError(f"invalid weight {arg}") from None
        elif w == "onlink":
            v["onlink"] = True
            i += 1
        elif w == "realms":
            v["realms"] = parse_realms(_need(words, i + 1, w))
            i += 2
        elif w == "encap":
            start = i = i + 1
            while i < len(words) and (i == start or words[i] not in _ROUTE_OPTIONS):
                i += 1
            if i == start:
                raise ConfigValueError("missing a value after 'encap'")
            v["encap"] = tuple(words[start:i])
        else:
            break
    return Nexthop(**v), i


def _check_route(r: RouteEntry, inet: bool, loc: Location, ctx: Context) -> RouteEntry:
    versions = {a.version for a in (r.to, r.via, r.src, r.from_, *(n.via for n in r.nexthop)) if a is not None}
    if len(versions) > 1:
        raise ConfigValueError("cannot mix IPv4 and IPv6 addresses for a route")
    family = versions.pop() if versions else (6 if r.inet6 else 4)
    if r.inet6 and family == 4:
        raise ConfigValueError("inet6 specified for an IPv4 route")
    if inet and family == 6:
        raise ConfigValueError("inet specified for an IPv6 route")
    if r.from_ is not None and family == 4:
        raise ConfigValueError(f"route from address only supported with IPv6 ({r.from_})")
    if r.pref is not None and family == 4:
        raise ConfigValueError("pref is only valid for IPv6")
    if r.expires is not None and family == 4:
        raise ConfigValueError("expires is only valid for IPv6")
    if r.dev is not None:
        check_interface(r.dev, "route", ctx, loc)
    for nh in r.nexthop:
        if nh.dev is not None:
            check_interface(nh.dev, "route nexthop", ctx, loc)
    # keepalived only tracks a route that names an interface.
    tracked = not r.no_track and (r.dev is not None or any(nh.dev is not None for nh in r.nexthop))
    if tracked and r.protocol is not None and r.protocol != RTPROT_KEEPALIVED:
        # keepalived identifies the routes it tracks by protocol keepalived.
        ctx.diags.reset(
            f"a tracked route must have protocol keepalived ({RTPROT_KEEPALIVED}); "
            f"using protocol {RTPROT_KEEPALIVED} (add no_track to keep {r.protocol})",
            loc,
        )
        return dataclasses.replace(r, protocol=RTPROT_KEEPALIVED)
    return r


ROUTE_LINE: Callable[[Stmt, Context], RouteEntry] = RouteLine(static=False)
"""For virtual_routes (track_group is not accepted there)."""
STATIC_ROUTE_LINE: Callable[[Stmt, Context], RouteEntry] = RouteLine(static=True)
