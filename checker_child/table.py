"""The IPVS table as data: what the kernel's table must hold for the configuration and
the real servers' states, as frozen values that compare by value, so that the checker
can compute the table it wants (a pure function) and apply only the difference.

The datatypes mirror the kernel's IPVS objects (include/uapi/linux/ip_vs.h): a service
is identified by (family, protocol, address, port) or by (family, fwmark); a destination
by its address and port within its service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

from conf.lvs import LvsMethod, VirtualServer
from conf.lvs_group import VirtualServerGroup

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
    flags: frozenset[str] = frozenset()  # "persistent", "onepacket", "flag-1", "flag-2", "flag-3"
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


EntryKey = ServiceKey | tuple[ServiceKey, DestKey]  # what one IPVS command touches


def entries(change: Diff) -> Iterator[tuple[EntryKey, Diff]]:
    """Each entry of `change` on its own (a one-entry Diff), in the order to apply them,
    with the key of the service or destination it touches: one kernel command each."""
    for svc in change.add_services:
        yield svc.key, Diff(add_services=(svc,))
    for svc in change.edit_services:
        yield svc.key, Diff(edit_services=(svc,))
    for skey, dest in change.add_destinations:
        yield (skey, dest.key), Diff(add_destinations=((skey, dest),))
    for skey, dest in change.edit_destinations:
        yield (skey, dest.key), Diff(edit_destinations=((skey, dest),))
    for skey, dkey in change.remove_destinations:
        yield (skey, dkey), Diff(remove_destinations=((skey, dkey),))
    for skey in change.remove_services:
        yield skey, Diff(remove_services=(skey,))


# ---------------------------------------------------------------- the desired table
#
# What the kernel holds is normalised here the way the kernel normalises it, so that a
# table read back from the kernel compares equal to the one we asked for:
# - a port of 0 is None (an address service without a port, a fwmark destination);
# - a DR/TUN destination takes its service's port (the kernel forces it: ip_vs_ctl.c);
# - the v4 netmask /32 and the v6 prefix /128 are the defaults: None;
# - "hashed" is the kernel's own bookkeeping flag, set on every service: never kept;
# - scheduler flags are kept by number ("flag-1".."flag-3"): sh-fallback/mh-fallback are
#   flag-1, sh-port/mh-port flag-2 (ipvsadm(8) -b).

WEIGHT_LIMIT = 2147483647  # IPVS_WEIGHT_LIMIT: weights are clamped to 0..INT_MAX

_SCHED_FLAGS = (
    ("flag_1", "flag-1"),
    ("flag_2", "flag-2"),
    ("flag_3", "flag-3"),
    ("sh_fallback", "flag-1"),
    ("sh_port", "flag-2"),
    ("mh_fallback", "flag-1"),
    ("mh_port", "flag-2"),
)


def real_weight(weight: int) -> int:
    """An effective weight as IPVS takes it: negative is 0, capped at INT_MAX."""
    return max(0, min(weight, WEIGHT_LIMIT))


def _netmask(vs: VirtualServer) -> int | None:
    gran = vs.persistence_granularity
    if gran is None:
        return None
    plen = IPv4Network(f"0.0.0.0/{gran}").prefixlen if isinstance(gran, IPv4Address) else gran
    full = 128 if vs.family == 6 else 32
    return None if plen >= full else plen


def service_settings(vs: VirtualServer, key: ServiceKey) -> Service:
    """The IPVS service for one key of a virtual server (lvs_sched, flags, persistence_*)."""
    flags = {name for attr, name in _SCHED_FLAGS if getattr(vs, attr)}
    timeout = vs.persistence_timeout or 0
    if timeout:
        flags.add("persistent")  # persistence_timeout: IP_VS_SVC_F_PERSISTENT
    if vs.ops:
        flags.add("onepacket")  # ops: IP_VS_SVC_F_ONEPACKET
    return Service(
        key=key,
        scheduler=vs.lvs_sched or "wlc",
        flags=frozenset(flags),
        persistence_timeout=timeout,
        netmask=_netmask(vs) if timeout else None,
        persistence_engine=vs.persistence_engine,
    )


def _range(first: IPAddress, last: IPAddress) -> Iterator[IPAddress]:
    for n in range(int(first), int(last) + 1):
        yield ip_address(n)


def service_keys(vs: VirtualServer, group: VirtualServerGroup | None = None) -> list[ServiceKey]:
    """The kernel services of a virtual server: one, or one per member of its
    virtual_server_group (each address of a range `10.0.0.1-10`, each fwmark)."""
    proto = vs.protocol
    if vs.fwmark is not None:
        return [ServiceKey(vs.family, fwmark=vs.fwmark)]
    if vs.group is None:
        return [ServiceKey(vs.family, proto, vs.address, vs.port or None)]
    if group is None:
        return []
    keys: list[ServiceKey] = []
    for entry in group.addresses:
        keys.extend(ServiceKey(a.version, proto, a, entry.port or None) for a in _range(entry.first, entry.last))
    for fwm in group.fwmarks:
        family = 6 if fwm.family == "inet6" else 4 if fwm.family == "inet" else vs.family
        keys.append(ServiceKey(family, fwmark=fwm.fwmark))
    return keys


@dataclass(frozen=True)
class Wanted:
    """A destination the state wants in every service of a virtual server."""

    address: IPAddress
    port: int | None
    weight: int
    method: LvsMethod
    uthreshold: int = 0
    lthreshold: int = 0


def destination(key: ServiceKey, want: Wanted) -> Destination:
    method = want.method
    port = want.port if method.kind == "NAT" else key.port  # DR/TUN: the kernel uses the service's port
    tunnelled = method.kind == "TUN"
    return Destination(
        key=DestKey(want.address, port or None),
        weight=real_weight(want.weight),
        method=method.kind,
        uthreshold=want.uthreshold,
        lthreshold=want.lthreshold,
        tunnel_type=(method.tunnel_type or "ipip") if tunnelled else None,
        tunnel_port=method.tunnel_port if tunnelled else None,
        tunnel_nocsum=method.checksum == "nocsum",
        tunnel_csum=method.checksum == "csum",
        tunnel_remcsum=method.checksum == "remcsum",
    )


def desired_table(
    entries: Iterable[tuple[VirtualServer, VirtualServerGroup | None, Sequence[Wanted]]],
) -> Table:
    """The table for virtual servers and the destinations their states want: a pure
    function. Later entries for the same destination replace earlier ones (the sorry
    server, listed last, wins over a real server at the same address)."""
    services: dict[ServiceKey, Service] = {}
    dests: dict[ServiceKey, dict[DestKey, Destination]] = {}
    for vs, group, wanted in entries:
        for key in service_keys(vs, group):
            services[key] = service_settings(vs, key)
            per = dests.setdefault(key, {})
            for want in wanted:
                d = destination(key, want)
                per[d.key] = d
    return Table(services, dests)


def _skey(k: ServiceKey) -> tuple[int, int, str, int, int]:
    # A total order (the dataclass order cannot compare None with a value).
    return (k.family, -1 if k.fwmark is None else k.fwmark, k.protocol or "", int(k.address or 0), k.port or 0)


def _dkey(k: DestKey) -> tuple[int, int, int]:
    return (k.address.version, int(k.address), k.port or 0)


def diff(old: Table, new: Table) -> Diff:
    """The smallest change from `old` to `new`: what can be edited is edited (a weight,
    a method, a scheduler), a service removed takes its destinations with it."""
    add_s = [s for k, s in sorted(new.services.items(), key=lambda kv: _skey(kv[0])) if k not in old.services]
    edit_s = [
        s
        for k, s in sorted(new.services.items(), key=lambda kv: _skey(kv[0]))
        if k in old.services and old.services[k] != s
    ]
    rm_s = [k for k in sorted(old.services, key=_skey) if k not in new.services]
    add_d: list[tuple[ServiceKey, Destination]] = []
    edit_d: list[tuple[ServiceKey, Destination]] = []
    rm_d: list[tuple[ServiceKey, DestKey]] = []
    for skey in sorted(new.services, key=_skey):
        now = new.destinations.get(skey, {})
        before = old.destinations.get(skey, {}) if skey in old.services else {}
        for dkey in sorted(now, key=_dkey):
            if dkey not in before:
                add_d.append((skey, now[dkey]))
            elif before[dkey] != now[dkey]:
                edit_d.append((skey, now[dkey]))
        rm_d.extend((skey, dkey) for dkey in sorted(before, key=_dkey) if dkey not in now)
    return Diff(tuple(add_s), tuple(edit_s), tuple(add_d), tuple(edit_d), tuple(rm_d), tuple(rm_s))


def apply_diff(table: Table, change: Diff) -> Table:
    """`table` with `change` applied, as the kernel would (pure; for bookkeeping and tests)."""
    services = dict(table.services)
    dests = {k: dict(v) for k, v in table.destinations.items()}
    for s in (*change.add_services, *change.edit_services):
        services[s.key] = s
        dests.setdefault(s.key, {})
    for skey, d in (*change.add_destinations, *change.edit_destinations):
        dests.setdefault(skey, {})[d.key] = d
    for skey, dkey in change.remove_destinations:
        dests.get(skey, {}).pop(dkey, None)
    for skey in change.remove_services:
        services.pop(skey, None)
        dests.pop(skey, None)
    return Table(services, {k: v for k, v in dests.items() if k in services})


def canonical(table: Table) -> Table:
    """The same table with a destinations entry for every service and nothing else
    (tables compare by value; this makes equal contents compare equal)."""
    return Table(
        dict(table.services),
        {k: dict(table.destinations.get(k, {})) for k in table.services},
    )
