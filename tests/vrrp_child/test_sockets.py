"""vrrp_child.sockets with real packets between the two nodes of `pair`, a `Lab.pair()` of
labkit/lab.py (A: va, 192.0.2.1 / 2001:db8::1 / fe80::1; B: vb, .2 / ::2 / fe80::2).

Sockets are opened inside a node's namespace (`Node.call`); a socket keeps the namespace it
was created in, so one test process drives both nodes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import select
import shutil
import socket
import struct
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from conf.vrrp import UnicastPeer
from labkit.lab import Lab, Node
from vrrp_child import ah, sockets
from vrrp_child.packet import MCAST_V4, MCAST_V6
from vrrp_child.sockets import PeerTable, Received, VrrpSocket

needs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 for network namespaces"
)

# Worked packet 4 of vrrp-wire.md: v3/IPv6 fe80::1 -> ff02::12, vrid 10, prio 200, VIPs
# fe80::10 and 2001:db8::10, pseudo-header checksum 0xdc05 (here zeroed for the kernel).
V6_ADVERT = (
    bytes.fromhex("310ac8020064") + b"\0\0" + IPv6Address("fe80::10").packed + IPv6Address("2001:db8::10").packed
)
V6_CHECKSUM = bytes.fromhex("dc05")
# Worked packet 1: a v2 advert (the socket does not look inside).
V4_ADVERT = bytes.fromhex("21016401 0001 ba52 c0a80001 00000000 00000000")


@pytest.fixture
def a(pair: Lab) -> Node:
    return pair.node(1)


@pytest.fixture
def b(pair: Lab) -> Node:
    return pair.node(2)


def readable(fd: int | VrrpSocket | socket.socket, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def receive(sock: VrrpSocket, timeout: float = 2.0) -> Received:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if readable(sock, deadline - time.monotonic()):
            rx = sock.recv()
            if rx is not None:
                return rx
    raise AssertionError("nothing received")


def nothing_for(sock: VrrpSocket, timeout: float = 0.3) -> bool:
    """True if no acceptable message arrives within `timeout`."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if readable(sock, left) and sock.recv() is not None:
            return False
    return True


# ------------------------------------------------------------------------ pure parts


def test_peer_table_from_unicast_peers() -> None:
    peers = [
        UnicastPeer(IPv4Address("192.0.2.1")),
        UnicastPeer(IPv4Address("192.0.2.3"), min_ttl=250, max_ttl=254),
    ]
    loose = PeerTable.of(peers, check_unicast_src=False)
    strict = PeerTable.of(peers, check_unicast_src=True)

    def rx(src: str, ttl: int) -> Received:
        return Received(b"", ip_address(src), IPv4Address("192.0.2.2"), ttl, 1)

    assert loose.reject(rx("192.0.2.1", 1)) is None  # no limits on this peer
    assert loose.reject(rx("192.0.2.9", 255)) is None  # keepalived accepts strangers by default
    assert strict.reject(rx("192.0.2.9", 255)) == "not_peer"
    assert strict.reject(rx("192.0.2.3", 250)) is None
    assert strict.reject(rx("192.0.2.3", 254)) is None
    assert loose.reject(rx("192.0.2.3", 249)) == "peer_ttl"
    assert loose.reject(rx("192.0.2.3", 255)) == "peer_ttl"


def test_multicast_group_must_match_family() -> None:
    with pytest.raises(ValueError, match="family"):
        VrrpSocket("lo", IPv4Address("127.0.0.1"), group=MCAST_V6)


# ------------------------------------------------------------------------- multicast


@needs_lab
def test_v4_multicast_between_nodes_not_to_self(a: Node, b: Node) -> None:
    with (
        a.call(lambda: VrrpSocket("va", IPv4Address("192.0.2.1"))) as sa,
        b.call(lambda: VrrpSocket("vb", IPv4Address("192.0.2.2"))) as sb,
    ):
        assert sa.key == ("va", 4, None, 112)
        assert sa.send(V4_ADVERT, MCAST_V4)
        assert receive(sb) == Received(V4_ADVERT, IPv4Address("192.0.2.1"), MCAST_V4, 255, b.ifindex("vb"))
        # and back: both nodes hear each other, neither hears itself
        assert sb.send(V4_ADVERT[:-1] + b"\x01", MCAST_V4)
        rx = receive(sa)
        assert (rx.src, rx.dst, rx.ttl, rx.ifindex) == (
            IPv4Address("192.0.2.2"),
            MCAST_V4,
            255,
            a.ifindex("va"),
        )
        assert nothing_for(sa)
        assert nothing_for(sb)
        assert not sa.stats.dropped and not sb.stats.dropped  # loop off: not even delivered
        assert (sa.stats.sent, sa.stats.received) == (1, 1)


