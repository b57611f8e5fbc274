"""vrrp_child.routing: request encoding (pure), then every kind of route and rule added and
removed for real in node 1 of `pair`, checked with `ip -j route/rule`."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_NEWROUTE, RTM_NEWRULE
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

import conf
from conf.model import Config
from conf.routes import RouteEntry
from conf.rules import RuleEntry
from labkit.lab import Lab, Node
from vrrp_child import holdings
from vrrp_child.liveness import Held
from vrrp_child.netlink import Rtnl
from vrrp_child.release import release
from vrrp_child.routing import (
    FIB_RULE_INVERT,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RTPROT_KEEPALIVED,
    NoInterface,
    Routing,
    route_request,
    rule_request,
)

ROUTES = """
  10.10.0.0/16 via 192.0.2.254 dev va table 100 metric 50 src 192.0.2.1
  10.11.0.0/16 dev va mtu lock 1400 advmss 1300 initcwnd 10 features ecn congctl cubic
  blackhole 10.12.0.0/16 table 100
  unreachable 10.13.0.0/16 table 100
  prohibit 10.14.0.0/16 table 100
  throw 10.15.0.0/16 table 100
  10.16.0.0/16 via 198.51.100.1 dev va onlink
  10.17.0.0/16 table 100 nexthop via 192.0.2.253 dev va weight 2 nexthop via 192.0.2.252 dev va weight 3
  10.18.0.0/16 via 192.0.2.254 realms 3/4 tos 0x10 table 1000 no_track
  2001:db8:5::/64 via 2001:db8::254 dev va pref high table 100
  default via 192.0.2.254 table 200 protocol 99 no_track
"""
RULES = """
  from 10.1.0.0/16 table 100 preference 100
  not from 10.2.0.0/16 to 10.3.0.0/16 table 1000 preference 101 fwmark 0x10/0xff iif va oif vb tos 0x10
  from all preference 102 goto 200
  from 10.4.0.0/16 blackhole preference 103
  from 10.5.0.0/16 prohibit preference 104 uidrange 100-200 sport 1000-2000 dport 80-80 ipproto tcp
  to 10.6.0.0/16 unreachable preference 105 realms 5
  from all lookup 100 preference 106 suppress_prefixlength 0 protocol 99
  from 2001:db8:1::/48 table 100 preference 107
