"""The VRRP child's dumps: keepalived's data (SIGUSR1), stats (SIGUSR2) and JSON layouts, and the
STATUS view the parent's control socket serves (pykeepalivedctl status, metrics).

Pure: instances, groups and trackers in, text out. The parent writes the files
(haparent/specs.py names them; haparent/system.py writes them safely).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence

from conf.addresses import PREFERRED_LFT_FOREVER, IpAddressEntry
from conf.vrrp import VrrpInstance
from vrrp_child import fsm
from vrrp_child.instance import Instance
from vrrp_child.syncgroup import SyncGroup
from vrrp_child.trackers import Trackers
from watchdog.protocol import DumpKind

# keepalived's numeric states (vrrp.h: VRRP_STATE_INIT .. VRRP_STATE_STOP)
STATE_NUMBER = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3, "STOP": 98}


def render(
    kind: DumpKind,
    instances: Sequence[Instance],
    groups: Mapping[str, SyncGroup],
    group_of: Mapping[str, str],
    trackers: Trackers,
) -> str:
    # keepalived's JSON names a tracked vrrp_script by its command line
    commands = {name: loop.command_text for name, loop in trackers.scripts.items()}
    if kind is DumpKind.STATUS:
        # adverts the kernel dropped for a full receive buffer, over the distinct sockets
        sockets = {id(i.socket): i.socket for i in instances}.values()
        status = {
            "instances": [instance_json(i, groups, group_of, commands) for i in instances],
            "receive_drops": sum(s.stats.overflow for s in sockets),
        }
        tracked = {"scripts": trackers.script_states(), "trackers": trackers.other_states()}
        return json.dumps(status | tracked)
    if kind is DumpKind.JSON:
        return json.dumps([instance_json(i, groups, group_of, commands) for i in instances], indent=2) + "\n"
    if kind is DumpKind.STATS:
        return "".join(stats_text(i) for i in instances)
    text = "------< VRRP Topology >------\n" + "".join(data_text(i, group_of) for i in instances)
    if groups:
        text += "------< VRRP Sync groups >------\n"
        text += "".join(group_text(name, group) for name, group in groups.items())
    return text + trackers.dump()


def data_text(inst: Instance, group_of: Mapping[str, str]) -> str:
    """keepalived's `dump_vrrp` (SIGUSR1, keepalived.data) in its order and words, for the state
    it keeps: what keepalived-exporter and scripts read (State, Wantstate, Interface, Virtual
    Router ID, Gratuitous ARP delay, the `Virtual IP (N):` list) is exactly keepalived's."""
    c, m, p = inst.conf, inst.machine, inst.params
    lines = [f" VRRP Instance = {inst.name}", f"   VRRP Version = {p.version}"]
    if inst.name in group_of:
        lines.append(f"   Sync group = {group_of[inst.name]}")
    if inst.local_ip.version == 6:
        lines.append("   Using Native IPv6")
    lines.append(f"   State = {m.state.value}")
    if m.state is fsm.State.BACKUP:
        lines.append(f"   Master router = {m.master_ip if m.master_ip is not None else '(none)'}")
        lines.append(f"   Master priority = {m.master_priority or 0}")
    lines.append("   Flags:\n     Using unicast" if c.is_unicast else "   Flags: none")
    lines.append(f"   Wantstate = {wantstate(inst).value}")
    if m.fault_reason or inst.fault_reason:  # ours: why it is in FAULT
        lines.append(f"   Fault = {inst.fault_reason or m.fault_reason}")
    lines.append(f"   Last transition = {_ctime_us(inst.last_transition)}")
    mdi = fsm.master_down_interval(p.version, p.priority, m.master_adver_int or p.advert_int, p.down_timer_adverts)
    lines.append(f"   Master down timer = {round(mdi * 1_000_000)} usecs")
    lines.append(f"   Interface = {inst.ifname}" + (f", vmac on {c.interface}" if inst.ifname != c.interface else ""))
    lines.append(f"   Using src_ip = {inst.local_ip}")
    if inst.socket.group is not None:
        lines.append(f"   Multicast address {inst.socket.group}")
    lines += _garp_lines(c)
    lines += [
        f"   Virtual Router ID = {inst.vrid}",
        f"   Priority = {c.priority}",
        f"   Effective priority = {p.priority}",
        f"   Total priority = {p.priority}",
        _interval("Advert interval", p.version, p.advert_int),
    ]
    if m.state is fsm.State.BACKUP and p.version == 3:
        lines.append(_interval("Master advert interval", 3, m.master_adver_int))
    lines.append(f"   Accept = {'enabled' if c.accept else 'disabled'}")
    lines.append(f"   Preempt = {'enabled' if p.preempt else 'disabled'}")
    if c.preempt_delay:
        lines.append(f"   Preempt delay = {c.preempt_delay:g} secs")
    lines.append(f"   Promote_secondaries = {'enabled' if c.promote_secondaries else 'disabled'}")
    lines += _auth_lines(c, p.version)
    vips = c.virtual_ipaddress
    if vips:
        lines.append(f"   Virtual IP ({len(vips)}):")
        lines += [f"     {format_address(e, inst.ifname, inst.vips_set)}" for e in vips]
    if c.virtual_ipaddress_excluded:
        lines.append("   Virtual IP Excluded :")
        lines += [f"     {format_address(e, inst.ifname, inst.vips_set)}" for e in c.virtual_ipaddress_excluded]
    if c.is_unicast:
        lines.append("   Unicast Peer :")
        lines += [f"     {peer.address}" for peer in c.unicast_peer]
    return "".join(line + "\n" for line in lines)


