"""LVS configuration: virtual_server_group, virtual_server, real_server, SSL; the
VS -> RS -> checker cascade and keepalived's checks across them."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from conf import LoadResult
from conf.checkers import TcpCheck
from conf.diagnostics import Diagnostic, Severity
from conf.lvs import LvsMethod, SorryServer, VirtualServer
from conf.lvs_group import VsgFwmark, VsgRange
from conf.model import Config
from conf.values import Script
from tests.conf.util import clean, config_of, parse, problems

HEAD = """\
virtual_server 10.0.0.1 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
"""


def vs_text(body: str, head: str = HEAD) -> str:
    return head + body + "}\n"


def lvs_clean(result: LoadResult) -> Config:
    """The config, asserting no problem but script security's (not ours to test here)."""
    found = [d for d in problems(result) if d.severity is not Severity.SECURITY and "script" not in d.message.lower()]
    assert not found, [d.render(test_mode=True) for d in found]
    return config_of(result)


def one_vs(tmp_path: Path, body: str, head: str = HEAD) -> VirtualServer:
    config = lvs_clean(parse(tmp_path, vs_text(body, head)))
    assert len(config.virtual_server) == 1
    return config.virtual_server[0]


def only(result: object, severity: Severity = Severity.RESET) -> Diagnostic:
    found = problems(result, severity)  # type: ignore[arg-type]
    assert len(found) == 1, [d.render(test_mode=True) for d in found]
    return found[0]


