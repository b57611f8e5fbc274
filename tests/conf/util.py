"""Helpers for parser tests: parse a config given as text."""

from __future__ import annotations

import textwrap
from pathlib import Path

import conf
from conf.diagnostics import Diagnostic, Severity
from conf.model import Config


def parse(
    tmp_path: Path,
    text: str,
    *,
    name: str = "keepalived.conf",
    config_id: str = "node1",
    interfaces: frozenset[str] | None = frozenset({"eth0", "eth1"}),
    **kw: object,
) -> conf.LoadResult:
    """Write `text` (dedented) to tmp_path/name and load it."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return conf.load(str(path), config_id=config_id, interfaces=interfaces, **kw)  # type: ignore[arg-type]


def config_of(result: conf.LoadResult) -> Config:
    assert result.config is not None, [d.render(test_mode=True) for d in result.diagnostics.items]
    return result.config


def problems(result: conf.LoadResult, *severities: Severity) -> list[Diagnostic]:
    """Diagnostics of the given severities (default: everything but notes)."""
    wanted = severities or (Severity.FATAL, Severity.ERROR, Severity.SECURITY, Severity.RESET, Severity.WARNING)
    return [d for d in result.diagnostics.items if d.severity in wanted]


def messages(result: conf.LoadResult) -> list[str]:
    return [d.render(test_mode=True) for d in result.diagnostics.items]


def clean(result: conf.LoadResult) -> Config:
    """The config, asserting there was no error, reset or warning."""
    found = problems(result)
    assert not found, [d.render(test_mode=True) for d in found]
    return config_of(result)
