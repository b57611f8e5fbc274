"""Block structure: braces on the keyword's line or their own, inline blocks, repairs."""

from __future__ import annotations

from conf.diagnostics import Diagnostics, Location, Severity
from conf.preprocess import LogicalLine
from conf.syntax import Stmt, parse_statements


def parse(*lines: str) -> tuple[tuple[Stmt, ...], Diagnostics]:
    diags = Diagnostics()
    logical = [LogicalLine(text, Location("k.conf", n + 1)) for n, text in enumerate(lines)]
    return parse_statements(logical, diags), diags


def shape(stmts: tuple[Stmt, ...] | None) -> object:
    if stmts is None:
        return None
    return [(s.keyword, s.args, shape(s.block)) for s in stmts]


def test_brace_on_keyword_line_and_own_line() -> None:
    a, d1 = parse("vrrp_instance VI_1 {", "priority 100", "}")
    b, d2 = parse("vrrp_instance VI_1", "{", "priority 100", "}")
    assert shape(a) == shape(b) == [("vrrp_instance", ("VI_1",), [("priority", ("100",), None)])]
    assert not d1.items and not d2.items


def test_inline_block() -> None:
    stmts, diags = parse("authentication { auth_type PASS", "auth_pass x }", "priority 1")
    assert shape(stmts) == [
        ("authentication", (), [("auth_type", ("PASS",), None), ("auth_pass", ("x",), None)]),
        ("priority", ("1",), None),
    ]
    assert not diags.items


def test_one_line_block() -> None:
    stmts, _ = parse("virtual_ipaddress { 10.0.0.1/24 }")
    assert shape(stmts) == [("virtual_ipaddress", (), [("10.0.0.1/24", (), None)])]


def test_locations() -> None:
    stmts, _ = parse("a {", "  b 1", "}")
    assert stmts[0].location.line == 1 and stmts[0].block is not None and stmts[0].block[0].location.line == 2


def test_extra_close_and_missing_close_are_repaired() -> None:
    stmts, diags = parse("a {", "b", "}", "}", "c {", "d")
    assert shape(stmts) == [("a", (), [("b", (), None)]), ("c", (), [("d", (), None)])]
    assert [(x.severity, x.location.line if x.location else 0) for x in diags.items] == [
        (Severity.RESET, 4),
        (Severity.RESET, 5),
    ]
    assert "missing '}'" in diags.items[1].message and "'c' block" in diags.items[1].message


def test_brace_without_keyword_is_dropped() -> None:
    stmts, diags = parse("{", "x", "}", "y")
    assert shape(stmts) == [("y", (), None)]
    assert diags.items[0].location == Location("k.conf", 1)


def test_unterminated_quote_reported() -> None:
    stmts, diags = parse('notify "/bin/x')
    assert shape(stmts) == [("notify", ("/bin/x",), None)]
    assert diags.items[0].severity is Severity.RESET
