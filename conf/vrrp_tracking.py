"""The track_* references of vrrp_instances and sync groups: each reference takes its
weight from the tracked object unless it gives one, and the weights that keepalived does
not use (sync group members, address owners) are reset (keepalived.conf(5), "VRRP
synchronization group(s)")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from conf.schema import Context, replace
from conf.trackers import TrackFile, TrackProcess, TrackRef, VrrpScript, resolve_refs
from conf.vrrp_instance import VrrpInstance, VrrpInstanceBlock, VrrpSyncGroup
from conf.vrrp_values import PRIO_DEFAULT, PRIO_OWNER


@dataclass(frozen=True)
class Trackable:
    """What track_* lines may name: the checked vrrp_scripts, track_files and
    vrrp_track_processes; `disabled_scripts` were dropped by the script security check,
    which said so (references to them go quietly)."""

    scripts: Mapping[str, VrrpScript]
    files: Mapping[str, TrackFile]
    processes: Mapping[str, TrackProcess]
    disabled_scripts: frozenset[str] = frozenset()


def resolve_tracking(inst: VrrpInstanceBlock, known: Trackable, ctx: Context) -> VrrpInstanceBlock:
    name = inst.name
    track_if = resolve_refs(inst.track_interface, None, "track interface", name, ctx)
    if inst.interface is not None and any(r.name == inst.interface for r in track_if):
        for r in track_if:
            if r.name == inst.interface:
                ctx.diags.reset(
                    f"({name}) track_interface {r.name} is the instance's own interface; ignored", r.location
                )
        track_if = tuple(r for r in track_if if r.name != inst.interface)
    if ctx.interfaces is not None:
        for r in track_if:
            if r.name not in ctx.interfaces:
                ctx.diags.warning(f"track_interface {r.name} for vrrp_instance {name} doesn't exist", r.location)
    return replace(inst, track_interface=track_if, **_weighted_refs(inst, known, name, ctx))


def resolve_group_tracking(grp: VrrpSyncGroup, known: Trackable, ctx: Context) -> VrrpSyncGroup:
    name = grp.name
    track_if = resolve_refs(grp.track_interface, None, "track interface", name, ctx)
    return replace(grp, track_interface=track_if, **_weighted_refs(grp, known, name, ctx))


def _weighted_refs(
    owner: VrrpInstanceBlock | VrrpSyncGroup, known: Trackable, name: str, ctx: Context
) -> dict[str, tuple[TrackRef, ...]]:
    return {
        "track_script": resolve_refs(
            owner.track_script, known.scripts, "track script", name, ctx, silent=known.disabled_scripts
        ),
        "track_file": resolve_refs(owner.track_file, known.files, "track file", name, ctx),
        "track_process": resolve_refs(owner.track_process, known.processes, "track process", name, ctx),
    }


def _initial_priority(inst: VrrpInstanceBlock) -> int:
    """The configured priority, 100 when not given (before completion)."""
    return inst.priority if inst.priority is not None else PRIO_DEFAULT


def check_group_owner_weights(grp: VrrpSyncGroup, members: list[VrrpInstanceBlock], ctx: Context) -> VrrpSyncGroup:
    """A sync group with an address owner member cannot have weighted trackers."""
    if not any(_initial_priority(m) == PRIO_OWNER for m in members):
        return grp
    changes: dict[str, tuple[TrackRef, ...]] = {}
    for fname in ("track_interface", "track_script", "track_file", "track_process"):
        refs: tuple[TrackRef, ...] = getattr(grp, fname)
        new = []
        for r in refs:
            if r.weight:
                ctx.diags.reset(
                    f"({grp.name}) cannot have weighted {fname} '{r.name}' with a member having "
                    f"priority {PRIO_OWNER}; using weight 0",
                    r.location,
                )
                new.append(TrackRef(r.name, 0, r.reverse, r.location))
            else:
                new.append(r)
        changes[fname] = tuple(new)
    return replace(grp, **changes)


def unweight(inst: VrrpInstance, group: VrrpSyncGroup | None, ctx: Context) -> VrrpInstance:
    """Members of a sync group without sync_group_tracking_weight, and address owners,
    do not use weighted trackers (man page, VRRP synchronization group(s))."""
    sync = group is not None and not group.tracking_weight
    if not sync and inst.priority != PRIO_OWNER:
        return inst
    why = "SYNC group" if sync else "address owner"
    name = inst.name
    track_if = []
    for r in inst.track_interface:
        if r.weight:
            if sync:
                ctx.diags.reset(
                    f"({name}) ignoring weight of tracked interface {r.name} due to {why}; using 0", r.location
                )
                track_if.append(TrackRef(r.name, 0, r.reverse, r.location))
            else:
                ctx.diags.reset(f"({name}) ignoring tracked interface {r.name} due to {why}", r.location)
            continue
        track_if.append(r)
    scripts = []
    for r in inst.track_script:
        if r.weight:
            ctx.diags.reset(f"({name}) ignoring tracked script {r.name} with weights due to {why}", r.location)
            continue
        scripts.append(r)
    files = []
    for r in inst.track_file:
        if r.weight == 1:  # the default: keepalived makes it unweighted
            ctx.diags.reset(
                f"({name}) ignoring weight from tracked file {r.name} due to {why}; using 0 (specify weight 0)",
                r.location,
            )
            files.append(TrackRef(r.name, 0, r.reverse, r.location))
        elif r.weight:
            ctx.diags.reset(f"({name}) ignoring tracked file {r.name} with weight {r.weight} due to {why}", r.location)
        else:
            files.append(r)
    return replace(inst, track_interface=tuple(track_if), track_script=tuple(scripts), track_file=tuple(files))
