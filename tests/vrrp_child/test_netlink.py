"""vrrp_child.netlink: request encoding (pure), then interfaces and VIPs for real in a
namespace (node 1 of `pair`, a `Lab.pair()` of labkit/lab.py), asserted with `ip -j`."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from conf.addresses import PREFERRED_LFT_FOREVER, IpAddressEntry
from labkit.lab import Lab, Node
from tests.vrrp_child.conftest import needs_root
from vrrp_child import netlink
from vrrp_child.netlink import (
    IFA_F_HOMEADDRESS,
    IFA_F_NODAD,
    IFA_F_NOPREFIXROUTE,
    RTPROT_KEEPALIVED,
    Item,
    Rtnl,
    address_request,
)


def vip(text: str, **kw: Any) -> IpAddressEntry:
    return IpAddressEntry(ipaddress.ip_interface(text), **kw)


def decode(data: bytes) -> Any:
    msg = ifaddrmsg(data)
    msg.decode()
    return msg


# ---------------------------------------------------------------- pure: the requests


def test_ipv4_request_carries_keepalived_options() -> None:
    entry = vip("192.0.2.10/24", brd="+", label="eth0:vip", scope=253, preferred_lft=0)
    msg = decode(address_request(entry, 7, True))
    assert msg["header"]["type"] == RTM_NEWADDR
    assert (msg["family"], msg["prefixlen"], msg["index"], msg["scope"]) == (2, 24, 7, 253)
    assert msg.get_attr("IFA_LOCAL") == msg.get_attr("IFA_ADDRESS") == "192.0.2.10"
    assert msg.get_attr("IFA_BROADCAST") == "192.0.2.255"
    assert msg.get_attr("IFA_LABEL") == "eth0:vip"
    assert msg.get_attr("IFA_PROTO") == RTPROT_KEEPALIVED == 18
    assert msg.get_attr("IFA_CACHEINFO")["ifa_preferred"] == 0
    assert msg.get_attr("IFA_CACHEINFO")["ifa_valid"] == 0xFFFFFFFF
    # IPv4 VIPs get no flags unless asked: DAD is IPv6's.
    assert msg.get_attr("IFA_FLAGS") is None and msg["flags"] == 0


def test_brd_minus_peer_and_no_broadcast_by_default() -> None:
    assert decode(address_request(vip("192.0.2.10/24", brd="-"), 1, True)).get_attr("IFA_BROADCAST") == "192.0.2.0"
    plain = decode(address_request(vip("192.0.2.10/24"), 1, True))
    assert plain.get_attr("IFA_BROADCAST") is None and plain.get_attr("IFA_CACHEINFO") is None
    peer = decode(address_request(vip("198.51.100.1/32", peer=ipaddress.ip_address("198.51.100.2")), 1, True))
    assert (peer.get_attr("IFA_LOCAL"), peer.get_attr("IFA_ADDRESS")) == ("198.51.100.1", "198.51.100.2")


def test_ipv6_request_always_nodad_and_takes_flags() -> None:
    entry = vip("2001:db8::10/64", home=True, noprefixroute=True, label="ignored")
    msg = decode(address_request(entry, 3, True))
    assert (msg["family"], msg["prefixlen"]) == (10, 64)
    assert msg.get_attr("IFA_FLAGS") == IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_NOPREFIXROUTE
    assert msg.get_attr("IFA_LABEL") is None
    assert msg.get_attr("IFA_BROADCAST") is None


def test_removal_request_names_the_address_only() -> None:
    msg = decode(address_request(vip("192.0.2.10/24", brd="+", preferred_lft=PREFERRED_LFT_FOREVER), 4, False))
    assert msg["header"]["type"] == RTM_DELADDR
    assert (msg["prefixlen"], msg["index"]) == (24, 4)
    assert msg.get_attr("IFA_LOCAL") == "192.0.2.10"
    assert msg.get_attr("IFA_BROADCAST") is None and msg.get_attr("IFA_PROTO") is None


# ---------------------------------------------------------------- in a namespace


@pytest.fixture
def ns(pair: Lab) -> Node:
    """Node 1: va, 192.0.2.1/24, 2001:db8::1/64, fe80::1/64."""
    return pair.node(1)


@pytest.fixture
def rtnl(ns: Node) -> Iterator[Rtnl]:
    r = ns.call(Rtnl)
    try:
        yield r
    finally:
        r.close()


def addrs(ns: Node, dev: str = "va") -> dict[str, dict[str, Any]]:
    return {
        f"{a['local']}/{a['prefixlen']}": a
        for link in ns.ip_json("addr", "show", "dev", dev)
        for a in link["addr_info"]
    }


@pytest.mark.lab
@needs_root
def test_interface_lookup(ns: Node, rtnl: Rtnl) -> None:
    (link,) = ns.ip_json("link", "show", "dev", "va")
    with ns.inside():
        i = rtnl.interface("va")
        assert rtnl.interface("nosuch0") is None
        # A VIP alone in its subnet is a primary address too: `exclude` skips addresses.
        rtnl.add_addresses([(vip("198.51.100.7/32"), "va")])
        skip_vip = rtnl.interface("va", exclude=[ipaddress.ip_address("198.51.100.7")])
        skip_own = rtnl.interface("va", exclude=[ipaddress.ip_address("192.0.2.1")])
    assert skip_vip is not None and skip_vip.primary_ipv4 == ipaddress.ip_address("192.0.2.1")
    assert skip_own is not None and skip_own.primary_ipv4 == ipaddress.ip_address("198.51.100.7")
    assert i is not None
    assert (i.index, i.name, i.mac, i.mtu, i.kind) == (link["ifindex"], "va", link["address"], 1500, "veth")
    assert i.up and i.running
    assert i.primary_ipv4 == ipaddress.ip_address("192.0.2.1")
    assert i.link_local_ipv6 == ipaddress.ip_address("fe80::1")
    ns.ip("link", "set", "va", "down")
    with ns.inside():
        down = rtnl.interface("va")
    assert down is not None and not down.up and not down.running


@pytest.mark.lab
@needs_root
def test_add_and_remove_with_options(ns: Node, rtnl: Rtnl) -> None:
    items: list[Item] = [
        (vip("192.0.2.100/24", brd="+", label="va:1"), "va"),
        (vip("198.51.100.1/32", peer=ipaddress.ip_address("198.51.100.2"), scope=253), "va"),
        (vip("2001:db8::100/64", noprefixroute=True), "va"),
        (vip("fe80::100/64"), "va"),
        (vip("192.0.2.200/24", preferred_lft=0), "va"),
    ]
    with ns.inside():
        added = rtnl.add_addresses(items)
        protos = {
            a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS"): a.get_attr("IFA_PROTO") for a in rtnl.addresses(2)
        }
    assert added.ok and added.changed == tuple(items)
    got = addrs(ns)
    v4 = got["192.0.2.100/24"]
    assert (v4["broadcast"], v4["label"], v4["scope"], v4.get("secondary")) == ("192.0.2.255", "va:1", "global", True)
    p2p = got["198.51.100.1/32"]
    assert (p2p["address"], p2p["scope"]) == ("198.51.100.2", "link")
    v6 = got["2001:db8::100/64"]
    assert v6["nodad"] and v6["noprefixroute"] and "tentative" not in v6
    assert got["fe80::100/64"]["scope"] == "link" and got["fe80::100/64"]["nodad"]
    assert got["192.0.2.200/24"].get("deprecated")
    # keepalived's address protocol, kept by kernels from 6.1.
    assert protos["192.0.2.100"] == protos["2001:db8::100"] == RTPROT_KEEPALIVED
    assert protos["192.0.2.1"] in (None, 0)

    with ns.inside():
        removed = rtnl.remove_addresses(items)
    assert removed.ok and removed.changed == tuple(items)
    left = addrs(ns)
    assert set(left) == {"192.0.2.1/24", "2001:db8::1/64", "fe80::1/64"}


@pytest.mark.lab
@needs_root
def test_idempotent_and_errors_per_item(ns: Node, rtnl: Rtnl) -> None:
    a, b = (vip("192.0.2.101/24"), "va"), (vip("2001:db8::101/64"), "va")
    ns.ip("addr", "add", "192.0.2.101/24", "dev", "va")
    # IPv6 disabled on lo: the kernel refuses that one; the rest of the batch goes on.
    with ns.inside(), open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "w") as f:
        f.write("1")
    bad = (vip("2001:db8::102/128"), "lo")
    missing = (vip("192.0.2.103/32"), "nosuch0")
    with ns.inside():
        first = rtnl.add_addresses([a, bad, b, missing])
        again = rtnl.add_addresses([a, b])
        gone = rtnl.remove_addresses([a, b])
        gone_again = rtnl.remove_addresses([a, b])
    assert first.changed == (b,) and first.unchanged == (a,)
    assert [(f.entry, f.ifname, f.errno) for f in first.failed] == [
        (missing[0], "nosuch0", errno.ENODEV),
        (bad[0], "lo", first.failed[1].errno),
    ]
    assert first.failed[1].errno != 0 and first.failed[1].message
    assert not first.ok
    assert again.ok and again.unchanged == (a, b) and not again.changed
    assert gone.changed == (a, b)
    assert gone_again.ok and gone_again.unchanged == (a, b) and not gone_again.changed
    assert "192.0.2.101/24" not in addrs(ns)


@pytest.mark.lab
@needs_root
def test_batches_larger_than_a_chunk_map_answers_to_items(ns: Node, rtnl: Rtnl) -> None:
    items: list[Item] = [
        (vip(f"198.51.100.{i % 250 + 1}/32" if i < 250 else f"2001:db8::{i:x}/128"), "va") for i in range(300)
    ]
    # Already present at the chunk boundaries: the answers must land on the right items.
    pre = [netlink.CHUNK - 1, netlink.CHUNK, 2 * netlink.CHUNK, 299]
    for i in pre:
        ns.ip("addr", "add", str(items[i][0].address), "dev", "va", "nodad")
    with ns.inside():
        result = rtnl.add_addresses(items)
        present = rtnl.which_present(items)
    assert result.ok
    assert result.unchanged == tuple(items[i] for i in pre)
    assert len(result.changed) == 300 - len(pre)
    assert len(present) == 300
    assert len(addrs(ns)) == 300 + 3


@pytest.mark.lab
@needs_root
def test_remove_stale_removes_only_what_is_left(ns: Node, rtnl: Rtnl) -> None:
    configured: list[Item] = [
        (vip("192.0.2.110/24"), "va"),
        (vip("192.0.2.111/24"), "va"),  # not left behind
        (vip("2001:db8::110/64"), "va"),
        (vip("192.0.2.112/32"), "va"),  # present with another prefix: not ours
    ]
    # What a crashed run left, and an address somebody else owns.
    for text in ("192.0.2.110/24", "2001:db8::110/64", "192.0.2.112/24", "192.0.2.120/24"):
        ns.ip("addr", "add", text, "dev", "va", *(["nodad"] if ":" in text else []))
    with ns.inside():
        assert rtnl.which_present(configured) == [configured[0], configured[2]]
        result = netlink.remove_stale(configured, rtnl)
        assert netlink.present_addresses("va") == frozenset(
            ipaddress.ip_interface(t)
            for t in ("192.0.2.1/24", "192.0.2.112/24", "192.0.2.120/24", "2001:db8::1/64", "fe80::1/64")
        )
    assert result.ok and result.changed == (configured[0], configured[2])


@pytest.mark.lab
@needs_root
def test_works_inside_a_running_asyncio_loop(ns: Node) -> None:
    """pyroute2 0.9's synchronous IPRoute refuses to run under a running loop; ours is
    what the child uses from its loop."""

    async def main() -> tuple[netlink.BatchResult, netlink.BatchResult]:
        with Rtnl() as r:
            return r.add_addresses([(vip("192.0.2.130/24"), "va")]), r.remove_addresses([(vip("192.0.2.130/24"), "va")])

    with ns.inside():
        added, removed = asyncio.run(main())
    assert added.changed and removed.changed


class _CountingSocket:
    """The Rtnl's socket with its sendmsg() calls counted: each is one round trip to the
    kernel, which is what a batch saves (timing belongs in bench/, not in a test)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sends = 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        return self.sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.mark.lab
