"""contrib/systemd/pykeepalived.service: what the issue asks of it, and systemd's own check."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from haparent import manpages

UNIT = Path(__file__).resolve().parents[2] / "contrib/systemd/pykeepalived.service"


def _settings(section: str) -> list[tuple[str, str]]:
    """Every `Key=value` of a section in order, repeated keys included (configparser keeps
    only the last Documentation=)."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.append((key, value))
    return out


def test_unit_has_the_required_settings() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify"
    # ExecStart's path stays /usr/local/bin (pip's); the Debian package rewrites its own copy.
    assert service["ExecStart"] == "/usr/local/bin/pykeepalived --dont-fork $DAEMON_ARGS"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillMode"] == "process"
    assert service["Restart"] == "on-failure"
    assert int(service["WatchdogSec"]) > 0
    assert service["NotifyAccess"] == "main"


def test_unit_is_packaged_as_debian_keepalived() -> None:
    unit = dict(_settings("Unit"))
    service = dict(_settings("Service"))
    # Debian's keepalived.service: no configuration, no start; DAEMON_ARGS from /etc/default.
    assert unit["ConditionFileNotEmpty"] == "/etc/keepalived/keepalived.conf"
    assert service["EnvironmentFile"] == "-/etc/default/pykeepalived"
    assert "$DAEMON_ARGS" in service["ExecStart"]
    assert unit["Conflicts"] == "keepalived.service"
    # A bad configuration (2), a fatal error (1) or a missing permission (4) is not
    # retried every RestartSec forever.
    assert set(service["RestartPreventExitStatus"].split()) == {"1", "2", "4"}


def test_documentation_names_our_man_pages() -> None:
    docs = " ".join(v for k, v in _settings("Unit") if k == "Documentation").split()
    ours = {f"man:{name.rsplit('.', 1)[0]}({name.rsplit('.', 1)[1]})" for name in manpages.PAGES}
    assert ours <= set(docs), docs


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify also checks that ExecStart is executable: point it at a stand-in.
    exe = tmp_path / "pykeepalived"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "pykeepalived.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/pykeepalived", str(exe)))
    # ... and runs man(1) on every Documentation=man: page: ours as `make man` builds them,
    # found first, then the system's (the trailing ':' keeps man's own path, keepalived.conf(5)).
    env = dict(os.environ)
    if shutil.which("man") is not None:
        mandir = tmp_path / "man"
        for page in manpages.write_all(tmp_path / "built"):
            section = mandir / f"man{page.suffix.lstrip('.')}"
            section.mkdir(parents=True, exist_ok=True)
            page.rename(section / page.name)
        env["MANPATH"] = f"{mandir}:"
    # Without man(1) nothing can check the pages: the rest of the unit still is.
    verify = ["systemd-analyze", "verify"] + ([] if shutil.which("man") else ["--man=no"])
    r = subprocess.run([*verify, str(unit)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "pykeepalived.service" not in r.stderr, r.stderr
