"""vrrp_sync_group: the members of a sync group change state together (keepalived 2.2.7's
vrrp_sync.c semantics). Pure: the coordinator looks at its members' states (`MemberView`) and
returns what the workload does: events for members (`ToMember`), the group's own state
changes (`GroupEntered`, for the group notify scripts, FIFO and SMTP alert) and log lines.

- A member whose Master_Down_Timer fires emits fsm.WantMaster. The group goes MASTER only when
  every other member is MASTER or wants MASTER and none has a fault (keepalived
  vrrp_sync_can_goto_master: prefer BACKUP to thrashing); then every BACKUP member gets
  SyncMaster ("VRRP_Group(G) Syncing instances to MASTER state").
- A MASTER member that goes BACKUP (a better master) takes the other MASTER members with it
  (SyncBackup; keepalived vrrp_sync_backup).
- A fault in one member is a fault of all: `fault_of` gives every other member a reason while
  any member has one of its own, so the whole group is in FAULT until no member has a fault
  (keepalived vrrp_sync_fault / try_up_instance).
- The group's state is MASTER when all members are, BACKUP when all are BACKUP, FAULT when one
  is, STOP when all are; while members are between states it keeps the last one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from vrrp_child import fsm

State = fsm.State


@dataclass(frozen=True)
class MemberView:
    """What the coordinator needs of a member. faulted: the member has a fault of its own
    (its interface, its trackers, the group's trackers), not one the group gave it."""

    state: State
    want_master: bool = False
    faulted: bool = False


@dataclass(frozen=True)
class ToMember:
    name: str
    event: fsm.SyncMaster | fsm.SyncBackup


@dataclass(frozen=True)
class GroupEntered:
    """The group's state changed: run its notify scripts, FIFO line and SMTP alert."""

    state: State
    old: State


GroupAction: TypeAlias = ToMember | GroupEntered | fsm.Log

Views = Mapping[str, MemberView]


class SyncGroup:
    """One vrrp_sync_group's coordinator; `members` in configuration order."""

    def __init__(self, name: str, members: tuple[str, ...]) -> None:
        self.name = name
        self.members = members
        self.state = State.INIT
        self.syncing_master = False  # SyncMaster sent, the group is not all MASTER yet

    def _log(self, text: str) -> fsm.Log:
        return fsm.Log(f"VRRP_Group({self.name}) {text}")

    def fault_of(self, member: str, views: Views) -> str | None:
        """The fault the group puts on `member`: another member has a fault of its own."""
        for name in self.members:
            view = views.get(name)
            if name != member and view is not None and view.faulted:
                return f"sync group {self.name}: {name} in FAULT"
        return None

    def can_go_master(self, who: str, views: Views) -> bool:
        """keepalived vrrp_sync_can_goto_master: every other member is MASTER or wants to be."""
        for name in self.members:
            view = views.get(name)
            if view is None or view.faulted:
                return False
            if name != who and not (view.state is State.MASTER or view.want_master):
                return False
        return True

    def want_master(self, who: str, views: Views) -> list[GroupAction]:
        """Member `who` wants MASTER (its down timer fired, or it became MASTER on its own)."""
        if self.syncing_master or not self.can_go_master(who, views):
            return []
        targets = [n for n in self.members if views[n].state is State.BACKUP]
        if not targets:
            return []
        self.syncing_master = True
        acts: list[GroupAction] = [self._log("Syncing instances to MASTER state")]
        acts += [ToMember(n, fsm.SyncMaster()) for n in targets]
        return acts

    def entered(self, who: str, new: State, old: State, views: Views) -> list[GroupAction]:
        """Member `who` changed state from `old` to `new` (`views` already shows the new state)."""
        acts: list[GroupAction] = []
        if new is not State.MASTER:
            self.syncing_master = False
        if new is State.BACKUP and old is State.MASTER:
            masters = [n for n in self.members if n != who and views[n].state is State.MASTER]
            if masters:
                acts.append(self._log("Syncing instances to BACKUP state"))
                acts += [ToMember(n, fsm.SyncBackup()) for n in masters]
        elif new is State.MASTER:
            # A member that went MASTER without the group (an owner, a resumed master) takes
            # the others along when they are ready.
            acts += self.want_master(who, views)
        acts += self.update(views)
        return acts

    def update(self, views: Views) -> list[GroupAction]:
        """Recompute the group's state from its members'."""
        states = [views[n].state for n in self.members if n in views]
        if not states:
            return []
        new = self.state
        if any(s is State.FAULT for s in states):
            new = State.FAULT
        elif all(s is State.STOP for s in states):
            new = State.STOP
        elif all(s is State.MASTER for s in states):
            new = State.MASTER
        elif all(s is State.BACKUP for s in states):
            new = State.BACKUP
        if all(s is State.MASTER for s in states) or any(s not in (State.MASTER, State.BACKUP) for s in states):
            self.syncing_master = False  # done, or a member fell out of the election
        if new is self.state:
            return []
        old, self.state = self.state, new
        acts: list[GroupAction] = []
        if new is State.FAULT:
            acts.append(self._log("Syncing instances to FAULT state"))
        elif old is State.FAULT and new is State.BACKUP:
            acts.append(self._log("Syncing instances to BACKUP state"))  # keepalived's words (measured)
        acts.append(GroupEntered(new, old))
        return acts


__all__ = ["GroupAction", "GroupEntered", "MemberView", "SyncGroup", "ToMember"]
