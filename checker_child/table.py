"""The IPVS table as data: what the kernel's table must hold for the configuration and
the real servers' states, as frozen values that compare by value, so that the checker
can compute the table it wants (a pure function) and apply only the difference.

The datatypes mirror the kernel's IPVS objects (include/uapi/linux/ip_vs.h): a service
is identified by (family, protocol, address, port) or by (family, fwmark); a destination
by its address and port within its service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, order=True)
class ServiceKey:
    """How the kernel names a virtual service: (protocol, address, port) or fwmark."""

    family: int  # 4 or 6
    protocol: str | None = None  # "TCP", "UDP", "SCTP"; None for a fwmark service
    address: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None

    def __str__(self) -> str:
        if self.fwmark is not None:
            return f"FWM {self.fwmark}"
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Service:
    """A virtual service's settings (everything that an edit may change)."""

    key: ServiceKey
    scheduler: str = "wlc"  # lvs_sched / lb_algo
    flags: frozenset[str] = frozenset()  # "persistent", "hashed", "onepacket", "sh-port", "sh-fallback", ...
    persistence_timeout: int = 0  # seconds; 0: not persistent
    netmask: int | None = None  # persistence_granularity: prefix length (v4 mask bits, v6 prefix)
    persistence_engine: str | None = None


@dataclass(frozen=True, order=True)
class DestKey:
    address: IPAddress
    port: int | None = None  # None: the service's port (DR / fwmark)


@dataclass(frozen=True)
class Destination:
    """A real server (or the sorry server) in a service."""

    key: DestKey
    weight: int = 1  # 0: inhibited (inhibit_on_failure, sorry_server_inhibit)
    method: str = "NAT"  # "NAT" (masq), "DR" (route), "TUN" (tunnel)
    uthreshold: int = 0
    lthreshold: int = 0
    tunnel_type: str | None = None  # TUN: "ipip", "gue", "gre"
    tunnel_port: int | None = None
    tunnel_nocsum: bool = False
    tunnel_csum: bool = False
    tunnel_remcsum: bool = False


@dataclass(frozen=True)
class Table:
    """The whole table: each service with its destinations."""

    services: Mapping[ServiceKey, Service] = field(default_factory=dict)
    destinations: Mapping[ServiceKey, Mapping[DestKey, Destination]] = field(default_factory=dict)


@dataclass(frozen=True)
class Diff:
    """What to do to turn one table into another, in the order to do it: services are
    added before their destinations and removed after them."""

    add_services: tuple[Service, ...] = ()
    edit_services: tuple[Service, ...] = ()
    add_destinations: tuple[tuple[ServiceKey, Destination], ...] = ()
    edit_destinations: tuple[tuple[ServiceKey, Destination], ...] = ()
    remove_destinations: tuple[tuple[ServiceKey, DestKey], ...] = ()
    remove_services: tuple[ServiceKey, ...] = ()

    def __bool__(self) -> bool:
        return any(
            (
                self.add_services,
                self.edit_services,
                self.add_destinations,
                self.edit_destinations,
                self.remove_destinations,
                self.remove_services,
            )
        )
