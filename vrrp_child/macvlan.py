"""The VMACs' macvlans and their sysctls (vrrp_child.vmac has keepalived's behaviour they
follow): created or reused, configured, deleted, the sysctls put back. Imported by the first
instance with `use_vmac` (vrrp_child.workload)."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
from pyroute2.netlink.rtnl import RTM_NEWLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from conf.addresses import IpAddressEntry
from vrrp_child.netlink import Interface, NetlinkError, Rtnl
from vrrp_child.vmac import Vmac, VmacError, VmacSpec

log = logging.getLogger(__name__)

MACVLAN_MODE_PRIVATE = 1
IN6_ADDR_GEN_MODE_NONE = 1


class Sysctl:
    """/proc/sys/net of the namespace we run in."""

    def __init__(self, root: str = "/proc/sys/net") -> None:
        self.root = Path(root)

    def get(self, path: str) -> int | None:
        try:
            return int((self.root / path).read_text().strip())
        except (OSError, ValueError):
            return None

    def set(self, path: str, value: int) -> bool:
        try:
            (self.root / path).write_text(f"{value}\n")
        except OSError as e:
            log.warning("cannot set %s to %d: %s", path.replace("/", "."), value, e.strerror)
            return False
        return True

    def ipv4_interfaces(self) -> list[str]:
        try:
            return sorted(os.listdir(self.root / "ipv4/conf"))
        except OSError:
            return []


@dataclass
class _Saved:
    """Sysctl values to put back, in the order they were changed."""

    values: dict[str, int] = field(default_factory=dict)

    def remember(self, sysctl: Sysctl, path: str) -> None:
        if path not in self.values:
            old = sysctl.get(path)
            if old is not None:
                self.values[path] = old

    def restore(self, sysctl: Sysctl) -> None:
        for path, value in reversed(list(self.values.items())):
            sysctl.set(path, value)
        self.values.clear()


class VmacManager:
    """Creates, reuses and deletes the VMACs of the instances, with their sysctls."""

    def __init__(self, rtnl: Rtnl, sysctl: Sysctl | None = None) -> None:
        self.rtnl = rtnl
        self.sysctl = sysctl or Sysctl()
        self.vmacs: dict[str, Vmac] = {}
        self._base_saved: dict[str, _Saved] = {}
        self._rp_saved: _Saved | None = None

    # ------------------------------------------------------------ create / reuse

    def ensure(self, spec: VmacSpec) -> Vmac:
        """The VMAC of `spec`, created or reused, configured and up."""
        base = self.rtnl.interface(spec.base)
        if base is None:
            raise VmacError(f"cannot create VMAC {spec.name}: no interface {spec.base}")
        existing = self.rtnl.interface(spec.name)
        if existing is None:
            self._create(spec, base)
            created = True
        else:
            self._check_reusable(spec, existing, base)
            created = False
        link = self.rtnl.interface(spec.name)
        if link is None:
            raise VmacError(f"VMAC {spec.name} vanished while being set up")
        self._configure(spec, link, base)
        if not link.up:
            self.rtnl.set_link_up(link.index)
        if spec.family == 6:
            self._add_link_local(spec, base)
        vmac = Vmac(spec, link.index, base.index, created)
        self.vmacs[spec.name] = vmac
        log.info("%s VMAC interface %s", "created" if created else "reusing", spec.name)
        return vmac

    def _create(self, spec: VmacSpec, base: Interface) -> None:
        msg: Any = ifinfmsg()
        msg["index"] = 0
        msg["attrs"] = [
            ("IFLA_IFNAME", spec.name),
            ("IFLA_LINK", base.index),
            ("IFLA_ADDRESS", spec.mac),
            (
                "IFLA_LINKINFO",
                {
                    "attrs": [
                        ("IFLA_INFO_KIND", "macvlan"),
                        ("IFLA_INFO_DATA", {"attrs": [("IFLA_MACVLAN_MODE", MACVLAN_MODE_PRIVATE)]}),
                    ]
                },
            ),
        ]
        try:
            self.rtnl.request(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)
        except NetlinkError as e:
            raise VmacError(f"cannot create VMAC {spec.name} on {spec.base}: {e.strerror}") from e

    def _check_reusable(self, spec: VmacSpec, link: Interface, base: Interface) -> None:
        if link.kind != "macvlan" or link.link != base.index:
            # Not ours to take over or delete: somebody else's interface has this name.
            raise VmacError(f"interface {spec.name} exists and is not a macvlan on {spec.base}")
        if link.mac.lower() != spec.mac:
            msg: Any = ifinfmsg()
            msg["index"] = link.index
            msg["attrs"] = [("IFLA_ADDRESS", spec.mac)]
            try:
                self.rtnl.request(msg, RTM_NEWLINK)
            except NetlinkError as e:
                raise VmacError(f"cannot set the MAC of {spec.name} to {spec.mac}: {e.strerror}") from e

    def _configure(self, spec: VmacSpec, link: Interface, base: Interface) -> None:
        s = self.sysctl
        # Before the link goes up, so that the kernel never makes an EUI-64 address of the VMAC.
        s.set(f"ipv6/conf/{spec.name}/addr_gen_mode", IN6_ADDR_GEN_MODE_NONE)
        if spec.family != 4:
            return
        for key, value in (("arp_ignore", 1), ("accept_local", 1), ("rp_filter", 0), ("promote_secondaries", 1)):
            s.set(f"ipv4/conf/{spec.name}/{key}", value)
        s.set(f"ipv6/conf/{spec.name}/disable_ipv6", 1)
        saved = self._base_saved.setdefault(base.name, _Saved())
        for key in ("arp_ignore", "arp_filter"):
            path = f"ipv4/conf/{base.name}/{key}"
            saved.remember(s, path)
            s.set(path, 1)
        self._clear_all_rp_filter(skip={spec.name})

    def _clear_all_rp_filter(self, skip: set[str]) -> None:
        """The kernel filters with max(all, interface): the VMAC's rp_filter 0 only counts
        with all.rp_filter 0, so the others are raised to keep what they had."""
        if self._rp_saved is not None:
            return
        s = self.sysctl
        saved = _Saved()
        self._rp_saved = saved
        level = s.get("ipv4/conf/all/rp_filter")
        if not level:
            return
        for name in s.ipv4_interfaces():
            if name in ("all", "lo") or name in skip or name in self.vmacs:
                continue
            path = f"ipv4/conf/{name}/rp_filter"
            current = s.get(path)
            if current is not None and current < level:
                saved.remember(s, path)
                s.set(path, level)
        saved.remember(s, "ipv4/conf/all/rp_filter")
        s.set("ipv4/conf/all/rp_filter", 0)

    def _add_link_local(self, spec: VmacSpec, base: Interface) -> None:
        ll = base.link_local_ipv6 or eui64_link_local(base.mac)
        if ll is None:
            return
        entry = IpAddressEntry(ipaddress.ip_interface(f"{ll}/64"), nodad=True, preferred_lft=0)
        result = self.rtnl.add_addresses([(entry, spec.name)])
        for f in result.failed:
            log.warning("cannot add %s to %s: %s", ll, spec.name, f.message)

    # ------------------------------------------------------------ delete

    def delete(self, name: str) -> bool:
        """Delete a VMAC we manage (False if it was already gone), and put back the base's
        sysctls (and all.rp_filter) when it was the last one."""
        vmac = self.vmacs.pop(name, None)
        if vmac is None:
            return False
        link = self.rtnl.interface(name)
        gone = False
        if link is not None and link.kind == "macvlan" and link.index == vmac.index:
            gone = self.rtnl.delete_link(link.index)
        base = vmac.spec.base
        if not any(v.spec.base == base for v in self.vmacs.values()):
            saved = self._base_saved.pop(base, None)
            if saved is not None:
                saved.restore(self.sysctl)
        if self._rp_saved is not None and not any(v.spec.family == 4 for v in self.vmacs.values()):
            self._rp_saved.restore(self.sysctl)
            self._rp_saved = None
        log.info("removed VMAC interface %s", name)
        return gone

    def delete_all(self) -> None:
        for name in list(self.vmacs):
            self.delete(name)


def eui64_link_local(mac: str) -> ipaddress.IPv6Address | None:
    """fe80::/64 with the modified EUI-64 of `mac` (RFC 4291 appendix A), for a base
    interface that has no link-local address of its own."""
    parts = mac.split(":")
    if len(parts) != 6:
        return None
    b = [int(p, 16) for p in parts]
    iid = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid)
