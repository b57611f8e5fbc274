"""keepalived 2.2's remaining options (issue 12): -x, -A, -m, -M, -s, -T. Each is
accepted (today a DAEMON_ARGS="--snmp" must not stop the service)."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from checker_child import genhash as pygenhash
from haparent import cli, start
from haparent.options import Options

CONF = "global_defs {\n    router_id lab1\n}\n"


@pytest.fixture
def conf(tmp_path: Path) -> str:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    return str(path)


@pytest.mark.parametrize("args", [["-x"], ["--snmp"], ["-A", "/run/agentx"], ["--snmp-agent-socket=/run/agentx"]])
def test_snmp_options_are_accepted_with_a_note(args: list[str], conf: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*args, "-t", "-f", conf]) == 0
    assert "SNMP is not implemented by pykeepalived; ignored" in capsys.readouterr().err


def test_snmp_values_reach_the_options() -> None:
    opts, _ = cli.parse_args(["-x", "-A", "/run/agentx"])
    assert opts.snmp and opts.snmp_agent_socket == "/run/agentx"
    assert len(opts.notes()) == 2
    assert Options().notes() == []


@pytest.mark.parametrize(
    ("args", "core_dump", "pattern"),
    [
        (["-m"], True, None),
        (["--core-dump"], True, None),
        (["-M"], True, "core"),  # keepalived: 'core' if no PATTERN
        (["--core-dump-pattern"], True, "core"),
        (["-M/tmp/core.%p"], True, "/tmp/core.%p"),
        (["--core-dump-pattern=/tmp/core.%p"], True, "/tmp/core.%p"),
        ([], False, None),
    ],
)
def test_core_dump_options(args: list[str], core_dump: bool, pattern: str | None, conf: str) -> None:
    opts, _ = cli.parse_args(args)
    assert (opts.core_dump, opts.core_dump_pattern) == (core_dump, pattern)
    assert cli.main([*args, "-t", "-f", conf]) == 0


def test_core_dump_raises_the_limit_and_sets_then_restores_the_pattern(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pattern_file = tmp_path / "core_pattern"
    pattern_file.write_text("|/usr/lib/systemd/systemd-coredump %P\n")
    monkeypatch.setattr(start, "CORE_PATTERN", str(pattern_file))
    calls: list[tuple[int, tuple[int, int]]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: calls.append((which, limits)))
    opts, _ = cli.parse_args(["-M/tmp/core.%p"])
    original = start.enable_core_dumps(opts)
    assert calls == [(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))]
    assert pattern_file.read_text() == "/tmp/core.%p"
    start.restore_core_pattern(original)
    assert pattern_file.read_text() == "|/usr/lib/systemd/systemd-coredump %P\n"
    calls.clear()
    assert start.enable_core_dumps(Options()) is None
    assert calls == []


def test_namespace_option() -> None:
    opts, _ = cli.parse_args(["-s", "blue"])
    assert opts.namespace == "blue"
    opts, _ = cli.parse_args(["--namespace=red"])
    assert opts.namespace == "red"


def test_genhash_mode_hands_the_rest_of_the_line_to_pygenhash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[list[str]] = []

    def fake(argv: list[str]) -> int:
        seen.append(argv)
        return 3

    monkeypatch.setattr(pygenhash, "main", fake)
    assert cli.main(["-T", "-s", "10.0.0.1", "-p", "80", "-u", "/"]) == 3
    assert cli.main(["--genhash", "-h"]) == 3
    assert seen == [["-s", "10.0.0.1", "-p", "80", "-u", "/"], ["-h"]]
    assert capsys.readouterr().err == ""
    # not first: keepalived's warning, and the earlier options are ignored
    assert cli.main(["-n", "-D", "-T", "-s", "h"]) == 3
    assert seen[-1] == ["-s", "h"]
    assert "Warning -- `-T` not used as first option, previous options ignored" in capsys.readouterr().err


def test_genhash_as_another_options_value_is_not_genhash_mode() -> None:
    assert cli.genhash_index(["-f", "-T"]) is None
    assert cli.genhash_index(["-f", "x.conf", "-T"]) == 2
    assert cli.genhash_index(["--", "-T"]) is None


def test_genhash_usage_error_is_pygenhashs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-T"]) != 0
    assert "required" in capsys.readouterr().err