@needs_root
def test_measure_250_vips_batch_against_one_by_one(ns: Node, rtnl: Rtnl, capsys: pytest.CaptureFixture[str]) -> None:
    items: list[Item] = [(vip(f"198.51.{100 + i // 250}.{i % 250 + 1}/32"), "va") for i in range(250)]
    timings: dict[str, float] = {}
    sends: dict[str, int] = {}
    counter = _CountingSocket(rtnl._sock)
    rtnl._sock = counter  # type: ignore[assignment]

    def timed(name: str, work: Callable[[], object]) -> None:
        counter.sends = 0
        t = time.perf_counter()
        work()
        timings[name] = time.perf_counter() - t
        sends[name] = counter.sends

    results: dict[str, netlink.BatchResult] = {}
    with ns.inside():
        timed("encode 250 (once per instance)", lambda: rtnl.prepare(items))
        timed("batch add", lambda: results.setdefault("add", rtnl.add_addresses(items)))
        assert len(ns.ip_json("-4", "addr", "show", "dev", "va")[0]["addr_info"]) == 251
        timed("batch remove", lambda: results.setdefault("remove", rtnl.remove_addresses(items)))
        timed("one by one add", lambda: [rtnl.add_addresses([item]) for item in items])
        timed("one by one remove", lambda: [rtnl.remove_addresses([item]) for item in items])
    rtnl._sock = counter.sock
    assert results["add"].ok and len(results["add"].changed) == 250
    assert results["remove"].ok and len(results["remove"].changed) == 250
    assert len(addrs(ns)) == 3
    with capsys.disabled():
        print("\n250 VIPs: " + ", ".join(f"{k} {v * 1000:.2f} ms ({sends[k]} sendmsg)" for k, v in timings.items()))
    # A batch is one sendmsg() per CHUNK requests (the link index is an ioctl, not this
    # socket), where one by one is one per address: a regression to a round trip per
    # address fails here on any machine, loaded or not.
    chunks = -(-len(items) // netlink.CHUNK)
    assert sends["batch add"] == sends["batch remove"] == chunks
    assert sends["one by one add"] == sends["one by one remove"] == len(items)
    assert sends["encode 250 (once per instance)"] == 0
