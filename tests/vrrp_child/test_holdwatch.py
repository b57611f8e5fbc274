"""Which deletion concerns which instance (vrrp_child.holdwatch, pure) and the fsm's answer
(keepalived 2.2.7 set_vrrp_backup: BACKUP with priority 0, MASTER again after Skew_Time)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_DELROUTE, RTM_DELRULE
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from conf.addresses import IpAddressEntry
from conf.routes import RouteEntry
from conf.rules import RuleEntry
from tests.conf.util import config_of, parse
from vrrp_child import fsm
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.holdwatch import (
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV6_RULE,
    AddrGone,
    Gone,
    Holder,
    RouteGone,
    RuleGone,
    concerned,
    decode,
    route_groups,
)

INDEX = {"eth0": 2, "eth1": 3}


def index_of(name: str) -> int | None:
    return INDEX.get(name)


def vip(text: str, **kw: object) -> Item:
    return (IpAddressEntry(ipaddress.ip_interface(text), **kw), "eth0")  # type: ignore[arg-type]


def route(text: str, dev: str | None = "eth0", **kw: object) -> RouteItem:
    return (RouteEntry(to=ipaddress.ip_network(text), dev=dev, **kw), dev)  # type: ignore[arg-type]


def rule(src: str, pref: int, **kw: object) -> RuleEntry:
    return RuleEntry(from_=ipaddress.ip_network(src), table=100, preference=pref, **kw)  # type: ignore[arg-type]


V1 = Holder(
    "VI_1",
    [vip("192.0.2.100/24"), vip("192.0.2.101/24", no_track=True)],
    [route("198.51.100.0/24"), route("198.51.101.0/24", no_track=True)],
    [rule("203.0.113.0/24", 100), rule("203.0.114.0/24", 101, no_track=True)],
)
V2 = Holder("VI_2", [vip("192.0.2.200/24")], [], [])


def test_a_deleted_vip_concerns_its_instance() -> None:
    gone = AddrGone(2, ipaddress.ip_address("192.0.2.100"))
    assert list(concerned([gone], [V1, V2], index_of)) == ["VI_1"]


def test_same_address_on_another_interface_is_not_ours() -> None:
    assert concerned([AddrGone(3, ipaddress.ip_address("192.0.2.100"))], [V1], index_of) == {}


def test_no_track_entries_are_ignored() -> None:
    changes: list[Gone] = [
        AddrGone(2, ipaddress.ip_address("192.0.2.101")),
        RouteGone(4, 254, ipaddress.ip_network("198.51.101.0/24"), 0, 0, 2),
        RuleGone(4, 101, 100, ipaddress.ip_network("203.0.114.0/24"), None),
    ]
    assert concerned(changes, [V1], index_of) == {}


def test_a_flush_concerns_each_instance_once() -> None:
    changes = [AddrGone(2, ipaddress.ip_address(a)) for a in ("192.0.2.100", "192.0.2.101", "192.0.2.200")]
    assert sorted(concerned(changes, [V1, V2], index_of)) == ["VI_1", "VI_2"]


def test_route_matches_on_table_prefix_metric_and_device() -> None:
    net = ipaddress.ip_network("198.51.100.0/24")
    assert concerned([RouteGone(4, 254, net, 0, 0, 2)], [V1], index_of)
    assert not concerned([RouteGone(4, 100, net, 0, 0, 2)], [V1], index_of)  # another table
    assert not concerned([RouteGone(4, 254, net, 0, 5, 2)], [V1], index_of)  # another metric
    assert not concerned([RouteGone(4, 254, net, 0, 0, 3)], [V1], index_of)  # another device


def test_a_route_with_another_protocol_is_not_tracked() -> None:
    bird = Holder("VI_3", [], [route("198.51.100.0/24", protocol=12)], [])
    assert not concerned([RouteGone(4, 254, ipaddress.ip_network("198.51.100.0/24"), 0, 0, 2)], [bird], index_of)


def test_rule_matches_on_preference_table_and_selectors() -> None:
    src = ipaddress.ip_network("203.0.113.0/24")
    assert concerned([RuleGone(4, 100, 100, src, None)], [V1], index_of)
    assert not concerned([RuleGone(4, 99, 100, src, None)], [V1], index_of)
    assert not concerned([RuleGone(4, 100, 254, src, None)], [V1], index_of)
    assert not concerned([RuleGone(6, 100, 100, src, None)], [V1], index_of)


def _addr_msg(pid: int) -> ifaddrmsg:
    msg = ifaddrmsg()
    msg["header"]["type"] = RTM_DELADDR
    msg["header"]["pid"] = pid
    msg["family"] = socket.AF_INET
    msg["index"] = 2
    msg["prefixlen"] = 24
    msg["attrs"] = [("IFA_LOCAL", "192.0.2.100"), ("IFA_ADDRESS", "192.0.2.100")]
    return msg


def test_decode_skips_our_own_changes() -> None:
    assert decode(_addr_msg(0), own_pid=4242) == AddrGone(2, ipaddress.ip_address("192.0.2.100"))
    assert decode(_addr_msg(4242), own_pid=4242) is None


def test_decode_route_only_of_protocol_keepalived() -> None:
    msg = rtmsg()
    msg["header"]["type"] = RTM_DELROUTE
    msg["family"] = socket.AF_INET
    msg["dst_len"] = 24
    msg["table"] = 254
    msg["proto"] = 18
    msg["attrs"] = [("RTA_TABLE", 254), ("RTA_DST", "198.51.100.0"), ("RTA_OIF", 2)]
    assert decode(msg, 1) == RouteGone(4, 254, ipaddress.ip_network("198.51.100.0/24"), 0, 0, 2)
    msg["proto"] = 4  # static: an administrator's
    assert decode(msg, 1) is None


def test_decode_rule() -> None:
    msg = fibmsg()
    msg["header"]["type"] = RTM_DELRULE
    msg["family"] = socket.AF_INET
    msg["src_len"] = 24
    msg["table"] = 100
    msg["attrs"] = [("FRA_PRIORITY", 100), ("FRA_SRC", "203.0.113.0"), ("FRA_TABLE", 100), ("FRA_PROTOCOL", 18)]
    assert decode(msg, 1) == RuleGone(4, 100, 100, ipaddress.ip_network("203.0.113.0/24"), None)


def test_groups_follow_what_is_tracked(tmp_path: Path) -> None:
    text = """
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 1
            virtual_ipaddress { 192.0.2.100/24 }
            virtual_routes {
                198.51.100.0/24 dev eth0
                2001:db8:1::/64 dev eth0 no_track
            }
            virtual_rules { from 2001:db8::/64 table 100 priority 10 }
        }
        """
    assert route_groups(config_of(parse(tmp_path, text))) == RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_RULE


def _master() -> tuple[fsm.Machine, fsm.Params]:
    p = fsm.Params(name="VI_1", version=2, priority=200, advert_int=1.0, local_ip=ipaddress.ip_address("192.0.2.11"))
    m, _ = fsm.step(fsm.initial(), p, fsm.Start(), 0.0)
    m, _ = fsm.step(m, p, fsm.Tick(), m.down_deadline or 0.0)
    assert m.state is fsm.State.MASTER
    return m, p


def test_fsm_holding_lost_resigns_and_comes_back_after_skew_time() -> None:
    m, p = _master()
    m, acts = fsm.step(m, p, fsm.HoldingLost(), 10.0)
    assert m.state is fsm.State.BACKUP
    assert fsm.SendAdvert(0) in acts and fsm.LeaveMaster() in acts
    assert m.down_deadline == 10.0 + fsm.skew_time(2, 200, 1.0)  # 56/256 s
    m, acts = fsm.step(m, p, fsm.Tick(), m.down_deadline)
    assert m.state is fsm.State.MASTER and any(isinstance(a, fsm.BecomeMaster) for a in acts)


def test_fsm_holding_lost_is_nothing_for_a_backup() -> None:
    m, p = _master()
    m, _ = fsm.step(m, p, fsm.AdvertIn(ipaddress.ip_address("192.0.2.12"), 250, 1.0), 1.0)
    assert m.state is fsm.State.BACKUP
    assert fsm.step(m, p, fsm.HoldingLost(), 2.0)[1] == ()
