"""Process names (global_defs process_names, process_name, vrrp_process_name; watchdog/procname.py),
read from /proc/PID/comm as `ps -e` shows them, keepalived 2.2.7 in node 1 and pykeepalived in node 2
on the same configuration: process_names names the VRRP child keepalived_vrrp and leaves the parent,
the later of it and vrrp_process_name wins, and a reload that drops the names gives the processes
their usual names back (keepalived's "keepalived"; ours pykeepalived / pyka_vrrp)."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest

from labkit.lab import Daemon, Lab, wait_for

pytestmark = pytest.mark.lab

CONF = """
global_defs {{
    router_id names
{names}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority 100
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""
NAMES = """
    vrrp_process_name first
    process_names
    process_name top_of_the_tree_x
"""
USUAL = {"keepalived": ("keepalived", "keepalived"), "pykeepalived": ("pykeepalived", "pyka_vrrp")}


def _comms(d: Daemon) -> tuple[str, str]:
    pids = [wait_for("parent", partial(d.pid_of, "parent"), 10.0), wait_for("vrrp", partial(d.pid_of, "vrrp"), 10.0)]
    parent, vrrp = (Path(f"/proc/{p}/comm").read_text().strip() for p in pids)
    return parent, vrrp


def test_process_names_beside_keepalived(lab2: Lab) -> None:
    daemons: dict[str, Daemon] = {}
    confs = {}
    for i, kind in ((1, "keepalived"), (2, "pykeepalived")):
        confs[kind] = {"vrid": 50 + i, "vip": f"192.0.2.{99 + i}"}
        conf = CONF.format(names=NAMES, **confs[kind])
        daemons[kind] = lab2.node(i).keepalived(conf) if i == 1 else lab2.node(i).pykeepalived(conf)
    for kind, d in daemons.items():
        d.wait_state("VI_1", "BACKUP", 10.0)
        assert _comms(d) == ("top_of_the_tree", "keepalived_vrrp"), kind  # cut to 15 characters
    for kind, d in daemons.items():
        since = len(d.log_text())
        d.reconfigure(CONF.format(names="", **confs[kind]))
        d.wait_log(r"Reload", 10.0, since=since)
    time.sleep(1.0)
    for kind, d in daemons.items():
        assert _comms(d) == USUAL[kind], kind
        d.stop()
