"""Rule lines: static_rules and virtual_rules entries (keepalived.conf(5), "Static
routes/addresses/rules"; the syntax is `ip rule add`'s, without abbreviations).

keepalived gives a rule without a preference one of its own, counting down from 16384
per address family across the whole file, and says so; we do the same.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conf.diagnostics import Location
from conf.routes import (
    check_interface,
    check_track_group,
    dump_as,
    parse_named,
    parse_realms,
    parse_table,
    parse_tos,
    parse_uint,
)
from conf.schema import ConfigValueError, Context
from conf.syntax import Stmt
from conf.values import IPNetwork, ip_address

FIRST_AUTO_PREFERENCE = 16384
ACTIONS = ("blackhole", "prohibit", "unreachable", "nop")
_IPPROTO = {
    "tcp": socket.IPPROTO_TCP,
    "udp": socket.IPPROTO_UDP,
    "sctp": 132,
    "icmp": 1,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "dccp": 33,
    "udplite": 136,
}


@dataclass(frozen=True)
class RuleEntry:
    """One static/virtual rule line; fields are named after the `ip rule` options."""

    from_: IPNetwork | None = field(default=None, metadata=dump_as("from"))  # None: all
    to: IPNetwork | None = None
    not_: bool = field(default=False, metadata=dump_as("not"))  # invert the selector
    table: int | None = None  # `table` or `lookup`
    goto: int | None = None
    l3mdev: bool = False
    type: str | None = None  # blackhole|prohibit|unreachable|nop (as a word or `type X`)
    preference: int | None = None  # `preference`, `priority` or `order`; assigned if missing
    fwmark: int | None = None
    fwmask: int | None = None  # the /MASK of fwmark
    realms: int | None = None
    tos: int | None = None  # `tos` or `dsfield`
    iif: str | None = None  # `iif` or `dev`
    oif: str | None = None
    uidrange: tuple[int, int] | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    ipproto: int | None = None
    protocol: int | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    inet6: bool = False
    no_track: bool = False
    track_group: str | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    @property
    def family(self) -> int:
        for a in (self.from_, self.to):
            if a is not None:
                return a.version
        return 6 if self.inet6 else 4


def _net(text: str, loc: Location, ctx: Context) -> IPNetwork | None:
    if text in ("all", "default", "any"):
        return None
    addr, slash, plen_s = text.partition("/")
    try:
        ip = ip_address(addr)
    except ValueError:
        raise ConfigValueError(f"invalid rule address '{text}'") from None
    plen: int = ip.max_prefixlen
    if slash:
        try:
            plen = int(plen_s, 10)
            if not 0 <= plen <= ip.max_prefixlen:
                raise ValueError
        except ValueError:
            ctx.diags.reset(f"invalid prefix length in {text}; using {ip.max_prefixlen}", loc)
            plen = ip.max_prefixlen
    return ipaddress.ip_network(f"{ip}/{plen}", strict=False)


def _range(text: str, what: str, hi: int) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    if not dash:
        raise ConfigValueError(f"invalid {what} range {text}")
    try:
        lo = parse_uint(lo_s, 0, hi, what)
        top = parse_uint(hi_s, 0, hi, what) if dash else lo
    except ConfigValueError:
        raise ConfigValueError(f"invalid {what} range {text}") from None
    return lo, top


class RuleLine:
    takes_block = False
    syntax = (
        "[not] [from PREFIX|all] [to PREFIX|all] table T|goto N|l3mdev|blackhole|prohibit|unreachable|nop "
        "[preference N] [fwmark M[/MASK]] [iif IF] [oif IF] [tos N] [realms [F/]T] [uidrange A-B] "
        "[sport A[-B]] [dport A[-B]] [ipproto P] [protocol N] [suppress_prefixlength N] "
        "[suppress_ifgroup G] [inet6] [no_track] [track_group G]"
    )

    def __init__(self, static: bool) -> None:
        self.static = static

    def __call__(self, stmt: Stmt, ctx: Context) -> RuleEntry:
        return self.parse(list(stmt.words), stmt.location, ctx)

    def parse(self, words: list[str], loc: Location, ctx: Context) -> RuleEntry:
        v: dict[str, Any] = {}
        actions = 0
        inet = False
        i, n = 0, len(words)

        def arg() -> str:
            nonlocal i
            if i >= n:
                raise ConfigValueError(f"missing a value after '{words[i - 1]}'")
            i += 1
            return words[i - 1]

        while i < n:
            w = words[i]
            i += 1
            if w == "from":
                v["from_"] = _net(arg(), loc, ctx)
            elif w == "to":
                v["to"] = _net(arg(), loc, ctx)
            elif w == "not":
                v["not_"] = True
            elif w in ("table", "lookup"):
                v["table"] = parse_table(arg())
                actions += 1
            elif w == "goto":
                v["goto"] = parse_uint(arg(), what="goto target")
                actions += 1
            elif w == "l3mdev":
                v["l3mdev"] = True
                actions += 1
            elif w in ACTIONS:
                v["type"] = w
                actions += 1
            elif w == "type":
                t = arg()
                if t not in ("unicast", *ACTIONS):
                    raise ConfigValueError(f"invalid rule type {t}")
                if t != "unicast":
                    v["type"] = t
                    actions += 1
            elif w in ("preference", "priority", "order"):
                text = arg()
                try:
                    v["preference"] = parse_uint(text, what="preference")
                except ConfigValueError:
                    raise ConfigValueError(f"invalid rule {w} {text}") from None
            elif w == "fwmark":
                text = arg()
                mark, slash, mask = text.partition("/")
                try:
                    v["fwmark"] = parse_uint(mark, what="fwmark")
                    if slash:
                        v["fwmask"] = parse_uint(mask, what="fwmark mask")
                except ConfigValueError:
                    raise ConfigValueError(f"invalid rule fwmark {text}") from None
            elif w == "realms":
                v["realms"] = parse_realms(arg())
            elif w in ("tos", "dsfield"):
                v["tos"] = parse_tos(arg())
            elif w in ("iif", "dev"):
                v["iif"] = arg()
            elif w == "oif":
                v["oif"] = arg()
            elif w == "uidrange":
                v["uidrange"] = _range(arg(), "uidrange", 0xFFFFFFFF)
            elif w in ("sport", "dport"):
                v[w] = _range(arg(), w, 65535)
            elif w in ("ipproto", "ip_proto"):
                if w == "ip_proto":
                    # The man page's example spells it ip_proto; keepalived 2.2.7 rejects the rule.
                    raise ConfigValueError("unknown rule option 'ip_proto' (keepalived spells it 'ipproto')")
                text = arg()
                proto = _IPPROTO.get(text.lower())
                if proto is None:
                    try:
                        proto = parse_uint(text, 0, 255, "ipproto")
                    except ConfigValueError:
                        raise ConfigValueError(f"invalid ipproto {text}") from None
                v["ipproto"] = proto
            elif w == "protocol":
                v["protocol"] = parse_uint(arg(), 0, 255, "protocol")
            elif w == "suppress_prefixlength":
                v["suppress_prefixlength"] = parse_uint(arg(), what="suppress_prefixlength")
            elif w == "suppress_ifgroup":
                text = arg()
                try:
                    v["suppress_ifgroup"] = parse_named(text, "group", "suppress_ifgroup", 0xFFFFFFFF)
                except ConfigValueError:
                    raise ConfigValueError(f"suppress_ifgroup {text} is invalid") from None
            elif w == "inet6":
                v["inet6"] = True
            elif w == "inet":
                inet = True
            elif w == "no_track":
                v["no_track"] = True
            elif w == "track_group" and self.static:
                v["track_group"] = check_track_group(arg(), ctx, loc)
            else:
                raise ConfigValueError(f"unknown rule option '{w}'")
        if actions == 0:
            raise ConfigValueError("no action (table, goto, l3mdev, blackhole, prohibit, unreachable or nop)")
        if actions > 1:
            raise ConfigValueError("more than one of table/nop/goto/blackhole/prohibit/unreachable/l3mdev")
        versions = {a.version for a in (v.get("from_"), v.get("to")) if a is not None}
        if len(versions) > 1:
            raise ConfigValueError("the rule mixes IPv4 and IPv6")
        family = versions.pop() if versions else (6 if v.get("inet6") else 4)
        if v.get("inet6") and family == 4:
            raise ConfigValueError("inet6 specified for an IPv4 rule")
        if inet and family == 6:
            raise ConfigValueError("inet specified for an IPv6 rule")
        for key in ("iif", "oif"):
            if key in v:
                check_interface(v[key], "rule", ctx, loc)
        if "preference" not in v:
            # keepalived numbers them down from 16384, per family, in file order.
            key = f"rules.next_preference{family}"
            pref = ctx.settings.get(key, FIRST_AUTO_PREFERENCE)
            ctx.settings[key] = pref - 1
            ctx.diags.reset(f"rule has no preference; using {pref} (probably not what you want)", loc)
            v["preference"] = pref
        return RuleEntry(location=loc, **v)


RULE_LINE: Callable[[Stmt, Context], RuleEntry] = RuleLine(static=False)
"""For virtual_rules (track_group is not accepted there)."""
STATIC_RULE_LINE: Callable[[Stmt, Context], RuleEntry] = RuleLine(static=True)