@needs_lab
def test_v4_header_is_keepalived_s(a: Node, b: Node) -> None:
    """TOS 0xc0, TTL 255, DF clear, protocol 112, our source: what keepalived 2.2.7 sends."""

    def plain() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"vb")
        mreqn = struct.pack("@4s4si", MCAST_V4.packed, bytes(4), socket.if_nametoindex("vb"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        return s

    with (
        a.call(lambda: VrrpSocket("va", IPv4Address("192.0.2.1"))) as sa,
        b.call(plain) as raw,
    ):
        sa.send(V4_ADVERT, MCAST_V4)
        assert readable(raw, 2)
        data = raw.recv(2048)
    tos, frag, ttl, proto = data[1], struct.unpack("!H", data[6:8])[0], data[8], data[9]
    assert (tos, frag, ttl, proto) == (0xC0, 0, 255, 112)
    assert data[12:16] == IPv4Address("192.0.2.1").packed
    assert data[20:] == V4_ADVERT


@needs_lab
def test_v6_multicast_kernel_fills_checksum(a: Node, b: Node) -> None:
    """The kernel computes the RFC 5798 pseudo-header checksum (worked packet 4: 0xdc05)
    from a zeroed field, and the receiver gets it intact, from the link-local source."""
    with (
        a.call(lambda: VrrpSocket("va", IPv6Address("fe80::1"))) as sa,
        b.call(lambda: VrrpSocket("vb", IPv6Address("fe80::2"))) as sb,
    ):
        assert sa.send(V6_ADVERT, MCAST_V6)
        rx = receive(sb)
        assert rx.payload == V6_ADVERT[:6] + V6_CHECKSUM + V6_ADVERT[8:]
        assert (rx.src, rx.dst, rx.ttl, rx.ifindex) == (
            IPv6Address("fe80::1"),
            MCAST_V6,
            255,
            b.ifindex("vb"),
        )
        # A payload that already carries a (wrong) checksum goes out corrected.
        assert sa.send(V6_ADVERT[:6] + b"\x12\x34" + V6_ADVERT[8:], MCAST_V6)
        assert receive(sb).payload[6:8] == V6_CHECKSUM
        assert sb.send(V6_ADVERT, MCAST_V6)
        assert receive(sa).src == IPv6Address("fe80::2")
        assert nothing_for(sa)
        assert nothing_for(sb)
        assert not sa.stats.dropped and not sb.stats.dropped  # loop off: not even delivered


@needs_lab
def test_v6_bad_checksum_never_reaches_us(a: Node, b: Node) -> None:
    def plain() -> socket.socket:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)  # no IPV6_CHECKSUM: sends as given
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"va")
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("va"))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        return s

    ifa = a.ifindex("va")
    with a.call(plain) as raw, b.call(lambda: VrrpSocket("vb", IPv6Address("fe80::2"))) as sb:
        raw.sendto(V6_ADVERT[:6] + b"\xde\xad" + V6_ADVERT[8:], ("ff02::12", 0, 0, ifa))
        assert nothing_for(sb, 0.3)
        good = V6_ADVERT[:6] + V6_CHECKSUM + V6_ADVERT[8:]
        raw.sendto(good, ("ff02::12", 0, 0, ifa))
        assert receive(sb).payload == good


@needs_lab
def test_v6_traffic_class_and_mcast_src_ip(a: Node, b: Node) -> None:
    """mcast_src_ip: a global source instead of the link-local one; TC 0xc0."""

    def plain() -> socket.socket:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"vb")
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
        mreq = MCAST_V6.packed + struct.pack("@I", socket.if_nametoindex("vb"))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        return s

    with (
        a.call(lambda: VrrpSocket("va", IPv6Address("2001:db8::1"))) as sa,
        b.call(plain) as raw,
        b.call(lambda: VrrpSocket("vb", IPv6Address("fe80::2"))) as sb,
    ):
        sa.send(V6_ADVERT, MCAST_V6)
        assert receive(sb).src == IPv6Address("2001:db8::1")
        assert readable(raw, 2)
        _data, anc, _flags, _addr = raw.recvmsg(2048, 256)
    tclass = [struct.unpack("@i", v)[0] for lvl, t, v in anc if (lvl, t) == (socket.IPPROTO_IPV6, socket.IPV6_TCLASS)]
    assert tclass == [0xC0]