"""


def load(tmp_path: Path, routes: str = ROUTES, rules: str = RULES) -> Config:
    path = tmp_path / "keepalived.conf"
    path.write_text(f"static_routes {{\n{routes}\n}}\nstatic_rules {{\n{rules}\n}}\n")
    result = conf.load(str(path), interfaces=None)
    assert result.config is not None
    return result.config


def index_of(name: str) -> int | None:
    return {"va": 7, "vb": 8}.get(name)


def route_msg(entry: RouteEntry, add: bool = True) -> Any:
    msg = rtmsg(route_request(entry, index_of, add, None))
    msg.decode()
    return msg


def rule_msg(entry: RuleEntry, add: bool = True) -> Any:
    msg = fibmsg(rule_request(entry, index_of, add))
    msg.decode()
    return msg


# ---------------------------------------------------------------- pure: the requests


def test_route_request_fields(tmp_path: Path) -> None:
    routes = load(tmp_path).static_routes
    msg = route_msg(routes[0])
    assert msg["header"]["type"] == RTM_NEWROUTE
    assert (msg["family"], msg["dst_len"], msg["proto"], msg["table"]) == (socket.AF_INET, 16, RTPROT_KEEPALIVED, 100)
    assert msg.get_attr("RTA_DST") == "10.10.0.0"
    assert msg.get_attr("RTA_GATEWAY") == "192.0.2.254"
    assert msg.get_attr("RTA_OIF") == 7
    assert msg.get_attr("RTA_PRIORITY") == 50
    assert msg.get_attr("RTA_PREFSRC") == "192.0.2.1"
    assert msg.get_attr("RTA_TABLE") == 100
    # A device route without a gateway gets scope link, as `ip route add` gives it.
    direct = route_msg(routes[1])
    assert direct["scope"] == RT_SCOPE_LINK
    metrics = dict(direct.get_attr("RTA_METRICS")["attrs"])
    assert metrics["RTAX_MTU"] == 1400 and metrics["RTAX_ADVMSS"] == 1300 and metrics["RTAX_CC_ALGO"] == "cubic"
    assert metrics["RTAX_LOCK"] == 1 << 2  # only mtu was locked
    # The protocol given on an untracked line is kept; a table above 255 goes in RTA_TABLE only.
    assert route_msg(routes[10])["proto"] == 99
    big = route_msg(routes[8])
    assert big.get_attr("RTA_TABLE") == 1000 and big["table"] == 0 and big.get_attr("RTA_FLOW") == (3 << 16 | 4)


def test_route_removal_matches_any_scope_and_only_our_protocol(tmp_path: Path) -> None:
    entry = load(tmp_path).static_routes[1]
    msg = route_msg(entry, add=False)
    assert msg["header"]["type"] == RTM_DELROUTE
    assert msg["scope"] == RT_SCOPE_NOWHERE
    assert msg["proto"] == RTPROT_KEEPALIVED
    assert msg.get_attr("RTA_METRICS") is None


def test_multipath_request(tmp_path: Path) -> None:
    msg = route_msg(load(tmp_path).static_routes[7])
    hops = msg.get_attr("RTA_MULTIPATH")
    assert [(h["hops"], h["oif"], h.get_attr("RTA_GATEWAY")) for h in hops] == [
        (1, 7, "192.0.2.253"),
        (2, 7, "192.0.2.252"),
    ]


def test_missing_interface_raises() -> None:
    entry = RouteEntry(to=ipaddress.ip_network("10.0.0.0/8"), dev="nope")
    with pytest.raises(NoInterface):
        route_request(entry, index_of, True, None)


def test_instance_interface_is_not_put_on_a_route() -> None:
    # keepalived 2.2.7 sends no RTA_OIF for a line without `dev` (measured: ENODEV).
    entry = RouteEntry(to=ipaddress.ip_network("10.0.0.0/8"))
    assert route_msg(entry).get_attr("RTA_OIF") is None
    assert rtmsg(route_request(entry, index_of, True, "va")) is not None
    msg = rtmsg(route_request(entry, index_of, True, "va"))
    msg.decode()
    assert msg.get_attr("RTA_OIF") is None


def test_rule_request_fields(tmp_path: Path) -> None:
    rules = load(tmp_path).static_rules
    msg = rule_msg(rules[1])
    assert msg["header"]["type"] == RTM_NEWRULE
    assert msg["flags"] & FIB_RULE_INVERT
    assert (msg["src_len"], msg["dst_len"], msg["tos"]) == (16, 16, 0x10)
    assert msg.get_attr("FRA_TABLE") == 1000
    assert (msg.get_attr("FRA_FWMARK"), msg.get_attr("FRA_FWMASK")) == (0x10, 0xFF)
    assert (msg.get_attr("FRA_IIFNAME"), msg.get_attr("FRA_OIFNAME")) == ("va", "vb")
    assert msg.get_attr("FRA_PROTOCOL") == RTPROT_KEEPALIVED
    assert rule_msg(rules[2]).get_attr("FRA_GOTO") == 200
    assert rule_msg(rules[3])["action"] == 6
    ranges = rule_msg(rules[4])
    assert ranges.get_attr("FRA_UID_RANGE") == "100:200" and ranges.get_attr("FRA_DPORT_RANGE") == "80:80"
    assert rule_msg(rules[6]).get_attr("FRA_PROTOCOL") == 99


@given(
    st.ip_addresses(v=4),
    st.integers(0, 32),
    st.integers(1, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.booleans(),
)
def test_any_route_round_trips(addr: Any, plen: int, table: int, metric: int, add: bool) -> None:
    net = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
    msg = route_msg(RouteEntry(to=net, table=table, metric=metric, dev="va"), add)
    assert msg["dst_len"] == plen
    assert msg.get_attr("RTA_TABLE") == table and msg.get_attr("RTA_PRIORITY") == metric
    assert plen == 0 or msg.get_attr("RTA_DST") == str(net.network_address)


# ---------------------------------------------------------------- for real, in a namespace


def routes_of(node: Node, table: str, family: str = "-4") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = node.ip_json(family, "-d", "route", "show", "table", table)
    return out


def rules_of(node: Node, family: str = "-4") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = node.ip_json(family, "rule", "show")
    return [r for r in out if r.get("priority", 0) not in (0, 32766, 32767)]


def test_every_kind_of_route_and_rule_in_the_kernel(pair: Lab, tmp_path: Path) -> None:
    config = load(tmp_path)
    node = pair.node(1)
    routes = [(e, "va") for e in config.static_routes]
    with node.inside(), Rtnl() as rtnl:
        routing = Routing(rtnl)
        added = routing.add_routes(routes)
        rules = routing.add_rules(config.static_rules)
    assert added.ok, added.errors()
    assert rules.ok, rules.errors()
    assert len(added.changed) == len(routes) and len(rules.changed) == len(config.static_rules)

    t100 = {r["dst"]: r for r in routes_of(node, "100")}
    assert t100["10.10.0.0/16"]["gateway"] == "192.0.2.254" and t100["10.10.0.0/16"]["metric"] == 50
    assert t100["10.10.0.0/16"]["protocol"] == "keepalived" and t100["10.10.0.0/16"]["prefsrc"] == "192.0.2.1"
    assert {t100[d]["type"] for d in ("10.12.0.0/16", "10.13.0.0/16", "10.14.0.0/16", "10.15.0.0/16")} == {
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
    }
    hops = t100["10.17.0.0/16"]["nexthops"]
    assert [(h["gateway"], h["weight"]) for h in hops] == [("192.0.2.253", 2), ("192.0.2.252", 3)]
    main = {r["dst"]: r for r in routes_of(node, "main")}
    direct = main["10.11.0.0/16"]
    assert direct["scope"] == "link"
    assert {"mtu": 1400} in direct["metrics"] or any(m.get("mtu") == 1400 for m in direct["metrics"])
    assert "onlink" in main["10.16.0.0/16"]["flags"]
    t1000 = routes_of(node, "1000")
    assert (
        t1000[0]["dst"] == "10.18.0.0/16" and t1000[0]["tos"] == "0x10" and t1000[0]["flow"] == {"from": "3", "to": "4"}
    )
    t200 = routes_of(node, "200")
    assert t200[0]["dst"] == "default" and t200[0]["protocol"] in ("99", "openr")
    v6 = {r["dst"]: r for r in routes_of(node, "100", "-6")}
    assert v6["2001:db8:5::/64"]["pref"] == "high"

    v4rules = {r["priority"]: r for r in rules_of(node)}
    assert sorted(v4rules) == [100, 101, 102, 103, 104, 105, 106]
    assert v4rules[100]["src"] == "10.1.0.0" and v4rules[100]["table"] == "100"
    inverted = v4rules[101]
    assert "not" in inverted and inverted["fwmark"] == "0x10" and inverted["iif"] == "va"
    assert v4rules[102]["goto"] == 200
    assert (v4rules[104]["uid_start"], v4rules[104]["uid_end"]) == (100, 200) and v4rules[104]["ipproto"] == "tcp"
    assert v4rules[106]["protocol"] in ("99", "openr")
    assert [r["priority"] for r in rules_of(node, "-6")] == [107]

    with node.inside(), Rtnl() as rtnl:
        routing = Routing(rtnl)
        again = routing.add_routes(routes)
        gone = routing.remove_routes(routes)
        rules_gone = routing.remove_rules(config.static_rules)
        twice = routing.remove_rules(config.static_rules)
    # Adding what is there and removing what is gone are not failures.
    assert again.ok and len(again.unchanged) == len(routes)
    assert gone.ok and len(gone.changed) == len(routes)
    assert rules_gone.ok and len(rules_gone.changed) == len(config.static_rules)
    assert twice.ok and len(twice.unchanged) == len(config.static_rules)
    assert routes_of(node, "100") == [] and routes_of(node, "200") == [] and rules_of(node) == []
    assert "10.11.0.0/16" not in {r["dst"] for r in routes_of(node, "main")}


def test_removal_leaves_the_administrators_route(pair: Lab, tmp_path: Path) -> None:
    config = load(tmp_path, routes="10.20.0.0/16 via 192.0.2.254 dev va", rules="from 10.1.0.0/16 table 5")
    node = pair.node(1)
    node.ip("route", "add", "10.20.0.0/16", "via", "192.0.2.254", "dev", "va", "proto", "static")
    items = [(e, None) for e in config.static_routes]
    with node.inside(), Rtnl() as rtnl:
        routing = Routing(rtnl)
        assert routing.add_routes(items).changed == tuple(items)
        assert len(routing.remove_routes(items).changed) == 1
    left = [r for r in routes_of(node, "main") if r["dst"] == "10.20.0.0/16"]
    assert [r["protocol"] for r in left] == ["static"]


def test_failures_are_reported_per_entry(pair: Lab, tmp_path: Path) -> None:
    config = load(
        tmp_path,
        routes="10.21.0.0/16 dev nosuchif\n10.22.0.0/16 via 203.0.113.1\n10.23.0.0/16 dev va",
        rules="from 10.1.0.0/16 table 5",
    )
    node = pair.node(1)
    with node.inside(), Rtnl() as rtnl:
        result = Routing(rtnl).add_routes((e, None) for e in config.static_routes)
    assert [e.to for ((e, _),) in zip(result.changed, strict=True)] == [ipaddress.ip_network("10.23.0.0/16")]
    codes = sorted(f.errno for f in result.failed)
    assert codes == sorted([errno.ENODEV, errno.ENETUNREACH])
    lines = result.errors()
    assert any(line.startswith("Netlink: error: Network is unreachable(101), type=RTM_NEWROUTE(24)") for line in lines)


def test_the_parents_release_removes_an_instances_routes_rules_and_vips(pair: Lab, tmp_path: Path) -> None:
    """vrrp_child.release, what the parent does for a hung or dead VRRP child (it imports
    vrrp_child.routing only then, and only for an instance with routes or rules)."""
    path = tmp_path / "keepalived.conf"
    path.write_text(
        "vrrp_instance VI_1 {\n  interface va\n  virtual_router_id 51\n  priority 100\n"
        "  virtual_ipaddress {\n    192.0.2.100/24\n  }\n"
        "  virtual_routes {\n    10.30.0.0/16 via 192.0.2.254 dev va\n  }\n"
        "  virtual_rules {\n    from 10.31.0.0/16 table 5 preference 300\n  }\n}\n"
    )
    loaded = conf.load(str(path), interfaces=None)
    assert loaded.config is not None
    inst = loaded.config.vrrp_instance["VI_1"]
    node = pair.node(1)
    with node.inside(), Rtnl() as rtnl:
        assert not rtnl.add_addresses(holdings.vip_items(inst, "va")).failed
        routing = Routing(rtnl)
        assert not routing.add_routes(holdings.route_items(inst, "va")).failed
        assert not routing.add_rules(holdings.rule_items(inst)).failed
    assert [r["dst"] for r in routes_of(node, "main") if r["dst"] == "10.30.0.0/16"] == ["10.30.0.0/16"]
    assert [r["priority"] for r in rules_of(node)] == [300]
    assert node.has("192.0.2.100")
    with node.inside():
        assert release(Held((inst,))) == []
    assert [r for r in routes_of(node, "main") if r["dst"] == "10.30.0.0/16"] == []
    assert rules_of(node) == []
    assert not node.has("192.0.2.100")
