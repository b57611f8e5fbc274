"""Releasing instances whose VRRP child cannot: the parent's edge for the never-two-masters
rule (vrrp_child.liveness). It removes what a MASTER instance put on the system (see
vrrp_child.holdings) in keepalived's order, routes and rules first, then the VIPs, and then
sends the priority-0 advert a stopping master sends (RFC 3768 / RFC 5798 section 6.4.3), so
that a backup takes over after Skew_Time instead of Master_Down_Interval: the VIPs are gone
here before the peers are told, never the other way round."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import time
from collections.abc import Mapping, Sequence

from conf.rules import RuleEntry
from conf.values import IPAddress
from conf.vrrp import VrrpInstance
from vrrp_child import ah, firewall, holdings, packet
from vrrp_child.ah import AH_PROTO
from vrrp_child.fsm import PRIO_STOP
from vrrp_child.holdings import Item, RouteItem
from vrrp_child.liveness import Held
from vrrp_child.netlink import Rtnl
from vrrp_child.packet import VRRP_PROTO
from vrrp_child.receive import Expect
from vrrp_child.sockets import VrrpSocket

SocketKey = tuple[str, IPAddress, bool, IPAddress | None, int]

# The last AH sequence number the parent sent per instance (it lives as long as the parent).
_ah_sent: dict[str, int] = {}


def release(held: Held) -> list[str]:
    """Remove the VIPs, virtual routes and virtual rules of the held instances, then announce
    priority 0 for each, and drop their no-accept table; the error lines (an address already
    gone is no error)."""
    instances = held.instances
    vips: list[Item] = []
    routes: list[RouteItem] = []
    rules: list[RuleEntry] = []
    for conf in instances:
        ifname = holdings.vip_ifname(conf)
        if ifname is None:
            continue
        vips += holdings.vip_items(conf, ifname)
        routes += holdings.route_items(conf, ifname)
        rules += holdings.rule_items(conf)
    errors: list[str] = []
    try:
        with Rtnl() as rtnl:
            if routes or rules:
                from vrrp_child.routing import Routing  # noqa: PLC0415 (routes or rules only)

                routing = Routing(rtnl)
                errors += routing.remove_routes(routes).errors() if routes else []
                errors += routing.remove_rules(rules).errors() if rules else []
            if vips:
                result = rtnl.remove_addresses(vips)
                errors += [f"Cannot remove VIP {f.entry.address} from {f.ifname}: {f.message}" for f in result.failed]
            errors += announce_stop(instances, rtnl, {name: (seq, at) for name, seq, at in held.ah_seqs})
    except OSError as e:
        errors.append(f"cannot release the VIPs: {e.strerror or e}")
    # the no-accept drop tables (vrrp_child.firewall): they exist only while such an instance
    # is MASTER, and the child that made them cannot delete them any more
    if held.firewall_table is not None:
        errors += firewall.release_tables(held.firewall_table)
    return errors


def announce_stop(
    instances: Sequence[VrrpInstance], rtnl: Rtnl, ah_seqs: Mapping[str, tuple[int, float]] | None = None
) -> list[str]:
    """One priority-0 advert per instance, to its multicast group or each unicast peer, from
    the source its adverts have (one socket per interface and source). An `auth_type AH`
    instance's is sealed as the child seals it (vrrp_child.ah), with a sequence number above
    any its child can have used since it reported `ah_seqs[name]` (or 1 without a report)."""
    errors: list[str] = []
    sockets: dict[SocketKey, VrrpSocket] = {}
    # each interface read once, not once per instance (a dump of its addresses each time:
    # seconds of the parent's loop for 1,000 instances)
    interface = functools.cache(rtnl.interface)
    try:
        for conf in instances:
            ifname = holdings.advert_ifname(conf)
            base = interface(conf.interface or ifname) if ifname is not None else None
            local = holdings.source_address(conf, base) if base is not None else None
            if ifname is None or local is None:
                errors.append(f"({conf.name}) cannot send priority 0: no interface or no source address")
                continue
            is_ah = conf.auth_type == "AH"
            proto = AH_PROTO if is_ah else VRRP_PROTO
            key = (ifname, local, conf.is_unicast, conf.mcast_dst_ip, proto)
            try:
                sock = sockets.get(key)
                if sock is None:
                    sock = sockets[key] = VrrpSocket(
                        ifname,
                        local,
                        unicast=conf.is_unicast,
                        group=conf.mcast_dst_ip,
                        unicast_ttl=conf.unicast_ttl,
                        proto=proto,
                    )
            except OSError as e:
                errors.append(f"({conf.name}) cannot send priority 0 on {ifname}: {e.strerror or e}")
                continue
            group = [sock.group] if sock.group is not None else []
            peers = [p.address for p in conf.unicast_peer if p.address.version == sock.family]
            try:
                advert = Expect.from_instance(conf).advert(PRIO_STOP)
                seq = None
                if is_ah:
                    prev = (ah_seqs or {}).get(conf.name)
                    seq = ah.seq_above(*prev, time.monotonic(), conf.advert_int) if prev is not None else 1
                    # the parent releases a killed child's instances again at its reap: a
                    # repeated number would be dropped as a replay
                    seq = _ah_sent[conf.name] = max(seq, _ah_sent.get(conf.name, 0) + 1)
                for dst in peers if sock.unicast else group:
                    message = packet.encode(advert, local, dst)
                    if seq is not None:
                        message = _seal(conf, message, local, dst, seq=seq, unicast=sock.unicast)
                    sock.send(message, dst)
            except ValueError as e:  # what the child cannot send either
                errors.append(f"({conf.name}) cannot send priority 0: {e}")
    finally:
        for sock in sockets.values():
            with contextlib.suppress(OSError):
                sock.close()
    return errors


def _seal(conf: VrrpInstance, message: bytes, src: IPAddress, dst: IPAddress, *, seq: int, unicast: bool) -> bytes:
    """The AH datagram the child would send (vrrp_child.instance._send_ah): the IP ID is any
    non-zero value, covered by the ICV but checked by no receiver."""
    if not isinstance(src, ipaddress.IPv4Address) or not isinstance(dst, ipaddress.IPv4Address):
        raise ValueError("IPsec AH is IPv4 only")
    ttl = 255 if not unicast or conf.unicast_ttl is None else conf.unicast_ttl
    key = ah.key_of(Expect.from_instance(conf).auth_pass)
    return ah.seal(message, src, dst, key=key, seq=seq, ip_id=1, ttl=ttl, unicast=unicast)
