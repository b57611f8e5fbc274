"""global_defs and the top-level global keywords: types, defaults and keepalived's checks
(ranges and messages as keepalived 2.2.7 -t reports them)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from conf.diagnostics import Severity
from conf.global_defs import GarpExtraIf, GlobalDefs, LvsSyncDaemon, LvsTimeouts, ScriptUser, SmtpServer
from tests.conf.util import clean, config_of, parse, problems


def one(result: object, severity: Severity) -> tuple[int, str]:
    found = problems(result, severity)  # type: ignore[arg-type]
    assert len(found) == 1, [d.message for d in found]
    d = found[0]
    assert d.location is not None
    return d.location.line, d.message


def test_defaults(tmp_path: Path) -> None:
    c = clean(parse(tmp_path, ""))
    g = c.global_defs
    assert g == GlobalDefs()
    assert c.child_wait_time == 5 and c.use_pid_dir is False and c.instance is None
    assert g.smtp_connect_timeout == 30 and g.vrrp_version == 2
    assert g.vrrp_mcast_group4 == ipaddress.ip_address("224.0.0.18")
    assert g.vrrp_mcast_group6 == ipaddress.ip_address("ff02::12")
    assert (g.vrrp_garp_master_delay, g.vrrp_garp_master_repeat, g.vrrp_garp_master_refresh_repeat) == (5, 5, 1)
    assert (g.effective_garp_lower_prio_delay, g.effective_garp_lower_prio_repeat) == (5, 5)
    assert g.vrrp_down_timer_adverts == 3 and g.default_interface == "eth0" and g.vmac_prefix == "vrrp"
    assert g.startup_script_timeout == 10 and g.effective_umask == 0o022
    assert g.effective_router_id and g.effective_notification_email_from.startswith("keepalived@")


def test_typical_global_defs(tmp_path: Path) -> None:
    c = clean(
        parse(
            tmp_path,
            """
        global_defs {
            notification_email {
                admin@example.com
                ops@example.com
            }
            notification_email_from kad@example.com
            smtp_server 192.0.2.1 2525
            smtp_connect_timeout 12
            router_id LVS_1
            vrrp_strict
            vrrp_garp_master_delay 10
            vrrp_garp_master_repeat 2
            vrrp_garp_interval 0.001
            vrrp_garp_extra_if all 100
            vrrp_version 3
            vrrp_mcast_group4 224.0.0.19
            smtp_alert off
            script_user root
            enable_script_security
            process_names
            checker_process_name lvs
            umask IWGRP|IWOTH|IROTH
            lvs_timeouts tcp 900 udp 30
            dynamic_interfaces allow_if_changes
            lvs_flush_on_stop VS
            include_check
        }
    """,
        )
    )
    g = c.global_defs
    assert g.notification_email == ("admin@example.com", "ops@example.com")
    assert g.smtp_server == SmtpServer("192.0.2.1", 2525)
    assert g.smtp_connect_timeout == 12 and g.effective_router_id == "LVS_1"
    assert g.vrrp_strict and g.effective_lower_prio_no_advert
    assert g.effective_garp_lower_prio_delay == 10 and g.effective_garp_lower_prio_repeat == 2
    assert g.vrrp_garp_interval == 0.001 and g.vrrp_garp_extra_if == GarpExtraIf(100, True)
    assert g.vrrp_version == 3 and str(g.vrrp_mcast_group4) == "224.0.0.19"
    assert g.smtp_alert is False and g.smtp_alert_for("vrrp") is False
    assert g.script_user == ScriptUser("root") and g.enable_script_security
    # keepalived 2.2.7: process_names leaves the parent alone; checker_process_name came after it
    assert g.names() == {"parent": None, "vrrp": "keepalived_vrrp", "checker": "lvs", "bfd": "keepalived_bfd"}
    assert g.umask == 0o026
    assert g.lvs_timeouts == LvsTimeouts(tcp=900, udp=30)
    assert g.dynamic_interfaces == "allow_if_changes" and g.lvs_flush_on_stop == "VS"


def test_repeated_global_defs_are_merged(tmp_path: Path) -> None:
    c = clean(
        parse(
            tmp_path,
            """
        global_defs {
            router_id A
        }
        global_defs {
            vrrp_version 3
        }
    """,
        )
    )
    assert c.global_defs.router_id == "A" and c.global_defs.vrrp_version == 3


def test_top_level_keywords(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        """
        instance web
        use_pid_dir
        child_wait_time 20
        net_namespace blue
    """,
    )
    c = config_of(r)
    assert (c.instance, c.use_pid_dir, c.child_wait_time, c.net_namespace) == ("web", True, 20, "blue")
    assert [d.message for d in problems(r)] == []
    notes = problems(r, Severity.NOTE)
    assert notes == []  # net_namespace is implemented (haparent.namespace)


@pytest.mark.parametrize("keyword", ["child_wait_time 7", "use_pid_dir", "net_namespace x"])
def test_top_level_only_keywords_rejected_in_global_defs(tmp_path: Path, keyword: str) -> None:
    r = parse(tmp_path, f"global_defs {{\n{keyword}\n}}\n")
    line, msg = one(r, Severity.RESET)
    assert line == 2 and "unknown keyword" in msg and "top level" in msg


def test_global_defs_keywords_rejected_at_top_level(tmp_path: Path) -> None:
    r = parse(tmp_path, "router_id x\n")
    line, msg = one(r, Severity.RESET)
    assert line == 1 and "unknown keyword 'router_id'" in msg and "global_defs" in msg


@pytest.mark.parametrize(
    ("text", "field", "value", "needle"),
    [
        ("child_wait_time -1", "child_wait_time", 5, "outside the range"),
        ("startup_script_timeout 1001", "startup_script_timeout", 10, "[1, 1000]"),
        ("smtp_connect_timeout 0", "smtp_connect_timeout", 1, "using 1"),
        ("smtp_connect_timeout -5", "smtp_connect_timeout", 30, "outside the range"),
        ("vrrp_version 4", "vrrp_version", 2, "[2, 3]"),
        ("vrrp_garp_master_repeat 0", "vrrp_garp_master_repeat", 1, "using 1"),
        ("vrrp_garp_master_refresh_repeat 0", "vrrp_garp_master_refresh_repeat", 1, "using 1"),
        ("vrrp_garp_master_delay 5000", "vrrp_garp_master_delay", 5, "[0, 4294]"),
        ("vrrp_garp_interval 5000", "vrrp_garp_interval", 0.0, "outside the range"),
        ("vrrp_down_timer_adverts 101", "vrrp_down_timer_adverts", 3, "[1, 100]"),
        ("vrrp_garp_extra_if 86401", "vrrp_garp_extra_if", None, "[1, 86400]"),
        ("vrrp_garp_extra_if all", "vrrp_garp_extra_if", None, "no time"),
        ("vrrp_mcast_group4 1.2.3.4", "vrrp_mcast_group4", ipaddress.ip_address("224.0.0.18"), "not multicast"),
        ("vrrp_mcast_group4 ff02::1", "vrrp_mcast_group4", ipaddress.ip_address("224.0.0.18"), "not IPv4"),
        ("vrrp_mcast_group6 2001:db8::1", "vrrp_mcast_group6", ipaddress.ip_address("ff02::12"), "not multicast"),
        ("vrrp_priority 20", "vrrp_priority", 0, "[-20, 19]"),
        ("vrrp_rt_priority 100", "vrrp_rt_priority", 99, "using 99"),
        ("vrrp_rt_priority 0", "vrrp_rt_priority", 1, "using 1"),
        ("max_auto_priority 100", "max_auto_priority", 0, "[-1, 99]"),
        ("vrrp_startup_delay 0", "vrrp_startup_delay", None, "outside the range"),
        ("smtp_server 192.0.2.1 70000", "smtp_server", None, "[1, 65535]"),
        ("smtp_server bad/host", "smtp_server", None, "invalid smtp server"),
        ("smtp_alert maybe", "smtp_alert", None, "not one of"),
        ("script_user no_such_user_here", "script_user", None, "does not exist"),
        ("script_user root no_such_group_here", "script_user", None, "group"),
        ("startup_script /bin/true no_such_user_here", "startup_script", None, "does not exist"),
        ("umask 0999", "umask", None, "invalid umask"),
        ("umask IRFOO", "umask", None, "unknown umask bit"),
        ("lvs_timeouts", "lvs_timeouts", None, "at least one"),
        ("lvs_timeouts bogus 5", "lvs_timeouts", None, "unknown option"),
        ("lvs_flush_on_stop FOO", "lvs_flush_on_stop", None, "FOO"),
        ("dynamic_interfaces foo", "dynamic_interfaces", None, "allow_if_changes"),
        ("vrrp_rx_bufs_policy FOO", "vrrp_rx_bufs_policy", None, "FOO"),
        ("process_name averyveryverylongname", "process_name", "averyveryverylo", "15 characters"),
        ("random_seed -1", "random_seed", None, "outside the range"),
        ("router_id", "router_id", None, "missing value"),
        ("notification_email {\n}", "notification_email", (), "empty"),
    ],
)
def test_global_defs_resets(tmp_path: Path, text: str, field: str, value: object, needle: str) -> None:
    top = field == "child_wait_time"
    body = f"{text}\n" if top else f"global_defs {{\n{text}\n}}\n"
    r = parse(tmp_path, body)
    line, msg = one(r, Severity.RESET)
    assert line == (1 if top else 2)
    assert needle in msg
    c = config_of(r)
    assert getattr(c if top else c.global_defs, field) == value


def test_mcast_group6_not_link_local_warns(tmp_path: Path) -> None:
    r = parse(tmp_path, "global_defs {\nvrrp_mcast_group6 ff05::12\n}\n")
    line, msg = one(r, Severity.WARNING)
    assert line == 2 and "link-local" in msg
    assert str(config_of(r).global_defs.vrrp_mcast_group6) == "ff05::12"


def test_deprecated_aliases(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        """
        global_defs {
            lvs_process_name lvsp
            vrrp_vmac_garp_intvl 60
        }
    """,
    )
    g = config_of(r).global_defs
    assert g.checker_process_name == "lvsp" and g.vrrp_garp_extra_if == GarpExtraIf(60)
    warnings = problems(r, Severity.WARNING)
    assert [d.location.line for d in warnings if d.location] == [3, 4]
    assert all("deprecated" in d.message for d in warnings)


def test_unsupported_keywords_are_notes(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        """
        global_defs {
            enable_snmp_vrrp
            enable_dbus
            vrrp_iptables
            nftables
            bfd_rt_priority 50
            lvs_sync_daemon eth0 VI_1 id 5
        }
    """,
    )
    g = config_of(r).global_defs
    assert g.enable_snmp_vrrp and g.enable_dbus and g.vrrp_iptables == () and g.nftables == "keepalived"
    assert g.lvs_sync_daemon == LvsSyncDaemon("eth0", "VI_1", 5)
    assert problems(r) == []
    assert len(problems(r, Severity.NOTE)) == 5  # all but nftables (vrrp_child.firewall)


def test_lvs_sync_daemon_options(tmp_path: Path) -> None:
    r = parse(tmp_path, "global_defs {\nlvs_sync_daemon eth0 inst VI_1 maxlen 0 port 9000 group 1.2.3.4\n}\n")
    g = config_of(r).global_defs
    assert g.lvs_sync_daemon == LvsSyncDaemon("eth0", "VI_1", port=9000)
    msgs = [d.message for d in problems(r, Severity.RESET)]
    assert len(msgs) == 2 and "maxlen" in msgs[0] and "not multicast" in msgs[1]


def test_user_scripts(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        """
        global_defs {
            startup_script "/bin/true --fast" root root
            notify_fifo /run/k.fifo
            vrrp_notify_fifo /run/v.fifo no_such_user_here
        }
    """,
    )
    g = config_of(r).global_defs
    assert g.startup_script is not None and g.startup_script.argv == ("/bin/true", "--fast")
    assert (g.startup_script.user, g.startup_script.group) == ("root", "root")
    assert g.notify_fifo is not None and g.notify_fifo.path == "/run/k.fifo"
    assert g.vrrp_notify_fifo is not None and g.vrrp_notify_fifo.user is None
    line, msg = one(r, Severity.WARNING)
    assert line == 5 and "does not exist" in msg


def test_same_fifo_twice_warns(tmp_path: Path) -> None:
    r = parse(tmp_path, "global_defs {\nnotify_fifo /run/a\nvrrp_notify_fifo /run/a\n}\n")
    line, msg = one(r, Severity.WARNING)
    assert line == 3 and "same FIFO" in msg


def test_notification_email_without_smtp_server_warns(tmp_path: Path) -> None:
    r = parse(tmp_path, "global_defs {\nnotification_email {\na@b\n}\n}\n")
    line, msg = one(r, Severity.WARNING)
    assert line == 2 and "smtp_server" in msg


def test_smtp_server_name(tmp_path: Path) -> None:
    g = clean(parse(tmp_path, "global_defs {\nsmtp_server mail.example.com\n}\n")).global_defs
    assert g.smtp_server == SmtpServer("mail.example.com", 25) and g.smtp_server.address is None
