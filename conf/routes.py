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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conf.diagnostics import Location
from conf.linewords import Words, flag, ignore, value
from conf.modelclass import model_class
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


def _need(words: Sequence[str], i: int, word: str) -> str:
    if i >= len(words):
        raise ConfigValueError(f"missing a value after '{word}'")
    return words[i]


def dump_as(keyword: str) -> dict[str, KeywordSpec]:
    """Field metadata naming the keyword a field is dumped under (for options that are
    Python keywords or not identifiers: from, not, -nodad, ttl-propagate)."""
    return {KW: KeywordSpec(_NoConvert(), keyword)}


class _NoConvert:
    takes_block = False
    syntax = ""

    def __call__(self, stmt: Stmt, ctx: Context) -> object:
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


@model_class
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


class _RouteWords(Words):
    """A route line being read: also the locked metrics, the nexthops, `inet`, and
    whether the destination was given."""

    __slots__ = ("have_dest", "inet", "locks", "nexthops")

    def __init__(self, words: Sequence[str], loc: Location, ctx: Context) -> None:
        super().__init__(words, loc, ctx)
        self.locks: set[str] = set()
        self.nexthops: list[Nexthop] = []
        self.inet = False
        self.have_dest = False

    def locked(self, word: str) -> str:
        """The value after `word`, which `lock` may precede."""
        arg = self.take(word)
        if arg != "lock":
            return arg
        self.locks.add(word)
        return self.take("lock")


def _via(line: Words, word: str) -> None:
    if word == "gw":
        line.ctx.diags.warning("'gw' for routes is deprecated; use 'via'", line.loc)
    arg = line.take(word)
    if arg in ("inet", "inet6"):
        arg = line.take(word)
    line.values["via"] = parse_ip(arg, "gateway")


def _or(line: _RouteWords, word: str) -> None:
    """Deprecated: a second gateway, i.e. a two-way multipath route."""
    line.ctx.diags.warning("'or' for routes is deprecated; use 'nexthop'", line.loc)
    alt = parse_ip(line.take(word), "gateway")
    v = line.values
    if not line.nexthops and "via" in v:
        line.nexthops.append(Nexthop(via=v.pop("via"), dev=v.get("dev")))
    line.nexthops.append(Nexthop(via=alt, dev=v.get("dev")))


def _metric(text: str) -> int:
    if text.startswith("-"):
        raise ConfigValueError(f"invalid metric {text}")
    return parse_uint(text, what="metric")


def _lockable_metric(line: _RouteWords, word: str) -> None:
    line.values[word] = parse_uint(line.locked(word), 0, METRICS[word], word)


def _congctl(line: _RouteWords, word: str) -> None:
    line.values["congctl"] = line.locked(word)


def _feature(line: Words, word: str) -> None:
    """One feature per `features` keyword; ecn is the only one."""
    feature = line.take(word)
    if feature != "ecn":
        raise ConfigValueError(f"feature {feature} not supported")
    if feature not in line.values.setdefault("features", ()):
        line.values["features"] += (feature,)