@needs_lab
def test_custom_multicast_group(a: Node, b: Node) -> None:
    """vrrp_mcast_group4: both ends on 224.0.0.19 hear each other; a default-group socket
    does not get those adverts."""
    group = IPv4Address("224.0.0.19")
    with (
        a.call(lambda: VrrpSocket("va", IPv4Address("192.0.2.1"), group=group)) as sa,
        b.call(lambda: VrrpSocket("vb", IPv4Address("192.0.2.2"), group=group)) as sb,
        b.call(lambda: VrrpSocket("vb", IPv4Address("192.0.2.2"))) as sb_default,
    ):
        sa.send(V4_ADVERT, group)
        assert receive(sb).dst == group
        assert nothing_for(sb_default)


# --------------------------------------------------------------------------- unicast


@needs_lab
def test_v4_unicast(a: Node, b: Node) -> None:
    a_src, b_src = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
    with (
        a.call(lambda: VrrpSocket("va", a_src, unicast=True)) as sa,
        b.call(lambda: VrrpSocket("vb", b_src, unicast=True)) as sb,
        b.call(lambda: VrrpSocket("vb", b_src)) as sb_multicast,
    ):
        assert sa.key == ("va", 4, a_src, 112)
        assert sa.send(V4_ADVERT, b_src)
        assert receive(sb) == Received(V4_ADVERT, a_src, b_src, 255, b.ifindex("vb"))
        # The multicast socket on the same interface is handed the unicast packet by the
        # kernel (it is unbound) and drops it.
        assert nothing_for(sb_multicast)
        assert sb_multicast.stats.dropped["not_group"] == 1
        # Per-packet TTL (an instance's unicast_ttl on a shared socket).
        assert sa.send(V4_ADVERT, b_src, ttl=17)
        assert receive(sb).ttl == 17
        assert sb.send(V4_ADVERT, a_src)
        assert receive(sa).src == b_src
        assert nothing_for(sa)


@needs_lab
def test_v4_unicast_ttl_and_one_copy_per_peer(a: Node, b: Node) -> None:
    a_src = IPv4Address("192.0.2.1")
    peers = [IPv4Address("192.0.2.2"), IPv4Address("192.0.2.3")]
    b.ip("addr", "add", "192.0.2.3/24", "dev", "vb")
    with (
        a.call(lambda: VrrpSocket("va", a_src, unicast=True, unicast_ttl=64)) as sa,
        b.call(lambda: VrrpSocket("vb", peers[0], unicast=True)) as sb2,
        b.call(lambda: VrrpSocket("vb", peers[1], unicast=True)) as sb3,
    ):
        # Each copy is built for its destination (as the v3 IPv4 checksum must be).
        assert sa.send_each(lambda dst: V4_ADVERT + dst.packed, peers) == 2
        got2, got3 = receive(sb2), receive(sb3)
        assert (got2.payload, got2.dst, got2.ttl) == (V4_ADVERT + peers[0].packed, peers[0], 64)
        assert (got3.payload, got3.dst, got3.ttl) == (V4_ADVERT + peers[1].packed, peers[1], 64)
        assert nothing_for(sb2) and nothing_for(sb3)


@needs_lab
def test_v6_unicast_hop_limit(a: Node, b: Node) -> None:
    """keepalived 2.2.7 sends IPv6 unicast with the kernel's hop limit (64 here) unless
    unicast_ttl is set."""
    a_src, b_src = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
    with (
        a.call(lambda: VrrpSocket("va", a_src, unicast=True)) as sa,
        a.call(lambda: VrrpSocket("va", IPv6Address("fe80::1"), unicast=True, unicast_ttl=255)) as sa_ll,
        b.call(lambda: VrrpSocket("vb", b_src, unicast=True)) as sb,
        b.call(lambda: VrrpSocket("vb", IPv6Address("fe80::2"), unicast=True)) as sb_ll,
    ):
        default_hops = int(a.sysctl("ipv6/conf/va/hop_limit"))
        assert sa.send(V6_ADVERT, b_src)
        rx = receive(sb)
        assert (rx.src, rx.dst, rx.ttl, rx.ifindex) == (a_src, b_src, default_hops, b.ifindex("vb"))
        assert rx.payload[6:8] != b"\0\0"  # checksummed by the kernel for this pair
        assert sa_ll.send(V6_ADVERT, IPv6Address("fe80::2"))
        rx = receive(sb_ll)
        assert (rx.src, rx.dst, rx.ttl) == (IPv6Address("fe80::1"), IPv6Address("fe80::2"), 255)
        assert rx.payload[6:8] != b"\0\0"
        assert nothing_for(sa) and nothing_for(sa_ll)


