"""Configuration input must not freeze or crash the daemon: files that are not regular
are skipped in keepalived's words, and what a configuration may cost is bounded
(conf/limits.py). Subprocess runs have a timeout, so a regression fails, not hangs."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import conf
import conf.loader
import conf.preprocess
import conf.syntax
from bench.parse_bench import generate
from conf.diagnostics import Severity
from conf.limits import MAX_BLOCK_DEPTH, MAX_BLOCK_STATEMENTS, MAX_CONFIG_BYTES, MAX_LINE_CHARS
from tests.conf.util import messages, parse, problems

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 5
    priority 100
    virtual_ipaddress {
        10.0.0.1
    }
}
"""


def config_test(path: Path) -> subprocess.CompletedProcess[str]:
    """`pykeepalived -t -f PATH`, killed after 20 s: a hang is a failure."""
    return subprocess.run(
        [sys.executable, "-m", "haparent.cli", "-t", "-f", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )


@pytest.fixture
def alarm() -> Iterator[None]:
    """In-process reads that could block: SIGALRM fails the test after 10 s instead."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("blocked reading a configuration file")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- files that are not regular -----------------------------------------------------------


def test_fifo_include_is_skipped_not_waited_for(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    main = tmp_path / "keepalived.conf"
    main.write_text(f"include {tmp_path / 'fifo'}\n{INSTANCE}")
    done = config_test(main)
    line = (
        f"{main}:1: warning: Configuration file '{tmp_path / 'fifo'}' is not a regular non-executable file - skipping"
    )
    assert line in done.stderr.splitlines()
    assert "Traceback" not in done.stderr


def test_main_file_fifo_cannot_run(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    done = config_test(tmp_path / "fifo")
    assert done.returncode == 4
    assert (
        done.stderr
        == f"error: Configuration file '{tmp_path / 'fifo'}' is not a regular non-executable file - skipping\n"
    )


def test_non_regular_includes_are_skipped_in_keepalived_words(tmp_path: Path, alarm: None) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    (tmp_path / "exec.conf").write_text("global_defs {\n router_id from_exec\n}\n")
    (tmp_path / "exec.conf").chmod(0o755)
    (tmp_path / "real.conf").write_text("global_defs {\n router_id from_link\n}\n")
    (tmp_path / "link.conf").symlink_to("real.conf")
    try:
        result = parse(
            tmp_path,
            "include fifo\ninclude dir\ninclude /dev/null\ninclude sock\ninclude exec.conf\ninclude link.conf\n"
            + INSTANCE,
        )
    finally:
        sock.close()
    main = tmp_path / "keepalived.conf"
    skipped = "is not a regular non-executable file - skipping"
    assert messages(result) == [
        f"{main}:1: warning: Configuration file '{tmp_path / 'fifo'}' {skipped}",
        f"{main}:2: warning: Configuration file '{tmp_path / 'dir'}/' is a directory - skipping",
        f"{main}:3: warning: Configuration file '/dev/null' {skipped}",
        f"{main}:4: warning: Configuration file '{tmp_path / 'sock'}' {skipped}",
        f"{main}:5: warning: Configuration file '{tmp_path / 'exec.conf'}' {skipped}",
    ]
    assert result.ok and result.diagnostics.exit_code() == 0  # keepalived -t exits 0 too
    assert result.config is not None and result.config.global_defs.router_id == "from_link"  # symlinks are followed


def test_glob_include_skips_what_is_not_regular(tmp_path: Path, alarm: None) -> None:
    (tmp_path / "conf.d").mkdir()
    os.mkfifo(tmp_path / "conf.d" / "a.conf")
    (tmp_path / "conf.d" / "b.conf").write_text("global_defs {\n router_id b\n}\n")
    result = parse(tmp_path, "include conf.d/*.conf\n" + INSTANCE)
    assert [d.severity for d in problems(result)] == [Severity.WARNING]
    assert result.config is not None and result.config.global_defs.router_id == "b"


def test_includer_makes_a_skipped_file_an_error(tmp_path: Path, alarm: None) -> None:
    os.mkfifo(tmp_path / "fifo")
    result = parse(tmp_path, "includer fifo\n" + INSTANCE)
    (d,) = problems(result)
    assert d.severity is Severity.ERROR and "not a regular non-executable file" in d.message


def test_fifo_swapped_in_after_stat_does_not_block(
    tmp_path: Path, alarm: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: stat() saw a regular file, open() finds a FIFO. O_NONBLOCK and fstat()."""
    os.mkfifo(tmp_path / "fifo")
    real_check = conf.preprocess.not_regular
    calls: list[str] = []

    def fooled_once(path: str, mode: int) -> str | None:
        calls.append(path)
        return None if len(calls) == 1 else real_check(path, mode)

    monkeypatch.setattr(conf.preprocess, "not_regular", fooled_once)
    result = conf.load(str(tmp_path / "fifo"), config_id="x")
    assert len(calls) == 2 and result.diagnostics.exit_code() == 4


# ---- cost ------------------------------------------------------------------------------


def test_huge_block_is_a_diagnostic_within_seconds(tmp_path: Path) -> None:
    """The shape of the 50 MB file of issue 11 (2.5 M addresses), cut just over the limit."""
    vips = "".join(
        f"        10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32\n" for i in range(MAX_BLOCK_STATEMENTS + 10)
    )
    path = tmp_path / "keepalived.conf"
    path.write_text(
        f"vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 5\n    virtual_ipaddress {{\n{vips}}}\n}}\n"
    )
    started = time.monotonic()
    done = config_test(path)
    assert time.monotonic() - started < 10
    assert done.returncode == 5
    assert done.stderr == (
        f"{path}:{MAX_BLOCK_STATEMENTS + 5}: error: configuration too large: more than {MAX_BLOCK_STATEMENTS} "
        f"statements in the 'virtual_ipaddress' block opened at line 4 of '{path}'\n"
    )


def test_file_over_the_byte_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    with path.open("wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)  # sparse: costs no disk
    result = conf.load(str(path), config_id="x")
    (d,) = result.diagnostics.items
    assert d.severity is Severity.ERROR and d.message.startswith(
        f"configuration too large: more than {MAX_CONFIG_BYTES} bytes"
    )
    assert result.diagnostics.exit_code() == 5 and result.config is None


def test_byte_limit_counts_every_include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conf.preprocess, "MAX_CONFIG_BYTES", 200)
    (tmp_path / "a.conf").write_text("! " + "a" * 100 + "\n")
    (tmp_path / "b.conf").write_text("! " + "b" * 100 + "\n")
    result = parse(tmp_path, "include a.conf\ninclude b.conf\n")
    (d,) = problems(result)
    assert d.message == f"configuration too large: more than 200 bytes in all with '{tmp_path / 'b.conf'}'"
    assert d.location is not None and d.location.line == 2


@pytest.mark.parametrize(("limit", "what"), [("MAX_LINES", "lines"), ("MAX_WORDS", "words")])
def test_line_and_word_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, what: str) -> None:
    monkeypatch.setattr(conf.syntax, limit, 10)
    result = parse(tmp_path, "global_defs {\n" + "  router_id a\n" * 20 + "}\n")
    (d,) = problems(result)
    assert d.message == f"configuration too large: more than 10 {what} of statements"
    assert result.config is None and result.diagnostics.exit_code() == 5