def wantstate(inst: Instance) -> fsm.State:
    """keepalived's wantstate: the state the instance heads for (a sync group member whose
    timer fired wants MASTER while it waits for its group)."""
    m = inst.machine
    return fsm.State.MASTER if m.want_master else m.state


def _garp_lines(c: VrrpInstance) -> list[str]:
    return [
        f"   Gratuitous ARP delay = {c.garp_master_delay}",
        f"   Gratuitous ARP repeat = {c.garp_master_repeat}",
        f"   Gratuitous ARP refresh = {c.garp_master_refresh}",
        f"   Gratuitous ARP refresh repeat = {c.garp_master_refresh_repeat}",
        f"   Gratuitous ARP lower priority delay = {c.garp_lower_prio_delay}",
        f"   Gratuitous ARP lower priority repeat = {c.garp_lower_prio_repeat}",
        f"   Down timer adverts = {c.down_timer_adverts}",
        f"   Send advert after receive lower priority advert = {_bool(not c.lower_prio_no_advert)}",
        f"   Send advert after receive higher priority advert = {_bool(c.higher_prio_send_advert)}",
    ]


def _auth_lines(c: VrrpInstance, version: int) -> list[str]:
    auth = c.authentication
    if auth is not None and auth.auth_type:
        kind = "IPSEC_AH" if auth.auth_type == "AH" else "SIMPLE_PASSWORD"
        return [f"   Authentication type = {kind}"]  # keepalived prints the password: we do not
    return ["   Authentication type = none"] if version == 2 else []


def _interval(label: str, version: int, seconds: float) -> str:
    """keepalived: whole seconds for VRRPv2, milliseconds for v3."""
    if version == 2:
        return f"   {label} = {int(seconds)} sec"
    return f"   {label} = {round(seconds * 1000)} milli-sec"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _ctime_us(when: float) -> str:
    """keepalived's `%ld.%6.6ld (%s)` with ctime_us_r: `1796306380.444970 (Thu Dec  3 13:59:40.444970 2026)`."""
    sec, usec = divmod(round(when * 1_000_000), 1_000_000)
    local = time.localtime(sec)
    return f"{sec}.{usec:06d} ({time.strftime('%a %b %e %H:%M:%S', local)}.{usec:06d} {local.tm_year})"


_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


def format_address(e: IpAddressEntry, ifname: str, is_set: bool) -> str:
    """keepalived's format_ipaddress: `192.0.2.100/24 dev eth0 scope global set` (the JSON's
    `vips` and the data dump's lines): the words in keepalived's order, each only when it holds."""
    words = [f"{e.ip}/{e.prefixlen}"]
    if e.family == 4 and e.broadcast is not None:
        words.append(f"brd {e.broadcast}")
    words.append(f"dev {e.dev or ifname}")
    if e.use_vmac:
        words.append("use_vmac")
    scope = e.scope or 0
    words.append(f"scope {_SCOPES.get(scope, str(scope))}")
    flags = (
        (e.label is not None, f"label {e.label}"),
        (e.peer is not None, f"peer {e.peer}/{e.prefixlen}"),
        (e.home, "home"),
        (e.nodad, "-nodad"),
        (e.mngtmpaddr, "mngtmpaddr"),
        (e.noprefixroute, "noprefixroute"),
        (e.autojoin, "autojoin"),
        (e.no_track, "no_track"),
        (e.track_group is not None, f"track_group {e.track_group}"),
    )
    words += [text for holds, text in flags if holds]
    if e.family == 6:
        lft = PREFERRED_LFT_FOREVER if e.preferred_lft is None else e.preferred_lft
        words.append(
            "deprecated"
            if lft == 0
            else "preferred_lft forever"
            if lft == PREFERRED_LFT_FOREVER
            else f"preferred_lft {lft}"
        )
    if is_set:
        words.append("set")
    return " ".join(words)


def group_text(name: str, group: SyncGroup) -> str:
    """keepalived's dump_sync_group (the counts keepalived keeps are not kept here)."""
    members = "".join(f"     {m}\n" for m in group.members)
    return f" VRRP Sync Group = {name}, {group.state.value}\n   VRRP member instances :\n{members}"


