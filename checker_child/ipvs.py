"""The IPVS edge: our `Table` / `Diff` to the kernel's IPVS over generic netlink
(pyroute2.ipvs), and the kernel's table back.

The conversions are pure functions (tested without the kernel); `Ipvs` is the thin
socket wrapper. The kernel calls are short netlink round trips on a local socket.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Any

from pyroute2.ipvs import IPVS, IPVSDest, IPVSService

from checker_child.table import Destination, DestKey, Diff, Service, ServiceKey, Table

# include/uapi/linux/ip_vs.h
_FWD = {"NAT": 0, "TUN": 2, "DR": 3}  # IP_VS_CONN_F_MASQ / TUNNEL / DROUTE
_FWD_NAME = {v: k for k, v in _FWD.items()}
_TUN_TYPE = {"ipip": 0, "gue": 1, "gre": 2}
_TUN_NAME = {v: k for k, v in _TUN_TYPE.items()}
_TUN_NOCSUM, _TUN_CSUM, _TUN_REMCSUM = 0x1, 0x2, 0x4
_SVC_FLAGS = {"persistent": 0x1, "onepacket": 0x4, "flag-1": 0x8, "flag-2": 0x10, "flag-3": 0x20}
_HASHED = 0x2
_PROTO = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
_PROTO_NAME = {v: k for k, v in _PROTO.items()}
_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
_FAMILY = {v: k for k, v in _AF.items()}


class IpvsUnavailable(RuntimeError):
    """The kernel has no IPVS (module not loaded, not built)."""


class IpvsNoPermission(IpvsUnavailable):
    """The kernel has IPVS but refuses us (no CAP_NET_ADMIN): restarting cannot help."""


_PERMISSION = frozenset({errno.EPERM, errno.EACCES})


@dataclass(frozen=True)
class Refused:
    """One command the kernel refused: what it was (keepalived's words), and why."""

    what: str  # "add dest [192.168.1.2]:tcp:80 to [10.0.0.1]:tcp:80"
    code: int | None  # the errno, None when the failure was not the kernel's answer
    reason: str

    def __str__(self) -> str:
        return f"IPVS cmd {self.what} failed: {self.reason}"


def refused(what: str, e: Exception) -> Refused:
    code = getattr(e, "code", None) or getattr(e, "errno", None)
    code = code if isinstance(code, int) else None
    reason = getattr(e, "strerror", None) or (os.strerror(code) if code else None) or str(e)
    return Refused(what, code, reason)


def kernel_has_ipvs() -> bool:
    return os.path.exists("/proc/net/ip_vs")


# ---------------------------------------------------------------- conversions


def _netmask_attr(family: int, netmask: int | None) -> str:
    # IPVS_SVC_ATTR_NETMASK: a v4 mask in network order; for v6 the prefix length as a
    # host-order u32 (what ipvsadm sends). pyroute2 encodes it as an IPv4 address.
    if family == 6:
        return socket.inet_ntoa(struct.pack("=I", netmask or 128))
    plen = 32 if netmask is None else netmask
    return str(IPv4Address((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF))


def _netmask_value(family: int, text: str | None) -> int | None:
    if text is None:
        return None
    if family == 6:
        plen = int(struct.unpack("=I", socket.inet_aton(text))[0])
        return None if plen >= 128 else plen
    plen = bin(int(IPv4Address(text))).count("1")
    return None if plen >= 32 else plen


def service_request(svc: Service) -> IPVSService:
    key = svc.key
    fields: dict[str, Any] = {"af": _AF[key.family]}
    if key.fwmark is not None:
        fields["fwmark"] = key.fwmark
    else:
        fields.update(protocol=_PROTO[key.protocol or "TCP"], addr=str(key.address), port=key.port or 0)
    flags = 0
    for name in svc.flags:
        flags |= _SVC_FLAGS[name]
    fields.update(
        sched_name=svc.scheduler,
        flags={"flags": flags, "mask": 0xFFFFFFFF},
        timeout=svc.persistence_timeout,
        netmask=_netmask_attr(key.family, svc.netmask),
    )
    if svc.persistence_engine:
        fields["pe_name"] = svc.persistence_engine
    return IPVSService(**fields)


def dest_request(family: int, dest: Destination) -> IPVSDest:
    tun_flags = (
        (_TUN_NOCSUM if dest.tunnel_nocsum else 0)
        | (_TUN_CSUM if dest.tunnel_csum else 0)
        | (_TUN_REMCSUM if dest.tunnel_remcsum else 0)
    )
    fields: dict[str, Any] = {
        "addr": str(dest.key.address),
        "addr_family": _AF[dest.key.address.version],
        "port": dest.key.port or 0,
        "fwd_method": _FWD[dest.method],
        "weight": dest.weight,
        "u_thresh": dest.uthreshold,
        "l_thresh": dest.lthreshold,
        "tun_type": _TUN_TYPE[dest.tunnel_type] if dest.tunnel_type else 0,
        # the kernel reads IPVS_DEST_ATTR_TUN_PORT as big-endian; pyroute2 packs host order
        "tun_port": socket.htons(dest.tunnel_port or 0),
        "tun_flags": tun_flags,
    }
    return IPVSDest(**fields)


def _attrs(nla: Any) -> dict[str, Any]:
    return {name: value for name, value in nla["attrs"]}


def service_from_attrs(nla: Any) -> Service:
    """A `Service` from a decoded IPVS_CMD_ATTR_SERVICE."""
    a = _attrs(nla)
    family = _FAMILY[a["IPVS_SVC_ATTR_AF"]]
    fwmark = a.get("IPVS_SVC_ATTR_FWMARK") or None
    if fwmark is not None:
        key = ServiceKey(family, fwmark=fwmark)
    else:
        key = ServiceKey(
            family,
            _PROTO_NAME.get(a["IPVS_SVC_ATTR_PROTOCOL"], str(a["IPVS_SVC_ATTR_PROTOCOL"])),
            ip_address(a["IPVS_SVC_ATTR_ADDR"]),
            a.get("IPVS_SVC_ATTR_PORT") or None,
        )
    raw_flags = a.get("IPVS_SVC_ATTR_FLAGS")
    bits = (raw_flags["flags"] if raw_flags is not None else 0) & ~_HASHED
    flags = frozenset(name for name, bit in _SVC_FLAGS.items() if bits & bit)
    timeout = a.get("IPVS_SVC_ATTR_TIMEOUT", 0) if "persistent" in flags else 0
    return Service(
        key=key,
        scheduler=a.get("IPVS_SVC_ATTR_SCHED_NAME", "wlc"),
        flags=flags,
        persistence_timeout=timeout,
        netmask=_netmask_value(family, a.get("IPVS_SVC_ATTR_NETMASK")) if timeout else None,
        persistence_engine=a.get("IPVS_SVC_ATTR_PE_NAME") or None,
    )


def dest_from_attrs(nla: Any) -> Destination:
    """A `Destination` from a decoded IPVS_CMD_ATTR_DEST."""
    a = _attrs(nla)
    method = _FWD_NAME.get(a.get("IPVS_DEST_ATTR_FWD_METHOD", 0) & 0x7, "NAT")
    tun = method == "TUN"
    tflags = a.get("IPVS_DEST_ATTR_TUN_FLAGS", 0)
    return Destination(
        key=DestKey(ip_address(a["IPVS_DEST_ATTR_ADDR"]), a.get("IPVS_DEST_ATTR_PORT") or None),
        weight=a.get("IPVS_DEST_ATTR_WEIGHT", 0),
        method=method,
        uthreshold=a.get("IPVS_DEST_ATTR_U_THRESH", 0),
        lthreshold=a.get("IPVS_DEST_ATTR_L_THRESH", 0),
        tunnel_type=_TUN_NAME.get(a.get("IPVS_DEST_ATTR_TUN_TYPE", 0), "ipip") if tun else None,
        tunnel_port=(socket.ntohs(a.get("IPVS_DEST_ATTR_TUN_PORT", 0)) or None) if tun else None,
        tunnel_nocsum=bool(tflags & _TUN_NOCSUM),
        tunnel_csum=bool(tflags & _TUN_CSUM),
        tunnel_remcsum=bool(tflags & _TUN_REMCSUM),
    )


def _fmt_svc(key: ServiceKey) -> str:
    if key.fwmark is not None:
        return f"FWM {key.fwmark}"
    return f"[{key.address}]:{(key.protocol or '').lower()}:{key.port or 0}"


def _fmt_dest(key: ServiceKey, dest: DestKey) -> str:
    return f"[{dest.address}]:{(key.protocol or 'none').lower()}:{dest.port or 0}"


# ---------------------------------------------------------------- the socket


class Ipvs:
    """The kernel's IPVS table."""

    def __init__(self) -> None:
        if not kernel_has_ipvs():
            raise IpvsUnavailable("IPVS: Can't initialize ipvs: the kernel has no IPVS (no /proc/net/ip_vs)")
        try:
            self._sock = IPVS()
        except Exception as e:  # pyroute2 raises a bare NetlinkError when the family is absent
            raise IpvsUnavailable(f"IPVS: Can't initialize ipvs: {e}") from e
        try:
            # Every IPVS command, a dump included, needs CAP_NET_ADMIN (GENL_ADMIN_PERM):
            # asking once here finds a missing permission before anything is programmed.
            list(self._sock.service("dump"))
        except Exception as e:
            self._sock.close()
            code = getattr(e, "code", None) or getattr(e, "errno", None)
            if code in _PERMISSION:
                raise IpvsNoPermission(f"IPVS: Can't initialize ipvs: {os.strerror(code)}") from e
            raise IpvsUnavailable(f"IPVS: Can't initialize ipvs: {e}") from e
        self._services: dict[ServiceKey, Service] = {}

    def _service(self, key: ServiceKey) -> IPVSService:
        svc = self._services.get(key) or Service(key)
        return service_request(svc)

    def apply(self, change: Diff) -> list[Refused]:
        """Apply `change` in order; one refused entry does not stop the others. Returns
        what the kernel refused (empty: it accepted everything)."""
        errors: list[Refused] = []

        def run(what: str, fn: Callable[..., object], *args: object) -> None:
            try:
                fn(*args)
            except Exception as e:
                errors.append(refused(what, e))

        for svc in change.add_services:
            self._services[svc.key] = svc
            run(f"add service {_fmt_svc(svc.key)}", self._sock.service, "add", service_request(svc))
        for svc in change.edit_services:
            self._services[svc.key] = svc
            run(f"edit service {_fmt_svc(svc.key)}", self._sock.service, "set", service_request(svc))
        for skey, dest in change.add_destinations:
            what = f"add dest {_fmt_dest(skey, dest.key)} to {_fmt_svc(skey)}"
            run(what, self._sock.dest, "add", self._service(skey), dest_request(skey.family, dest))
        for skey, dest in change.edit_destinations:
            what = f"edit dest {_fmt_dest(skey, dest.key)} of {_fmt_svc(skey)}"
            run(what, self._sock.dest, "set", self._service(skey), dest_request(skey.family, dest))
        for skey, dkey in change.remove_destinations:
            what = f"del dest {_fmt_dest(skey, dkey)} from {_fmt_svc(skey)}"
            run(what, self._sock.dest, "del", self._service(skey), dest_request(skey.family, Destination(dkey)))
        for skey in change.remove_services:
            run(f"del service {_fmt_svc(skey)}", self._sock.service, "del", self._service(skey))
            self._services.pop(skey, None)
        return errors

    def read(self) -> Table:
        services: dict[ServiceKey, Service] = {}
        dests: dict[ServiceKey, Mapping[DestKey, Destination]] = {}
        for msg in self._sock.service("dump"):
            svc = service_from_attrs(msg.get("IPVS_CMD_ATTR_SERVICE"))
            services[svc.key] = svc
            self._services[svc.key] = svc
            found = {}
            for dmsg in self._sock.dest("dump", service=service_request(svc)):
                d = dest_from_attrs(dmsg.get("IPVS_CMD_ATTR_DEST"))
                found[d.key] = d
            dests[svc.key] = found
        return Table(services, dests)

    def flush(self) -> None:
        """lvs_flush: empty the whole table."""
        for key in list(self.read().services):
            self.remove([key])

    def remove(self, keys: Iterable[ServiceKey]) -> None:
        self.apply(Diff(remove_services=tuple(keys)))

    def close(self) -> None:
        self._sock.close()
