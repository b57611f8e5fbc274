"""global_defs startup_script / shutdown_script (haparent/startstop.py), keepalived 2.2.7 in node 1
and pykeepalived in node 2 on the same configuration, judged by what the scripts themselves saw:
the children start once the startup script has ended (even when it fails or times out), the
shutdown script runs once the children are gone (VIPs removed) while the parent still waits for it.
"""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path

import pytest

from labkit.lab import Daemon, Lab, wait_for

pytestmark = pytest.mark.lab

CONF = """
global_defs {{
    router_id startstop
    script_user root
    startup_script {dir}/start.sh
    startup_script_timeout {timeout}
    shutdown_script {dir}/stop.sh
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id {vrid}
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""

# It records its uid, then when it ends; `exit 3`: a failing script does not stop the daemon.
START = """#!/bin/sh
echo "start $(id -u) $(cut -d" " -f1 /proc/uptime)" >> {dir}/events
sleep 1
echo "started $(cut -d" " -f1 /proc/uptime)" >> {dir}/events
exit 3
"""
# Ignores SIGTERM (as does the sleep it started): the timeout must end in SIGKILL to the group.
HANG = """#!/bin/sh
trap '' TERM
echo "start $(id -u) $(cut -d" " -f1 /proc/uptime)" >> {dir}/events
sleep 30 &
echo $! > {dir}/grandchild
wait
"""
# Whether the VRRP child (its pid saved by the test) and the VIP are still there, and the parent.
STOP = """#!/bin/sh
child=gone; test -d /proc/$(cat {dir}/vrrp.pid) && child=alive
parent=gone; test -d /proc/$PPID && parent=alive
vips=$(ip -o addr show | grep -c ' {vip}/')
sleep 0.5
echo "stop $(id -u) child=$child parent=$parent vips=$vips $(cut -d" " -f1 /proc/uptime)" >> {dir}/events
"""


def _setup(d: Path, start: str, vip: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in (("start.sh", start), ("stop.sh", STOP)):
        path = d / name
        path.write_text(text.format(dir=d, vip=vip))
        path.chmod(0o755)


def _events(d: Path) -> dict[str, list[str]]:
    try:
        lines = (d / "events").read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {line.split()[0]: line.split()[1:] for line in lines}


def _run_both(lab: Lab, tmp: Path, start: str, timeout: int) -> list[tuple[Daemon, Path, str]]:
    out = []
    for i, kind in ((1, "keepalived"), (2, "pykeepalived")):
        d, vip = tmp / kind, f"192.0.2.{99 + i}"
        _setup(d, start, vip)
        conf = CONF.format(dir=d, timeout=timeout, vrid=50 + i, vip=vip)
        node = lab.node(i)
        daemon = node.keepalived(conf) if kind == "keepalived" else node.pykeepalived(conf)
        out.append((daemon, d, vip))
    return out


def _child_started(daemon: Daemon) -> float:
    pid = wait_for("the VRRP child", lambda: daemon.pid_of("vrrp"), 15.0)
    return _boot_seconds(pid)


def _boot_seconds(pid: int) -> float:
    """When `pid` started, in seconds since boot: the clock of /proc/uptime, which the scripts
    write (psutil's create_time adds /proc/stat's btime, whole seconds: up to 1 s off)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for init counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _stop_and_check(daemon: Daemon, d: Path, vip: str) -> None:
    (d / "vrrp.pid").write_text(str(daemon.pid_of("vrrp")))
    daemon.wait_state("VI_1", "MASTER", 10.0)
    stopping = _uptime()
    assert daemon.stop(20.0) == 0
    ended = _uptime()
    stop = _events(d)["stop"]
    assert stop[:4] == ["0", "child=gone", "parent=alive", "vips=0"], (daemon.kind, stop)
    # the parent exited after the script (which sleeps 0.5 s at its end)
    assert stopping < float(stop[4]) <= ended, (daemon.kind, stopping, stop, ended)
    log = daemon.log_text()
    assert log.rfind("Stopped") > log.rfind("Stopping"), daemon.kind


def test_startup_script_before_children_and_shutdown_after(lab2: Lab, tmp_path: Path) -> None:
    daemons = _run_both(lab2, tmp_path, START, 10)
    for daemon, d, _vip in daemons:
        created = _child_started(daemon)
        ev = _events(d)
        assert ev["start"][0] == "0", daemon.kind  # as script_user (root)
        # the child was forked once the script had ended (clock ticks: 10 ms steps)
        assert created >= float(ev["started"][0]) - 0.02, (daemon.kind, ev, created)
        daemon.wait_log(r"startup script script failed, status 3", 5.0)
        print(f"{daemon.kind}: child {created - float(ev['started'][0]):+.3f} s after the startup script ended")
    for daemon, d, vip in daemons:
        _stop_and_check(daemon, d, vip)


def test_startup_script_timeout_kills_its_group(lab2: Lab, tmp_path: Path) -> None:
    daemons = _run_both(lab2, tmp_path, HANG, 1)
    delays = {}
    for daemon, d, _vip in daemons:
        created = _child_started(daemon)
        began = float(_events(d)["start"][1])
        delays[daemon.kind] = created - began
        daemon.wait_log(r"startup script timed out", 5.0)
        grandchild = int((d / "grandchild").read_text())
        wait_for("the script's own child killed", partial(_gone, grandchild), 5.0)
        # SIGTERM at the timeout (1 s), ignored; SIGKILL to the group 2 s later; then the children start
        assert 2.8 < created - began < 4.5, (daemon.kind, created - began)
        assert not re.search(r"failed to terminate after kill", daemon.log_text()), daemon.kind
    print(
        "children started after the hanging startup script: " + ", ".join(f"{k} {v:.2f} s" for k, v in delays.items())
    )
    for daemon, _d, _vip in daemons:
        daemon.stop(20.0)
