"""The command line: keepalived's options, -t exit codes, --print-config, --signum."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from haparent import cli

GOOD = """
global_defs {
    router_id lab1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.10/24
    }
}
"""


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real program in a real process, as a user runs it."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run(
        [sys.executable, "-m", "haparent.cli", *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


def write(tmp_path: Path, text: str, name: str = "keepalived.conf") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.mark.parametrize(
    ("name", "number"), [("STOP", 15), ("RELOAD", 1), ("DATA", 10), ("STATS", 12), ("STATS_CLEAR", 63), ("JSON", 36)]
)
def test_signum_matches_keepalived(name: str, number: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([f"--signum={name}"]) == 0
    assert capsys.readouterr().out == f"{number}\n"


def test_unknown_signum(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--signum=FOO"]) == 1
    assert "Unknown sigfunc FOO" in capsys.readouterr().err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    # Both on stderr, as keepalived prints them; -v's first line's second word is the keepalived
    # version followed (keepalived-exporter's ParseVersion reads exactly that).
    assert cli.main(["-v"]) == 0
    printed = capsys.readouterr()
    assert printed.out == ""
    first, _ = printed.err.split("\n", 1)
    assert first.split(" ")[1] == "v2.2.7" and "pykeepalived v" in first
    assert "Config options:  " in printed.err and " JSON " in printed.err
    assert cli.main(["--help"]) == 0
    printed = capsys.readouterr()
    assert printed.out == ""
    out = printed.err
    assert out.startswith("Usage: pykeepalived [OPTION...]\n")
    assert "  -f, --use-file=FILE          Use the specified configuration file" in out
    assert "  -t, --config-test[=LOG_FILE]\n" in out
    for flag in (
        "--use-file",
        "--vrrp",
        "--check",
        "--log-console",
        "--log-detail",
        "--log-facility",
        "--dont-fork",
        "--dump-conf",
        "--pid",
        "--vrrp_pid",
        "--checkers_pid",
        "--config-id",
        "--config-test",
        "--dont-respawn",
        "--dont-release-vrrp",
        "--dont-release-ipvs",
        "--signum",
        "--print-config",
    ):
        assert flag in out


def test_unknown_option_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--no-such-option"]) == 1
    assert "unrecognized arguments" in capsys.readouterr().err


def test_options_are_parsed_with_keepalived_meanings() -> None:
    opts, _ = cli.parse_args(
        [
            "-f",
            "/x.conf",
            "-P",
            "-l",
            "-D",
            "-D",
            "-S",
            "local3",
            "-n",
            "-d",
            "-p",
            "/p",
            "-r",
            "/r",
            "-c",
            "/c",
            "-i",
            "high",
            "-R",
            "-V",
            "-I",
        ]
    )
    assert (opts.config_file, opts.vrrp_only, opts.log_console, opts.log_detail, opts.log_facility) == (
        "/x.conf",
        True,
        True,
        2,
        "local3",
    )
    assert (opts.dont_fork, opts.dump_conf, opts.pid_file, opts.vrrp_pid_file, opts.checkers_pid_file) == (
        True,
        True,
        "/p",
        "/r",
        "/c",
    )
    assert (opts.config_id, opts.dont_respawn, opts.dont_release_vrrp, opts.dont_release_ipvs) == (
        "high",
        True,
        True,
        True,
    )
    assert cli.parse_args(["-t"])[0].dont_respawn  # -t implies -R, as in keepalived
    assert cli.parse_args([])[0].config_file == "/etc/keepalived/keepalived.conf"


def test_bad_facility_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-S", "local9", "-t"]) == 1
    assert "invalid log facility" in capsys.readouterr().err


def test_config_test_valid_is_silent(tmp_path: Path) -> None:
    r = run("-t", "-f", write(tmp_path, GOOD))
    assert (r.returncode, r.stdout) == (0, "")
    assert "error" not in r.stderr


def test_config_test_missing_file_exits_4(tmp_path: Path) -> None:
    r = run("-t", "-f", str(tmp_path / "nope.conf"))
    assert r.returncode == 4
    assert "not found" in r.stderr and "Traceback" not in r.stderr


def test_config_test_errors_are_compiler_style(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    priority 100", "    priority 100\n    virtual_ipadress {\n    }"))
    r = run("-t", "-f", path)
    assert r.returncode == 5
    assert f"{path}:10: error: unknown keyword 'virtual_ipadress'" in r.stderr
    assert "did you mean 'virtual_ipaddress'?" in r.stderr


def test_config_test_log_file(tmp_path: Path) -> None:
    log = tmp_path / "test.log"
    path = write(tmp_path, "bogus_keyword\n")
    r = run(f"--config-test={log}", "-f", path)
    assert r.returncode == 5 and r.stderr == ""
    assert f"{path}:1: error: unknown keyword 'bogus_keyword'" in log.read_text()


def test_binary_garbage_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.conf"
    path.write_bytes(bytes(range(256)) * 8 + b"{{{{\"'\\$${")
    r = run("-t", "-f", str(path))
    assert r.returncode == 5
    assert "Traceback" not in r.stderr and r.stderr.strip()


def test_print_config_json(tmp_path: Path) -> None:
    r = run("--print-config", "-f", write(tmp_path, GOOD))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    vi = data["vrrp_instance"]["VI_1"]
    assert vi["virtual_router_id"] == 51 and vi["priority"] == 100 and vi["interface"] == "eth0"
    assert data["global_defs"]["router_id"] == "lab1"


def test_print_config_exit_status_follows_t(tmp_path: Path) -> None:
    r = run("--print-config", "-f", write(tmp_path, GOOD + "oops_keyword\n"))
    assert r.returncode == 5
    json.loads(r.stdout)  # still printed: what would run, with the bad keyword ignored


def test_config_id_selects_conditional_lines(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    priority 100", "@high    priority 150\n@^high    priority 50"))
    high = json.loads(run("--print-config", "-i", "high", "-f", path).stdout)
    low = json.loads(run("--print-config", "-i", "low", "-f", path).stdout)
    assert high["vrrp_instance"]["VI_1"]["priority"] == 150
    assert low["vrrp_instance"]["VI_1"]["priority"] == 50


def test_daemon_refuses_a_bad_config(tmp_path: Path) -> None:
    r = run("-n", "-f", write(tmp_path, "vrrp_instance VI_1 {\n"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
