"""A VRRP reload: the plan of the instances and the steps that switch each concern to the new
configuration, in keepalived's order (watchdog.reload applies them).

The plan compares the running instances with the new configuration's: an instance whose
identity (vrrp_child.identity) stays keeps its state and VIPs and takes on a changed
configuration in place; one whose identity changes is replaced (removed, then built anew).

The steps up to the instances put the old configuration back when a later one fails
(static entries by the reverse diff, the sync groups as they were, states included, the
kept instances' VIPs by netlink once the forward changes are flushed, the rest by
configuring the old one again: a tracker the reload stopped starts afresh, as at a start),
so a reload that fails there keeps the running configuration. Removing an instance cannot be
undone (it has sent its priority 0 and released its VIPs), nor can building and starting the
new ones: a failure from there on is reported as what switched, not as a kept configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from conf.model import Config
from conf.vrrp import VrrpInstance
from vrrp_child.identity import same_instance
from vrrp_child.static import static_diff
from watchdog.reload import ReloadPlan, Step, plan

if TYPE_CHECKING:
    from vrrp_child.workload import VrrpWorkload

log = logging.getLogger("pykeepalived_vrrp")


def instance_plan(running: Mapping[str, VrrpInstance], new: Config) -> ReloadPlan[str]:
    """The running instances' configurations against `new`'s (an instance that waits for its
    interface does not run: it is built again, as a new one)."""
    return plan(running, new.vrrp_instance, same_instance)


def reload_steps(w: VrrpWorkload, old: Config, new: Config) -> list[Step]:
    """The steps from `old` (what runs) to `new`, for watchdog.reload.apply_steps."""
    p = instance_plan({name: inst.conf for name, inst in w.instances.items()}, new)
    assert w.static_config is not None  # started
    running_gdefs = w.notifier.gdefs
    steps = [
        _static(w, w.static_config, new),
        Step(
            "notify FIFOs and SMTP alerts",
            lambda: w.notifier.reopen(new.global_defs),
            lambda: w.notifier.reopen(running_gdefs),
        ),
        Step("nftables of no-accept mode", lambda: w.firewall.configure(new), lambda: w.firewall.configure(old)),
        # subscriptions to more notifications are never taken back (harmless: HoldWatch)
        Step("route and rule notifications", lambda: w.holdwatch.configure(new), lambda: None),
        # the trackers keep the results of the scripts/files/processes that stay
        Step("trackers", lambda: _trackers(w, new), lambda: _trackers(w, old)),
        Step("sync groups", lambda: w.sync.configure(new), w.sync.saved()),
        _changed(w, p, new),
    ]
    if p.removed:
        # the names are in the log ("(VI_1) removed by the reload"); the report stays short
        steps.append(Step("instances removed", lambda: _remove(w, p)))
    steps.append(Step("instances added, GARP pacing, link delays", lambda: _add(w, p, new)))
    return steps


def _static(w: VrrpWorkload, old: Config, new: Config) -> Step:
    def switch(src: Config, dst: Config) -> None:
        diff = static_diff(src, dst)
        if not diff.empty:
            for line in diff.describe():
                log.info("%s", line)
            for line in diff.apply(w.rtnl):
                log.error("%s", line)
        w.static_config = dst

    return Step("static addresses, routes and rules", lambda: switch(old, new), lambda: switch(new, old))


def _trackers(w: VrrpWorkload, config: Config) -> None:
    w.trackers.configure(config)
    w.verdicts.watch_interfaces(w.links, w.rtnl)


def _changed(w: VrrpWorkload, p: ReloadPlan[str], new: Config) -> Step:
    """The instances that stay take on their new configuration and sync group."""
    staying = [w.instances[name] for name in (*p.kept, *p.changed)]
    was = {inst.name: (inst.conf, inst.in_sync_group) for inst in staying}

    def apply() -> None:
        for name in p.changed:
            w.instances[name].reconfigure(new.vrrp_instance[name])
        for inst in staying:
            inst.set_in_sync_group(inst.name in w.sync.group_of)

    def undo() -> None:
        # The VIPs, routes and rules apply asked for go to the kernel first: in one batch with
        # the undo's, removals go before additions and a VIP both added and removed would stay.
        w.batch.flush()
        for name in p.changed:
            w.instances[name].reconfigure(was[name][0])
        for inst in staying:
            inst.set_in_sync_group(was[inst.name][1])
        w.batch.flush()

    return Step("instances kept or changed", apply, undo)


def _remove(w: VrrpWorkload, p: ReloadPlan[str]) -> None:
    for name in p.removed:
        log.info("(%s) removed by the reload", name)
        w.retire(w.instances[name])


def _add(w: VrrpWorkload, p: ReloadPlan[str], new: Config) -> None:
    """The new configuration's instances that do not run yet are built and started (also
    those that waited for their interface); the rest of the configuration follows."""
    w.builder.forget_gone(set(new.vrrp_instance))
    w.config = new
    w.paced.configure(new)
    w.configure_link_delays(new)
    w.verdicts.configure_static(new)
    staying = set(p.kept) | set(p.changed)
    added = w.builder.create_all(conf for name, conf in new.vrrp_instance.items() if name not in staying)
    w.batch.remove_stale(added)
    w.verdicts.apply(w.config)  # the new instances start at their effective priority
    for inst in added:
        w.start_instance(inst)
    w.receivers.close_unused(w.instances.values())
    w.sync.update()
    w.batch.flush()
