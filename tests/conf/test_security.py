"""Script security (keepalived.conf(5) SCRIPTS, global_defs enable_script_security)."""

from __future__ import annotations

import os
from pathlib import Path

from conf.diagnostics import Severity
from conf.security import RunAs, insecure_reason
from tests.conf.util import config_of, parse, problems

ROOT = RunAs(0, 0, "root")


def script(directory: Path, mode: int = 0o755, dir_mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(dir_mode)
    path = directory / "check.sh"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(mode)
    return path


def secure_dir(tmp_path: Path) -> Path:
    # pytest's tmp_path sits under /tmp (root-owned, sticky) and dirs made 0700 by root.
    return tmp_path / "secure"


def test_insecure_reasons(tmp_path: Path) -> None:
    assert insecure_reason(str(script(secure_dir(tmp_path))), ROOT) is None
    assert "writable by everyone" in (insecure_reason(str(script(tmp_path / "a", mode=0o757)), ROOT) or "")
    assert "writable by everyone" in (insecure_reason(str(script(tmp_path / "b", dir_mode=0o777)), ROOT) or "")
    owned = script(tmp_path / "c")
    os.chown(owned, 65534, 65534)
    assert "owned by uid 65534" in (insecure_reason(str(owned), ROOT) or "")
    sticky = script(tmp_path / "d", dir_mode=0o1777)
    assert insecure_reason(str(sticky), ROOT) is None  # like /tmp: others cannot replace our file


def test_scripts_without_script_security_exit_6(tmp_path: Path) -> None:
    path = script(secure_dir(tmp_path))
    r = parse(tmp_path, f"global_defs {{\n startup_script {path}\n}}\n")
    (d,) = problems(r)
    assert d.severity is Severity.SECURITY and r.diagnostics.exit_code() == 6
    assert d.message == "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
    assert config_of(r).global_defs.startup_script is not None  # still runs, as in keepalived
    assert d.render(test_mode=False).startswith("warning: ")


def test_insecure_script_is_reported_without_script_security(tmp_path: Path) -> None:
    path = script(tmp_path / "open", dir_mode=0o777)
    r = parse(tmp_path, f"global_defs {{\n startup_script {path}\n}}\n")
    (d,) = problems(r)
    assert d.message.endswith("There are insecure scripts.")


def test_insecure_script_is_disabled_with_script_security(tmp_path: Path) -> None:
    path = script(tmp_path / "open", dir_mode=0o777)
    r = parse(tmp_path, f"global_defs {{\n enable_script_security\n script_user root\n startup_script {path}\n}}\n")
    (d,) = problems(r)
    assert d.severity is Severity.SECURITY and d.location is not None and d.location.line == 4
    assert d.message.startswith(f"Unsafe permissions found for script '{path}' - disabling. (")
    assert "writable by everyone" in d.message and "(startup_script)" in d.message
    assert config_of(r).global_defs.startup_script is None
    assert r.diagnostics.exit_code() == 6


def test_secure_script_with_script_security_is_clean(tmp_path: Path) -> None:
    path = script(secure_dir(tmp_path))
    r = parse(tmp_path, f"global_defs {{\n enable_script_security\n script_user root\n startup_script {path}\n}}\n")
    assert problems(r) == [] and r.diagnostics.exit_code() == 0


def test_missing_script_is_a_warning(tmp_path: Path) -> None:
    r = parse(tmp_path, "global_defs {\n startup_script /nonexistent/up.sh\n}\n")
    (d,) = problems(r)
    assert d.severity is Severity.WARNING and r.diagnostics.exit_code() == 0
    assert d.message == "Script /nonexistent/up.sh cannot be accessed - No such file or directory (startup_script)"


def test_script_user_that_does_not_exist_disables_the_script(tmp_path: Path) -> None:
    path = script(secure_dir(tmp_path))
    r = parse(tmp_path, f"global_defs {{\n enable_script_security\n startup_script {path} no_such_user_x\n}}\n")
    found = [d for d in problems(r) if "no_such_user_x" in d.message]
    assert found and found[0].severity is Severity.RESET and "disabling" in found[0].message
    assert config_of(r).global_defs.startup_script is None


def test_script_security_without_default_user(tmp_path: Path) -> None:
    # keepalived: with enable_script_security and no script_user, the keepalived_script
    # user must exist ("Unable to set default user keepalived_script for script").
    path = script(secure_dir(tmp_path))
    r = parse(tmp_path, f"global_defs {{\n enable_script_security\n startup_script {path}\n}}\n")
    found = problems(r)
    assert [d.severity for d in found] == [Severity.RESET]
    assert "keepalived_script" in found[0].message