def test_overlong_line_is_ignored(tmp_path: Path) -> None:
    result = parse(tmp_path, "x" * (MAX_LINE_CHARS + 1) + "\n" + INSTANCE)
    (d,) = problems(result)
    assert d.location is not None and d.location.line == 1 and "line longer than" in d.message
    assert result.config is not None and "VI_1" in result.config.vrrp_instance


def test_deeply_nested_blocks(tmp_path: Path) -> None:
    result = parse(tmp_path, "a {\n" * 100_000)
    (d,) = problems(result)
    assert d.message == f"configuration too large: blocks nested deeper than {MAX_BLOCK_DEPTH} levels"
    assert d.location is not None and d.location.line == MAX_BLOCK_DEPTH + 1


@pytest.mark.parametrize("error", [MemoryError, RecursionError])
def test_memory_and_recursion_errors_are_diagnostics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    def explode(*args: object, **kw: object) -> None:
        raise error

    monkeypatch.setattr(conf.loader, "parse_block", explode)
    result = parse(tmp_path, INSTANCE)
    (d,) = result.diagnostics.items
    assert d.severity is Severity.ERROR and d.message.startswith("configuration too large: ")
    assert result.config is None and result.diagnostics.exit_code() == 5


def test_vips_beyond_255_move_to_evips(tmp_path: Path) -> None:
    vips = "".join(f"        10.0.{i >> 8}.{i & 255}\n" for i in range(300))
    result = parse(
        tmp_path,
        f"vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {{\n{vips} }}\n}}\n",
    )
    (d,) = problems(result)
    assert d.severity is Severity.RESET and d.message == (
        "(VI_1) Number of VIPs (300) exceeds maximum/space available in packet (max 255 addresses)"
        " - excess moved to eVIPs"
    )
    assert result.config is not None
    inst = result.config.vrrp_instance["VI_1"]
    assert len(inst.virtual_ipaddress) == 255 and len(inst.virtual_ipaddress_excluded) == 45
    assert str(inst.virtual_ipaddress_excluded[0].ip) == "10.0.0.255"


# ---- recursion -------------------------------------------------------------------------------


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    result = parse(tmp_path, "include keepalived.conf\n" + INSTANCE)
    (d,) = problems(result)
    assert d.severity is Severity.ERROR and d.message.startswith("include cycle: ")
    assert result.config is not None and "VI_1" in result.config.vrrp_instance


def test_glob_that_matches_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "other.conf").write_text("include *.conf\n")
    result = parse(tmp_path, "include *.conf\n" + INSTANCE)
    assert {d.severity for d in problems(result)} == {Severity.ERROR}
    assert all("include cycle" in d.message for d in problems(result))


# ---- the supervisor validates in a forked process and sends the result back ----------------


def test_load_result_pickles(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(generate(20, 200) + 'global_defs {\n  router_id "quoted { brace"\n}\n')
    for result in (conf.load(str(path), config_id="x"), conf.load(str(tmp_path / "missing"), config_id="x")):
        again = pickle.loads(pickle.dumps(result))
        assert again == result and again.ok == result.ok and again.files == result.files