def _one_of(words: tuple[str, ...], what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in words:
            raise ConfigValueError(what.format(text))
        return text

    return parse


def _ttl_propagate(text: str) -> bool:
    return _one_of(("enabled", "disabled"), "ttl-propagate value {} not recognised")(text) == "enabled"


def _vrf(line: Words, word: str) -> None:
    vrf = line.values["vrf"] = line.take(word)
    # keepalived reads the VRF's table from the interface, so it must exist.
    if line.ctx.interfaces is not None and vrf not in line.ctx.interfaces:
        raise ConfigValueError(f"VRF {vrf} not found")


def _encap_words(words: Sequence[str], start: int) -> int:
    """The end of an encap specification: the next route option."""
    i = start
    while i < len(words) and (i == start or words[i] not in _ROUTE_OPTIONS):
        i += 1
    if i == start:
        raise ConfigValueError("missing a value after 'encap'")
    return i


def _encap(line: Words, word: str) -> None:
    end = _encap_words(line.words, line.i)
    line.values["encap"] = tuple(line.words[line.i : end])
    line.i = end


def _nexthop_option(line: _RouteWords, word: str) -> None:
    nh, line.i = _nexthop(line.words, line.i)
    line.nexthops.append(nh)


def _inet(line: _RouteWords, word: str) -> None:
    line.inet = True


def read_track_group(line: Words, word: str) -> None:
    """`track_group NAME` of a static route or rule."""
    line.values["track_group"] = check_track_group(line.take(word), line.ctx, line.loc)


# The options of a route line after its type and destination: keyword -> reader.
_ROUTE_READERS: dict[str, Callable[[_RouteWords, str], None]] = {
    "via": _via,
    "gw": _via,
    "or": _or,
    "src": value("src", lambda t: parse_ip(t, "source address")),
    "from": value("from_", lambda t: parse_net(t, "source prefix")),
    "dev": value("dev", str),
    "oif": value("dev", str),
    # keepalived takes table 0 for a route (not for a rule).
    "table": value("table", lambda t: parse_named(t, "rt_tables", "routing table", 0xFFFFFFFF)),
    "metric": value("metric", _metric),
    "priority": value("metric", _metric),
    "preference": value("metric", _metric),
    "scope": value("scope", lambda t: parse_named(t, "rt_scopes", "scope", 255)),
    "protocol": value("protocol", lambda t: parse_named(t, "rt_protos", "protocol", 255)),
    "tos": value("tos", parse_tos),
    "dsfield": value("tos", parse_tos),
    "realms": value("realms", parse_realms),
    **dict.fromkeys(METRICS, _lockable_metric),
    "features": _feature,
    "quickack": value("quickack", lambda t: parse_uint(t, 0, 1, "quickack")),
    "fastopen_no_cookie": value("fastopen_no_cookie", lambda t: parse_uint(t, 0, 1, "fastopen_no_cookie")),
    "congctl": _congctl,
    "pref": value("pref", _one_of(("low", "medium", "high"), "pref '{}' is not low|medium|high")),
    "expires": value("expires", lambda t: parse_uint(t, what="expires")),
    "ttl-propagate": value("ttl_propagate", _ttl_propagate),
    "vrf": _vrf,
    "encap": _encap,
    "onlink": flag("onlink"),
    "nexthop": _nexthop_option,
    "inet6": flag("inet6"),
    "inet": _inet,
    "append": flag("append"),
    "prepend": flag("append", False),  # the default
    "add": ignore,  # as in `ip route add` (the man page's example has it)
    "no_track": flag("no_track"),
}
_STATIC_ROUTE_READERS = _ROUTE_READERS | {"track_group": read_track_group}
# Words that end an encap specification (the next route option).
_ROUTE_OPTIONS = frozenset(_STATIC_ROUTE_READERS) | {"to", "weight", "lock"}


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
        self.readers = _STATIC_ROUTE_READERS if static else _ROUTE_READERS

    def __call__(self, stmt: Stmt, ctx: Context) -> RouteEntry:
        return self.parse(list(stmt.words), stmt.location, ctx)

    def parse(self, words: list[str], loc: Location, ctx: Context) -> RouteEntry:
        line = _RouteWords(words, loc, ctx)
        v = line.values
        while line.more():
            w = line.next()
            if w in ROUTE_TYPES and not line.have_dest and "type" not in v:
                v["type"] = w
            elif w == "to" or (w not in _ROUTE_OPTIONS and not line.have_dest):
                v["to"] = _route_dest(line.take(w) if w == "to" else w)
                line.have_dest = True
            else:
                read = self.readers.get(w)
                if read is None:
                    raise ConfigValueError(f"unknown route option '{w}'")
                read(line, w)
        if not line.have_dest:
            raise ConfigValueError("route must have a destination")
        if line.locks:
            v["lock"] = frozenset(line.locks)
        if line.nexthops:
            v["nexthop"] = tuple(line.nexthops)
        return _check_route(RouteEntry(location=loc, **v), line.inet, loc, ctx)


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


def _nexthop(words: Sequence[str], i: int) -> tuple[Nexthop, int]:
    """`nexthop [via ADDR] [dev IF] [weight N] [onlink] [realms R] [encap ...]`, from word i."""
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
            end = _encap_words(words, i + 1)
            v["encap"] = tuple(words[i + 1 : end])
            i = end
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
