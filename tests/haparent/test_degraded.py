"""A daemon that cannot work says so, for real: run without privileges it stops with
keepalived's "missing permission" (exit 4) and never says READY; a checker without IPVS in
the kernel says "IPVS not programmed" in STATUS= and its dumps; a notify FIFO that cannot be
created shows in STATUS= as degraded until a reload fixes it."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from checker_child.ipvs import kernel_has_ipvs
from labkit.lab import wait_for
from tests.haparent.daemon_util import CONFIG, ROOT, Daemon

MakeDaemon = Callable[..., Daemon]
VRRP_ONLY = CONFIG[: CONFIG.index("virtual_server")]
NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
# root without a capability: the raw sockets are refused (EPERM) as for any user
NO_CAPS = ("setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")


@functools.cache
def python_for_nobody() -> tuple[str, str] | None:
    """An interpreter `nobody` may run (ours may sit under /root) and the PYTHONPATH that
    gives it our packages; None when there is none."""
    purelib = sysconfig.get_paths()["purelib"]
    path = f"{ROOT}:{purelib}"
    v = sys.version_info
    for exe in (sys.executable, f"/usr/bin/python{v.major}.{v.minor}"):
        probe = subprocess.run(
            [*NOBODY, "env", f"PYTHONPATH={path}", exe, "-c", "import daemon, pyroute2, haparent.cli"],
            capture_output=True,
            cwd="/",
            check=False,
        )
        if probe.returncode == 0:
            return exe, path
    return None


def open_to_everyone(d: Daemon) -> None:
    os.chmod(d.dir, 0o777)
    os.chmod(d.config, 0o644)
    os.chmod(d.notify.path, 0o666)


def run_unprivileged(d: Daemon, prefix: tuple[str, ...], exe: str, env: dict[str, str], *drop: str) -> int:
    command = [exe, *(a for a in d.command("-n")[1:] if a not in drop)]
    with open(d.log, "ab") as log:
        proc = subprocess.run(
            [*prefix, *command], stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/", timeout=30, check=False
        )
    return proc.returncode


def assert_missing_permission(d: Daemon, code: int) -> None:
    log = d.log_text()
    assert code == 4, log
    assert "Error 1 while registering gratuitous ARP shared channel" in log
    assert "Missing permission: cannot open the gratuitous ARP channel: Operation not permitted" in log
    assert "VRRP child process(" in log and "exited with permanent error missing permission. Terminating" in log
    assert "Traceback" not in log and "Startup complete" not in log
    kinds = d.notify.kinds()
    assert "READY" not in kinds and "ERRNO" in kinds, kinds
    assert next(m for m in d.notify.drain() if "ERRNO" in m)["ERRNO"] == "1"  # EPERM
    assert not any(p.exists() for p in d.pidfiles.values())


def test_as_nobody_the_daemon_stops_with_missing_permission(daemon: MakeDaemon) -> None:
    found = python_for_nobody()
    if found is None:
        pytest.skip("no Python interpreter that nobody may run with our packages")
    exe, path = found
    d = daemon(VRRP_ONLY)
    open_to_everyone(d)
    code = run_unprivileged(d, NOBODY, exe, dict(d.env, PYTHONPATH=path))
    print(d.log_text())
    assert_missing_permission(d, code)


def test_without_capabilities_and_without_g_the_same(daemon: MakeDaemon) -> None:
    # Without -G: syslog when /dev/log exists, the console (-l) either way.
    d = daemon(VRRP_ONLY)
    code = run_unprivileged(d, NO_CAPS, sys.executable, d.env, "-G")
    assert_missing_permission(d, code)


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def checker_config(port: int, fifo: str | None = None) -> str:
    gdefs = f"global_defs {{\n    lvs_notify_fifo {fifo}\n}}\n" if fifo else ""
    return (
        gdefs
        + f"""
virtual_server 127.0.0.1 {port + 1} {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {port} {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""
    )


@pytest.mark.skipif(kernel_has_ipvs(), reason="the kernel has IPVS")
def test_checker_without_ipvs_keeps_checking_and_says_so(daemon: MakeDaemon, listener: int) -> None:
    d = daemon(checker_config(listener)).start()
    d.wait_ready()
    want = "(1/1 real servers up; IPVS not programmed: no IPVS in the kernel)"
    wait_for("the IPVS words in STATUS=", lambda: want in d.notify.last_status() or None, 10)
    assert d.notify.last_status().startswith("Running; checker running pid")
    assert "IPVS is not available in this kernel" in d.log_text()
    d.signal(signal.SIGRTMIN + 2)
    dump = d.dir / "keepalived_check.json"
    doc = wait_for("the checker's JSON dump", lambda: dump.exists() and json.loads(dump.read_text()), 5)
    assert doc["ipvs"]["programmed"] is False and doc["ipvs"]["not_programmed_because"] == "no IPVS in the kernel"
    d.signal(signal.SIGUSR1)
    data = d.dir / "keepalived_check.data"
    text = wait_for("the checker's data dump", lambda: data.read_text() if data.exists() else None, 5)
    assert " IPVS = not programmed: no IPVS in the kernel" in text


def test_a_fifo_that_cannot_be_created_is_degraded_until_a_reload_fixes_it(daemon: MakeDaemon, listener: int) -> None:
    workdir_fifo = "/nonexistent-pk-dir/fifo"
    d = daemon(checker_config(listener, workdir_fifo)).start()
    d.wait_ready()
    want = f"degraded: notify FIFO {workdir_fifo}: No such file or directory"
    wait_for("the FIFO in STATUS=", lambda: want in d.notify.last_status() or None, 10)
    good = Path(d.dir) / "fifo"
    d.config.write_text(checker_config(listener, str(good)))
    d.signal(signal.SIGHUP)
    d.notify.wait_kinds(["READY", "RELOADING", "READY"], timeout=10)
    wait_for("the condition cleared", lambda: "degraded" not in d.notify.last_status() or None, 5)
    assert good.exists()
