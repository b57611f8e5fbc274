"""VRRP blocks: vrrp_script, track_file, vrrp_track_process, vrrp_sync_group,
garp_group, vrrp_instance."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

import conf
from conf.diagnostics import Diagnostic, Severity
from conf.trackers import InitFile, TrackRef, Weight
from conf.vrrp import UseVmac
from tests.conf.util import clean, config_of, parse, problems

VIP = "virtual_ipaddress {\n    10.0.0.1\n  }"


def inst(body: str, name: str = "VI_1", vrid: int = 51, iface: str = "eth0") -> str:
    return f"vrrp_instance {name} {{\n  interface {iface}\n  virtual_router_id {vrid}\n  {VIP}\n{body}\n}}\n"


def one(diags: list[Diagnostic], severity: Severity, text: str) -> Diagnostic:
    found = [d for d in diags if d.severity is severity and text in d.message]
    assert found, [(d.severity, d.message) for d in diags]
    return found[0]


def test_minimal_instance_defaults(tmp_path: Path) -> None:
    c = clean(parse(tmp_path, inst("")))
    vi = c.vrrp_instance["VI_1"]
    assert vi.virtual_router_id == 51 and vi.interface == "eth0"
    assert vi.priority == 100 and vi.state == "BACKUP" and not vi.is_owner
    assert vi.advert_int == 1.0 and vi.version == 2 and vi.family == 4
    assert vi.strict_mode is False and vi.accept is True and vi.nopreempt is False
    assert vi.garp_master_delay == 5 and vi.garp_master_repeat == 5
    assert vi.garp_lower_prio_delay == 5 and vi.garp_lower_prio_repeat == 5
    assert vi.garp_master_refresh == 0 and vi.garp_master_refresh_repeat == 1
    assert vi.down_timer_adverts == 3 and vi.lower_prio_no_advert is False
    assert vi.higher_prio_send_advert is False and vi.smtp_alert is False
    assert vi.mcast_dst_ip == ipaddress.ip_address("224.0.0.18")
    assert vi.virtual_ipaddress[0].address == ipaddress.ip_interface("10.0.0.1/32")
    assert c.has_vrrp


def test_all_instance_keywords(tmp_path: Path) -> None:
    text = """
    vrrp_script chk {
      script "/bin/true arg"
      interval 2
      timeout 3
      weight -10 reverse
      rise 2
      fall 3
      user nobody
      init_fail
    }
    track_file tf {
      file /tmp/tf
      weight 4
      init_file 7 overwrite
    }
    vrrp_track_process tp {
      process haproxy -f "a b"
      param_match partial
      weight 5
      quorum 2
      quorum_max 4
      delay 0.5
      full_command
    }
    vrrp_instance VI_1 {
      state MASTER
      interface eth0
      use_vmac vrrp51 00:00:5e:00:01
      vmac_xmit_base
      use_vmac_addr
      dont_track_primary
      track_interface {
        eth1 weight 10 reverse
      }
      track_script {
        chk
      }
      track_file {
        tf weight 0
      }
      track_process {
        tp weight -5
      }
      mcast_src_ip 10.0.0.9
      track_src_ip
      version 3
      check_unicast_src
      unicast_ttl 10
      old_unicast_checksum never
      garp_master_delay 1
      garp_master_repeat 2
      garp_lower_prio_delay 3
      garp_lower_prio_repeat 4
      garp_master_refresh 60
      garp_master_refresh_repeat 2
      garp_extra_if all 100
      down_timer_adverts 4
      lower_prio_no_advert
      higher_prio_send_advert on
      virtual_router_id 51
      priority 150
      advert_int 0.5
      virtual_ipaddress {
        10.0.0.1/24 dev eth0
      }
      virtual_ipaddress_excluded {
        fe80::1/64
      }
      promote_secondaries
      virtual_routes {
        10.1.0.0/16 via 10.0.0.254
      }
      virtual_rules {
        from 10.0.0.0/24 table 1 priority 100
      }
      no_accept
      preempt_delay 5
      skip_check_adv_addr off
      strict_mode off
      debug 2
      notify_master "/bin/echo master" root
      notify_backup /bin/true
      notify_fault /bin/true
      notify_stop /bin/true
      notify_deleted
      notify /bin/true
      notify_master_rx_lower_pri /bin/true
      notify_priority_changes on
      smtp_alert
    }
    """
    r = parse(tmp_path, text)
    expected = ("preempt_delay will not work", "promote_secondaries is automatically set")
    bad = [d for d in problems(r, Severity.ERROR, Severity.RESET) if not any(e in d.message for e in expected)]
    assert not bad, [d.render(test_mode=True) for d in bad]
    c = config_of(r)
    s = c.vrrp_script["chk"]
    assert s.script is not None and s.script.argv == ("/bin/true", "arg")
    assert (s.interval, s.timeout, s.weight, s.rise, s.fall, s.user, s.init_fail) == (
        2,
        3,
        Weight(-10, True),
        2,
        3,
        ("nobody",),
        True,
    )
    tf = c.track_file["tf"]
    assert tf.file == "/tmp/tf" and tf.weight == Weight(4) and tf.init_file == InitFile(7, True)
    tp = c.vrrp_track_process["tp"]
    assert tp.process == ("haproxy", "-f", "a b") and tp.param_match == "partial" and tp.quorum == 2
    assert tp.quorum_max == 4 and tp.effective_fork_delay == 0.5 and tp.full_command
    vi = c.vrrp_instance["VI_1"]
    assert vi.state == "MASTER" and vi.priority == 150 and vi.version == 3 and vi.advert_int == 0.5
    assert vi.use_vmac == UseVmac("vrrp51", "00:00:5e:00:01") and vi.vmac_xmit_base and vi.use_vmac_addr
    assert vi.track_interface == (TrackRef("eth1", 10, True),)
    assert vi.track_script == (TrackRef("chk", -10, True),)  # weight from the vrrp_script
    assert vi.track_file == (TrackRef("tf", 0, False),)
    assert vi.track_process == (TrackRef("tp", -5, False),)
    assert vi.src_ip == ipaddress.ip_address("10.0.0.9") and vi.track_src_ip
    assert vi.unicast_ttl == 10 and vi.old_unicast_checksum == "never" and vi.check_unicast_src
    assert (
        vi.garp_master_delay,
        vi.garp_master_repeat,
        vi.garp_lower_prio_delay,
        vi.garp_lower_prio_repeat,
        vi.garp_master_refresh,
        vi.garp_master_refresh_repeat,
    ) == (1, 2, 3, 4, 60, 2)
    assert vi.garp_extra_if is not None and vi.garp_extra_if.all and vi.garp_extra_if.interval == 100
    assert vi.down_timer_adverts == 4 and vi.lower_prio_no_advert and vi.higher_prio_send_advert
    assert len(vi.virtual_ipaddress_excluded) == 1 and len(vi.virtual_routes) == 1 and len(vi.virtual_rules) == 1
    assert vi.accept is False and vi.no_accept and vi.preempt_delay == 0  # MASTER clears preempt_delay
    assert vi.skip_check_adv_addr is False and vi.debug == 2
    assert vi.notify_master is not None and vi.notify_master.argv == ("/bin/echo", "master")
    assert vi.notify_master.user == "root"
    assert vi.notify_deleted is not None and vi.notify_deleted.script is None
    assert vi.notify_priority_changes and vi.smtp_alert
    one(r.diagnostics.items, Severity.RESET, "preempt_delay will not work with initial state MASTER")


def test_vrid_required_is_error(tmp_path: Path) -> None:
    r = parse(tmp_path, "vrrp_instance VI_1 {\n  interface eth0\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n")
    d = one(r.diagnostics.items, Severity.ERROR, "the virtual router id must be set")
    assert d.location is not None and d.location.line == 1
    assert "VI_1" not in config_of(r).vrrp_instance


def test_vrid_out_of_range(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("", vrid=256))
    d = one(r.diagnostics.items, Severity.RESET, "virtual_router_id")
    assert d.location is not None and d.location.line == 3
    one(r.diagnostics.items, Severity.ERROR, "the virtual router id must be set")


def test_priority_invalid_uses_100(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  priority 0"))
    d = one(r.diagnostics.items, Severity.RESET, "using 100")
    assert d.location is not None and d.location.line == 7
    assert config_of(r).vrrp_instance["VI_1"].priority == 100


def test_master_without_priority_is_owner(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  state MASTER\n  nopreempt"))
    vi = config_of(r).vrrp_instance["VI_1"]
    assert vi.priority == 255 and vi.is_owner and vi.nopreempt is False
    d = one(r.diagnostics.items, Severity.RESET, "nopreempt is incompatible with priority 255")
    assert d.location is not None and d.location.line == 8


def test_nopreempt_with_master_state(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  state MASTER\n  priority 100\n  nopreempt"))
    one(r.diagnostics.items, Severity.RESET, "nopreempt will not work with initial state MASTER")
    assert config_of(r).vrrp_instance["VI_1"].nopreempt is False


def test_preempt_delay_range_and_nopreempt(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  preempt_delay 2000"))
    d = one(r.diagnostics.items, Severity.RESET, "preempt_delay")
    assert d.location is not None and d.location.line == 7
    r = parse(tmp_path, inst("  nopreempt\n  preempt_delay 5"))
    one(r.diagnostics.items, Severity.RESET, "preempt_delay is incompatible with nopreempt")
    vi = config_of(r).vrrp_instance["VI_1"]
    assert vi.nopreempt and vi.preempt_delay == 0


def test_preempt_after_nopreempt_wins(tmp_path: Path) -> None:
    vi = clean(parse(tmp_path, inst("  nopreempt\n  preempt"))).vrrp_instance["VI_1"]
    assert vi.nopreempt is False


def test_unknown_state_is_backup(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  state FOO"))
    d = one(r.diagnostics.items, Severity.RESET, "unknown state 'FOO'; using BACKUP")
    assert d.location is not None and d.location.line == 7


@pytest.mark.parametrize(
    ("version", "value", "expect", "text"),
    [
        (2, "1.5", 2.0, "must be an integer; using 2"),
        (2, "0.3", 1.0, "must be an integer; using 1"),
        (3, "0.123", 0.12, "units of 10ms; using 0.12"),
        (3, "50", 40.95, "out of range"),
    ],
)
def test_advert_int_rounding(tmp_path: Path, version: int, value: str, expect: float, text: str) -> None:
    r = parse(tmp_path, inst(f"  version {version}\n  advert_int {value}"))
    d = one(r.diagnostics.items, Severity.RESET, text)
    assert d.location is not None and d.location.line == 8
    assert config_of(r).vrrp_instance["VI_1"].advert_int == expect


def test_advert_int_v3_centiseconds(tmp_path: Path) -> None:
    vi = clean(parse(tmp_path, inst("  version 3\n  advert_int 0.25"))).vrrp_instance["VI_1"]
    assert vi.advert_int == 0.25 and vi.advert_int_centis == 25


def test_ipv6_forces_version_3(tmp_path: Path) -> None:
    text = "vrrp_instance V6 {\n  interface eth0\n  virtual_router_id 5\n  virtual_ipaddress {\n    fe80::5\n  }\n}\n"
    vi = clean(parse(tmp_path, text)).vrrp_instance["V6"]
    assert vi.family == 6 and vi.version == 3 and vi.mcast_dst_ip == ipaddress.ip_address("ff02::12")


def test_ipv6_version_2_strict_reset(tmp_path: Path) -> None:
    text = (
        "vrrp_instance V6 {\n  interface eth0\n  virtual_router_id 5\n  strict_mode\n  version 2\n"
        "  virtual_ipaddress {\n    fe80::5\n  }\n}\n"
    )
    r = parse(tmp_path, text)
    d = one(r.diagnostics.items, Severity.RESET, "cannot use IPv6 with VRRP version 2; using version 3")
    assert d.location is not None and d.location.line == 5


def test_mixed_family_vip_ignored(tmp_path: Path) -> None:
    text = (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 5\n  virtual_ipaddress {\n"
        "    10.0.0.1\n    fe80::1\n  }\n}\n"
    )
    r = parse(tmp_path, text)
    d = one(r.diagnostics.items, Severity.RESET, "address family must match VRRP instance [fe80::1]")
    assert d.location is not None and d.location.line == 6
    assert len(config_of(r).vrrp_instance["VI_1"].virtual_ipaddress) == 1


def test_authentication_pass_truncated(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  authentication {\n    auth_type PASS\n    auth_pass 1234567890\n  }"))
    d = one(r.diagnostics.items, Severity.RESET, "using '12345678'")
    assert d.location is not None and d.location.line == 9
    vi = config_of(r).vrrp_instance["VI_1"]
    assert vi.auth_type == "PASS" and vi.auth_pass == "12345678"


def test_authentication_with_v3_ignored(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  version 3\n  authentication {\n    auth_type PASS\n    auth_pass abc\n  }"))
    d = one(r.diagnostics.items, Severity.RESET, "VRRP version 3 does not support authentication")
    assert d.location is not None and d.location.line == 8
    assert config_of(r).vrrp_instance["VI_1"].authentication is None


def test_authentication_without_password(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  authentication {\n    auth_type PASS\n  }"))
    one(r.diagnostics.items, Severity.RESET, "no password given")


def test_auth_ah_master_cleared(tmp_path: Path) -> None:
    r = parse(
        tmp_path, inst("  state MASTER\n  priority 100\n  authentication {\n    auth_type AH\n    auth_pass x\n  }")
    )
    assert not [d for d in r.diagnostics.items if d.severity is Severity.NOTE and "auth_type AH" in d.message]
    one(r.diagnostics.items, Severity.RESET, "incompatible with AH authentication; using state BACKUP")
    assert config_of(r).vrrp_instance["VI_1"].state == "BACKUP"


def test_no_interface_no_peers_is_error(tmp_path: Path) -> None:
    r = parse(tmp_path, "vrrp_instance X {\n  virtual_router_id 5\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n")
    one(r.diagnostics.items, Severity.ERROR, "Unknown interface")


def test_unicast_without_interface_needs_src(tmp_path: Path) -> None:
    base = (
        "vrrp_instance X {\n  virtual_router_id 5\n  virtual_ipaddress {\n    10.0.0.1\n  }\n"
        "  unicast_peer {\n    10.0.0.2\n  }\n%s}\n"
    )
    r = parse(tmp_path, base % "")
    one(r.diagnostics.items, Severity.ERROR, "unicast_src_ip or interface")
    vi = clean(parse(tmp_path, base % "  unicast_src_ip 10.0.0.3\n")).vrrp_instance["X"]
    assert vi.is_unicast and vi.interface is None


def test_unicast_peer_options_and_family(tmp_path: Path) -> None:
    r = parse(
        tmp_path,
        inst("  unicast_peer {\n    10.0.0.2 min_ttl 3 max_ttl 10\n    fe80::2\n    10.0.0.4 max_ttl 300\n  }"),
    )
    d = one(r.diagnostics.items, Severity.RESET, "unicast peer address [fe80::2]")
    assert d.location is not None and d.location.line == 9
    d = one(r.diagnostics.items, Severity.RESET, "unicast_peer")
    vi = config_of(r).vrrp_instance["VI_1"]
    assert [str(p.address) for p in vi.unicast_peer] == ["10.0.0.2"]
    assert vi.unicast_peer[0].min_ttl == 3 and vi.check_unicast_src  # a TTL limit turns it on


def test_missing_interface_warning(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("", iface="eth9"))
    d = one(r.diagnostics.items, Severity.RESET, "interface eth9 for vrrp_instance VI_1 doesn't exist")
    assert d.location is not None and d.location.line == 2
    r = parse(tmp_path, "global_defs {\n  dynamic_interfaces\n}\n" + inst("", iface="eth9"))
    one(r.diagnostics.items, Severity.WARNING, "interface eth9 for vrrp_instance VI_1 doesn't exist")


def test_duplicate_vrid_is_error(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("", "A", 12) + inst("", "B", 12))
    d = one(r.diagnostics.items, Severity.ERROR, "A and B both use VRID 12 with IPv4 on interface eth0")
    assert d.location is not None and d.location.line == 11
    # another interface or another family is fine
    clean(parse(tmp_path, inst("", "A", 12) + inst("", "B", 12, iface="eth1")))


def test_no_vip_v3_is_error_v2_warning(tmp_path: Path) -> None:
    body = "vrrp_instance X {\n  interface eth0\n  virtual_router_id 5\n%s}\n"
    r = parse(tmp_path, body % "  version 3\n")
    one(r.diagnostics.items, Severity.ERROR, "No VIP specified; at least one is required")
    r = parse(tmp_path, body % "")
    one(r.diagnostics.items, Severity.WARNING, "at least one is sensible")
    assert "X" in config_of(r).vrrp_instance


def test_strict_mode_resets(tmp_path: Path) -> None:
    text = inst(
        "  strict_mode\n  state MASTER\n  priority 100\n  preempt_delay 3\n  garp_lower_prio_repeat 2\n"
        "  lower_prio_no_advert off\n  higher_prio_send_advert\n  accept\n  down_timer_adverts 5"
    )
    r = parse(tmp_path, text)
    diags = r.diagnostics.items
    one(diags, Severity.RESET, "state MASTER must match being address owner")
    one(diags, Severity.RESET, "strict mode requires no repeat garps")
    one(diags, Severity.RESET, "strict mode requires lower_prio_no_advert")
    one(diags, Severity.RESET, "higher_prio_send_advert to be off")
    one(diags, Severity.RESET, "does not comply with RFC3768")
    one(diags, Severity.RESET, "down_timer_adverts 3")
    vi = config_of(r).vrrp_instance["VI_1"]
    assert vi.state == "BACKUP" and vi.garp_lower_prio_repeat == 0 and vi.lower_prio_no_advert
    assert not vi.higher_prio_send_advert and vi.accept is False and vi.down_timer_adverts == 3


def test_strict_mode_from_global_and_unicast_error(tmp_path: Path) -> None:
    r = parse(tmp_path, "global_defs {\n  vrrp_strict\n}\n" + inst("  unicast_peer {\n    10.0.0.2\n  }"))
    one(r.diagnostics.items, Severity.ERROR, "Unicast peers are not supported in strict mode")
    vi = clean(parse(tmp_path, "global_defs {\n  vrrp_strict\n}\n" + inst(""))).vrrp_instance["VI_1"]
    assert vi.strict_mode and vi.accept is False and vi.garp_lower_prio_delay == 0


def test_globals_inherited(tmp_path: Path) -> None:
    text = (
        "global_defs {\n  vrrp_version 3\n  vrrp_garp_master_delay 9\n  vrrp_garp_master_repeat 2\n"
        "  vrrp_mcast_group4 224.0.0.20\n  smtp_alert_vrrp on\n  vrrp_skip_check_adv_addr\n}\n" + inst("")
    )
    vi = clean(parse(tmp_path, text)).vrrp_instance["VI_1"]
    assert vi.version == 3 and vi.garp_master_delay == 9 and vi.garp_master_repeat == 2
    assert vi.garp_lower_prio_delay == 9 and vi.garp_lower_prio_repeat == 2
    assert vi.mcast_dst_ip == ipaddress.ip_address("224.0.0.20") and vi.smtp_alert and vi.skip_check_adv_addr


def test_vrrp_script_ranges(tmp_path: Path) -> None:
    text = (
        'vrrp_script chk {\n  script "/bin/true"\n  interval 0.5\n  weight 254\n  rise 0\n}\n'
        "vrrp_script none {\n  interval 2\n}\n"
    )
    r = parse(tmp_path, text)
    diags = r.diagnostics.items
    assert one(diags, Severity.RESET, "interval").location.line == 3  # type: ignore[union-attr]
    assert one(diags, Severity.RESET, "weight").location.line == 4  # type: ignore[union-attr]
    assert one(diags, Severity.RESET, "rise").location.line == 5  # type: ignore[union-attr]
    d = one(diags, Severity.RESET, "no script set for vrrp_script none")
    assert d.location is not None and d.location.line == 7
    c = config_of(r)
    assert "none" not in c.vrrp_script
    s = c.vrrp_script["chk"]
    assert s.interval == 1 and s.weight == Weight(0) and s.rise == 1 and s.effective_timeout == 1


def test_track_references(tmp_path: Path) -> None:
    text = 'vrrp_script chk {\n  script "/bin/true"\n  weight 20\n}\n' + inst(
        "  track_script {\n    chk\n    missing\n    chk weight 5\n    chk2 weight 300\n  }"
    )
    r = parse(tmp_path, text)
    diags = r.diagnostics.items
    d = one(diags, Severity.RESET, "(VI_1) track script missing not found, ignoring")
    assert d.location is not None and d.location.line == 13
    assert one(diags, Severity.RESET, "duplicate track_script chk").location.line == 14  # type: ignore[union-attr]
    assert one(diags, Severity.RESET, "weight must be between [-253..253]").location.line == 15  # type: ignore[union-attr]
    assert config_of(r).vrrp_instance["VI_1"].track_script == (TrackRef("chk", 20, False),)


def test_track_file_and_process_checks(tmp_path: Path) -> None:
    text = (
        "track_file nofile {\n  weight 2\n}\n"
        "vrrp_track_file tf {\n  file /tmp/x\n}\n"
        "vrrp_track_process tp {\n  process a\n  quorum 3\n  quorum_max 1\n}\n"
        "vrrp_track_process noproc {\n  quorum 1\n}\n"
        + inst("  track_file {\n    tf\n    nofile\n  }\n  track_process {\n    tp weight 255\n  }")
    )
    r = parse(tmp_path, text)
    diags = r.diagnostics.items
    one(diags, Severity.WARNING, "'vrrp_track_file' is deprecated")
    assert one(diags, Severity.RESET, "no file set for track_file nofile").location.line == 1  # type: ignore[union-attr]
    assert one(diags, Severity.RESET, "quorum_max 1 is less than quorum").location.line == 10  # type: ignore[union-attr]
    one(diags, Severity.RESET, "track process 'noproc' process name not specified")
    one(diags, Severity.RESET, "track file nofile not found")
    one(diags, Severity.RESET, "weight must be between [-254..254]")
    c = config_of(r)
    vi = c.vrrp_instance["VI_1"]
    assert vi.track_file == (TrackRef("tf", 1, False),) and vi.track_process == (TrackRef("tp", 1, False),)
    assert c.track_file["tf"].weight == Weight(1) and c.vrrp_track_process["tp"].quorum_max is None


def test_sync_groups(tmp_path: Path) -> None:
    text = (
        "vrrp_sync_group G1 {\n  group {\n    A\n    B\n    NOPE\n  }\n  notify_master /bin/true\n}\n"
        "vrrp_sync_group G2 {\n  group {\n    B\n    C\n  }\n}\n"
        + inst("", "A", 1)
        + inst("", "B", 2)
        + inst("", "C", 3)
    )
    r = parse(tmp_path, text)
    diags = r.diagnostics.items
    d = one(diags, Severity.RESET, "virtual router NOPE specified in sync group G1 doesn't exist")
    assert d.location is not None and d.location.line == 2
    one(diags, Severity.RESET, "virtual router B cannot exist in more than one sync group")
    d = one(diags, Severity.RESET, "sync group G2 has only 1 virtual router(s)")
    assert d.location is not None and d.location.line == 9
    c = config_of(r)
    assert c.vrrp_sync_group["G1"].group == ("A", "B") and c.vrrp_sync_group["G2"].group == ("C",)
    assert c.sync_group_of("B") is c.vrrp_sync_group["G1"]


def test_sync_group_members_lose_weights(tmp_path: Path) -> None:
    text = (
        'vrrp_script chk {\n  script "/bin/true"\n  weight 10\n}\n'
        "vrrp_sync_group G {\n  group {\n    A\n    B\n  }\n}\n"
        + inst("  track_script {\n    chk\n  }\n  track_interface {\n    eth1 weight 5\n  }", "A", 1)
        + inst("", "B", 2)
    )
    r = parse(tmp_path, text)
    one(r.diagnostics.items, Severity.RESET, "ignoring tracked script chk with weights due to SYNC group")
    one(r.diagnostics.items, Severity.RESET, "ignoring weight of tracked interface eth1 due to SYNC group")
    vi = config_of(r).vrrp_instance["A"]
    assert vi.track_script == () and vi.track_interface == (TrackRef("eth1", 0, False),)
    # sync_group_tracking_weight keeps them
    r = parse(tmp_path, text.replace("  }\n}\n", "  }\n  sync_group_tracking_weight\n}\n", 1))
    assert config_of(r).vrrp_instance["A"].track_script == (TrackRef("chk", 10, False),)


def test_garp_groups(tmp_path: Path) -> None:
    text = (
        "garp_group {\n  garp_interval 0.5\n  interfaces {\n    eth0\n    eth1\n  }\n}\n"
        "garp_group {\n  gna_interval 0.1\n  interface eth0\n}\n"
        "garp_group {\n  interface eth1\n}\n"
    )
    r = parse(tmp_path, text)
    one(r.diagnostics.items, Severity.RESET, "garp_group already specified for eth0")
    d = one(r.diagnostics.items, Severity.RESET, "does not have any delay set")
    assert d.location is not None and d.location.line == 12
    c = config_of(r)
    assert len(c.garp_group) == 1 and c.garp_group[0].interfaces == ("eth0", "eth1")


def test_use_vmac_and_deprecated(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  use_vmac\n  vmac_garp_intvl 60\n  linkbeat_use_polling\n  vmac_xmit_base"))
    one(r.diagnostics.items, Severity.WARNING, "'vmac_garp_intvl' is deprecated")
    one(r.diagnostics.items, Severity.NOTE, "linkbeat_use_polling")
    vi = config_of(r).vrrp_instance["VI_1"]
    assert vi.use_vmac == UseVmac() and vi.garp_extra_if is not None and vi.garp_extra_if.interval == 60
    r = parse(tmp_path, inst("  vmac_xmit_base"))
    one(r.diagnostics.items, Severity.RESET, "vmac_xmit_base is only valid with a vmac")


def test_track_bfd_unsupported_note(tmp_path: Path) -> None:
    r = parse(tmp_path, inst("  track_bfd {\n    b1 weight 3\n  }"))
    one(r.diagnostics.items, Severity.NOTE, "track_bfd")


def test_value_equality(tmp_path: Path) -> None:
    a = config_of(parse(tmp_path, inst("  priority 120"))).vrrp_instance
    b = config_of(parse(tmp_path, inst("\n\n  priority 120"))).vrrp_instance
    assert a == b


def test_samples_without_vrrp_errors() -> None:
    import conf

    for name in (
        "sample",
        "vrrp",
        "vrrp.sync",
        "vrrp.scripts",
        "vrrp.static_ipaddress",
        "IPv6",
        "track_interface",
        "vrrp.routes",
    ):
        r = conf.load(
            f"/usr/share/doc/keepalived/samples/keepalived.conf.{name}",
            config_id="n",
            interfaces=frozenset({"eth0", "eth1", "eth2", "eth3", "eth0.1"}),
        )
        bad = [d for d in r.diagnostics.items if d.severity in (Severity.ERROR, Severity.RESET)]
        assert not bad, (name, [d.render(test_mode=True) for d in bad])


def test_performance_1000_instances(tmp_path: Path) -> None:
    import time

    text = "".join(
        inst(
            "  priority 100\n  track_interface {\n    eth1\n  }",
            f"VI_{i}",
            i % 255 + 1,
            iface=("eth0", "eth1", "eth2", "eth3", "eth4")[i // 255],
        )
        for i in range(1000)
    )
    # CPU time, not wall time: the suite runs two test processes on two cores
    start = time.process_time()
    r = parse(tmp_path, text, interfaces=None)
    assert time.process_time() - start < 1.0
    assert len(config_of(r).vrrp_instance) == 1000


@pytest.mark.parametrize(
    ("globals_", "expected"),
    [
        ("", (5, 5, 5, 5)),
        ("vrrp_min_garp", (0, 1, 0, 1)),  # man page: delay 0 and one GARP unless set
        ("vrrp_min_garp\nvrrp_garp_master_delay 3", (3, 1, 3, 1)),
        ("vrrp_garp_master_repeat 2\nvrrp_garp_lower_prio_delay 7", (5, 2, 7, 2)),
    ],
)
def test_garp_defaults_come_from_global_defs(tmp_path: Path, globals_: str, expected: tuple[int, ...]) -> None:
    text = f"global_defs {{\n{globals_}\n}}\n" + inst("")
    vi = clean(parse(tmp_path, text)).vrrp_instance["VI_1"]
    got = (vi.garp_master_delay, vi.garp_master_repeat, vi.garp_lower_prio_delay, vi.garp_lower_prio_repeat)
    assert got == expected


def test_track_process_bare_param_match_and_quorum_max_zero(tmp_path: Path) -> None:
    # keepalived.conf(5): bare param_match = the command has exactly the parameters given (here
    # none); quorum_max 0 alone = up only while no matching process runs.
    r = parse(
        tmp_path,
        "vrrp_track_process tp {\n  process haproxy\n  param_match\n  quorum_max 0\n}\n",
    )
    clean(r)
    tp = config_of(r).vrrp_track_process["tp"]
    assert tp.param_match == "exact" and tp.quorum == 0 and tp.quorum_max == 0


def test_a_loopback_interface_is_refused_as_keepalived_does(tmp_path: Path) -> None:
    """keepalived 2.2.7 -t: "(VI_1) cannot use a loopback interface (lo) for vrrp - ignoring",
    "(VI_1) Unknown interface!", exit 5."""
    path = tmp_path / "k.conf"
    path.write_text(
        "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  priority 100\n"
        "  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n"
    )
    result = conf.load(str(path))  # this host's interfaces: lo is a loopback
    errors = [d.render(test_mode=True) for d in result.diagnostics.items if d.label(test_mode=True) == "error"]
    assert any("cannot use a loopback interface (lo) for vrrp - ignoring" in e for e in errors), errors
    assert result.diagnostics.exit_code() == 5