@needs_lab
def test_unicast_peer_table_on_the_socket(a: Node, b: Node) -> None:
    a_src, b_src = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
    only_other = PeerTable.of([UnicastPeer(IPv4Address("192.0.2.99"))], check_unicast_src=True)
    ttl_window = PeerTable.of([UnicastPeer(a_src, min_ttl=200, max_ttl=254)], check_unicast_src=False)
    with (
        a.call(lambda: VrrpSocket("va", a_src, unicast=True)) as sa,
        b.call(lambda: VrrpSocket("vb", b_src, unicast=True, peers=only_other)) as sb,
    ):
        sa.send(V4_ADVERT, b_src)
        assert nothing_for(sb)
        assert sb.stats.dropped["not_peer"] == 1
        sb.peers = ttl_window
        sa.send(V4_ADVERT, b_src)  # TTL 255 > max_ttl
        assert nothing_for(sb)
        assert sb.stats.dropped["peer_ttl"] == 1
        sa.send(V4_ADVERT, b_src, ttl=254)
        assert receive(sb).ttl == 254


@needs_lab
def test_unicast_to_ourselves_is_dropped(a: Node, b: Node) -> None:
    """A peer list copied to every node names the node itself: its own copy comes back
    over loopback and must not count as a peer's advert."""
    a_src = IPv4Address("192.0.2.1")
    with a.call(lambda: VrrpSocket("va", a_src, unicast=True)) as sa:
        sa.send(V4_ADVERT, a_src)
        assert nothing_for(sa)
        assert sa.stats.dropped["own"] == 1


# ----------------------------------------------------------------------------- load


@needs_lab
@pytest.mark.parametrize("family", [4, 6])
def test_burst_of_250_all_received_on_the_loop(a: Node, b: Node, family: int) -> None:
    """250 instances sending at once: every advert arrives, in order, through add_reader."""
    a_src, b_src, group, base = (
        (ip_address("192.0.2.1"), ip_address("192.0.2.2"), MCAST_V4, V4_ADVERT)
        if family == 4
        else (ip_address("fe80::1"), ip_address("fe80::2"), MCAST_V6, V6_ADVERT)
    )
    adverts = [base[:1] + bytes([i]) + base[2:] for i in range(1, 251)]
    with (
        a.call(lambda: VrrpSocket("va", a_src)) as sa,
        b.call(lambda: VrrpSocket("vb", b_src)) as sb,
    ):

        async def run() -> list[Received]:
            got: list[Received] = []
            done = asyncio.Event()

            def handler(rx: Received) -> None:
                got.append(rx)
                if len(got) == len(adverts):
                    done.set()

            sb.attach(asyncio.get_running_loop(), handler)
            try:
                assert all(sa.send(p, group) for p in adverts)
                await asyncio.wait_for(done.wait(), 5)
            finally:
                sb.detach()
            return got

        got = asyncio.run(run())
    assert [rx.payload[1] for rx in got] == list(range(1, 251))
    assert {(rx.src, rx.dst, rx.ttl) for rx in got} == {(a_src, group, 255)}
    assert sb.stats.received == 250 and not sb.stats.dropped


@contextlib.contextmanager
def twenty_queued(a: Node, b: Node) -> Iterator[VrrpSocket]:
    """Node b's socket with 20 adverts from node a queued on it (VRIDs 1-20)."""
    with (
        a.call(lambda: VrrpSocket("va", IPv4Address("192.0.2.1"))) as sa,
        b.call(lambda: VrrpSocket("vb", IPv4Address("192.0.2.2"))) as sb,
    ):
        for i in range(20):
            sa.send(V4_ADVERT[:1] + bytes([i + 1]) + V4_ADVERT[2:], MCAST_V4)
        assert readable(sb, 2)
        time.sleep(0.1)
        yield sb


