"""Tracked VIPs, virtual routes and rules (vrrp_child/holdwatch.py): something deletes one under
a MASTER and the instance leaves MASTER and comes straight back, putting everything back, as
keepalived 2.2.7 does (its set_vrrp_backup). Each scenario runs with pykeepalived and with
keepalived 2.2.7 as the reference; `pytest -s` prints both times.

Measured here (priority 200, advert_int 1: Skew_Time 56/256 = 0.22 s), back after:
keepalived 0.226 s (VIP), 0.231 s (route), 0.223 s (rule); pykeepalived 0.225, 0.230, 0.232 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from labkit.lab import Lab, Node, wait_for

pytestmark = pytest.mark.lab

KINDS = ["pykeepalived", "keepalived"]
BACK_WITHIN = 1.0  # s; keepalived needs Skew_Time (0.22 s)


def _conf(notify_log: Path) -> str:
    return f"""
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 1
    notify "/bin/sh -c 'echo \\$1 \\$2 >> {notify_log}'"
    virtual_ipaddress {{
        192.0.2.100/24
        192.0.2.101/24 no_track
    }}
    virtual_routes {{
        198.51.100.0/24 via 192.0.2.254 dev eth0
        198.51.101.0/24 via 192.0.2.254 dev eth0 no_track
    }}
    virtual_rules {{
        from 203.0.113.0/24 table 100 priority 100
        from 203.0.114.0/24 table 100 priority 101 no_track
    }}
}}
"""


def _has_route(node: Node, dst: str) -> bool:
    return bool(node.ip_json("route", "show", dst))


def _has_rule(node: Node, pref: str) -> bool:
    return bool(node.ip_json("rule", "show", "pref", pref))


def _start(make_lab: Callable[[int], Lab], tmp_path: Path, kind: str) -> tuple[Node, Path, Callable[[], str]]:
    node = make_lab(1).node(1)
    notify_log = tmp_path / "notify.log"
    notify_log.touch()
    daemon = node.keepalived(_conf(notify_log)) if kind == "keepalived" else node.pykeepalived(_conf(notify_log))
    daemon.wait_state("VI_1", "MASTER")
    wait_for("everything in place", lambda: (_has_rule(node, "100") and _has_rule(node, "101")) or None, 5)
    return node, notify_log, daemon.log_text


def _back_after(kind: str, what: str, delete: Callable[[], None], back: Callable[[], bool]) -> float:
    t = time.monotonic()
    delete()
    wait_for(f"{what} back", lambda: back() or None, 5, step=0.005)
    took = time.monotonic() - t
    print(f"\n{kind}: {what} deleted under MASTER, back after {took:.3f} s")
    return took


def _went_backup_and_back(notify_log: Path) -> None:
    # BACKUP then MASTER again, the notify script run for each (keepalived's behaviour)
    wait_for(
        "notify MASTER again",
        lambda: notify_log.read_text().split("\n")[-3:-1] == ["VI_1 BACKUP", "VI_1 MASTER"] or None,
        3,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_vip_deleted(make_lab: Callable[[int], Lab], tmp_path: Path, kind: str) -> None:
    node, notify_log, log_text = _start(make_lab, tmp_path, kind)
    took = _back_after(kind, "VIP", lambda: node.del_address("192.0.2.100/24"), lambda: node.has("192.0.2.100"))
    assert took < BACK_WITHIN
    _went_backup_and_back(notify_log)
    assert _has_route(node, "198.51.100.0/24") and _has_rule(node, "100")
    assert "(VI_1) sent 0 priority" in log_text()


@pytest.mark.parametrize("kind", KINDS)
def test_vips_flushed(make_lab: Callable[[int], Lab], tmp_path: Path, kind: str) -> None:
    """`ip addr flush dev eth0 secondary` (what a network manager re-applying its own addresses
    does): every VIP goes at once, the node's own address stays."""
    node, notify_log, _ = _start(make_lab, tmp_path, kind)
    before = notify_log.read_text().count("VI_1 BACKUP")

    def back() -> bool:
        return node.has("192.0.2.100") and node.has("192.0.2.101")

    took = _back_after(kind, "flushed VIPs", lambda: node.ip("-4", "addr", "flush", "dev", "eth0", "secondary"), back)
    assert took < BACK_WITHIN
    _went_backup_and_back(notify_log)
    assert notify_log.read_text().count("VI_1 BACKUP") == before + 1  # one reaction for the whole flush


@pytest.mark.parametrize("kind", KINDS)
def test_virtual_route_deleted(make_lab: Callable[[int], Lab], tmp_path: Path, kind: str) -> None:
    node, notify_log, _ = _start(make_lab, tmp_path, kind)
    dst = "198.51.100.0/24"
    took = _back_after(kind, "virtual route", lambda: node.ip("route", "del", dst), lambda: _has_route(node, dst))
    assert took < BACK_WITHIN
    _went_backup_and_back(notify_log)


@pytest.mark.parametrize("kind", KINDS)
def test_virtual_rule_deleted(make_lab: Callable[[int], Lab], tmp_path: Path, kind: str) -> None:
    node, notify_log, _ = _start(make_lab, tmp_path, kind)
    took = _back_after(
        kind, "virtual rule", lambda: node.ip("rule", "del", "pref", "100"), lambda: _has_rule(node, "100")
    )
    assert took < BACK_WITHIN
    _went_backup_and_back(notify_log)


@pytest.mark.parametrize("kind", KINDS)
def test_no_track_is_ignored(make_lab: Callable[[int], Lab], tmp_path: Path, kind: str) -> None:
    node, notify_log, log_text = _start(make_lab, tmp_path, kind)
    started = notify_log.read_text()
    mark = len(log_text())
    node.del_address("192.0.2.101/24")
    node.ip("route", "del", "198.51.101.0/24")
    node.ip("rule", "del", "pref", "101")
    time.sleep(1.0)  # keepalived would have reacted after 0.22 s
    assert not node.has("192.0.2.101") and not _has_route(node, "198.51.101.0/24") and not _has_rule(node, "101")
    assert notify_log.read_text() == started
    assert "Entering BACKUP STATE" not in log_text()[mark:]
