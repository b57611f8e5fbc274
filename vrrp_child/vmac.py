"""`use_vmac [NAME] [MAC]`: the instance's virtual MAC on a macvlan (RFC 5798 section 7.3).

keepalived 2.2.7's behaviour, as observed in a namespace (the sysctls before, during and
after a run):
- the macvlan is called NAME (default vrrp.VRID), sits on the instance's interface in
  private mode, has MAC 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6), or the
  configured MAC (5 octets: the VRID is the sixth), and IPv6 address generation "none";
- an IPv4 VMAC gets arp_ignore=1, accept_local=1, rp_filter=0, promote_secondaries=1 and
  IPv6 disabled; its base interface gets arp_ignore=1 and arp_filter=1, so that only the
  VMAC answers ARP for the VIPs;
- with all.rp_filter set, every interface (and default) is raised to at least that
  value and all.rp_filter becomes 0, so that the VMAC's 0 counts (man keepalived.conf,
  use_vmac); these are restored at the end;
- an IPv6 VMAC gets the base interface's link-local address (nodad, preferred_lft 0, so
  that it never becomes a source address by itself): adverts keep the same source;
- an existing macvlan of that name on the same interface is reused; the VMAC is deleted
  on stop. keepalived leaves the base's arp_ignore/arp_filter changed after it stops; we
  put them back once the last VMAC on that interface is gone.
`vmac_xmit_base`: adverts go out on the base interface (`Vmac.advert_ifname`); GARPs and
NAs still go out on the VMAC with its MAC.

Here: what an instance asks for (`VmacSpec`) and what it got (`Vmac`). The macvlans and their
sysctls are made by vrrp_child/macvlan.py, imported by the first instance with `use_vmac`.
"""

from __future__ import annotations

from dataclasses import dataclass

from conf.vrrp import VrrpInstance

VMAC_PREFIX = {4: "00:00:5e:00:01", 6: "00:00:5e:00:02"}  # RFC 5798 section 7.3


class VmacError(Exception):
    pass


def vmac_address(vrid: int, family: int, configured: str | None = None) -> str:
    """The VMAC's MAC: the configured one (5 octets get the VRID as the sixth) or the
    RFC's 00:00:5e:00:01:VRID / 00:00:5e:00:02:VRID."""
    if configured is None:
        return f"{VMAC_PREFIX[family]}:{vrid:02x}"
    parts = [f"{int(p, 16):02x}" for p in configured.split(":")]
    if len(parts) == 5:
        parts.append(f"{vrid:02x}")
    return ":".join(parts)


def vmac_name(vrid: int, configured: str | None = None) -> str:
    return configured or f"vrrp.{vrid}"


@dataclass(frozen=True)
class VmacSpec:
    name: str
    base: str
    mac: str
    family: int
    vrid: int
    xmit_base: bool = False

    @classmethod
    def of(cls, inst: VrrpInstance) -> VmacSpec | None:
        """The VMAC an instance asks for (None without `use_vmac` or an interface)."""
        if inst.use_vmac is None or inst.interface is None:
            return None
        vrid = inst.virtual_router_id
        return cls(
            name=vmac_name(vrid, inst.use_vmac.ifname),
            base=inst.interface,
            mac=vmac_address(vrid, inst.family, inst.use_vmac.mac),
            family=inst.family,
            vrid=vrid,
            xmit_base=inst.vmac_xmit_base,
        )


@dataclass(frozen=True)
class Vmac:
    spec: VmacSpec
    index: int
    base_index: int
    created: bool  # False: an existing macvlan was reused

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def advert_ifname(self) -> str:
        """Where adverts are sent and received (`vmac_xmit_base`: the base interface)."""
        return self.spec.base if self.spec.xmit_base else self.spec.name

    @property
    def garp_ifname(self) -> str:
        return self.spec.name
