"""What a MASTER instance puts on the system and where it advertises, computed from its
configuration (pure): the VIPs (virtual_ipaddress and virtual_ipaddress_excluded) on their
interfaces, the virtual_routes and the virtual_rules, the adverts' interface and source. The
instance uses it to add and remove them; the parent uses it to release an instance whose
VRRP child is dead or hung."""

from __future__ import annotations

from conf.addresses import IpAddressEntry
from conf.routes import RouteEntry
from conf.rules import RuleEntry
from conf.values import IPAddress
from conf.vrrp import VrrpInstance
from vrrp_child.netlink import Interface
from vrrp_child.vmac import VmacSpec

Item = tuple[IpAddressEntry, str]
RouteItem = tuple[RouteEntry, str | None]

# Route types that have no output device (ip-route(8) blackhole, unreachable, ...).
DEVLESS_ROUTE_TYPES = frozenset({"blackhole", "unreachable", "prohibit", "throw"})


def vip_ifname(conf: VrrpInstance) -> str | None:
    """Where the instance's VIPs go by default: its VMAC with use_vmac, else its interface."""
    vmac = VmacSpec.of(conf)
    return vmac.name if vmac is not None else conf.interface


def advert_ifname(conf: VrrpInstance) -> str | None:
    """Where the instance's adverts go: its VMAC (the base interface with vmac_xmit_base),
    else its interface."""
    vmac = VmacSpec.of(conf)
    if vmac is None:
        return conf.interface
    return vmac.base if vmac.xmit_base else vmac.name


def source_address(conf: VrrpInstance, base: Interface) -> IPAddress | None:
    """The adverts' source: mcast_src_ip/unicast_src_ip, else the interface's primary IPv4
    address or its IPv6 link-local one (RFC 5798 section 5.1.2.1)."""
    if conf.src_ip is not None:
        return conf.src_ip
    return base.primary_ipv4 if conf.family == 4 else base.link_local_ipv6


def vip_items(conf: VrrpInstance, ifname: str) -> list[Item]:
    """virtual_ipaddress and virtual_ipaddress_excluded, each on its interface (`dev`, or `ifname`)."""
    return [(e, e.dev or ifname) for e in (*conf.virtual_ipaddress, *conf.virtual_ipaddress_excluded)]


def route_items(conf: VrrpInstance, ifname: str) -> list[RouteItem]:
    """virtual_routes, on `ifname` when they name no device (keepalived), except the route
    types that have none."""
    return [(r, r.dev or (None if r.type in DEVLESS_ROUTE_TYPES else ifname)) for r in conf.virtual_routes]


def rule_items(conf: VrrpInstance) -> list[RuleEntry]:
    return list(conf.virtual_rules)
