"""The heartbeat options of the command line."""

from __future__ import annotations

import pytest

from haparent import cli


def test_heartbeat_defaults_and_options() -> None:
    opts, _ = cli.parse_args([])
    assert (opts.heartbeat_interval, opts.heartbeat_timeout) == (1.0, 3.0)
    opts, _ = cli.parse_args(["--heartbeat-interval", "0.25", "--heartbeat-timeout", "2"])
    assert (opts.heartbeat_interval, opts.heartbeat_timeout) == (0.25, 2.0)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--heartbeat-interval", "0"], "out of range"),
        (["--heartbeat-timeout", "soon"], "invalid duration"),
        (["--heartbeat-interval", "2", "--heartbeat-timeout", "2"], "must be longer than --heartbeat-interval"),
    ],
)
def test_bad_heartbeat_options_are_usage_errors(args: list[str], why: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-n", *args]) == 1
    assert why in capsys.readouterr().err
