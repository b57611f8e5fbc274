"""The VRRP child's dumps: keepalived's data (SIGUSR1), stats (SIGUSR2) and JSON layouts, and the
STATUS view the parent's control socket serves (pykeepalivedctl status, metrics).

Pure: instances, groups and trackers in, text out. The parent writes the files
(haparent/specs.py names them; haparent/system.py writes them safely).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

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
    if kind is DumpKind.STATUS:
        status = {"instances": [instance_json(i, groups, group_of) for i in instances]}
        tracked = {"scripts": trackers.script_states(), "trackers": trackers.other_states()}
        return json.dumps(status | tracked)
    if kind is DumpKind.JSON:
        return json.dumps([instance_json(i, groups, group_of) for i in instances], indent=2) + "\n"
    if kind is DumpKind.STATS:
        return "".join(stats_text(i) for i in instances)
    text = "".join(data_text(i, group_of) for i in instances)
    text += "".join(group_text(name, group) for name, group in groups.items())
    return text + trackers.dump()


def data_text(inst: Instance, group_of: Mapping[str, str]) -> str:
    c, m = inst.conf, inst.machine
    vips = "".join(f"     {e.address} dev {ifname}\n" for e, ifname in inst.vip_items())
    return (
        f" VRRP Instance = {inst.name}\n"
        f"   State = {m.state.value}\n"
        f"   Interface = {c.interface}\n"
        f"   Using src_ip = {inst.local_ip}\n"
        f"   Virtual Router ID = {inst.vrid}\n"
        f"   Version = {inst.params.version}\n"
        f"   Priority = {c.effective_priority}\n"
        f"   Effective priority = {inst.params.priority}\n"
        f"   Advert interval = {c.advert_int} sec\n"
        f"   Master advert interval = {m.master_adver_int} sec\n"
        f"   Preempt = {'disabled' if c.nopreempt else 'enabled'}\n"
        f"   Preempt delay = {c.preempt_delay} secs\n"
        f"   Master router = {m.master_ip}\n"
        f"   Master priority = {m.master_priority}\n"
        f"   Unicast = {'yes' if c.is_unicast else 'no'}\n"
        f"   Sync group = {group_of.get(inst.name, 'none')}\n"
        f"   Fault = {inst.fault_reason or 'none'}\n"
        f"   Virtual IP = {len(inst.vip_items())}\n{vips}"
    )


def group_text(name: str, group: SyncGroup) -> str:
    members = "".join(f"     {m}\n" for m in group.members)
    count = len(group.members)
    return f" VRRP Sync Group = {name}, {group.state.value}\n   VRRP member instances = {count}\n{members}"


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


def instance_json(inst: Instance, groups: Mapping[str, SyncGroup], group_of: Mapping[str, str]) -> dict[str, object]:
    """keepalived's JSON dump layout: [{"data": {...}, "stats": {...}}, ...]."""
    c, m = inst.conf, inst.machine
    group = groups.get(group_of.get(inst.name, ""))
    return {
        "data": {
            "iname": inst.name,
            "ifp_ifname": c.interface,
            "vrid": inst.vrid,
            "base_priority": c.effective_priority,
            "effective_priority": inst.params.priority,
            "state": STATE_NUMBER.get(m.state.value, 0),
            "state_name": m.state.value,
            "version": inst.params.version,
            "adver_int": c.advert_int,
            "master_adver_int": m.master_adver_int,
            "nopreempt": int(c.nopreempt),
            "preempt_delay": c.preempt_delay,
            "master_saddr": str(m.master_ip) if m.master_ip is not None else None,
            "src_ip": str(inst.local_ip),
            "vipset": int(inst.vips_set),
            "sync_group": group_of.get(inst.name),
            # not in keepalived's dump (it has no group entries): the group's state, next
            # to the name keepalived gives, so the array layout stays keepalived's
            "sync_group_state": group.state.value if group is not None else None,
            "fault_reason": inst.fault_reason,
            "vips": [str(e.address) for e in c.virtual_ipaddress],
            "evips": [str(e.address) for e in c.virtual_ipaddress_excluded],
            "last_transition": inst.last_transition,
            # ours: what the instance tracks (their states: the status' vrrp_scripts)
            "track_script": [r.name for r in c.track_script],
            "track_interface": [r.name for r in c.track_interface],
            "track_file": [r.name for r in c.track_file],
            "track_process": [r.name for r in c.track_process],
        },
        "stats": dict(vars(inst.stats)),
    }