def line_of(text: str, needle: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(needle)


# ---------------------------------------------------------------- parsing and defaults


def test_virtual_server_defaults(tmp_path: Path) -> None:
    vs = one_vs(tmp_path, "  real_server 10.0.0.2 80 {\n  }\n")
    assert vs.address == ipaddress.ip_address("10.0.0.1") and vs.port == 80
    assert vs.fwmark is None and vs.group is None
    assert vs.protocol == "TCP" and vs.lvs_sched == "rr" and vs.lvs_method == LvsMethod("NAT")
    assert vs.delay_loop == 60 and vs.retry == 1 and vs.delay_before_retry == 1 and vs.connect_timeout == 5
    assert vs.warmup == 60  # up to delay_loop
    assert vs.quorum == 1 and vs.hysteresis == 0 and vs.weight == 1
    assert not vs.alpha and not vs.omega and not vs.ha_suspend and not vs.inhibit_on_failure
    assert vs.persistence_timeout is None and vs.ip_family == "inet"
    rs = vs.real_server[0]
    assert rs.weight == 1 and rs.port == 80 and rs.lvs_method == LvsMethod("NAT")
    assert rs.delay_loop == 60 and rs.retry == 1 and rs.connect_timeout == 5 and rs.warmup == 60
    assert rs.alpha is False and rs.inhibit_on_failure is False and rs.checkers == ()


def test_all_virtual_server_keywords(tmp_path: Path) -> None:
    body = """\
  lvs_sched sh
  flag-1
  flag-2
  flag-3
  sh-port
  sh-fallback
  ops off
  persistence_engine sip
  persistence_timeout
  persistence_granularity 255.255.255.0
  ha_suspend
  smtp_alert yes
  virtualhost www.example.com
  snmp_name my vs
  alpha
  omega
  quorum 2
  hysteresis 1
  quorum_up "/bin/up arg" nobody nogroup
  quorum_down /bin/down
  ip_family inet
  sorry_server 10.0.0.9 8080
  sorry_server_inhibit
  sorry_server_lvs_method NAT
  connect_timeout 2.5
  retry 4
  delay_before_retry 2
  warmup 0
  delay_loop 10
  inhibit_on_failure
  real_server 10.0.0.2 80 {
    weight 3
  }
"""
    result = parse(tmp_path, vs_text(body, HEAD.replace("lb_algo rr\n", "")))
    vs = lvs_clean(result).virtual_server[0]
    notes = problems(result, Severity.NOTE)
    assert len(notes) == 1 and "snmp_name" in notes[0].message
    assert vs.lvs_sched == "sh" and vs.flag_1 and vs.flag_2 and vs.flag_3 and vs.sh_port and vs.sh_fallback
    assert vs.ops is False
    assert vs.persistence_engine == "sip" and vs.persistence_timeout == 360
    assert vs.persistence_granularity == ipaddress.IPv4Address("255.255.255.0")
    assert vs.smtp_alert is True and vs.virtualhost == "www.example.com" and vs.snmp_name == "my vs"
    assert vs.alpha and vs.omega and vs.quorum == 2 and vs.hysteresis == 1
    assert vs.quorum_up == Script(("/bin/up", "arg"), "nobody", "nogroup")
    assert vs.quorum_down is not None and vs.quorum_down.argv == ("/bin/down",) and vs.quorum_down.user is None
    assert vs.sorry_server == SorryServer(ipaddress.ip_address("10.0.0.9"), 8080)
    assert vs.sorry_server_inhibit and vs.sorry_server_lvs_method == LvsMethod("NAT")
    assert (vs.connect_timeout, vs.retry, vs.delay_before_retry, vs.warmup, vs.delay_loop) == (2.5, 4, 2, 0, 10)
    assert vs.inhibit_on_failure
    rs = vs.real_server[0]
    assert (rs.connect_timeout, rs.retry, rs.delay_before_retry, rs.warmup, rs.delay_loop) == (2.5, 4, 2, 0, 10)
    assert rs.alpha is True and rs.inhibit_on_failure is True and rs.virtualhost == "www.example.com"


def test_synonyms_lb_algo_lb_kind(tmp_path: Path) -> None:
    head = "virtual_server 10.0.0.1 80 {\n  protocol UDP\n  lvs_sched wrr\n  lvs_method DR\n"
    a = one_vs(tmp_path, "", head)
    b = one_vs(tmp_path, "", HEAD.replace("rr", "wrr").replace("NAT", "DR").replace("TCP", "UDP"))
    assert a == b and a.lvs_sched == "wrr" and a.lvs_method == LvsMethod("DR")


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("TUN", LvsMethod("TUN")),
        ("TUN type ipip", LvsMethod("TUN", "ipip")),
        ("TUN type gue port 5555 csum", LvsMethod("TUN", "gue", 5555, "csum")),
        ("TUN type gre nocsum", LvsMethod("TUN", "gre", None, "nocsum")),
    ],
)
def test_lvs_method_tunnels(tmp_path: Path, text: str, method: LvsMethod) -> None:
    vs = one_vs(tmp_path, "", HEAD.replace("lb_kind NAT", f"lvs_method {text}"))
    assert vs.lvs_method == method


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("TUN type gue", "gue tunnels require a port"),
        ("TUN type gre remcsum", "gre tunnels do not support remcsum"),
        ("TUN type ipip csum", "ipip tunnels do not support"),
        ("nat", "not one of NAT|DR|TUN"),
        ("DR type gre", "only applies to TUN"),
    ],
)
def test_lvs_method_errors(tmp_path: Path, text: str, message: str) -> None:
    text_conf = vs_text("", HEAD.replace("lb_kind NAT", f"lvs_method {text}"))
    result = parse(tmp_path, text_conf)
    resets = problems(result, Severity.RESET)
    assert resets[0].location is not None and resets[0].location.line == 4
    assert message in resets[0].message
    # Then the default forwarding method, as keepalived does.
    assert "using NAT" in resets[1].message
    assert config_of(result).virtual_server[0].lvs_method == LvsMethod("NAT")


def test_real_server_keywords(tmp_path: Path) -> None:
    body = """\
  real_server 10.0.0.2 8080 {
    weight 0
    lvs_method NAT
    notify_up "/bin/up rs" root
    notify_down /bin/down
    uthreshold 100
    lthreshold 10
    smtp_alert off
    virtualhost rs.example.com
    alpha off
    connect_timeout 1
    retry 2
    delay_before_retry 3
    warmup 4
    delay_loop 5
    inhibit_on_failure yes
  }
"""
    rs = one_vs(tmp_path, body).real_server[0]
    assert rs.address == ipaddress.ip_address("10.0.0.2") and rs.port == 8080 and rs.weight == 0
    assert rs.notify_up == Script(("/bin/up", "rs"), "root")
    assert rs.notify_down == Script(("/bin/down",))
    assert (rs.uthreshold, rs.lthreshold, rs.smtp_alert, rs.virtualhost) == (100, 10, False, "rs.example.com")
    assert (rs.alpha, rs.connect_timeout, rs.retry, rs.delay_before_retry, rs.warmup, rs.delay_loop) == (
        False,
        1,
        2,
        3,
        4,
        5,
    )
    assert rs.inhibit_on_failure is True


