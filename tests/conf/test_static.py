"""static_ipaddress/routes/rules (and the address, route and rule line syntaxes shared
with virtual_*), track_group, linkbeat_interfaces, interface_up_down_delays, bfd_instance.
Messages and what is dropped follow keepalived 2.2.7 -t."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from conf.addresses import ADDRESS_LINE, PREFERRED_LFT_FOREVER, IpAddressEntry
from conf.bfd import BfdWeight
from conf.diagnostics import Diagnostics, Location, Severity
from conf.routes import ROUTE_LINE, Nexthop, RouteEntry
from conf.rules import RULE_LINE, RuleEntry
from conf.schema import ConfigValueError, Context
from conf.static import IfUpDownDelay, LinkbeatInterface
from conf.syntax import Stmt
from tests.conf.util import clean, config_of, parse, problems

IF = frozenset({"eth0", "eth1"})


def line_of(text: str) -> Stmt:
    words = text.split()
    return Stmt(words[0], tuple(words[1:]), Location("t", 7))


def ctx() -> Context:
    return Context(Diagnostics(), interfaces=IF)


def block(kind: str, *lines: str) -> str:
    return f"{kind} {{\n" + "".join(f"  {x}\n" for x in lines) + "}\n"


def resets(r: object) -> list[tuple[int, str]]:
    return [(d.location.line if d.location else 0, d.message) for d in problems(r, Severity.RESET)]  # type: ignore[arg-type]


# ------------------------------------------------------------------ addresses


def test_address_line_all_options(tmp_path: Path) -> None:
    c = clean(
        parse(
            tmp_path,
            """
        track_group G {
            group { VI_1 }
        }
        static_ipaddress {
            192.168.1.1/24 brd + dev eth0 scope link label eth0:1 track_group G
            10.0.0.1 peer 10.0.0.2 home -nodad mngtmpaddr noprefixroute autojoin no_track
            2001:db8::1/64 dev eth1 preferred_lft forever
            2001:db8::2 preferred_lft 30
        }
    """,
        )
    )
    a, b, v6, v6b = c.static_ipaddress
    assert a.address == ipaddress.ip_interface("192.168.1.1/24") and a.brd == "+"
    assert a.broadcast == ipaddress.ip_address("192.168.1.255")
    assert (a.dev, a.scope, a.label, a.track_group) == ("eth0", 253, "eth0:1", "G")
    assert b.address.network.prefixlen == 32 and b.peer == ipaddress.ip_address("10.0.0.2")
    assert b.home and b.nodad and b.mngtmpaddr and b.noprefixroute and b.autojoin and b.no_track
    assert v6.preferred_lft == PREFERRED_LFT_FOREVER and v6b.preferred_lft == 30
    assert v6b.address.network.prefixlen == 128
    assert c.static_interfaces == frozenset({"eth0", "eth1"})


def test_vip_line_takes_use_vmac_not_track_group() -> None:
    cx = ctx()
    e = ADDRESS_LINE(line_of("192.0.2.1/24 dev eth0 use_vmac no_track track_group G"), cx)
    assert isinstance(e, IpAddressEntry) and e.use_vmac and e.no_track and e.track_group is None
    # keepalived: "Unknown configuration entry" for track_group and for its value.
    assert [d.message.split(" for ")[0] for d in cx.diags.items] == [
        "unknown option 'track_group'",
        "unknown option 'G'",
    ]


def test_address_problems(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        block(
            "static_ipaddress",
            "10.0.0.1/24 dev eth9",  # 2 warning
            "10.0.0.2 brd + dev eth0",  # 3 reset: /32 too long for brd
            "10.0.0.4 peer 10.0.0.9/24",  # 4 dropped
            "10.0.0.10 scope bad",  # 5 reset, scope ignored
            "10.0.0.11 track_group nosuch",  # 6 reset
            "10.0.0.13 use_vmac",  # 7 unknown for static
            "10.0.0.14 label averyveryverylonglabel",  # 8 dropped
            "fe80::2 label x",  # 9 label ignored
            "fe80::3 brd 1.2.3.4",  # 10 dropped
            "bad",  # 11 dropped
            "10.0.0.15 dev",  # 12 reset, kept
            "1.2.3.4/33",  # 13 reset, /32
            "1.2.3.6 preferred_lft bad",  # 14 reset
        ),
    )
    c = config_of(r)
    kept = [str(a.address) for a in c.static_ipaddress]
    assert kept == [
        "10.0.0.1/24",
        "10.0.0.2/32",
        "10.0.0.10/32",
        "10.0.0.11/32",
        "10.0.0.13/32",
        "fe80::2/128",
        "10.0.0.15/32",
        "1.2.3.4/32",
        "1.2.3.6/32",
    ]
    assert c.static_ipaddress[2].scope is None and c.static_ipaddress[5].label is None
    # A missing interface is reported last, once global_defs (dynamic_interfaces) is known.
    assert [line for line, _ in resets(r)] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 2]
    msgs = dict(resets(r))
    assert "too long for broadcast" in msgs[3] and "peer" in msgs[4] and "track_group nosuch not found" in msgs[6]
    assert "longer than 15" in msgs[8] and "IPv6" in msgs[10] and "using 32" in msgs[13]
    assert "interface eth9 for ip address 10.0.0.1/24 doesn't exist" in msgs[2]
    assert problems(r, Severity.WARNING) == []


def test_track_group_must_come_first(tmp_path: Path) -> None:
    r = parse(
        tmp_path, block("static_ipaddress", "1.1.1.1 dev eth0 track_group G") + "track_group G {\n group { VI_1 }\n}\n"
    )
    assert resets(r) == [(2, "track_group G not found (it must be defined before use); not tracking")]
    assert config_of(r).static_ipaddress[0].track_group is None


# ------------------------------------------------------------------ routes


def test_route_line_options() -> None:
    cx = ctx()
    r = ROUTE_LINE(
        line_of(
            "192.168.200.0/24 dev eth0 table 6909 tos 0x04 protocol bird scope link priority 12 "
            "mtu 1000 hoplimit 100 ssthresh lock 107 realms 1/2 initcwnd 9 features ecn no_track "
            "append"
        ),
        cx,
    )
    assert isinstance(r, RouteEntry)
    assert (r.to, r.dev, r.table, r.tos, r.protocol, r.scope, r.metric) == (
        ipaddress.ip_network("192.168.200.0/24"),
        "eth0",
        6909,
        4,
        12,
        253,
        12,
    )
    assert (r.mtu, r.hoplimit, r.ssthresh, r.lock, r.realms, r.initcwnd) == (
        1000,
        100,
        107,
        frozenset({"ssthresh"}),
        1 << 16 | 2,
        9,
    )
    assert r.features == ("ecn",) and r.no_track and r.append and r.family == 4
    assert cx.diags.items == []


def test_route_types_nexthops_and_deprecated() -> None:
    cx = ctx()
    bh = ROUTE_LINE(line_of("blackhole 192.168.113.1/32"), cx)
    assert bh.type == "blackhole" and bh.to == ipaddress.ip_network("192.168.113.1/32")
    mp = ROUTE_LINE(
        line_of(
            "10.1.0.0/16 table 5 nexthop via 10.0.0.1 dev eth0 onlink weight 1 nexthop via 10.0.0.2 dev eth1 weight 2"
        ),
        cx,
    )
    assert mp.nexthop == (
        Nexthop(ipaddress.ip_address("10.0.0.1"), "eth0", 1, True),
        Nexthop(ipaddress.ip_address("10.0.0.2"), "eth1", 2),
    )
    old = ROUTE_LINE(line_of("src 10.0.0.9 to 10.2.0.0/16 gw 10.0.0.1 or 10.0.0.2 dev eth0"), cx)
    assert old.src == ipaddress.ip_address("10.0.0.9") and old.via is None and len(old.nexthop) == 2
    assert [d.severity for d in cx.diags.items] == [Severity.WARNING, Severity.WARNING]
    d = ROUTE_LINE(line_of("default via fe80::1 dev eth0"), cx)
    assert d.to is None and d.family == 6 and d.destination == ipaddress.ip_network("::/0")
    v6 = ROUTE_LINE(line_of("default dev eth0 inet6"), cx)
    assert v6.family == 6


def test_route_protocol_reset_when_tracked() -> None:
    cx = ctx()
    r = ROUTE_LINE(line_of("10.0.0.0/8 dev eth0 protocol bird"), cx)
    assert r.protocol == 18
    assert [d.severity for d in cx.diags.items] == [Severity.RESET]
    assert "protocol keepalived" in cx.diags.items[0].message
    # Not tracked: kept as given.
    assert ROUTE_LINE(line_of("10.0.0.0/8 dev eth0 protocol bird no_track"), cx).protocol == 12


def test_route_errors(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        block(
            "static_routes",
            "5.6.7.0/24 dev eth0 bogus 1",  # 2
            "5.6.8.0/24 via fe80::1 dev eth0",  # 3 mixed
            "5.6.9.0/24 dev eth0 table nosuch",  # 4
            "5.6.10.0/24 dev eth0 metric -1",  # 5
            "5.6.11.0/24 dev eth0 from 1.2.3.0/24",  # 6 IPv4 from
            "5.6.12.0/24 dev eth0 tos 300",  # 7
            "5.6.13.0/24 nexthop via 1.1.1.1 weight 0",  # 8
            "5.6.14.0/24 dev eth0 pref high",  # 9 IPv6 only
            "default via 1.2.3.1 dev eth0 inet6",  # 10
            "5.6.15.0/24 dev eth0 window",  # 11 missing value
            "dev eth0",  # 12 "dev" is taken as... no destination
            "5.6.16.0/24 dev eth0 features bad",  # 13
            "5.6.17.0/24 dev eth0 add track_group nosuch",  # 14 reset, kept
            "5.6.18.0/24 dev eth0 table 0",  # ok: routes take table 0
        ),
    )
    c = config_of(r)
    assert [str(x.to) for x in c.static_routes] == ["5.6.17.0/24", "5.6.18.0/24"]
    lines = [line for line, _ in resets(r)]
    assert lines == list(range(2, 15))
    msgs = dict(resets(r))
    assert "unknown route option 'bogus'" in msgs[2] and "mix" in msgs[3] and "nosuch" in msgs[4]
    assert "only supported with IPv6" in msgs[6] and "TOS" in msgs[7] and "weight" in msgs[8]
    assert "pref is only valid for IPv6" in msgs[9] and "inet6" in msgs[10] and "missing a value" in msgs[11]
    assert "destination" in msgs[12]


# ------------------------------------------------------------------ rules


def test_rule_line_options() -> None:
    cx = ctx()
    r = RULE_LINE(
        line_of(
            "from 192.168.28.0/24 to 192.168.29.0/26 table 5 iif eth0 oif eth1 tos 22 fwmark 24/12 "
            "preference 39 realms 30/20"
        ),
        cx,
    )
    assert isinstance(r, RuleEntry)
    assert (r.from_, r.to, r.table, r.iif, r.oif, r.tos, r.fwmark, r.fwmask, r.preference) == (
        ipaddress.ip_network("192.168.28.0/24"),
        ipaddress.ip_network("192.168.29.0/26"),
        5,
        "eth0",
        "eth1",
        0x22,
        24,
        12,
        39,
    )
    r6 = RULE_LINE(
        line_of(
            "to 1:2:3:4:6:6:7:0/112 from 8:6:5:4:3:2::/96 l3mdev protocol 12 ipproto udp "
            "sport 10-20 dport 20-30 uidrange 1000-1999 priority 4 not"
        ),
        cx,
    )
    assert r6.l3mdev and r6.ipproto == 17 and r6.sport == (10, 20) and r6.dport == (20, 30) and r6.not_
    assert r6.uidrange == (1000, 1999) and r6.family == 6 and r6.preference == 4
    assert RULE_LINE(line_of("from all lookup main order 3"), cx).table == 254
    assert RULE_LINE(line_of("from 1.2.3.4 prohibit priority 1"), cx).type == "prohibit"
    assert cx.diags.items == []


def test_rule_preference_assigned_per_family_in_file_order(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        block(
            "static_rules",
            "from 1.2.3.0/24 table 1",
            "to 1::/64 table 2",
            "from 1.2.4.0/24 table 1",
            "from 1.2.5.0/24 table 1 preference 100",
        ),
    )
    c = config_of(r)
    assert [x.preference for x in c.static_rules] == [16384, 16384, 16383, 100]
    assert resets(r) == [
        (2, "rule has no preference; using 16384 (probably not what you want)"),
        (3, "rule has no preference; using 16384 (probably not what you want)"),
        (4, "rule has no preference; using 16383 (probably not what you want)"),
    ]


def test_rule_errors(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        block(
            "static_rules",
            "from 1.2.3.4 table 5 goto 40 priority 1",  # 2 two actions
            "from 1.2.3.4 table 5 priority 1 pref 5",  # 3 unknown
            "from 1.2.3.4 table 5 priority 1 ip_proto udp",  # 4 keepalived 2.2.7 rejects
            "from 1.2.3.4 priority 1",  # 5 no action
            "from 1.2.3.4 table 0 priority 1",  # 6
            "from 1.2.3.4 to fe80::1 table 5 priority 1",  # 7
            "from 1.2.3.4 table 5 priority 1 sport 5",  # 8
            "from 1.2.3.4 table 5 priority -1",  # 9
            "from 192.168.100./24 table 1 priority 1",  # 10
            "from 1.2.3.4/40 table 5 priority 2 oif eth7",  # 11 reset, kept; warning
        ),
    )
    c = config_of(r)
    assert len(c.static_rules) == 1 and c.static_rules[0].from_ == ipaddress.ip_network("1.2.3.4/32")
    msgs: dict[int, str] = {}
    for line, message in resets(r):
        msgs[line] = msgs.get(line, "") + message + "\n"
    assert sorted(msgs) == list(range(2, 12))
    assert "more than one" in msgs[2] and "'pref'" in msgs[3] and "ipproto" in msgs[4] and "no action" in msgs[5]
    assert "table 0" in msgs[6] and "mixes" in msgs[7] and "sport" in msgs[8] and "priority" in msgs[9]
    assert "192.168.100./24" in msgs[10] and "using 32" in msgs[11] and "eth7 for rule doesn't exist" in msgs[11]
    assert problems(r, Severity.WARNING) == []


def test_virtual_lines_reject_track_group() -> None:
    cx = ctx()
    for conv, text in (
        (ROUTE_LINE, "10.0.0.0/8 dev eth0 track_group G"),
        (RULE_LINE, "from 1.2.3.4 table 5 priority 1 track_group G"),
    ):
        try:
            conv(line_of(text), cx)
        except ConfigValueError as e:
            assert "track_group" in str(e)
        else:
            raise AssertionError(text)


def test_repeated_static_blocks_are_joined(tmp_path: Path) -> None:
    c = clean(
        parse(tmp_path, block("static_routes", "10.1.0.0/16 dev eth0") + block("static_routes", "10.2.0.0/16 dev eth0"))
    )
    assert [str(x.to) for x in c.static_routes] == ["10.1.0.0/16", "10.2.0.0/16"]


# ------------------------------------------------------------------ other global blocks


def test_linkbeat_and_up_down_delays(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        block("linkbeat_interfaces", "eth0", "eth1 ETHTOOL", "eth0 mii", "eth5")
        + block("interface_up_down_delays", "eth0 1", "eth1 2.5 3", "eth0 256", "eth7 1"),
    )
    c = config_of(r)
    assert c.linkbeat_interfaces == (
        LinkbeatInterface("eth0"),
        LinkbeatInterface("eth1", "ETHTOOL"),
        LinkbeatInterface("eth5"),
    )
    assert c.interface_up_down_delays == (
        IfUpDownDelay("eth0", 1.0, 0.0),
        IfUpDownDelay("eth1", 2.5, 3.0),
        IfUpDownDelay("eth7", 1.0, 0.0),
    )
    assert [line for line, _ in resets(r)] == [4, 10, 5, 11]  # 5, 11: eth5 and eth7 do not exist
    assert problems(r, Severity.WARNING) == []


def test_track_group_block(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        """
        track_group G {
            group {
                VI_1
                VI_2
            }
            bogus
        }
        track_group G {
            group { VI_3 }
        }
    """,
    )
    c = config_of(r)
    assert c.track_group["G"].group == ("VI_1", "VI_2")
    assert [line for line, _ in resets(r)] == [7, 9]


def test_bfd_instance(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        """
        bfd_instance B1 {
            neighbour_ip 192.0.2.1
            source_ip 192.0.2.2
            min_rx 3.5
            multiplier 0
            weight -20 reverse
            passive
        }
        bfd_instance B2 {
            neighbor_ip fe80::1
            source_ip 192.0.2.2
        }
        bfd_instance B3 {
            source_ip 192.0.2.2
        }
        bfd_instance B4 {
            neighbor_ip 192.0.2.1
        }
        bfd_instance averyveryveryveryveryveryverylongname {
            neighbor_ip 192.0.2.9
        }
    """,
    )
    c = config_of(r)
    assert list(c.bfd_instance) == ["B1"]
    b = c.bfd_instance["B1"]
    assert b.neighbor_ip == ipaddress.ip_address("192.0.2.1") and b.min_rx == 3.5 and b.multiplier == 5
    assert b.weight == BfdWeight(-20, True) and b.passive and b.min_tx == 10.0 and b.idle_tx == 1000.0
    assert (b.ttl, b.hoplimit, b.max_hops) == (255, 64, 0)
    assert [line for line, _ in resets(r)] == [6, 12, 14, 18, 20]
    assert len(problems(r, Severity.NOTE)) == 5
