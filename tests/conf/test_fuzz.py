"""Fuzzing: arbitrary text and mutated real configs never raise; they end in
diagnostics. (A traceback in front of a user is a bug.)"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import conf
from conf.diagnostics import Diagnostics, Location
from conf.dump import dumps
from conf.lexer import LexError, split_words, strip_comment
from conf.preprocess import LogicalLine
from conf.syntax import parse_statements

SAMPLES = sorted(Path("/usr/share/doc/keepalived/samples").glob("keepalived.conf.*"))
SAMPLE_TEXTS = [p.read_text(errors="replace") for p in SAMPLES]

# Pieces that exercise every part of the syntax.
TOKENS = [
    "{",
    "}",
    '"',
    "'",
    "\\",
    "#",
    "!",
    "$X=",
    "$X",
    "${X}",
    "${_RANDOM 1 2}",
    "@a ",
    "@^a ",
    "~SEQ(N,1,3) ",
    "~LST(N,a,b) ",
    "include ",
    "\n",
    " ",
    "vrrp_instance",
    "virtual_server",
    "real_server",
    "TCP_CHECK",
    "global_defs",
    "priority",
    "300",
    "-1",
    "0x10",
    "1.2.3.4",
    "::1",
    "/33",
    "virtual_ipaddress",
    "\x00",
    "nopreempt",
    "state",
    "MASTER",
    "track_script",
    "vrrp_script",
    "weight",
    "group",
    "fwmark",
    "url",
]

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_text(data: str) -> conf.LoadResult:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "k.conf"
        path.write_text(data, errors="surrogatepass")
        result = conf.load(str(path), config_id="a", interfaces=frozenset({"eth0"}))
        for diag in result.diagnostics.items:
            diag.render(test_mode=True).encode("utf-8")  # printable
        if result.config is not None:
            dumps(result.config)
        return result


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(data: str) -> None:
    load_text(data)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_token_soup(data: str) -> None:
    load_text(data)


@FUZZ
@given(
    st.sampled_from(SAMPLE_TEXTS),
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=40), st.sampled_from(TOKENS)), max_size=8
    ),
)
def test_mutated_samples(text: str, edits: list[tuple[int, int, str]]) -> None:
    for pos, cut, piece in edits:
        at = pos % (len(text) + 1)
        text = text[:at] + piece + text[at + cut :]
    load_text(text)


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "k.conf"
        path.write_bytes(data)
        result = conf.load(str(path), config_id="a", interfaces=frozenset({"eth0"}))
        for diag in result.diagnostics.items:
            diag.render(test_mode=True).encode("utf-8")


@FUZZ
@given(st.lists(st.lists(st.sampled_from(TOKENS), max_size=12).map("".join), max_size=30))
def test_lexer_and_parser_directly(lines: list[str]) -> None:
    """The lexer raises only LexError (which carries the words); the parser never raises."""
    for text in lines:
        try:
            split_words(strip_comment(text))
        except LexError as e:
            assert isinstance(e.words, list)
    diags = Diagnostics()
    logical = [LogicalLine(t, Location("k.conf", n)) for n, t in enumerate(lines, 1) if "\n" not in t]
    parse_statements(logical, diags)
    for diag in diags.items:
        diag.render(test_mode=True)


def test_binary_file() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "k.conf"
        path.write_bytes(bytes(range(256)) * 64)
        result = conf.load(str(path), config_id="a")
        assert result.diagnostics.exit_code() == 5