def test_real_server_without_port_takes_the_virtual_servers(tmp_path: Path) -> None:
    rs = one_vs(tmp_path, "  real_server 10.0.0.2 {\n  }\n").real_server[0]
    assert rs.port == 80


def test_fwmark_virtual_server(tmp_path: Path) -> None:
    head = "virtual_server fwmark 7 {\n  lb_algo rr\n  lb_kind DR\n  persistence_timeout 900\n"
    vs = one_vs(tmp_path, "  real_server 10.0.0.2 {\n  }\n", head)
    assert vs.fwmark == 7 and vs.address is None and vs.protocol is None and vs.persistence_timeout == 900
    assert vs.real_server[0].port is None and vs.ip_family == "inet" and str(vs) == "fwmark 7"


def test_fwmark_family_from_tunnelled_real_servers(tmp_path: Path) -> None:
    head = "virtual_server fwmark 7 {\n  lb_algo rr\n  lb_kind TUN\n"
    vs = one_vs(tmp_path, "  real_server 2001:db8::2 {\n  }\n", head)
    assert vs.ip_family == "inet6"


def test_fwmark_with_protocol_is_ignored(tmp_path: Path) -> None:
    text = "virtual_server fwmark 1 {\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n}\n"
    result = parse(tmp_path, text)
    d = only(result)  # keepalived -t exits 5 on it
    assert d.location is not None and d.location.line == 4
    assert "protocol specified for fwmark - protocol will be ignored" in d.message
    assert config_of(result).virtual_server[0].protocol is None


def test_ssl_block(tmp_path: Path) -> None:
    config = clean(parse(tmp_path, "SSL {\n  password secret\n  ca /ca.pem\n  certificate /c.pem\n  key /k.pem\n}\n"))
    assert config.ssl is not None
    assert (config.ssl.password, config.ssl.ca, config.ssl.certificate, config.ssl.key) == (
        "secret",
        "/ca.pem",
        "/c.pem",
        "/k.pem",
    )


def test_has_checker(tmp_path: Path) -> None:
    assert clean(parse(tmp_path, vs_text(""))).has_checker
    assert not clean(parse(tmp_path, "SSL {\n}\n")).has_checker


def test_compared_by_value(tmp_path: Path) -> None:
    a = clean(parse(tmp_path, vs_text("  real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n  }\n"), name="a.conf"))
    b = clean(
        parse(tmp_path, "\n\n" + vs_text("  real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n  }\n"), name="b.conf")
    )
    assert a.virtual_server == b.virtual_server
    assert hash(a.virtual_server) == hash(b.virtual_server)


# ---------------------------------------------------------------- virtual_server_group


def test_virtual_server_group_entries(tmp_path: Path) -> None:
    text = """\
virtual_server_group G {
  10.0.0.1 80
  10.0.0.2-10 80
  10.0.0.250-10.0.1.5 443
  10.0.2.8/29 80
  10.0.3.1
  fwmark 1
  fwmark 2 inet
}
virtual_server group G {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 10.0.0.2 80 {
  }
}
"""
    config = clean(parse(tmp_path, text))
    g = config.virtual_server_group["G"]
    ip = ipaddress.ip_address
    assert g.addresses == (
        VsgRange(ip("10.0.0.1"), ip("10.0.0.1"), 80),
        VsgRange(ip("10.0.0.2"), ip("10.0.0.10"), 80),
        VsgRange(ip("10.0.0.250"), ip("10.0.1.5"), 443),
        VsgRange(ip("10.0.2.8"), ip("10.0.2.15"), 80),
        VsgRange(ip("10.0.3.1"), ip("10.0.3.1"), None),
    )
    assert g.fwmarks == (VsgFwmark(1), VsgFwmark(2, "inet"))
    vs = config.virtual_server[0]
    assert vs.group == "G" and vs.ip_family == "inet" and str(vs) == "group G"


