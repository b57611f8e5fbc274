"""notify_deleted (vrrp_instance): the notifies of instances a reload removes, keepalived 2.2.7 in node 1
and pykeepalived in node 2 on the same configuration, judged by what the scripts recorded. keepalived
(clear_diff_vrrp, send_instance_notifies): FAULT by default (`notify ... FAULT`, but not notify_fault), nothing
for an instance already in FAULT, DELETED with notify_deleted (its script, `notify ... DELETED`), and
never the STOP notifies."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest

from labkit.lab import Daemon, Lab, wait_for

pytestmark = pytest.mark.lab

INSTANCE = """
vrrp_instance {name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority 100
    advert_int 1
    virtual_ipaddress {{
        {vip}/24
    }}
    notify {dir}/rec.sh
    notify_fault "{dir}/rec.sh fault {name}"
    notify_stop "{dir}/rec.sh stop {name}"
{extra}
}}
"""
HEAD = """
global_defs {{
    router_id deleted
    script_user root
}}
track_file maint {{
    file {dir}/maint
    weight 0
}}
"""
REC = """#!/bin/sh
echo "$*" >> {dir}/records
"""


def _conf(d: Path, base: int, names: list[str]) -> str:
    extras = {
        "VI_1": "",
        "VI_2": f'    notify_deleted "{d}/rec.sh deleted VI_2"',  # DELETED, and its own script
        "VI_3": "",  # FAULT
        "VI_4": "    track_file {\n        maint\n    }",  # in FAULT already: nothing
        "VI_5": "    notify_deleted",  # DELETED, no script of its own
    }
    text = HEAD.format(dir=d)
    for n in names:
        k = int(n[-1])
        text += INSTANCE.format(name=n, vrid=base + k, vip=f"192.0.2.{base + k}", dir=d, extra=extras[n])
    return text


def _records(d: Path) -> list[str]:
    try:
        return sorted((d / "records").read_text().splitlines())
    except FileNotFoundError:
        return []


def _count(d: Path, n: int) -> bool:
    return len(_records(d)) >= n


def test_notifies_of_deleted_instances_beside_keepalived(lab2: Lab, tmp_path: Path) -> None:
    names = ["VI_1", "VI_2", "VI_3", "VI_4", "VI_5"]
    runs: dict[str, tuple[Daemon, Path, int]] = {}
    for i, kind in ((1, "keepalived"), (2, "pykeepalived")):
        d = tmp_path / kind
        d.mkdir()
        (d / "maint").write_text("1\n")  # weight 0 and a non-zero value: VI_4 in FAULT
        rec = d / "rec.sh"
        rec.write_text(REC.format(dir=d))
        rec.chmod(0o755)
        base = 100 + 10 * i
        node = lab2.node(i)
        daemon = node.keepalived(_conf(d, base, names)) if i == 1 else node.pykeepalived(_conf(d, base, names))
        runs[kind] = (daemon, d, base)
    for _daemon, d, _base in runs.values():
        # VI_4 FAULT (2 lines), the others BACKUP then MASTER (alone on the LAN): those removed are MASTER
        wait_for("the start's notifies", partial(_count, d, 10), 15.0)
    time.sleep(0.5)
    for daemon, d, base in runs.values():
        (d / "records").unlink()
        daemon.reconfigure(_conf(d, base, ["VI_1"]))
    time.sleep(2.0)
    seen = {kind: _records(d) for kind, (_daemon, d, _base) in runs.items()}
    print(seen)
    assert seen["keepalived"] == [
        "INSTANCE VI_2 DELETED 100",
        "INSTANCE VI_3 FAULT 100",
        "INSTANCE VI_5 DELETED 100",
        "deleted VI_2",
    ]
    assert seen["pykeepalived"] == seen["keepalived"]
    for daemon, _d, _base in runs.values():
        daemon.stop()
