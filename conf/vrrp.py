"""VRRP blocks: vrrp_script, track_file, vrrp_track_process, vrrp_sync_group,
garp_group and vrrp_instance (keepalived.conf(5), "VRRPD CONFIGURATION").

Each block checks what it can on its own in `finish`; `VrrpTop.finish_vrrp` then does
what keepalived does when it completes the VRRP configuration: check the tracked
objects, the sync groups and garp groups, resolve each instance (`conf.vrrp_resolve`:
the defaults from global_defs, vrrp_strict/strict_mode) and check for duplicate VRIDs.

What keepalived cannot run with is an error: the VRRP process of keepalived 2.2.7 exits
with a configuration error ("(VI_1) the virtual router id must be set", "Unknown
interface!", ...), and the instance is dropped from the model. What keepalived resets
with a message is a reset, and the model holds the value keepalived uses.

The blocks live in `conf.vrrp_instance` and their values in `conf.vrrp_values`; they
are importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from conf.global_defs import GlobalDefs
from conf.modelclass import model_class
from conf.schema import EMPTY, Block, Context, FrozenMap, kw, replace
from conf.trackers import TrackFile, TrackProcess, VrrpScript
from conf.values import Named, Sub
from conf.vrrp_instance import GarpGroup, VrrpInstance, VrrpInstanceBlock, VrrpSyncGroup
from conf.vrrp_resolve import complete_instance
from conf.vrrp_tracking import Trackable, check_group_owner_weights, resolve_group_tracking, resolve_tracking
from conf.vrrp_values import (
    PRIO_DEFAULT,
    PRIO_OWNER,
    VRRP_MAX_ADDR,
    Authentication,
    NotifyDeleted,
    UnicastPeer,
    UseIpvlan,
    UseVmac,
)

__all__ = [
    "PRIO_DEFAULT",
    "PRIO_OWNER",
    "VRRP_MAX_ADDR",
    "Authentication",
    "GarpGroup",
    "NotifyDeleted",
    "UnicastPeer",
    "UseIpvlan",
    "UseVmac",
    "VrrpInstance",
    "VrrpInstanceBlock",
    "VrrpSyncGroup",
    "VrrpTop",
]


@model_class
class VrrpTop(Block):
    """Top-level VRRP keywords."""

    vrrp_script: FrozenMap[str, VrrpScript] = kw(Named(VrrpScript), EMPTY, many="map")
    track_file: FrozenMap[str, TrackFile] = kw(
        Named(TrackFile), EMPTY, many="map", aliases=("vrrp_track_file",), deprecated=("vrrp_track_file",)
    )
    vrrp_track_process: FrozenMap[str, TrackProcess] = kw(Named(TrackProcess), EMPTY, many="map")
    vrrp_sync_group: FrozenMap[str, VrrpSyncGroup] = kw(Named(VrrpSyncGroup), EMPTY, many="map")
    garp_group: tuple[GarpGroup, ...] = kw(Sub(GarpGroup), (), many="list")
    vrrp_instance: FrozenMap[str, VrrpInstance] = kw(
        Named(VrrpInstanceBlock), EMPTY, many="map"
    )  # parsed as VrrpInstanceBlock; finish_vrrp resolves each to a VrrpInstance

    def sync_group_of(self, instance: str) -> VrrpSyncGroup | None:
        for group in self.vrrp_sync_group.values():
            if instance in group.group:
                return group
        return None

    def finish_vrrp(self, ctx: Context) -> Self:
        g: GlobalDefs = getattr(self, "global_defs", GlobalDefs())  # GlobalTop's, in Config
        scripts = self._checked_scripts(ctx)
        files = self._checked_files(ctx)
        processes = self._checked_processes(ctx)
        garp_groups = self._checked_garp_groups(ctx)
        disabled = frozenset(n for n, s in self.vrrp_script.items() if s.script is None and "script" in s.locations)
        known = Trackable(scripts, files, processes, disabled)
        blocks: Mapping[str, VrrpInstanceBlock] = self.vrrp_instance
        instances = {name: resolve_tracking(inst, known, ctx) for name, inst in blocks.items()}
        groups = self._checked_sync_groups(instances, known, g, ctx)
        member_of = {m: grp for grp in groups.values() for m in grp.group}
        done: dict[str, VrrpInstance] = {}
        for name, inst in instances.items():
            completed = complete_instance(inst, member_of.get(name), g, ctx)
            if completed is not None:
                done[name] = completed
        done = check_vrid_conflicts(done, ctx)
        # keepalived's VRRP process cannot start when an instance failed to complete; the
        # error is reported; the sync groups keep only members that are still there.
        groups = {n: replace(grp, group=tuple(m for m in grp.group if m in done)) for n, grp in groups.items()}
        return replace(
            self,
            vrrp_script=FrozenMap(scripts),
            track_file=FrozenMap(files),
            vrrp_track_process=FrozenMap(processes),
            garp_group=garp_groups,
            vrrp_sync_group=FrozenMap(groups),
            vrrp_instance=FrozenMap(done),
        )

    # ------------------------------------------------------------ tracked objects

    def _checked_scripts(self, ctx: Context) -> dict[str, VrrpScript]:
        out: dict[str, VrrpScript] = {}
        for name, script in self.vrrp_script.items():
            if script.script is None and "script" in script.locations:
                continue  # disabled by the script security check, which said why
            if script.script is None:
                ctx.diags.reset(f"no script set for vrrp_script {name}; vrrp_script removed", script.location)
                continue
            out[name] = script
        return out

    def _checked_files(self, ctx: Context) -> dict[str, TrackFile]:
        out: dict[str, TrackFile] = {}
        for name, tf in self.track_file.items():
            if tf.file is None:
                ctx.diags.reset(f"no file set for track_file {name}; track_file ignored", tf.location)
                continue
            out[name] = tf
        return out

    def _checked_processes(self, ctx: Context) -> dict[str, TrackProcess]:
        out: dict[str, TrackProcess] = {}
        for name, tp in self.vrrp_track_process.items():
            if not tp.process:
                ctx.diags.reset(
                    f"track process '{name}' process name not specified; vrrp_track_process ignored", tp.location
                )
                continue
            out[name] = tp
        return out

    def _checked_garp_groups(self, ctx: Context) -> tuple[GarpGroup, ...]:
        out: list[GarpGroup] = []
        claimed: set[str] = set()
        for gg in self.garp_group:
            names = []
            for ifname in gg.all_interfaces:
                if ifname in claimed:
                    ctx.diags.reset(
                        f"garp_group already specified for {ifname}; ignored in this garp_group", gg.location
                    )
                    continue
                if ctx.interfaces is not None and ifname not in ctx.interfaces:
                    ctx.diags.warning(f"interface {ifname} specified for garp_group doesn't exist", gg.location)
                claimed.add(ifname)
                names.append(ifname)
            if gg.interface and gg.interfaces:
                ctx.diags.warning("garp_group: only one of interface and interfaces should be used", gg.location)
            if gg.garp_interval is None and gg.gna_interval is None:
                ctx.diags.reset("garp_group does not have any delay set; garp_group removed", gg.location)
                continue
            if not names:
                ctx.diags.reset("garp_group has no interface; garp_group removed", gg.location)
                continue
            interface = gg.interface if gg.interface in names else None
            out.append(replace(gg, interface=interface, interfaces=tuple(n for n in names if n != interface)))
        return tuple(out)

    def _checked_sync_groups(
        self, instances: dict[str, VrrpInstanceBlock], known: Trackable, g: GlobalDefs, ctx: Context
    ) -> dict[str, VrrpSyncGroup]:
        out: dict[str, VrrpSyncGroup] = {}
        taken: dict[str, str] = {}
        for name, declared in self.vrrp_sync_group.items():
            grp = declared
            loc = grp.where("group")
            members: list[str] = []
            for member in grp.group:
                if member not in instances:
                    ctx.diags.reset(
                        f"virtual router {member} specified in sync group {name} doesn't exist; ignored", loc
                    )
                elif member in taken:
                    ctx.diags.reset(
                        f"virtual router {member} cannot exist in more than one sync group "
                        f"(already in {taken[member]}); ignored in {name}",
                        loc,
                    )
                elif member not in members:
                    members.append(member)
            if not members:
                ctx.diags.reset(f"sync group {name} has no virtual router; sync group removed", grp.location)
                continue
            if len(members) == 1:
                ctx.diags.reset(
                    f"sync group {name} has only 1 virtual router(s) - this probably isn't what you want; kept as is",
                    grp.location,
                )
            for m in members:
                taken[m] = name
            grp = resolve_group_tracking(grp, known, ctx)
            smtp_alert = grp.smtp_alert if grp.smtp_alert is not None else g.smtp_alert_for("vrrp")
            grp = replace(grp, group=tuple(members), smtp_alert=smtp_alert)
            grp = check_group_owner_weights(grp, [instances[m] for m in members], ctx)
            out[name] = grp
        return out


def check_vrid_conflicts(instances: dict[str, VrrpInstance], ctx: Context) -> dict[str, VrrpInstance]:
    """The same VRID, family and interface (multicast), or the same source address
    (unicast), cannot be used twice (keepalived: "A and B both use VRID 12 with IPv4 on
    interface eth0"; the VRRP process does not start)."""
    seen: dict[tuple[object, ...], str] = {}
    out: dict[str, VrrpInstance] = {}
    for name, inst in instances.items():
        if inst.is_unicast:
            if inst.src_ip is None:
                out[name] = inst  # the source address is only known at run time
                continue
            key: tuple[object, ...] = ("u", inst.virtual_router_id, inst.family, inst.interface, inst.src_ip)
        else:
            key = ("m", inst.virtual_router_id, inst.family, inst.interface, inst.mcast_dst_ip)
        other = seen.get(key)
        if other is not None:
            ctx.diags.error(
                f"{other} and {name} both use VRID {inst.virtual_router_id} with IPv{inst.family} on "
                f"interface {inst.interface}",
                inst.where("virtual_router_id"),
            )
            continue
        seen[key] = name
        out[name] = inst
    return out