def test_virtual_server_group_ipv6_range(tmp_path: Path) -> None:
    text = "virtual_server_group G6 {\n  ae00::2-1f 80\n  2001:db8::1-2001:db8::1:5 80\n}\n"
    g = clean(parse(tmp_path, text)).virtual_server_group["G6"]
    assert g.addresses[0].last == ipaddress.ip_address("ae00::1f")
    assert g.addresses[1].last == ipaddress.ip_address("2001:db8::1:5")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.20-5 80", "not greater than its start"),
        ("10.0.0.5-5 80", "not greater than its start"),
        ("10.0.0.300 80", "not an IP address"),
        ("10.0.0.1 99999", "outside the range"),
        ("fwmark 4 foo", "not one of inet|inet6"),
        ("fwmark abc", "not an integer"),
        ("garbage", "not an IP address"),
        ("10.0.0.1-2001:db8::1 80", "mixes IPv4 and IPv6"),
    ],
)
def test_virtual_server_group_bad_entries(tmp_path: Path, entry: str, message: str) -> None:
    text = f"virtual_server_group G {{\n  10.0.0.1 80\n  {entry}\n}}\n"
    result = parse(tmp_path, text)
    d = only(result)
    assert d.location is not None and d.location.line == 3
    assert message in d.message and "entry ignored" in d.message
    assert len(config_of(result).virtual_server_group["G"].addresses) == 1


def test_empty_virtual_server_group_is_dropped(tmp_path: Path) -> None:
    result = parse(tmp_path, "virtual_server_group G {\n  10.0.0.5-5 80\n}\n")
    found = problems(result, Severity.RESET)
    assert "has no entries" in found[-1].message and found[-1].location is not None
    assert found[-1].location.line == 1
    assert "G" not in config_of(result).virtual_server_group


def test_group_that_does_not_exist(tmp_path: Path) -> None:
    text = vs_text("", HEAD.replace("10.0.0.1 80", "group NOPE"))
    result = parse(tmp_path, text)
    d = only(result)
    assert d.location is not None and d.location.line == 1
    assert "no virtual_server_group 'NOPE'" in d.message and "ignored" in d.message
    assert config_of(result).virtual_server == ()


def test_group_mixing_families_needs_tunnels(tmp_path: Path) -> None:
    text = """\
virtual_server_group G {
  10.0.0.1 80
  2001:db8::1 80
}
virtual_server group G {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 10.0.0.2 80 {
  }
}
"""
    result = parse(tmp_path, text)
    d = only(result)
    assert d.location is not None and d.location.line == 5 and "tunnelled" in d.message
    assert config_of(result).virtual_server == ()
    tunnelled = clean(parse(tmp_path, text.replace("lb_kind NAT", "lb_kind TUN")))
    assert len(tunnelled.virtual_server) == 1


def test_group_family_must_match_real_servers(tmp_path: Path) -> None:
    text = """\
virtual_server_group G {
  2001:db8::1 80
}
virtual_server group G {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 10.0.0.2 80 {
  }
}
"""
    result = parse(tmp_path, text)
    d = only(result)
    assert d.location is not None and d.location.line == 8 and "address family" in d.message
    assert config_of(result).virtual_server[0].real_server == ()


# ---------------------------------------------------------------- virtual_server validation


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("10.0.0.300 80", "not an IP address"),
        ("10.0.0.1 99999", "outside the range"),
        ("10.0.0.1 0", "outside the range"),
        ("fwmark abc", "not an integer"),
        ("fwmark 4294967296", "outside the range"),
        ("fwmark", "'fwmark' needs a value"),
        ("group", "'group' needs a value"),
        ("", "expected <IPADDR> [<PORT>], fwmark <INTEGER> or group <STRING>"),
    ],
)
def test_virtual_server_header_errors(tmp_path: Path, header: str, message: str) -> None:
    text = f"virtual_server {header} {{\n  protocol TCP\n}}\n"
    result = parse(tmp_path, text)
    d = only(result)
    assert d.location is not None and d.location.line == 1 and message in d.message and "ignored" in d.message
    assert config_of(result).virtual_server == ()


