"""The child's vrrp_sync_groups at run time: one pure coordinator per group
(vrrp_child.syncgroup) fed with its members' states, and what its actions do on the loop:
events to the members (after the current instance's step, never re-entering it), the group's
notifies (vrrp_child.notifier) and its state report to the parent (`group:NAME`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from conf.model import Config
from conf.vrrp import VrrpSyncGroup
from vrrp_child import fsm
from vrrp_child.instance import FAULT_GROUP, Instance
from vrrp_child.notifier import Notifier
from watchdog.coalesce import OncePerPass
from watchdog.protocol import Json
from watchdog.runtime import Report
from watchdog.statekeys import group_key

# The coordinators are imported by the first configuration with a sync group (configure):
# most have none, and their children never load them.
if TYPE_CHECKING:
    from vrrp_child.syncgroup import GroupAction, GroupEntered, MemberView, SyncGroup

log = logging.getLogger("pykeepalived_vrrp")


class SyncGroups:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        instances: Mapping[str, Instance],
        report: Report,
        notifier: Notifier,
        flush: Callable[[], None],
    ) -> None:
        self.instances = instances  # the workload's
        self.report = report
        self.notifier = notifier
        self.flush = flush  # the netlink batch, after the members' sync events
        self.groups: dict[str, SyncGroup] = {}
        self.conf: dict[str, VrrpSyncGroup] = {}
        self.group_of: dict[str, str] = {}  # instance -> its sync group
        self._queue: list[tuple[str, fsm.SyncMaster | fsm.SyncBackup]] = []
        self._pass = OncePerPass(loop, self._drain)

    def of(self, name: str) -> SyncGroup | None:
        """The group of instance `name`."""
        return self.groups.get(self.group_of.get(name, ""))

    def conf_of(self, name: str) -> VrrpSyncGroup | None:
        """The configuration of the group of instance `name`."""
        return self.conf.get(self.group_of.get(name, ""))

    def configure(self, config: Config) -> None:
        """vrrp_sync_group: a coordinator per group with members (keepalived keeps a group of
        one, with a warning, and removes an empty one); a reload keeps a group's state when its
        name stays."""
        groups: dict[str, SyncGroup] = {}
        self.conf = {}
        self.group_of = {}
        for name, conf in config.vrrp_sync_group.items():
            members = tuple(m for m in conf.group if m in config.vrrp_instance)
            if not members:
                continue
            from vrrp_child.syncgroup import SyncGroup  # noqa: PLC0415 (see the imports)

            old = self.groups.get(name)
            group = SyncGroup(name, members)
            if old is not None:
                group.state = old.state
                if old.members != members and group.state is not fsm.State.INIT:
                    self._report_group(group)  # the parent's copy names the members
            groups[name] = group
            self.conf[name] = conf
            for m in members:
                self.group_of[m] = name
        for gone in sorted(self.groups.keys() - groups.keys()):
            self.report({group_key(gone): None})
        self.groups = groups

    def saved(self) -> Callable[[], None]:
        """What puts the groups back as they are now, states included (a reload rolled back):
        configuring the old configuration again would start a group the reload removed in INIT."""
        groups, conf, group_of = dict(self.groups), dict(self.conf), dict(self.group_of)

        def restore() -> None:
            for gone in sorted(self.groups.keys() - groups.keys()):
                self.report({group_key(gone): None})
            self.groups, self.conf, self.group_of = dict(groups), dict(conf), dict(group_of)
            for group in self.groups.values():
                if group.state is not fsm.State.INIT:
                    self._report_group(group)  # the parent's copy, as before the reload

        return restore

    def resume(self, resumed: Mapping[str, Mapping[str, Json]], resumes_master: Callable[[Instance], bool]) -> None:
        """A respawned child takes a MASTER group over as MASTER when every member resumes as
        MASTER (same members, same identities): the group changes no state, so its notify
        scripts, FIFO line and SMTP alert do not run again for a state it never left."""
        for name, group in self.groups.items():
            prev = resumed.get(group_key(name))
            if prev is None or prev.get("state") != fsm.State.MASTER.value:
                continue
            if prev.get("members") != list(group.members):
                continue
            members = [self.instances.get(m) for m in group.members]
            if all(i is not None and resumes_master(i) for i in members):
                group.state = fsm.State.MASTER
                log.info("VRRP_Group(%s) resuming as MASTER after a child restart", name)
                self._report_group(group)

    def _report_group(self, group: SyncGroup) -> None:
        """The group's state to the parent (STATUS=, and the resume of a respawned child)."""
        self.report({group_key(group.name): {"state": group.state.value, "members": list(group.members)}})

    def _views(self, group: SyncGroup) -> dict[str, MemberView]:
        from vrrp_child.syncgroup import MemberView  # noqa: PLC0415 (imported by configure)

        views: dict[str, MemberView] = {}
        for name in group.members:
            inst = self.instances.get(name)
            if inst is not None:
                views[name] = MemberView(inst.state, inst.machine.want_master, inst.own_fault)
            else:
                # not built (its interface is missing, its VMAC failed): FAULT of its own
                views[name] = MemberView(fsm.State.FAULT, faulted=True)
        return views

    def update_faults(self) -> None:
        """A member with a fault of its own puts the rest of its group in FAULT (keepalived
        vrrp_sync_fault); the group leaves FAULT when no member has one."""
        for group in self.groups.values():
            views = self._views(group)
            for name in group.members:
                inst = self.instances.get(name)
                if inst is not None:
                    reason = group.fault_of(name, views)
                    inst.set_faults(FAULT_GROUP, (reason,) if reason else ())
            self._actions(group, group.update(self._views(group)))

    def update(self) -> None:
        for group in self.groups.values():
            self._actions(group, group.update(self._views(group)))

    def want_master(self, inst: Instance) -> None:
        group = self.of(inst.name)
        if group is not None:
            self._actions(group, group.want_master(inst.name, self._views(group)))

    def entered(self, inst: Instance, old: fsm.State) -> None:
        """A member changed state."""
        group = self.of(inst.name)
        if group is not None:
            self._actions(group, group.entered(inst.name, inst.state, old, self._views(group)))

    def _actions(self, group: SyncGroup, actions: list[GroupAction]) -> None:
        from vrrp_child.syncgroup import GroupEntered, ToMember  # noqa: PLC0415 (imported by configure)

        for action in actions:
            if isinstance(action, ToMember):
                # after the current instance has finished its own step (no re-entry into it)
                self._queue.append((action.name, action.event))
                self._pass.soon()
            elif isinstance(action, GroupEntered):
                self._entered(group, action)
            else:
                log.info("%s", action.text)

    def drain(self) -> None:
        """Now rather than at the end of the loop pass (the stop)."""
        self._pass.run()

    def _drain(self) -> None:
        """The queued sync events to their members, then the netlink batch."""
        while self._queue:
            name, event = self._queue.pop(0)
            inst = self.instances.get(name)
            if inst is not None:
                inst.sync(event)
        self.flush()

    def _entered(self, group: SyncGroup, action: GroupEntered) -> None:
        conf = self.conf.get(group.name)
        if conf is None or action.state is fsm.State.INIT:
            return
        self._report_group(group)
        self.notifier.group_entered(group.name, conf, action.state)