@needs_lab
def test_a_costly_burst_lets_the_loop_run_between(a: Node, b: Node) -> None:
    """The reader stops handling after DRAIN_BUDGET and resumes on the next pass: the loop's
    timers (the heartbeat the parent waits for) run in between, and nothing is lost."""
    cost = 0.004
    with twenty_queued(a, b) as sb:

        async def run() -> tuple[list[Received], list[int]]:
            loop = asyncio.get_running_loop()
            got: list[Received] = []
            passes: list[int] = []  # messages handled when each pass's timer ran
            done = asyncio.Event()

            def handler(rx: Received) -> None:
                got.append(rx)
                time.sleep(cost)  # a costly advert: a MASTER that steps down

            def each_pass() -> None:
                passes.append(len(got))
                if len(got) < 20:
                    loop.call_soon(each_pass)
                else:
                    done.set()

            sb.attach(loop, handler)
            loop.call_soon(each_pass)
            try:
                await asyncio.wait_for(done.wait(), 5)
            finally:
                sb.detach()
            return got, passes

        got, passes = asyncio.run(run())
    assert [rx.payload[1] for rx in got] == list(range(1, 21))
    steps = [later - earlier for earlier, later in itertools.pairwise(passes)]
    assert max(steps) <= math.ceil(sockets.DRAIN_BUDGET / cost) + 1, steps


@needs_lab
def test_drain_is_bounded_and_resumes(a: Node, b: Node) -> None:
    with twenty_queued(a, b) as sb:
        first = sb.drain(limit=5)
        rest = sb.drain()
        assert [rx.payload[1] for rx in first + rest] == list(range(1, 21))
        assert len(first) == 5
        assert sb.drain() == []


def test_rcvbuf_is_large() -> None:
    if os.geteuid() != 0:
        pytest.skip("raw sockets need root")
    with VrrpSocket("lo", IPv4Address("127.0.0.1"), unicast=True) as s:
        # SO_RCVBUFFORCE past rmem_max; the kernel reports twice what was asked.
        assert s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 2 * (4 << 20)
        assert s.sock.getblocking() is False


def burst(sa: VrrpSocket, count: int) -> None:
    for i in range(count):
        assert sa.send(V4_ADVERT[:1] + bytes([i % 255 + 1]) + V4_ADVERT[2:], MCAST_V4)


@needs_lab
def test_a_burst_of_1000_waits_unread_without_a_drop(a: Node, b: Node) -> None:
    """A stopping master of 1,000 instances: its priority 0 adverts queue while the loop is
    busy elsewhere, and all are there when it reads."""
    with (
        a.call(lambda: VrrpSocket("va", IPv4Address("192.0.2.1"))) as sa,
        b.call(lambda: VrrpSocket("vb", IPv4Address("192.0.2.2"))) as sb,
    ):
        burst(sa, 1000)
        time.sleep(0.2)
        got = [rx for _ in range(4) for rx in sb.drain(limit=1000)]
        assert len(got) == 1000
        assert sb.stats.overflow == 0


@needs_lab
def test_kernel_drops_for_a_full_buffer_are_counted_and_logged(
    a: Node, b: Node, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        a.call(lambda: VrrpSocket("va", IPv4Address("192.0.2.1"))) as sa,
        b.call(lambda: VrrpSocket("vb", IPv4Address("192.0.2.2"), rcvbuf=4096)) as sb,
    ):
        burst(sa, 200)
        time.sleep(0.2)
        got = sb.drain(limit=1000)
        burst(sa, 1)  # the count comes with the next datagram queued after a drop
        time.sleep(0.1)
        got += sb.drain()
    assert sb.stats.overflow > 0
    assert len(got) + sb.stats.overflow == 201
    assert f"VRRP receive queue on vb overflowed: {sb.stats.overflow} adverts dropped" in caplog.text


# ----------------------------------------------------------------------- interop

KEEPALIVED_CONF = """
global_defs {{ vrrp_version 3 }}
vrrp_instance M4 {{
  interface va
  virtual_router_id 61
  advert_int 0.1
  virtual_ipaddress {{ 192.0.2.61/24 }}
}}
vrrp_instance U4 {{
  interface va
  virtual_router_id 62
  advert_int 0.1
  unicast_src_ip 192.0.2.1
  unicast_peer {{ 192.0.2.2 }}
  virtual_ipaddress {{ 192.0.2.62/24 }}
}}
vrrp_instance M6 {{
  interface va
  virtual_router_id 63
  advert_int 0.1
  virtual_ipaddress {{ fe80::63/64
    2001:db8::63/64 }}
}}
"""