def test_extra_words_after_virtual_server(tmp_path: Path) -> None:
    result = parse(tmp_path, vs_text("", HEAD.replace("10.0.0.1 80", "10.0.0.1 80 extra")))
    d = only(result)
    assert d.location is not None and d.location.line == 1 and "'extra' ignored" in d.message
    assert len(config_of(result).virtual_server) == 1


@pytest.mark.parametrize(
    ("remove", "message", "field", "value"),
    [
        ("  protocol TCP\n", "no protocol set; using UDP", "protocol", "UDP"),
        ("  lb_algo rr\n", "no lvs_sched (lb_algo) set; using wlc", "lvs_sched", "wlc"),
        ("  lb_kind NAT\n", "no lvs_method (lb_kind) set; using NAT", "lvs_method", LvsMethod("NAT")),
    ],
)
def test_missing_defaults_are_reset_as_keepalived(
    tmp_path: Path, remove: str, message: str, field: str, value: object
) -> None:
    result = parse(tmp_path, vs_text("", HEAD.replace(remove, "")))
    d = only(result)
    assert d.location is not None and d.location.line == 1 and message in d.message
    assert getattr(config_of(result).virtual_server[0], field) == value


def test_port_required_unless_persistent(tmp_path: Path) -> None:
    result = parse(tmp_path, vs_text("", HEAD.replace("10.0.0.1 80", "10.0.0.1")))
    d = only(result)
    assert d.location is not None and d.location.line == 1 and "persistent" in d.message
    assert config_of(result).virtual_server[0].persistence_timeout == 360
    vs = one_vs(tmp_path, "  persistence_timeout 50\n", HEAD.replace("10.0.0.1 80", "10.0.0.1"))
    assert vs.port is None and vs.persistence_timeout == 50


@pytest.mark.parametrize(
    ("line", "message", "field", "value"),
    [
        ("lb_algo RR", "not one of rr|wrr", "lvs_sched", "wlc"),
        ("protocol ICMP", "not one of TCP|UDP|SCTP", "protocol", "UDP"),
        ("quorum 0", "outside the range [1, 4294967295]", "quorum", 1),
        ("hysteresis -1", "outside the range [0, 4294967295]", "hysteresis", 0),
        ("delay_loop 0", "outside the range", "delay_loop", 60),
        ("retry 0", "outside the range [1, 4294967295]", "retry", 1),
        ("connect_timeout 0", "outside the range", "connect_timeout", 5),
        ("persistence_timeout 0", "outside the range [1, 2678400]", "persistence_timeout", None),
        ("persistence_granularity 255.0.255.0", "not a netmask", "persistence_granularity", None),
        ("ip_family inet7", "not one of inet|inet6", "ip_family", "inet"),
        ("weight 0", "outside the range [1, 2147483647]", "weight", 1),
        ("sorry_server 10.0.0.1 0", "outside the range", "sorry_server", None),
    ],
)
def test_virtual_server_value_errors(tmp_path: Path, line: str, message: str, field: str, value: object) -> None:
    keyword = line.split(maxsplit=1)[0]
    head = HEAD if keyword not in ("lb_algo", "protocol") else HEAD.replace(f"  {keyword} ", f"  #{keyword} ")
    text = vs_text(f"  {line}\n  real_server 10.0.0.2 80 {{\n  }}\n", head)
    result = parse(tmp_path, text)
    found = problems(result, Severity.RESET)
    assert found, result.diagnostics.items
    assert found[0].location is not None and found[0].location.line == 5
    assert message in found[0].message
    assert getattr(config_of(result).virtual_server[0], field) == value


def test_scheduler_flags_need_their_scheduler(tmp_path: Path) -> None:
    result = parse(tmp_path, vs_text("  sh-port\n  mh-fallback\n  hashed\n"))
    found = problems(result)
    assert [(d.location.line if d.location else 0) for d in found] == [7, 5, 6]
    assert "sh-port only applies to the sh scheduler" in found[1].message
    vs = config_of(result).virtual_server[0]
    assert not vs.sh_port and not vs.mh_fallback and not vs.hashed


