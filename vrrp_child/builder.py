"""Building a running instance from its configuration: its VMAC, its interface and source
address, its socket and VRID on it. An instance that cannot run yet (its interface is
missing, or has no address of its family) waits in FAULT until the interface is ready; one
that cannot run at all (no socket, no VMAC) raises a degraded condition (watchdog.status)."""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conf.vrrp import VrrpInstance
from vrrp_child import fsm, holdings
from vrrp_child.advertgrid import AdvertGrid
from vrrp_child.arp import ipv6_forwarding
from vrrp_child.identity import identity_text
from vrrp_child.instance import Edges, Instance
from vrrp_child.linkwatch import LinkWatch
from vrrp_child.netlink import Interface, Rtnl
from vrrp_child.receivers import Receivers
from vrrp_child.ticks import Ticks
from vrrp_child.vmac import VmacError, VmacSpec
from watchdog.runtime import Report
from watchdog.status import Conditions

if TYPE_CHECKING:
    from vrrp_child.macvlan import VmacManager

log = logging.getLogger("pykeepalived_vrrp")

# Rtnl.interface, or the same memoized for the instances built together
InterfaceOf = Callable[[str], Interface | None]


class Unbuilt(enum.Enum):
    """Why an instance is not built: the degraded condition it raises, `KIND:NAME`."""

    SOCKET = "socket"
    VMAC = "vmac"
    INTERFACE = "interface"

    def key(self, name: str) -> str:
        return f"{self.value}:{name}"


def unbuilt_instance(key: str) -> str | None:
    """The instance a condition key of `Unbuilt` names (None: another condition)."""
    kind, sep, name = key.partition(":")
    return name if sep and kind in {u.value for u in Unbuilt} else None


@dataclass(eq=False)
class Builder:
    rtnl: Rtnl
    vmacs: Callable[[], VmacManager]  # the workload's, made by the first instance with use_vmac
    receivers: Receivers
    links: LinkWatch
    conditions: Conditions
    report: Report
    edges: Edges
    ticks: Ticks
    grid: AdvertGrid
    detail: bool
    instances: dict[str, Instance]  # the workload's: a built instance is added to it
    in_group: Callable[[str], bool]
    pending: dict[str, VrrpInstance] = field(default_factory=dict)  # waiting for their interface (FAULT)

    def create_all(self, confs: Iterable[VrrpInstance]) -> list[Instance]:
        """The instances of a start or a reload, built and registered (those that cannot be
        now are left out, as `create` says). Each interface is read from the kernel once for
        all of them: a lookup dumps the interface's addresses, the VIPs held included, so one
        per instance made the start of a child resuming 1,000 MASTERs quadratic (seconds:
        the parent killed it as hung at its start timeout, again at every respawn)."""
        interface = functools.cache(self.rtnl.interface)
        built = [self.create(conf, interface) for conf in confs]
        return [i for i in built if i is not None]

    def create(self, conf: VrrpInstance, interface: InterfaceOf | None = None) -> Instance | None:
        """The instance, built and registered; None when it cannot be now (logged, and
        pending or degraded)."""
        name = conf.name
        vmac_spec = VmacSpec.of(conf)
        advert_if = conf.interface
        vip_if = conf.interface
        mac = ""
        if vmac_spec is not None:
            try:
                vmac = self.vmacs().ensure(vmac_spec)
            except (VmacError, OSError) as e:
                log.error("(%s) cannot set up its VMAC: %s", name, e)
                self.conditions.set(Unbuilt.VMAC.key(name), f"({name}) cannot set up its VMAC: {e}")
                return None
            advert_if, vip_if, mac = vmac.advert_ifname, vmac.name, vmac_spec.mac
        if advert_if is None:
            log.error("(%s) has no interface", name)
            return None
        base = (interface or self.rtnl.interface)(conf.interface or advert_if)
        if base is None:
            self._wait_for_interface(conf, conf.interface or advert_if, "interface does not exist")
            return None
        local = holdings.source_address(conf, base)
        if local is None:
            self._wait_for_interface(conf, base.name, f"no IPv{conf.family} address for interface")
            return None
        self.pending.pop(name, None)
        try:
            sock = self.receivers.socket(conf, advert_if, local)
        except OSError as e:
            log.error("(%s) cannot open its VRRP socket on %s: %s", name, advert_if, e)
            why = e.strerror or str(e)
            self.conditions.set(Unbuilt.SOCKET.key(name), f"({name}) cannot open its VRRP socket on {advert_if}: {why}")
            return None
        inst = Instance(
            conf=conf,
            socket=sock,
            local_ip=local,
            ifname=vip_if or advert_if,
            mac=mac or base.mac,
            edges=self.edges,
            detail=self.detail,
            router_flag=conf.family == 6 and ipv6_forwarding(vip_if or advert_if),
            ticks=self.ticks,
            grid=self.grid,
            in_sync_group=self.in_group(name),
        )
        holder = self.receivers.register(inst)
        if holder is not None:
            log.error("(%s) VRID %d is already used on %s by %s", name, inst.vrid, advert_if, holder.name)
            return None
        self.instances[name] = inst
        self.clear_conditions(name)
        up = base.running and base.up
        self.links.watch(base.name, up, base.flags)
        if not up and not conf.dont_track_primary:
            inst.set_fault(f"interface {base.name} down")
        return inst

    def _wait_for_interface(self, conf: VrrpInstance, ifname: str, reason: str) -> None:
        """An instance that cannot run yet (its interface is missing, or has no address of
        the family, as an IPv6 link-local address is gone while the link is down): FAULT,
        as keepalived's "entering FAULT state (no IPv6 address for interface)"; it is
        built when the interface comes up (and its address appears)."""
        if conf.name not in self.pending:
            log.info("(%s) entering FAULT state (%s)", conf.name, reason)
            self.report({conf.name: {"state": fsm.State.FAULT.value, "id": identity_text(conf)}})
        self.conditions.set(Unbuilt.INTERFACE.key(conf.name), f"({conf.name}) {reason}: {ifname}")
        self.pending[conf.name] = conf
        self.links.watch(ifname, False)

    def clear_conditions(self, name: str) -> None:
        for kind in Unbuilt:
            self.conditions.clear(kind.key(name))

    def forget_gone(self, names: set[str]) -> None:
        """A reload keeps only `names`: the others stop waiting, and their conditions go."""
        for name in list(self.pending):
            if name not in names:
                del self.pending[name]
                self.report({name: None})
        for gone in {unbuilt_instance(key) for key in self.conditions.raised}:
            if gone is not None and gone not in names:
                self.clear_conditions(gone)
