"""What the trackers of a VRRP instance or sync group mean for it: a priority delta and
the reasons it is in FAULT. Pure: values in, values out (the hub in trackers.py feeds it).

keepalived.conf(5), track_script / track_interface / track_file / track_process, and
keepalived 2.2.7's vrrp_track.c, checked against a running keepalived 2.2.7:

- A tracker with weight 0 puts the instance in FAULT while it is down (script BAD,
  interface down, process quorum lost, file value non-zero); `reverse` turns that round
  (FAULT while it is up: "'weight 0 reverse' will cause the vrrp instance to be down when
  the script is up").
- A weighted script/interface/process adds `weight` when it is up if weight > 0 and when
  it is down if weight < 0; `reverse` negates what is added ("the priority is decreased
  when up and increased when down"). Measured: weight 4 reverse on a failing script adds 0,
  weight -20 on a failing script adds -20.
- A track_file adds value * weight (negated by reverse), at most 253; a result of -254 or
  less is FAULT ("if the result is less than -253 anything monitoring the script will
  transition to the fault state"). With weight 0 a non-zero value is FAULT.
- The sum is added to the configured priority and the effective priority is kept in
  1..254; an address owner (priority 255) never changes priority.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from conf.trackers import TrackRef, VrrpScript
from conf.vrrp import PRIO_OWNER, VrrpInstance, VrrpSyncGroup

PRIO_MIN = 1
PRIO_MAX = PRIO_OWNER - 1  # 254: trackers never make an instance the address owner
FILE_VALUE_LIMIT = 254  # keepalived clamps the number read from a track_file to -254..254
FILE_FAULT = -254  # a weighted track_file result at or below this is FAULT
FILE_MAX = 253  # ... and one above 253 counts as 253


class ScriptState(enum.Enum):
    """A vrrp_script's status after rise/fall. INIT: no result yet (keepalived's
    SCRIPT_INIT_STATE_INIT): it adds no weight and faults nothing, but an instance that
    tracks it with weight 0 waits for it before it leaves INIT."""

    INIT = "INIT"
    GOOD = "GOOD"
    BAD = "BAD"


@dataclass(frozen=True)
class ScriptCounter:
    """keepalived's `result` counter of a vrrp_script: GOOD from `rise` up to
    `rise + fall - 1`, BAD below `rise`."""

    result: int
    state: ScriptState

    @classmethod
    def initial(cls, script: VrrpScript) -> ScriptCounter:
        # "one success is enough" for the first result, and one failure too (INIT).
        # `init_fail` is not applied: keepalived 2.2.7 resets a tracked script's init state
        # to INIT when an instance tracks it, so a script with init_fail starts INIT as well
        # (measured: its dump says "Init state = INIT" and its weight waits for a result).
        return cls(script.rise - 1, ScriptState.INIT)


def script_step(state: ScriptCounter, ok: bool, script: VrrpScript) -> ScriptCounter:
    """One result of the script. vrrp_script `rise`: that many successes in a row turn it
    GOOD; `fall`: that many failures in a row turn it BAD. The first result out of INIT
    decides at once either way."""
    rise, fall = script.rise, script.fall
    top = rise + fall - 1
    n = state.result
    if ok:
        if n < rise - 1:
            return ScriptCounter(n + 1, state.state)
        return ScriptCounter(top, ScriptState.GOOD)
    if n > rise:
        return ScriptCounter(n - 1, state.state)
    # n == rise: the fall-th failure in a row; n < rise: BAD already (or INIT).
    return ScriptCounter(0, ScriptState.BAD)


@dataclass(frozen=True)
class TrackStatus:
    """The state of everything tracked, as the hub last saw it."""

    interfaces: Mapping[str, bool] = field(default_factory=dict)  # ifname -> up (IFF_UP and IFF_RUNNING)
    scripts: Mapping[str, ScriptState] = field(default_factory=dict)  # vrrp_script -> state
    files: Mapping[str, int] = field(default_factory=dict)  # track_file -> value read
    processes: Mapping[str, bool] = field(default_factory=dict)  # vrrp_track_process -> quorum met


@dataclass(frozen=True)
class Verdict:
    """`delta`: the sum of the weights, to add to the base priority; `faults`: why the
    trackers hold it in FAULT (empty: they do not); `waiting`: vrrp_scripts tracked with
    weight 0 that have no result yet (keepalived's num_script_init: the instance does not
    start before they report)."""

    delta: int = 0
    faults: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()

    def __add__(self, other: Verdict) -> Verdict:
        return Verdict(self.delta + other.delta, self.faults + other.faults, self.waiting + other.waiting)


def effective_priority(base: int, delta: int) -> int:
    """priority: "if an instance has priority 255 configured, the priority cannot be
    reduced by track_scripts ..., and likewise track_scripts etc cannot increase the
    priority to 255"; below 1 is 1 (keepalived's vrrp_set_effective_priority)."""
    if base >= PRIO_OWNER:
        return PRIO_OWNER
    return max(PRIO_MIN, min(PRIO_MAX, base + delta))