def test_ops_requires_udp(tmp_path: Path) -> None:
    result = parse(tmp_path, vs_text("  ops\n"))
    d = only(result)
    assert d.location is not None and d.location.line == 5 and "requires protocol UDP" in d.message
    assert not config_of(result).virtual_server[0].ops
    assert one_vs(tmp_path, "  ops\n", HEAD.replace("TCP", "UDP")).ops


def test_ip_family_conflicts_with_address(tmp_path: Path) -> None:
    result = parse(tmp_path, vs_text("  ip_family inet6\n"))
    d = only(result)
    assert d.location is not None and d.location.line == 5 and "conflicts" in d.message
    assert config_of(result).virtual_server[0].ip_family == "inet"


def test_real_server_family_must_match_unless_tunnelled(tmp_path: Path) -> None:
    body = "  real_server 2001:db8::2 80 {\n  }\n  real_server 2001:db8::3 80 {\n    lvs_method TUN\n  }\n"
    result = parse(tmp_path, vs_text(body))
    d = only(result)
    assert d.location is not None and d.location.line == 5 and "address family" in d.message
    servers = config_of(result).virtual_server[0].real_server
    assert [str(rs.address) for rs in servers] == ["2001:db8::3"]


def test_duplicate_real_servers(tmp_path: Path) -> None:
    body = "  real_server 10.0.0.2 80 {\n  }\n  real_server 10.0.0.2 {\n  }\n  real_server 10.0.0.2 81 {\n  }\n"
    result = parse(tmp_path, vs_text(body))
    d = only(result)
    assert d.location is not None and d.location.line == 7 and "duplicated" in d.message
    assert [rs.port for rs in config_of(result).virtual_server[0].real_server] == [80, 81]


def test_dr_real_server_port_must_match(tmp_path: Path) -> None:
    result = parse(tmp_path, vs_text("  real_server 10.0.0.2 8080 {\n  }\n", HEAD.replace("NAT", "DR")))
    d = only(result)
    assert d.location is not None and d.location.line == 5 and "using 80" in d.message
    assert config_of(result).virtual_server[0].real_server[0].port == 80


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("weight -1", "outside the range [0, 2147483647]"),
        ("weight 2147483648", "outside the range [0, 2147483647]"),
        ("retry 0", "outside the range [1, 4294967295]"),
        ("lvs_method FOO", "not one of NAT|DR|TUN"),
        ("notify_up /bin/a b c d", "unexpected extra value"),
        ("uthreshold -1", "outside the range"),
        ("smtp_alert maybe", "is not one of on|off"),
        ("fwmark 1", "unknown keyword 'fwmark' in real_server"),
        ("lb_kind NAT", "unknown keyword 'lb_kind' in real_server"),
    ],
)
def test_real_server_value_errors(tmp_path: Path, line: str, message: str) -> None:
    result = parse(tmp_path, vs_text(f"  real_server 10.0.0.2 80 {{\n    {line}\n  }}\n"))
    d = only(result)
    assert d.location is not None and d.location.line == 6 and message in d.message
    assert config_of(result).virtual_server[0].real_server[0].weight == 1


@pytest.mark.parametrize(
    ("header", "message"),
    [("10.0.0.300 80", "not an IP address"), ("10.0.0.2 65536", "outside the range"), ("", "expected <IPADDR>")],
)
def test_real_server_header_errors(tmp_path: Path, header: str, message: str) -> None:
    result = parse(tmp_path, vs_text(f"  real_server {header} {{\n  }}\n"))
    d = only(result)
    assert d.location is not None and d.location.line == 5 and message in d.message and "ignored" in d.message
    assert config_of(result).virtual_server[0].real_server == ()


def test_quorum_above_total_weight(tmp_path: Path) -> None:
    body = "  quorum 5\n  real_server 10.0.0.2 80 {\n    weight 2\n  }\n"
    result = parse(tmp_path, vs_text(body))
    d = only(result)
    assert d.location is not None and d.location.line == 5 and "using 2" in d.message
    assert config_of(result).virtual_server[0].quorum == 2


def test_hysteresis_must_be_below_quorum(tmp_path: Path) -> None:
    body = "  quorum 2\n  hysteresis 2\n  real_server 10.0.0.2 80 {\n    weight 2\n  }\n"
    result = parse(tmp_path, vs_text(body))
    d = only(result)
    assert d.location is not None and d.location.line == 6 and "using 1" in d.message
    assert config_of(result).virtual_server[0].hysteresis == 1