def stats_text(inst: Instance) -> str:
    s = inst.stats
    return (
        f"VRRP Instance: {inst.name}\n"
        f"  Advertisements:\n    Received: {s.advert_rcvd}\n    Sent: {s.advert_sent}\n"
        f"  Became master: {s.become_master}\n"
        f"  Released master: {s.release_master}\n"
        f"  Packet Errors:\n    Length: {s.packet_len_err}\n    TTL: {s.ip_ttl_err}\n"
        f"    Invalid Type: {s.invalid_type_rcvd}\n    Advertisement Interval: {s.advert_interval_err}\n"
        f"    Address List: {s.addr_list_err}\n"
        f"  Authentication Errors:\n    Invalid Type: {s.invalid_authtype}\n"
        f"    Type Mismatch: {s.authtype_mismatch}\n    Failure: {s.auth_failure}\n"
        f"  Priority Zero:\n    Received: {s.pri_zero_rcvd}\n    Sent: {s.pri_zero_sent}\n"
    )


def instance_json(
    inst: Instance, groups: Mapping[str, SyncGroup], group_of: Mapping[str, str], commands: Mapping[str, str]
) -> dict[str, object]:
    """keepalived's JSON dump entry ({"data": {...}, "stats": {...}}, vrrp_json.c): its keys in
    its order with its types (keepalived-exporter decodes them into typed fields), then ours."""
    m = inst.machine
    group = groups.get(group_of.get(inst.name, ""))
    ours = {
        "state_name": m.state.value,
        "master_saddr": str(m.master_ip) if m.master_ip is not None else None,
        "src_ip": str(inst.local_ip),
        "sync_group": group_of.get(inst.name),
        "sync_group_state": group.state.value if group is not None else None,
        "fault_reason": inst.fault_reason,
        "track_script_names": [r.name for r in inst.conf.track_script],
        "track_file": [r.name for r in inst.conf.track_file],
        "track_process": [r.name for r in inst.conf.track_process],
    }
    return {"data": keepalived_data(inst, commands) | ours, "stats": dataclasses.asdict(inst.stats)}


def keepalived_data(inst: Instance, commands: Mapping[str, str]) -> dict[str, object]:
    c, m, p = inst.conf, inst.machine, inst.params
    data: dict[str, object] = {
        "iname": inst.name,
        "dont_track_primary": int(c.dont_track_primary),
        "skip_check_adv_addr": int(c.skip_check_adv_addr),
        "strict_mode": int(c.strict_mode),
        "vmac_ifname": inst.ifname if inst.ifname != c.interface else "",
        "ifp_ifname": inst.ifname,
        "master_priority": (m.master_priority or 0) if m.state is fsm.State.BACKUP else 0,  # heard from a master
        "last_transition": inst.last_transition,
        "garp_delay": _number(c.garp_master_delay),
        "garp_refresh": c.garp_master_refresh,
        "garp_rep": c.garp_master_repeat,
        "garp_refresh_rep": c.garp_master_refresh_repeat,
        "garp_lower_prio_delay": c.garp_lower_prio_delay,
        "garp_lower_prio_rep": c.garp_lower_prio_repeat,
        "lower_prio_no_advert": int(c.lower_prio_no_advert),
        "higher_prio_send_advert": int(c.higher_prio_send_advert),
        "vrid": inst.vrid,
        "base_priority": c.priority,
        "effective_priority": p.priority,
        "vipset": inst.vips_set,
        "promote_secondaries": c.promote_secondaries,
        "adver_int": _number(p.advert_int),
        "master_adver_int": _number(m.master_adver_int),
        "accept": int(c.accept),
        "nopreempt": not p.preempt,
        "preempt_delay": int(c.preempt_delay),
        "state": STATE_NUMBER.get(m.state.value, 0),
        "wantstate": STATE_NUMBER.get(wantstate(inst).value, 0),
        "version": p.version,
        "smtp_alert": c.smtp_alert,
        "notify_deleted": c.notify_deleted is not None,
    }
    scripts = (
        ("script_backup", c.notify_backup),
        ("script_master", c.notify_master),
        ("script_fault", c.notify_fault),
        ("script_stop", c.notify_stop),
        ("script", c.notify),
    )
    data |= {key: str(script) for key, script in scripts if script is not None}
    lists = (
        ("vips", [format_address(e, inst.ifname, inst.vips_set) for e in c.virtual_ipaddress]),
        ("evips", [format_address(e, inst.ifname, inst.vips_set) for e in c.virtual_ipaddress_excluded]),
        ("track_ifp", [r.name for r in c.track_interface]),
        ("track_script", [commands[r.name] for r in c.track_script if r.name in commands]),
    )
    data |= {key: values for key, values in lists if values}  # keepalived leaves out empty lists
    auth = c.authentication
    data["auth_type"] = {"PASS": 1, "AH": 2}.get(auth.auth_type or "", 0) if auth is not None else 0
    return data


def _number(value: float | None) -> float | int | None:
    """keepalived's jsonw_float prints 1 for 1.0 ("%g"): an integral value stays an integer."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value