@needs_lab
@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
def test_keepalived_hears_us_and_we_hear_it(a: Node, b: Node) -> None:
    """keepalived 2.2.7 in A becomes master of a v3 IPv4 multicast, an IPv4 unicast and an
    IPv6 multicast router; B's sockets receive its adverts (and packet.decode takes them),
    then B's priority-200 adverts, sent through the same sockets, make it back off: the
    kernel-built headers and our source addresses pass keepalived's checks, the v3 IPv4
    pseudo-header checksum included."""
    from vrrp_child.packet import Advert, decode, encode

    b4, b6, a4 = ip_address("192.0.2.2"), ip_address("fe80::2"), ip_address("192.0.2.1")
    with (
        b.call(lambda: VrrpSocket("vb", b4)) as m4,
        b.call(lambda: VrrpSocket("vb", b4, unicast=True)) as u4,
        b.call(lambda: VrrpSocket("vb", b6)) as m6,
        a.keepalived(KEEPALIVED_CONF.format()) as keepalived,  # SIGTERM at the end of the block
    ):
        heard: dict[int, tuple[object, ...]] = {}
        deadline = time.monotonic() + 8
        while len(heard) < 3 and time.monotonic() < deadline:
            for s in select.select([m4, u4, m6], [], [], 0.2)[0]:
                while (rx := s.recv()) is not None:
                    adv = decode(rx.payload, rx.src, rx.dst, rx.ttl, multicast=not s.unicast)
                    heard[adv.vrid] = (rx.src, rx.dst, rx.ttl, adv.priority)
        assert heard == {
            61: (a4, MCAST_V4, 255, 100),
            62: (a4, b4, 255, 100),
            63: (ip_address("fe80::1"), MCAST_V6, 255, 100),
        }
        vips6 = (ip_address("fe80::63"), ip_address("2001:db8::63"))
        for _ in range(10):
            m4.send(encode(Advert(3, 61, 200, (ip_address("192.0.2.61"),), 10), b4, MCAST_V4), MCAST_V4)
            u4.send(encode(Advert(3, 62, 200, (ip_address("192.0.2.62"),), 10), b4, a4), a4)
            m6.send(encode(Advert(3, 63, 200, vips6, 10), b6, MCAST_V6), MCAST_V6)
            time.sleep(0.05)
    text = keepalived.log_text()
    for name, src in (("M4", b4), ("U4", b4), ("M6", b6)):
        assert f"({name}) Master received advert from {src} with higher priority 200, ours 100" in text


# ----------------------------------------------------------------------- IPsec AH (51)


@needs_lab
@pytest.mark.parametrize("unicast", [False, True])
def test_ah_datagram_as_built(a: Node, b: Node, unicast: bool) -> None:
    """auth_type AH: protocol 51 with IP_HDRINCL. The datagram arrives as ah.seal built it
    (TOS 0xc0, our IP ID, TTL 255, no DF; the kernel only fills the header checksum), so the
    ICV checks; `payload` is the VRRP message after the AH."""
    a_src, b_src = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
    dst = b_src if unicast else MCAST_V4
    key = ah.key_of(b"secret1")
    data = ah.seal(V4_ADVERT, a_src, dst, key=key, seq=7, ip_id=3, unicast=unicast)
    with (
        a.call(lambda: VrrpSocket("va", a_src, unicast=unicast, proto=ah.AH_PROTO)) as sa,
        b.call(lambda: VrrpSocket("vb", b_src, unicast=unicast, proto=ah.AH_PROTO)) as sb,
        b.call(lambda: VrrpSocket("vb", b_src, unicast=unicast)) as sb_vrrp,
    ):
        assert sa.key == ("va", 4, a_src if unicast else None, 51)
        assert sa.send(data, dst)
        rx = receive(sb)
        assert rx == Received(V4_ADVERT, a_src, dst, 255, b.ifindex("vb"), data)
        assert ah.unseal(rx.datagram, key, unicast=unicast).seq == 7
        assert nothing_for(sb_vrrp)  # protocol 112 sockets do not see it


def test_ah_is_ipv4_only() -> None:
    with pytest.raises(ValueError, match="IPv4"):
        VrrpSocket("lo", IPv6Address("::1"), proto=51)