def test_sorry_server_checks(tmp_path: Path) -> None:
    result = parse(tmp_path, vs_text("  sorry_server_lvs_method DR\n"))
    d = only(result)
    assert d.location is not None and d.location.line == 5 and "without sorry_server" in d.message
    assert config_of(result).virtual_server[0].sorry_server_lvs_method is None

    result = parse(tmp_path, vs_text("  sorry_server 2001:db8::9 80\n"))
    d = only(result)
    assert d.location is not None and d.location.line == 5 and "sorry_server" in d.message
    assert config_of(result).virtual_server[0].sorry_server is None

    vs = one_vs(tmp_path, "  sorry_server 2001:db8::9 80\n  sorry_server_lvs_method TUN\n")
    assert vs.sorry_server is not None and vs.sorry_server.port == 80


def test_checkers_cascade_and_order(tmp_path: Path) -> None:
    body = """\
  delay_loop 10
  retry 3
  real_server 10.0.0.2 80 {
    connect_timeout 2
    TCP_CHECK {
      retry 7
    }
    HTTP_GET {
      url {
        path /
      }
    }
    TCP_CHECK {
    }
    DNS_CHECK {
    }
  }
"""
    rs = one_vs(tmp_path, body).real_server[0]
    kinds = [type(c).__name__ for c in rs.checkers]
    assert kinds == ["TcpCheck", "HttpGet", "TcpCheck", "DnsCheck"]
    first = rs.checkers[0]
    assert isinstance(first, TcpCheck)
    assert (first.retry, first.delay_loop, first.connect_timeout, first.delay_before_retry, first.warmup) == (
        7,
        10,
        2,
        1,
        10,
    )
    http = rs.http_get[0]
    # The VS retry wins over the type default; HTTP's delay_before_retry default is 3 s.
    assert (http.retry, http.delay_before_retry) == (3, 3)
    dns = rs.dns_check[0]
    assert dns.retry == 3 and dns.delay_before_retry == 10  # DNS: delay_loop


def test_dns_and_misc_type_defaults(tmp_path: Path) -> None:
    body = """\
  real_server 10.0.0.2 80 {
    DNS_CHECK {
    }
    MISC_CHECK {
      misc_path /bin/true
    }
  }
"""
    rs = one_vs(tmp_path, body).real_server[0]
    assert rs.dns_check[0].retry == 3 and rs.dns_check[0].delay_before_retry == 60
    assert rs.misc_check[0].retry == 0 and rs.misc_check[0].delay_before_retry == 1


def test_virtualhost_cascade(tmp_path: Path) -> None:
    body = """\
  virtualhost vs.example
  real_server 10.0.0.2 80 {
    HTTP_GET {
      url {
        path /
      }
    }
  }
  real_server 10.0.0.3 80 {
    virtualhost rs.example
    SSL_GET {
      url {
        path /
      }
    }
    SSL_GET {
      virtualhost ck.example
      url {
        path /
      }
    }
  }
"""
    vs = one_vs(tmp_path, body)
    assert vs.real_server[0].http_get[0].virtualhost == "vs.example"
    assert [c.virtualhost for c in vs.real_server[1].ssl_get] == ["rs.example", "ck.example"]


def test_same_virtual_server_twice_warns(tmp_path: Path) -> None:
    text = vs_text("") + vs_text("") + vs_text("", HEAD.replace("TCP", "UDP"))
    result = parse(tmp_path, text)
    d = only(result, Severity.WARNING)
    assert d.location is not None and d.location.line == 6 and "more than once" in d.message
    assert len(config_of(result).virtual_server) == 3


def test_file_check_names_a_track_file(tmp_path: Path) -> None:
    body = """\
  real_server 10.0.0.2 80 {
    FILE_CHECK {
      track_file known
    }
    FILE_CHECK {
      track_file unknown
    }
  }
"""
    result = parse(tmp_path, vs_text(body) + "track_file known {\n  file /run/pykeepalived-test-known\n}\n")
    (d,) = [d for d in problems(result) if "track_file" in d.message]
    assert d.severity is Severity.RESET and d.location is not None and d.location.line == 10
    assert "track_file 'unknown' is not defined" in d.message
    config = config_of(result)
    assert [c.track_file for c in config.virtual_server[0].real_server[0].file_check] == ["known"]


