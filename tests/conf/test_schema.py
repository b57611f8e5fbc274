"""The schema machinery on a small block family of its own: keyword fields, defaults,
resets, unknown keywords with hints, repetition, value comparison and JSON."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import ClassVar

from conf.diagnostics import Diagnostics, Location, Severity
from conf.dump import dumps
from conf.preprocess import LogicalLine
from conf.schema import EMPTY, Block, Context, FrozenMap, kw, parse_block
from conf.syntax import parse_statements
from conf.values import (
    Bool,
    Choice,
    Flag,
    Float,
    Int,
    IpAddr,
    ItemLine,
    Lines,
    Named,
    Names,
    Opt,
    ScriptCmd,
    Str,
    Sub,
    Words,
)


@dataclass(frozen=True)
class Entry:
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    dev: str | None = None
    no_track: bool = False


ENTRY = ItemLine(Entry, [("addr", IpAddr())], {"dev": Opt("dev", Str()), "no_track": Opt("no_track")})


@dataclass(frozen=True)
class Inner(Block):
    label: ClassVar[str] = "inner"
    mode: str = kw(Choice("PASS", "AH"), "PASS")
    password: str | None = kw(Str(), keyword="pass")


@dataclass(frozen=True)
class Thing(Block):
    label: ClassVar[str] = "thing"
    name: str = ""
    priority: int = kw(Int(1, 255), 100)
    interval: float = kw(Float(0.01, 40.95), 1.0)
    nopreempt: bool = kw(Flag(), False)
    debug: bool = kw(Bool(), False, unsupported="no debug mode")
    retry: int = kw(Int(0), 1, aliases=("nb_get_retry",), deprecated=("nb_get_retry",))
    notify: object = kw(ScriptCmd())
    members: tuple[str, ...] = kw(Names(), ())
    entries: tuple[Entry, ...] = kw(Lines(ENTRY), ())
    tag: tuple[tuple[str, ...], ...] = kw(Words(1, 2), many="list")
    inner: Inner = kw(Sub(Inner), Inner())


@dataclass(frozen=True)
class Top(Block):
    label: ClassVar[str] = "the top level"
    thing: FrozenMap[str, Thing] = kw(Named(Thing), many="map")
    settings: Inner = kw(Sub(Inner), Inner(), many="merge")


def build(*lines: str) -> tuple[Top, Diagnostics]:
    diags = Diagnostics()
    stmts = parse_statements([LogicalLine(t, Location("k.conf", n + 1)) for n, t in enumerate(lines)], diags)
    return parse_block(Top, stmts, Context(diags), location=None), diags


def test_defaults_and_types() -> None:
    top, diags = build("thing A {", "}")
    assert not diags.items
    a = top.thing["A"]
    assert (a.name, a.priority, a.interval, a.nopreempt, a.retry, a.members, a.tag) == ("A", 100, 1.0, False, 1, (), ())
    assert a.inner == Inner(mode="PASS", password=None)


def test_values() -> None:
    top, diags = build(
        "thing A {",
        "priority 200",
        "interval 0.5",
        "nopreempt",
        "notify \"/bin/n 'a b'\"",
        "members {",
        "VI_1 VI_2",
        "VI_3",
        "}",
        "entries {",
        "10.0.0.1 dev eth0",
        "fe80::1 no_track",
        "}",
        "tag a",
        "tag b c",
        "inner { mode ah",
        "pass x }",
        "}",
    )
    assert not diags.items, diags.items
    a = top.thing["A"]
    assert (a.priority, a.interval, a.nopreempt) == (200, 0.5, True)
    assert a.notify is not None and a.notify.argv == ("/bin/n", "a b")  # type: ignore[attr-defined]
    assert a.members == ("VI_1", "VI_2", "VI_3")
    assert a.entries == (
        Entry(ipaddress.ip_address("10.0.0.1"), "eth0"),
        Entry(ipaddress.ip_address("fe80::1"), None, True),
    )
    assert a.tag == (("a",), ("b", "c"))
    assert a.inner == Inner(mode="AH", password="x")
    assert a.where("priority") == Location("k.conf", 2)


def test_out_of_range_is_a_reset_that_names_the_default() -> None:
    top, diags = build("thing A {", "priority 300", "interval abc", "}")
    assert top.thing["A"].priority == 100
    (d1, d2) = diags.items
    assert d1.severity is Severity.RESET and d1.location == Location("k.conf", 2)
    assert d1.message == "priority: 300 is outside the range [1, 255]; using the default (100)"
    assert d1.render(test_mode=True).startswith("k.conf:2: error: ")
    assert d1.render(test_mode=False).startswith("k.conf:2: warning: ")
    assert "'abc' is not a number" in d2.message


def test_unknown_keyword_with_suggestions() -> None:
    _, diags = build("thing A {", "priorty 5", "settings {", "}", "}", "thnig B {", "}", "PRIORITY 3")
    msgs = [d.message for d in diags.items]
    assert "did you mean 'priority'?" in msgs[0] and msgs[0].startswith("unknown keyword 'priorty' in thing")
    assert "'settings' belongs in the top level" in msgs[1]
    assert "did you mean 'thing'?" in msgs[2]
    assert "('priority' belongs in thing" in msgs[3]
    assert all(d.severity is Severity.RESET for d in diags.items)


def test_alias_deprecation_and_unsupported() -> None:
    top, diags = build("thing A {", "nb_get_retry 3", "debug on", "}")
    assert top.thing["A"].retry == 3 and top.thing["A"].debug
    assert [(d.severity, d.message) for d in diags.items] == [
        (Severity.WARNING, "'nb_get_retry' is deprecated; use 'retry'"),
        (Severity.NOTE, "'debug' is parsed but not implemented by pykeepalived (no debug mode)"),
    ]


def test_flag_with_bool_and_bad_bool() -> None:
    top, diags = build("thing A {", "nopreempt off", "}", "thing B {", "nopreempt maybe", "}")
    assert top.thing["A"].nopreempt is False and top.thing["B"].nopreempt is False
    assert "not one of on|off|true|false|yes|no" in diags.items[0].message


def test_duplicate_named_block_keeps_the_first() -> None:
    top, diags = build("thing A {", "priority 5", "}", "thing A {", "priority 6", "}")
    assert top.thing["A"].priority == 5
    assert diags.items[0].location == Location("k.conf", 4) and "defined again" in diags.items[0].message


def test_merge_joins_repeated_blocks() -> None:
    top, diags = build("settings {", "mode AH", "}", "settings {", "pass y", "}")
    assert top.settings == Inner(mode="AH", password="y") and not diags.items


def test_block_shape_errors() -> None:
    _, diags = build(
        "thing {", "}", "thing X", "thing Y {", "priority 1 {", "}", "members", "entries {", "1.2.3", "}", "}"
    )
    msgs = [(d.location.line if d.location else 0, d.message) for d in diags.items]
    assert msgs[0][0] == 1 and "needs a name" in msgs[0][1]
    assert msgs[1][0] == 3 and "needs a { } block" in msgs[1][1]
    assert msgs[2][0] == 5 and "takes no { } block" in msgs[2][1]
    assert msgs[3][0] == 7 and "members: needs a { } block" in msgs[3][1]
    assert msgs[4][0] == 9 and "'1.2.3' is not an IP address" in msgs[4][1]


def test_compare_by_value_ignores_locations() -> None:
    a, _ = build("thing A {", "priority 5", "}")
    b, _ = build("", "", "thing A {", "", "priority 5", "}")
    assert a == b and hash(a) == hash(b)
    c, _ = build("thing A {", "priority 6", "}")
    assert a != c


def test_frozen_map() -> None:
    m = FrozenMap({"a": 1})
    assert m == {"a": 1} and m != {"a": 2} and hash(m) == hash(FrozenMap([("a", 1)]))
    assert EMPTY == {} and len(EMPTY) == 0 and repr(m) == "FrozenMap({'a': 1})"


def test_json_uses_keywords_and_names() -> None:
    top, _ = build("thing A {", "inner { pass p }", "entries {", "10.0.0.1", "}", "}")
    data = json.loads(dumps(top))
    assert data["thing"]["A"]["inner"] == {"mode": "PASS", "pass": "p"}
    assert data["thing"]["A"]["entries"] == [{"addr": "10.0.0.1", "dev": None, "no_track": False}]
    assert "location" not in data["thing"]["A"]
