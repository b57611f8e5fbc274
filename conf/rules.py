"""Rule lines: static_rules and virtual_rules entries (keepalived.conf(5), "Static
routes/addresses/rules"; the syntax is `ip rule add`'s, without abbreviations).

keepalived gives a rule without a preference one of its own, counting down from 16384
per address family across the whole file, and says so; we do the same.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import field

from conf.diagnostics import Location
from conf.linewords import Words, flag, rejected, value
from conf.modelclass import model_class
from conf.routes import (
    check_interface,
    dump_as,
    parse_named,
    parse_realms,
    parse_table,
    parse_tos,
    parse_uint,
    read_track_group,
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


@model_class
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


class _RuleWords(Words):
    """A rule line being read: also how many actions it names, and `inet`."""

    __slots__ = ("actions", "inet")

    def __init__(self, words: Sequence[str], loc: Location, ctx: Context) -> None:
        super().__init__(words, loc, ctx)
        self.actions = 0
        self.inet = False


def _action(
    field: str, parse: Callable[[str], object] | None = None, setting: object = True
) -> Callable[[_RuleWords, str], None]:
    """An action option (a rule has exactly one): with a value when `parse` is given."""

    def read(line: _RuleWords, word: str) -> None:
        line.values[field] = parse(line.take(word)) if parse is not None else setting
        line.actions += 1

    return read


def _type(line: _RuleWords, word: str) -> None:
    t = line.take(word)
    if t not in ("unicast", *ACTIONS):
        raise ConfigValueError(f"invalid rule type {t}")
    if t != "unicast":
        line.values["type"] = t
        line.actions += 1


def _reworded(parse: Callable[[str], object], message: str) -> Callable[[str], object]:
    """`parse`, with keepalived's message for a bad value."""

    def read(text: str) -> object:
        try:
            return parse(text)
        except ConfigValueError:
            raise ConfigValueError(message.format(text)) from None

    return read


def _preference(line: Words, word: str) -> None:
    """`preference`, `priority` or `order`; keepalived's message names the word used."""
    text = line.take(word)
    try:
        line.values["preference"] = parse_uint(text, what="preference")
    except ConfigValueError:
        raise ConfigValueError(f"invalid rule {word} {text}") from None


def _fwmark(line: Words, word: str) -> None:
    text = line.take(word)
    mark, slash, mask = text.partition("/")
    try:
        line.values["fwmark"] = parse_uint(mark, what="fwmark")
        if slash:
            line.values["fwmask"] = parse_uint(mask, what="fwmark mask")
    except ConfigValueError:
        raise ConfigValueError(f"invalid rule fwmark {text}") from None


def _ipproto(text: str) -> int:
    proto = _IPPROTO.get(text.lower())
    return proto if proto is not None else parse_uint(text, 0, 255, "ipproto")


def _address(line: Words, word: str) -> None:
    """from/to PREFIX|all: a bad prefix length is reset with the line's location."""
    line.values["from_" if word == "from" else "to"] = _net(line.take(word), line.loc, line.ctx)


def _inet(line: _RuleWords, word: str) -> None:
    line.inet = True


# The options of a rule line: keyword -> reader.
_RULE_READERS: dict[str, Callable[[_RuleWords, str], None]] = {
    "from": _address,
    "to": _address,
    "not": flag("not_"),
    "table": _action("table", parse_table),
    "lookup": _action("table", parse_table),
    "goto": _action("goto", lambda t: parse_uint(t, what="goto target")),
    "l3mdev": _action("l3mdev"),
    **{a: _action("type", setting=a) for a in ACTIONS},
    "type": _type,
    "preference": _preference,
    "priority": _preference,
    "order": _preference,
    "fwmark": _fwmark,
    "realms": value("realms", parse_realms),
    "tos": value("tos", parse_tos),
    "dsfield": value("tos", parse_tos),
    "iif": value("iif", str),
    "dev": value("iif", str),
    "oif": value("oif", str),
    "uidrange": value("uidrange", lambda t: _range(t, "uidrange", 0xFFFFFFFF)),
    "sport": value("sport", lambda t: _range(t, "sport", 65535)),
    "dport": value("dport", lambda t: _range(t, "dport", 65535)),
    "ipproto": value("ipproto", _reworded(_ipproto, "invalid ipproto {}")),
    # The man page's example spells it ip_proto; keepalived 2.2.7 rejects the rule.
    "ip_proto": rejected("unknown rule option 'ip_proto' (keepalived spells it 'ipproto')"),
    "protocol": value("protocol", lambda t: parse_uint(t, 0, 255, "protocol")),
    "suppress_prefixlength": value("suppress_prefixlength", lambda t: parse_uint(t, what="suppress_prefixlength")),
    "suppress_ifgroup": value(
        "suppress_ifgroup",
        _reworded(lambda t: parse_named(t, "group", "suppress_ifgroup", 0xFFFFFFFF), "suppress_ifgroup {} is invalid"),
    ),
    "inet6": flag("inet6"),
    "inet": _inet,
    "no_track": flag("no_track"),
}


_STATIC_RULE_READERS = _RULE_READERS | {"track_group": read_track_group}


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
        self.readers = _STATIC_RULE_READERS if static else _RULE_READERS

    def __call__(self, stmt: Stmt, ctx: Context) -> RuleEntry:
        return self.parse(list(stmt.words), stmt.location, ctx)

    def parse(self, words: list[str], loc: Location, ctx: Context) -> RuleEntry:
        line = _RuleWords(words, loc, ctx)
        while line.more():
            w = line.next()
            read = self.readers.get(w)
            if read is None:
                raise ConfigValueError(f"unknown rule option '{w}'")
            read(line, w)
        if line.actions == 0:
            raise ConfigValueError("no action (table, goto, l3mdev, blackhole, prohibit, unreachable or nop)")
        if line.actions > 1:
            raise ConfigValueError("more than one of table/nop/goto/blackhole/prohibit/unreachable/l3mdev")
        v = line.values
        family = _family(v.get("from_"), v.get("to"), bool(v.get("inet6")), line.inet)
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


def _family(from_: IPNetwork | None, to: IPNetwork | None, inet6: bool, inet: bool) -> int:
    versions = {a.version for a in (from_, to) if a is not None}
    if len(versions) > 1:
        raise ConfigValueError("the rule mixes IPv4 and IPv6")
    family = versions.pop() if versions else (6 if inet6 else 4)
    if inet6 and family == 4:
        raise ConfigValueError("inet6 specified for an IPv4 rule")
    if inet and family == 6:
        raise ConfigValueError("inet specified for an IPv6 rule")
    return family


RULE_LINE: Callable[[Stmt, Context], RuleEntry] = RuleLine(static=False)
"""For virtual_rules (track_group is not accepted there)."""
STATIC_RULE_LINE: Callable[[Stmt, Context], RuleEntry] = RuleLine(static=True)
