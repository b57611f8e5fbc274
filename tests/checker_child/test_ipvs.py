"""The IPVS edge: conversions round-trip through encoded netlink messages; the kernel
parts skip when the kernel has no IPVS."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from pyroute2.netlink.generic import ipvs as genl

from checker_child.ipvs import (
    Ipvs,
    IpvsUnavailable,
    dest_from_attrs,
    dest_request,
    kernel_has_ipvs,
    service_from_attrs,
    service_request,
)
from checker_child.table import Destination, DestKey, Diff, Service, ServiceKey, Table

no_ipvs = pytest.mark.skipif(not kernel_has_ipvs(), reason="kernel has no IPVS")


def wire(attr: str, nla: object) -> object:
    """Encode an ipvs genl message carrying `nla` and decode it as the kernel's reply."""
    msg = genl.ipvsmsg()
    msg["cmd"] = genl.IPVS_CMD_NEW_SERVICE
    msg["version"] = 1
    msg["attrs"] = [(attr, nla)]
    msg.encode()
    back = genl.ipvsmsg(msg.data)
    back.decode()
    return back.get(attr)


SERVICES = [
    Service(ServiceKey(4, "TCP", IPv4Address("10.0.0.1"), 80), "rr"),
    Service(ServiceKey(4, "UDP", IPv4Address("10.0.0.1"), 53), "wlc", frozenset({"onepacket", "flag-1"})),
    Service(ServiceKey(4, "TCP", IPv4Address("10.0.0.2"), None), "sh", frozenset({"persistent", "flag-2"}), 360, 24),
    Service(ServiceKey(6, "SCTP", IPv6Address("2001:db8::1"), 443), "mh", frozenset({"persistent"}), 50, 64, "sip"),
    Service(ServiceKey(4, fwmark=7), "wrr", frozenset({"persistent"}), 300),
    Service(ServiceKey(6, fwmark=8), "lc"),
]


# ids without a frozenset repr: its order changes with hash randomisation (xdist workers must agree)
@pytest.mark.parametrize(
    "svc", SERVICES, ids=lambda s: f"{s.key.protocol}-{s.key.address or s.key.fwmark}-{s.scheduler}"
)
def test_service_round_trip(svc: Service) -> None:
    assert service_from_attrs(wire("IPVS_CMD_ATTR_SERVICE", service_request(svc).dump_nla())) == svc


DESTS = [
    Destination(DestKey(IPv4Address("192.168.1.2"), 8080), 3, "NAT", 100, 10),
    Destination(DestKey(IPv4Address("192.168.1.3"), None), 0, "DR"),
    Destination(DestKey(IPv6Address("2001:db8::5"), 80), 1, "TUN", tunnel_type="ipip"),
    Destination(
        DestKey(IPv4Address("192.168.1.4"), 80), 7, "TUN", tunnel_type="gue", tunnel_port=6080, tunnel_csum=True
    ),
    Destination(DestKey(IPv4Address("192.168.1.5"), 80), 1, "TUN", tunnel_type="gre", tunnel_nocsum=True),
]


@pytest.mark.parametrize("dest", DESTS, ids=lambda d: str(d.key.address))
def test_dest_round_trip(dest: Destination) -> None:
    assert dest_from_attrs(wire("IPVS_CMD_ATTR_DEST", dest_request(4, dest).dump_nla())) == dest


def test_tunnel_port_is_big_endian_on_the_wire() -> None:
    d = Destination(DestKey(IPv4Address("192.168.1.4"), 80), 1, "TUN", tunnel_type="gue", tunnel_port=6080)
    nla = dest_request(4, d).dump_nla()
    raw = dict(nla["attrs"])["IPVS_DEST_ATTR_TUN_PORT"]
    assert raw.to_bytes(2, "little") == (6080).to_bytes(2, "big")


@pytest.mark.skipif(kernel_has_ipvs(), reason="the kernel has IPVS")
def test_without_kernel_ipvs() -> None:
    assert kernel_has_ipvs() is False
    with pytest.raises(IpvsUnavailable, match="no IPVS"):
        Ipvs()


@no_ipvs
def test_kernel_apply_and_read_back() -> None:
    from labkit.lab import Lab

    with Lab(1) as lab:
        node = lab.node(1)
        with node.inside():
            ipvs = Ipvs()
            try:
                ipvs.flush()
                key = SERVICES[0].key
                d = DESTS[0]
                want = Table({key: SERVICES[0]}, {key: {d.key: d}})
                assert ipvs.apply(Diff(add_services=(SERVICES[0],), add_destinations=((key, d),))) == []
                assert ipvs.read() == want
                ipvs.remove([key])
                assert ipvs.read() == Table({}, {})
            finally:
                ipvs.close()