def quorum_met(count: int, quorum: int, quorum_max: int | None) -> bool:
    """vrrp_track_process `quorum` / `quorum_max`: up while quorum <= count <= quorum_max."""
    return count >= quorum and (quorum_max is None or count <= quorum_max)


def binary_weight(up: bool, weight: int, reverse: bool) -> int:
    """What a weighted script/interface/process adds: +weight while up if weight > 0,
    +weight while down if weight < 0; `reverse` negates it."""
    sign = -1 if reverse else 1
    if up and weight > 0:
        return weight * sign
    if not up and weight < 0:
        return weight * sign
    return 0


def binary_faults(up: bool, reverse: bool) -> bool:
    """A weight-0 tracker faults while down, or while up with `reverse`."""
    return up == reverse


def file_result(value: int, weight: int, reverse: bool) -> int | None:
    """track_file: the amount added for `value`, None for FAULT. Weight 0: non-zero is
    FAULT (zero with reverse); else value * weight (negated by reverse), FAULT at -254 or
    below, at most 253."""
    v = max(-FILE_VALUE_LIMIT, min(FILE_VALUE_LIMIT, value))
    if weight == 0:
        return None if (v != 0) != reverse else 0
    result = v * weight * (-1 if reverse else 1)
    if result <= FILE_FAULT:
        return None
    return min(result, FILE_MAX)


def _refs_verdict(
    track_interface: Iterable[TrackRef],
    track_script: Iterable[TrackRef],
    track_file: Iterable[TrackRef],
    track_process: Iterable[TrackRef],
    status: TrackStatus,
    *,
    weighted: bool,
) -> Verdict:
    """The trackers of one instance or group. `weighted` False: weighted trackers are
    ignored (sync group members without sync_group_tracking_weight)."""
    delta = 0
    faults: list[str] = []
    waiting: list[str] = []

    def binary(ref: TrackRef, up: bool, down_why: str, up_why: str) -> None:
        nonlocal delta
        weight, reverse = ref.weight or 0, bool(ref.reverse)
        if weight == 0:
            if binary_faults(up, reverse):
                faults.append(up_why if up else down_why)
        elif weighted:
            delta += binary_weight(up, weight, reverse)

    for ref in track_interface:
        up = status.interfaces.get(ref.name, False)
        binary(ref, up, f"interface {ref.name} down", f"interface {ref.name} up (reverse)")
    for ref in track_script:
        state = status.scripts.get(ref.name, ScriptState.INIT)
        if state is ScriptState.INIT:
            # No result yet: no weight and no fault; weight 0 makes the instance wait.
            if not ref.weight:
                waiting.append(ref.name)
            continue
        binary(
            ref,
            state is ScriptState.GOOD,
            f"track script {ref.name} failed",
            f"track script {ref.name} succeeded (reverse)",
        )
    for ref in track_process:
        up = status.processes.get(ref.name, False)
        binary(
            ref,
            up,
            f"track process {ref.name} quorum not achieved",
            f"track process {ref.name} quorum achieved (reverse)",
        )
    for ref in track_file:
        weight = ref.weight or 0
        if weight and not weighted:
            continue
        value = status.files.get(ref.name, 0)  # a missing file reads as 0
        result = file_result(value, weight, bool(ref.reverse))
        if result is None:
            faults.append(f"track file {ref.name} has status {value}")
        else:
            delta += result
    return Verdict(delta, tuple(faults), tuple(waiting))


def instance_verdict(inst: VrrpInstance, status: TrackStatus, group: VrrpSyncGroup | None = None) -> Verdict:
    """The instance's own trackers. A member of a sync group ignores its weighted trackers
    unless the group has sync_group_tracking_weight ("any track scripts/files configured
    against member VRRP instances will have their tracking weights automatically set to
    zero"); its weight-0 trackers still fault it. The group's own trackers are in
    group_verdict; a member's total is the sum of both."""
    weighted = group is None or group.tracking_weight
    return _refs_verdict(
        inst.track_interface, inst.track_script, inst.track_file, inst.track_process, status, weighted=weighted
    )


def static_verdict(track_interface: Iterable[TrackRef], status: TrackStatus) -> Verdict:
    """The interfaces an instance tracks through static entries' track_group (weight 0:
    vrrp_child.static_track)."""
    return _refs_verdict(track_interface, (), (), (), status, weighted=True)


def group_verdict(group: VrrpSyncGroup, status: TrackStatus) -> Verdict:
    """vrrp_sync_group track_*: "will update the status/priority of all VRRP instances
    which are members of the sync group"."""
    return _refs_verdict(
        group.track_interface, group.track_script, group.track_file, group.track_process, status, weighted=True
    )
