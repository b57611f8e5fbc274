"""vrrp_child.static: the reload diff (pure), then start-up, stop and reload for real in
node 1 of `pair`, with keepalived 2.2.7's behaviour (measured) as the reference: leftovers
are cleared at start, everything static is removed at stop, even an address that was
there before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import conf
from conf.model import Config
from labkit.lab import Lab, Node
from vrrp_child.netlink import Rtnl
from vrrp_child.static import apply_static, remove_static, static_diff

BASE = """
global_defs { default_interface va }
static_ipaddress {
  10.9.9.1/24
  10.9.8.1/24 dev va
}
static_routes {
  10.8.0.0/16 via 10.9.9.254 dev va
  blackhole 10.3.0.0/16 table 100
}
static_rules {
  from 10.9.9.0/24 table 100 preference 1000
}
"""
RELOADED = """
global_defs { default_interface va }
static_ipaddress {
  10.9.9.1/24
}
static_routes {
  10.8.0.0/16 via 10.9.9.254 dev va
  10.7.0.0/16 via 10.9.9.254 dev va table 100
}
static_rules {
  from 10.9.7.0/24 table 100 preference 1001
}
"""


def load(tmp_path: Path, text: str, name: str = "keepalived.conf") -> Config:
    path = tmp_path / name
    path.write_text(text)
    result = conf.load(str(path), interfaces=None)
    assert result.config is not None
    return result.config


def state(node: Node) -> dict[str, Any]:
    addrs = {f"{a['local']}/{a['prefixlen']}" for i in node.ip_json("-4", "addr", "show", "va") for a in i["addr_info"]}
    routes = {(r["dst"], t) for t in ("main", "100") for r in node.ip_json("-4", "route", "show", "table", t)}
    rules = {r["priority"] for r in node.ip_json("-4", "rule", "show")} - {0, 32766, 32767}
    return {"addrs": addrs, "routes": routes, "rules": rules}


def test_diff_by_value(tmp_path: Path) -> None:
    old, new = load(tmp_path, BASE), load(tmp_path, RELOADED, "new.conf")
    d = static_diff(old, new)
    assert [str(a) for a, _ in d.removed_addresses] == ["10.9.8.1/24"]
    assert [str(r.to) for r in d.removed_routes] == ["10.3.0.0/16"]
    assert [r.preference for r in d.removed_rules] == [1000]
    assert [str(r.to) for r in d.added_routes] == ["10.7.0.0/16"]
    assert [r.preference for r in d.added_rules] == [1001]
    assert d.added_addresses == ()
    assert static_diff(old, load(tmp_path, BASE, "same.conf")).empty
    assert "Removing static address 10.9.8.1/24 from va" in d.describe()


def test_start_stop_and_reload(pair: Lab, tmp_path: Path) -> None:
    node = pair.node(1)
    old, new = load(tmp_path, BASE), load(tmp_path, RELOADED, "new.conf")
    # An address configured by hand beforehand, and a leftover rule of a crashed run.
    node.ip("addr", "add", "10.9.9.1/24", "dev", "va")
    node.ip("rule", "add", "from", "10.9.9.0/24", "table", "100", "preference", "1000", "protocol", "18")
    with node.inside(), Rtnl() as rtnl:
        assert apply_static(old, rtnl) == []
    s = state(node)
    assert {"10.9.9.1/24", "10.9.8.1/24"} <= s["addrs"]
    assert {("10.8.0.0/16", "main"), ("10.3.0.0/16", "100")} <= s["routes"]
    assert s["rules"] == {1000}  # not stacked on the leftover

    with node.inside(), Rtnl() as rtnl:
        assert static_diff(old, new).apply(rtnl) == []
    s = state(node)
    assert "10.9.8.1/24" not in s["addrs"] and "10.9.9.1/24" in s["addrs"]
    assert ("10.3.0.0/16", "100") not in s["routes"] and ("10.7.0.0/16", "100") in s["routes"]
    assert s["rules"] == {1001}

    with node.inside(), Rtnl() as rtnl:
        assert remove_static(new, rtnl) == []
    s = state(node)
    # As keepalived: the hand-made 10.9.9.1/24 goes too.
    assert s["addrs"] == {"192.0.2.1/24"}
    assert {d for d, _ in s["routes"]} == {"192.0.2.0/24"}
    assert s["rules"] == set()


def test_errors_are_lines_not_exceptions(pair: Lab, tmp_path: Path) -> None:
    bad = load(
        tmp_path, "static_ipaddress {\n 10.9.9.1/24 dev nosuchif\n}\nstatic_routes {\n 10.6.0.0/16 via 203.0.113.9\n}\n"
    )
    with pair.node(1).inside(), Rtnl() as rtnl:
        errors = apply_static(bad, rtnl)
    assert len(errors) == 2
    assert any("static address 10.9.9.1/24 on nosuchif" in e for e in errors)
    assert any(e.startswith("Netlink: error: Network is unreachable(101), type=RTM_NEWROUTE(24)") for e in errors)
