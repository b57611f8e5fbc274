"""startup_script / shutdown_script (haparent/startstop.py): the runner against real scripts, and
the supervisor's order (no child before the startup script has ended, the shutdown script once
they are gone). tests/lab/test_startstop.py runs both beside keepalived 2.2.7."""

from __future__ import annotations

import dataclasses
import logging
import os
import pwd
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conf.global_defs import GlobalDefs
from conf.values import Script
from haparent import startstop
from haparent.child import Phase
from haparent.specs import Role
from haparent.startstop import StartStop
from tests.haparent.test_supervisor import VRRP_ONLY, Harness

GDEFS = GlobalDefs()


def _script(tmp_path: Path, body: str) -> Script:
    path = tmp_path / "s.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return Script((str(path),))


def test_exit_status_in_keepalived_words(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pykeepalived")
    item = StartStop("startup script", _script(tmp_path, "exit 3\n"), 5.0)
    assert startstop.run(item, GDEFS, detail=False) == 3
    assert "startup script script failed, status 3" in caplog.text  # keepalived doubles "script"
    ok = StartStop("shutdown script", _script(tmp_path, "exit 0\n"), 5.0)
    assert startstop.run(ok, GDEFS, detail=True) == 0
    assert "Running shutdown script" in caplog.text and "shutdown script script succeeded" in caplog.text


def test_missing_script_is_not_run(tmp_path: Path) -> None:
    item = StartStop("startup script", Script((str(tmp_path / "nope"),)), 5.0)
    assert startstop.run(item, GDEFS, detail=True) is None


def test_timeout_terms_then_kills_the_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, "pykeepalived")
    monkeypatch.setattr(startstop, "TERM_WAIT", 0.3)
    body = f"trap '' TERM\nsleep 30 &\necho $! > {tmp_path}/bg\nwait\n"
    item = StartStop("startup script", _script(tmp_path, body), 0.3)
    began = time.monotonic()
    code = startstop.run(item, GDEFS, detail=False)
    assert code == -signal.SIGKILL
    assert time.monotonic() - began < 3.0
    assert "startup script timed out" in caplog.text
    bg = int((tmp_path / "bg").read_text())
    time.sleep(0.1)
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(bg)], capture_output=True, text=True).stdout.strip()
    assert state in ("", "Z"), state  # the script's own child got the group's SIGKILL


def test_ended_on_our_sigterm_kills_what_it_started(tmp_path: Path) -> None:
    body = f"sh -c 'trap \"\" TERM; sleep 30' &\necho $! > {tmp_path}/bg\nsleep 30\n"
    item = StartStop("startup script", _script(tmp_path, body), 0.3)
    assert startstop.run(item, GDEFS, detail=False) == -signal.SIGTERM
    bg = int((tmp_path / "bg").read_text())
    time.sleep(0.1)
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(bg)], capture_output=True, text=True).stdout.strip()
    assert state in ("", "Z"), state


def _with_scripts(startup: Script | None = None, shutdown: Script | None = None) -> Harness:
    gdefs = dataclasses.replace(VRRP_ONLY.global_defs, startup_script=startup, shutdown_script=shutdown)
    return Harness(dataclasses.replace(VRRP_ONLY, global_defs=gdefs))


def test_no_child_before_the_startup_script_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    monkeypatch.setattr(startstop, "run_quietly", lambda item, gdefs, detail: ran.append(item.kind if item else ""))
    h = _with_scripts(startup=Script(("/bin/true",)))
    h.sys.deferred = True
    h.sup.start()
    assert h.sup.children[Role.VRRP].phase is Phase.STOPPED and ran == []
    h.sup.step()  # a signal or a wake-up meanwhile: still nothing, and no "Startup complete"
    assert h.sup.children[Role.VRRP].phase is Phase.STOPPED and h.sup.starting
    h.sys.finish()
    h.sup.step()
    assert ran == ["startup script"]
    assert h.sup.children[Role.VRRP].phase is Phase.STARTING


def test_shutdown_script_after_the_children(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[str | None, int | None]] = []
    h = _with_scripts(shutdown=Script(("/bin/true",)))

    def record(item: StartStop | None, gdefs: GlobalDefs, detail: bool) -> None:
        ran.append((item.kind if item else None, h.sup.children[Role.VRRP].pid))

    monkeypatch.setattr(startstop, "run_quietly", record)
    h.sup.signal_received(signal.SIGTERM)  # handled on the first pass, once the child is spawned
    h.sys.dead.append((h.sys.next_pid, 0))  # and the child is gone by the reap of that pass
    assert h.sup.run() == 0
    assert ran == [("shutdown script", None)]  # after the loop: no child left


def test_runs_as_the_script_user() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    # not under tmp_path: /tmp/pytest-of-root is 0700, and the user must reach the script
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        script = _script(Path(d), f"id -u > {d}/uid\n")
        item = StartStop("startup script", Script(script.argv, user="nobody"), 5.0)
        assert startstop.run(item, GDEFS, detail=False) == 0
        assert (Path(d) / "uid").read_text().strip() == str(pwd.getpwnam("nobody").pw_uid)
