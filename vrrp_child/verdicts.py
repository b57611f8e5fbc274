"""Tracking applied to the instances: each instance's `tracking.Verdict` (its own trackers,
its sync group's, the track_group of static entries) becomes its effective priority and its
trackers' faults; an instance waits, before it takes part, for the first result of the
weight-0 scripts it tracks (keepalived num_script_init).

The trackers themselves (scripts, files, processes, interfaces) run in vrrp_child.trackers;
the verdict from their states is pure (vrrp_child.tracking).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from conf.model import Config
from conf.trackers import TrackRef
from vrrp_child.groups import SyncGroups
from vrrp_child.instance import FAULT_TRACKERS, Instance
from vrrp_child.linkwatch import LinkWatch
from vrrp_child.netlink import Rtnl
from vrrp_child.notifier import Notifier
from vrrp_child.static_track import static_track_refs
from vrrp_child.trackers import Trackers
from vrrp_child.tracking import group_verdict, instance_verdict, static_verdict

log = logging.getLogger("pykeepalived_vrrp")


class Verdicts:
    def __init__(
        self,
        instances: Mapping[str, Instance],
        trackers: Trackers,
        groups: SyncGroups,
        notifier: Notifier,
        start: Callable[[Instance], None],
    ) -> None:
        self.instances = instances  # the workload's
        self.trackers = trackers
        self.groups = groups
        self.notifier = notifier
        self.start = start  # an instance that waited for its scripts takes part
        self.holding: list[Instance] = []  # built, waiting for the first result of every script
        self.waiting: dict[str, tuple[str, ...]] = {}  # instance -> its scripts without a result
        self.static_refs: dict[str, tuple[TrackRef, ...]] = {}  # track_group of static entries

    def configure_static(self, config: Config) -> None:
        """track_group on static entries: the interfaces each instance tracks (weight 0)."""
        self.static_refs, notes = static_track_refs(config)
        for line in notes:
            log.info("%s", line)

    def watch_interfaces(self, links: LinkWatch, rtnl: Rtnl) -> None:
        """track_interface: the link watcher reports them too; the trackers learn their state now."""
        for ifname in sorted(self.trackers.interfaces()):
            if ifname in links.state:
                up = links.state[ifname]
            else:
                link = rtnl.interface(ifname)
                up = link is not None and link.up and link.running
                links.watch(ifname, up, link.flags if link is not None else None)
            self.trackers.set_interface(ifname, up)

    def hold(self, inst: Instance) -> bool:
        """keepalived num_script_init: an instance waits for the first result of the weight-0
        scripts it tracks before it takes part (it stays in INIT, or FAULT if one faults it).
        True when `inst` waits; `apply` starts it once they have all spoken."""
        if not self.waiting.get(inst.name):
            return False
        if inst not in self.holding:
            self.holding.append(inst)
        return True

    def forget(self, inst: Instance) -> None:
        """An instance that a reload removed."""
        if inst in self.holding:
            self.holding.remove(inst)
        self.waiting.pop(inst.name, None)

    def apply(self, config: Config | None) -> None:
        """Every instance's Verdict (its trackers and its sync group's): effective priority and
        the trackers' faults; then the instances that waited for their scripts start."""
        if config is None:
            return
        status = self.trackers.status
        for inst in list(self.instances.values()):
            group = self.groups.conf_of(inst.name)
            verdict = instance_verdict(inst.conf, status, group)
            if group is not None:
                verdict = verdict + group_verdict(group, status)
            static = self.static_refs.get(inst.name)
            if static:
                verdict = verdict + static_verdict(static, status)
            self.waiting[inst.name] = tuple(verdict.waiting)
            if inst.set_priority_delta(verdict.delta):
                self.notifier.priority_changed(inst, config.global_defs)
            inst.set_faults(FAULT_TRACKERS, tuple(verdict.faults))
        self.groups.update_faults()
        if self.holding:
            held, self.holding = self.holding, []
            for inst in held:
                if self.instances.get(inst.name) is inst:
                    self.start(inst)
