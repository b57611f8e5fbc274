"""No accept mode with nftables (vrrp_child.firewall), pykeepalived and keepalived 2.2.7 as the
reference: a TCP connect from node 2 to a VIP of a strict (no accept) MASTER on node 1 fails,
to one with `accept` succeeds; the `nft -j list ruleset` structure is keepalived's; the tables
are gone after a graceful stop, and after a SIGKILLed VRRP child (respawned, then stopped)."""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Literal

import pytest

from labkit.lab import Daemon, Lab, Node

pytestmark = pytest.mark.lab

CONF = """
global_defs {
  vrrp_strict
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
}
vrrp_instance VI_6 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 150
  advert_int 1
  virtual_ipaddress {
    2001:db8::100/64
    fe80::100/64
  }
}
vrrp_instance VI_A {
  state BACKUP
  interface eth0
  virtual_router_id 53
  priority 150
  accept
  version 3
  advert_int 1
  virtual_ipaddress {
    192.0.2.101/24
  }
}
"""

PORT = 8080
LISTEN = f"""
import socket, time
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", {PORT}))
s.listen(16)
while True:
    c, _ = s.accept()
    c.close()
"""


def connects(node: Node, addr: str) -> bool:
    code = f"import socket; socket.create_connection(({addr!r}, {PORT}), timeout=1.5).close()"
    return node.run([sys.executable, "-c", code], check=False).returncode == 0


def ruleset(node: Node) -> list[dict[str, object]]:
    """`nft -j list ruleset` without the handles and metainfo, sorted: the structure to compare."""
    out = json.loads(node.run(["nft", "-j", "list", "ruleset"]).stdout)["nftables"]
    objs: list[dict[str, object]] = []
    for item in out:
        if "metainfo" in item:
            continue
        ((kind, body),) = item.items()
        objs.append({kind: {k: v for k, v in body.items() if k != "handle"}})
    return sorted(objs, key=lambda o: json.dumps(o, sort_keys=True))


def tables(node: Node) -> list[str]:
    out = json.loads(node.run(["nft", "-j", "list", "tables"]).stdout)["nftables"]
    return [f"{o['table']['family']} {o['table']['name']}" for o in out if "table" in o]


def start(node: Node, kind: Literal["keepalived", "pykeepalived"]) -> Daemon:
    d = node.keepalived(CONF) if kind == "keepalived" else node.pykeepalived(CONF)
    for name in ("VI_1", "VI_6", "VI_A"):
        d.wait_state(name, "MASTER", timeout=15)
    time.sleep(0.5)  # the VIPs settle (batched by pykeepalived, after the state line)
    return d


def scenario(lab: Lab, kind: Literal["keepalived", "pykeepalived"]) -> list[dict[str, object]]:
    n1, n2 = lab.node(1), lab.node(2)
    n1.start([sys.executable, "-c", LISTEN], name="listen")
    d = start(n1, kind)
    assert connects(n2, "192.0.2.11")  # the node's own address: the listener works
    assert not connects(n2, "192.0.2.100"), "no accept mode: the VIP must drop"
    assert not connects(n2, "2001:db8::100"), "no accept mode: the IPv6 VIP must drop"
    assert connects(n2, "192.0.2.101"), "accept: the VIP must answer"
    assert sorted(tables(n1)) == ["ip keepalived", "ip6 keepalived"]
    captured = ruleset(n1)
    d.stop()
    assert tables(n1) == [], "a graceful stop removes the tables"
    return captured


def test_pykeepalived_matches_keepalived(lab2: Lab) -> None:
    reference = scenario(lab2, "keepalived")
    ours = scenario(lab2, "pykeepalived")
    print(json.dumps(ours, indent=1))
    assert ours == reference


def test_sigkilled_child_leaves_no_table(lab2: Lab) -> None:
    n1, n2 = lab2.node(1), lab2.node(2)
    n1.start([sys.executable, "-c", LISTEN], name="listen")
    d = start(n1, "pykeepalived")
    pid = d.pid_of("vrrp")
    assert pid is not None
    since = len(d.log_text())
    n1.run(["kill", "-KILL", str(pid)])
    # the successor deletes the stale tables and builds them again as it resumes as MASTER
    d.wait_log(r"resuming as MASTER", timeout=15, since=since)
    time.sleep(0.5)
    assert d.pid_of("vrrp") != pid
    assert sorted(tables(n1)) == ["ip keepalived", "ip6 keepalived"]
    assert not connects(n2, "192.0.2.100")
    # killed again, then the daemon stopped during the respawn backoff: the parent releases
    pid = d.pid_of("vrrp")
    assert pid is not None
    n1.run(["kill", "-KILL", str(pid)])
    time.sleep(0.2)
    d.signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    while d.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not d.running()
    assert tables(n1) == [], "the parent removes a SIGKILLed child's tables"
