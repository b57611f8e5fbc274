"""Includes, conditionals, parameters and repetition (keepalived.conf(5) ADVANCED
CONFIGURATION); the man page's own examples are the test cases."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conf.diagnostics import Diagnostics, Severity
from conf.limits import MAX_INCLUDE_DEPTH
from conf.preprocess import Preprocessor, expand_braces


def lines_of(tmp_path: Path, text: str, config_id: str = "main", **kw: object) -> tuple[list[str], Diagnostics]:
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(text))
    diags = Diagnostics()
    pre = Preprocessor(config_id, diags, env={"HOME": "/root", "SITE": "lab"}, rand=lambda lo, hi: lo, **kw)  # type: ignore[arg-type]
    return [line.text for line in pre.lines(str(path))], diags


def test_recursive_substitution_at_use_time(tmp_path: Path) -> None:
    out, _ = lines_of(
        tmp_path,
        """
        $ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}
        $ADDRESS_BASE_SUB=0
        ${ADDRESS_BASE}.100/32
        $ADDRESS_BASE_SUB=10
        ${ADDRESS_BASE}.100/32
        """,
    )
    assert out == ["10.2.0.100/32", "10.2.10.100/32"]


@pytest.mark.parametrize(("cid", "expected"), [("main", ["priority 240"]), ("backup", ["priority 200"]), ("x", [])])
def test_conditional_definitions(tmp_path: Path, cid: str, expected: list[str]) -> None:
    out, _ = lines_of(tmp_path, "@main $PRIORITY=240\n@backup $PRIORITY=200\n@^x priority $PRIORITY\n", cid)
    assert out == expected


def test_negated_conditional_and_conditional_from_parameter(tmp_path: Path) -> None:
    text = "@^main 1.2.3.4\n@^backup 1.2.3.5\n$IF_MAIN=@main\n$IF_MAIN priority 240\n"
    assert lines_of(tmp_path, text, "main")[0] == ["1.2.3.5", "priority 240"]
    assert lines_of(tmp_path, text, "backup")[0] == ["1.2.3.4"]


def test_undefined_parameter_stays(tmp_path: Path) -> None:
    out, diags = lines_of(tmp_path, 'script "echo ${UNDEF} $ALSO_UNDEF"\n')
    assert out == ['script "echo ${UNDEF} $ALSO_UNDEF"']
    assert not diags.items


def test_multiline_nested_definitions(tmp_path: Path) -> None:
    out, _ = lines_of(
        tmp_path,
        r"""
        $RS= \
        real_server 192.168.${VS_NUM}.${RS_NUM} 80 { \
            weight 1 \
        }
        $VS= \
        virtual_server 10.0.${VS_NUM}.4 80 { \
            $RS_NUM=1 \
            $RS \
            $RS_NUM=2 \
            $RS \
        }
        $VS_NUM=0
        $VS
        $VS_NUM=1
        $VS
        """,
    )
    servers = [line for line in out if line.startswith(("virtual_server", "real_server"))]
    assert servers == [
        "virtual_server 10.0.0.4 80 {",
        "real_server 192.168.0.1 80 {",
        "real_server 192.168.0.2 80 {",
        "virtual_server 10.0.1.4 80 {",
        "real_server 192.168.1.1 80 {",
        "real_server 192.168.1.2 80 {",
    ]
    assert out.count("}") == 6


def test_predefined_parameters(tmp_path: Path) -> None:
    out, _ = lines_of(tmp_path, "a ${_PWD} ${_INSTANCE} ${_RANDOM 7 9} ${_ENV SITE} x${_HASH}y${_BANG}\n")
    assert out == [f"a {tmp_path} main 7 lab x#y!"]


def test_seq_examples(tmp_path: Path) -> None:
    out, _ = lines_of(tmp_path, "~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1\n")
    assert out == [f"ip_address 10.0.{n}.1" for n in range(4)]
    out, _ = lines_of(tmp_path, "~SEQx(SUBNET, 0x90, 0x10, 0xc0) ip fe80::20:${SUBNET}:1\n")
    assert out == [f"ip fe80::20:{x}:1" for x in ("90", "a0", "b0", "c0")]
    out, _ = lines_of(tmp_path, "~SEQ(N, 3) n${N}\n~SEQ(M, 3, 1) m${M}\n")
    assert out == ["n1", "n2", "n3", "m3", "m2", "m1"]


def test_lst_combined_with_seq(tmp_path: Path) -> None:
    out, _ = lines_of(tmp_path, "~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,172) 192.${IP2}.${IP}.${IP1}\n")
    assert out == ["192.168.10.1", "192.170.10.1", "192.172.10.1", "192.168.20.4", "192.170.20.4", "192.172.20.4"]


def test_bad_repetition_is_reported_with_its_line(tmp_path: Path) -> None:
    out, diags = lines_of(tmp_path, "a\n~SEQ(X, 1, 0, 5) b\n~LST({A,B}, {1}) c\n~SEQ(X, 1\n")
    assert out == ["a"]
    assert [(d.severity, d.location.line if d.location else 0) for d in diags.items] == [
        (Severity.RESET, 2),
        (Severity.RESET, 3),
        (Severity.RESET, 4),
    ]


def test_self_referencing_parameter_is_an_error_not_a_hang(tmp_path: Path) -> None:
    out, diags = lines_of(tmp_path, "$LOOP=$LOOP x\n$LOOP\n")
    assert out == []
    assert diags.items[0].severity is Severity.ERROR and "deeper" in diags.items[0].message


def test_include_glob_relative_and_braces(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("from b\n")
    (tmp_path / "conf.d" / "a.conf").write_text("from a\ninclude ../extra/{x,y}.conf\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "x.conf").write_text("from x ${_PWD}\n")
    (tmp_path / "extra" / "y.conf").write_text("from y\n")
    out, diags = lines_of(tmp_path, "top\ninclude conf.d/*.conf\nend\n")
    assert out == ["top", "from a", f"from x {tmp_path / 'extra'}", "from y", "from b", "end"]
    assert not diags.items


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "other.conf").write_text("other\ninclude keepalived.conf\n")
    out, diags = lines_of(tmp_path, "main\ninclude other.conf\n")
    assert out == ["main", "other"]
    (d,) = diags.items
    assert d.severity is Severity.ERROR and "include cycle" in d.message
    assert d.location is not None and d.location.file.endswith("other.conf") and d.location.line == 2


def test_include_depth_is_limited(tmp_path: Path) -> None:
    for n in range(MAX_INCLUDE_DEPTH + 5):
        (tmp_path / f"f{n}.conf").write_text(f"include f{n + 1}.conf\n")
    _out, diags = lines_of(tmp_path, "include f0.conf\n")
    assert any("nested deeper" in d.message for d in diags.items)


def test_include_checks(tmp_path: Path) -> None:
    _, diags = lines_of(tmp_path, "include missing/*.conf\n")
    assert [d.severity for d in diags.items] == [Severity.WARNING]
    _, diags = lines_of(tmp_path, "includem missing/*.conf\n")
    assert [d.severity for d in diags.items] == [Severity.ERROR]
    _, diags = lines_of(tmp_path, "include missing/*.conf\n", all_config=True)
    assert Severity.ERROR in [d.severity for d in diags.items]


def test_missing_main_file_is_fatal(tmp_path: Path) -> None:
    diags = Diagnostics()
    assert list(Preprocessor("x", diags).lines(str(tmp_path / "nope.conf"))) == []
    assert diags.exit_code() == 4


def test_main_file_that_is_a_directory_is_fatal(tmp_path: Path) -> None:
    diags = Diagnostics()
    assert list(Preprocessor("x", diags).lines(str(tmp_path))) == []
    assert diags.exit_code() == 4
    assert diags.items[0].message == f"Configuration file '{tmp_path}/' is a directory - skipping"


def test_binary_garbage_does_not_raise(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_bytes(bytes(range(256)) * 4)
    diags = Diagnostics()
    list(Preprocessor("x", diags).lines(str(path)))


def test_expand_braces() -> None:
    assert expand_braces("{foo/{,cat,dog},bar}") == ["foo/", "foo/cat", "foo/dog", "bar"]
    assert expand_braces("a{b}c") == ["a{b}c"]
    assert expand_braces("plain") == ["plain"]