def test_model_dumps_to_json(tmp_path: Path) -> None:
    import json

    from conf.dump import dumps

    body = """\
  sorry_server 10.0.0.9 80
  real_server 10.0.0.2 80 {
    notify_up "/bin/true x" root
    HTTP_GET {
      url {
        path /
        status_code 200-299 401
      }
    }
    UDP_CHECK {
      payload 0102
      require_reply 0X
    }
  }
"""
    data = json.loads(dumps(lvs_clean(parse(tmp_path, vs_text(body)))))
    vs = data["virtual_server"][0]
    assert vs["lvs_sched"] == "rr" and vs["sorry_server"]["port"] == 80
    rs = vs["real_server"][0]
    assert rs["HTTP_GET"][0]["url"][0]["status_code"] == [{"first": 200, "last": 299}, {"first": 401, "last": 401}]
    assert rs["notify_up"] == {"command": "/bin/true x", "user": "root", "group": None}
    assert rs["UDP_CHECK"][0]["payload"] == "0102"


def test_misc_check_whose_script_is_disabled_is_dropped(tmp_path: Path) -> None:
    from dataclasses import replace as dc_replace

    from conf.diagnostics import Diagnostics
    from conf.schema import Context

    body = "  real_server 10.0.0.2 80 {\n    MISC_CHECK {\n      misc_path /bin/true\n    }\n  }\n"
    config = lvs_clean(parse(tmp_path, vs_text(body)))
    rs = config.virtual_server[0].real_server[0]
    # What script security does to an insecure script: the field becomes None.
    disabled = dc_replace(rs, misc_check=(dc_replace(rs.misc_check[0], misc_path=None),))
    config = dc_replace(config, virtual_server=(dc_replace(config.virtual_server[0], real_server=(disabled,)),))
    ctx = Context(Diagnostics())
    finished = config.finish_lvs(ctx)
    (d,) = ctx.diags.items
    assert d.severity is Severity.RESET and d.location is not None and d.location.line == 6
    assert "no usable misc_path" in d.message
    assert finished.virtual_server[0].real_server[0].misc_check == ()


SAMPLES = Path("/usr/share/doc/keepalived/samples")
LVS_SAMPLES = (
    "HTTP_GET.port",
    "SSL_GET",
    "SMTP_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "fwmark",
    "inhibit",
    "misc_check",
    "misc_check_arg",
    "quorum",
    "sample",
    "status_code",
    "virtual_server_group",
    "virtualhost",
    "IPv6",
)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="keepalived samples not installed")
@pytest.mark.parametrize("name", LVS_SAMPLES)
def test_keepalived_lvs_samples_have_no_lvs_errors(name: str) -> None:
    """keepalived -t accepts these (but for the fwmark one's protocol): no error or reset
    from the LVS part (the lines from the first virtual_server(_group) on)."""
    import conf

    path = SAMPLES / f"keepalived.conf.{name}"
    first = min(
        n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(("virtual_server", "SSL"))
    )
    result = conf.load(str(path), config_id="node1", interfaces=frozenset({"eth0"}))
    bad = [
        d
        for d in problems(result, Severity.RESET, Severity.ERROR, Severity.FATAL)
        if d.location is not None and d.location.line >= first and "protocol specified for fwmark" not in d.message
    ]  # keepalived -t fails on that one too
    assert not bad, [d.render(test_mode=True) for d in bad]
    assert config_of(result).virtual_server


def test_real_server_weight_defaults_to_the_virtual_servers(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  weight 3\n"
        "  real_server 10.0.0.2 80 {\n    TCP_CHECK {\n    }\n  }\n"
        "  real_server 10.0.0.3 80 {\n    weight 5\n    TCP_CHECK {\n    }\n  }\n}\n",
    )
    vs = config_of(r).virtual_server[0]
    assert [rs.weight for rs in vs.real_server] == [3, 5]
