"""Raw IP protocol 112 sockets for VRRP, one per (interface, family, unicast source),
shared by every instance on it; the caller demultiplexes what `recv` returns by VRID.

What goes on the wire matches keepalived 2.2.7 (checked with tcpdump): IPv4 TOS 0xc0, TTL
255, DF clear; IPv6 traffic class 0xc0, hop limit 255 for multicast and the kernel's
default for unicast unless `unicast_ttl` says otherwise. keepalived builds the IPv4 header
itself (IP_HDRINCL); here the kernel builds it from socket options, so the one thing to get
right is the source address, which the VRRPv3 IPv4 checksum covers (RFC 5798 section
5.2.8): every socket has a known source (`src`), set with bind (unicast), IP_MULTICAST_IF
(IPv4 multicast) or IPV6_PKTINFO on each send (IPv6 multicast).

Receiving:
- IPv4: the kernel hands raw sockets the whole datagram; TTL, source and destination come
  from its header, the interface from IP_PKTINFO.
- IPv6: the payload only; source from recvmsg, destination from IPV6_PKTINFO, hop limit
  from IPV6_HOPLIMIT. IPV6_CHECKSUM (offset 6) makes the kernel fill the VRRPv3 checksum
  on send (it corrects whatever the payload carries) and verify it on receipt, dropping
  bad packets before we see them; a payload `recv` returns therefore still holds a
  checksum that packet.decode accepts.
- Multicast sockets are not bound (a bound raw socket only gets packets addressed to
  its address); they join the group on their interface, with IP(V6)_MULTICAST_ALL off so
  only that membership counts, and drop anything not sent to the group (a unicast advert
  for another socket). IP(V6)_MULTICAST_LOOP is off: a node never hears its own adverts,
  nor do its other instances (keepalived's behaviour: instances on one node do not see
  each other), while another node does.
- Unicast sockets are bound to `unicast_src_ip`, so the kernel gives them only packets
  addressed to it. `unicast_peer` TTL limits and `check_unicast_src` are a `PeerTable`,
  applied by the socket when given one, or by the caller after demultiplexing.
- IPsec AH (`auth_type AH`, vrrp_child.ah): a protocol 51 socket with IP_HDRINCL, as
  keepalived's, since the AH sits between the IP header and the VRRP message and its ICV
  covers the IP header: the caller sends whole datagrams (`ah.seal`). `recv` gives the VRRP
  message after the AH as `payload` (the workload demultiplexes by its VRID) and the whole
  datagram as `datagram` for the ICV check.
- The receive buffer is large (user-reports #13: adverts piling up in Recv-Q) and every
  readiness drains the queue, up to a bound so one busy socket cannot hold the loop. It is
  sized for a burst of priority 0 adverts from a stopping master of 1,000 instances on one
  interface on top of a second of their regular adverts: 8 MiB (SO_RCVBUFFORCE of 4 MiB,
  doubled by the kernel) holds 2,000 datagrams even at a NIC's 4 KiB per datagram (its
  truesize; about 0.8 KiB on a veth). keepalived 2.2.7 sets no SO_RCVBUF by default
  (vrrp_rx_bufs_policy unset) and gets net.core.rmem_default, 208 KiB.
- Datagrams the kernel still drops for a full buffer are counted (SO_RXQ_OVFL: the kernel
  adds the socket's drop count to a datagram only once there was a drop, so this costs
  nothing until then) in `stats.overflow`, and logged once a minute at most: a lost advert
  can mean a needless takeover.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

from conf.vrrp import UnicastPeer
from vrrp_child.ah import AH_LEN, AH_PROTO
from vrrp_child.packet import MCAST_V4, MCAST_V6, VRRP_PROTO, IPAddress

log = logging.getLogger(__name__)

VRRP_TOS = 0xC0  # IPTOS_PREC_INTERNETCONTROL; keepalived sets IP_TOS / IPV6_TCLASS to it
VRRP_TTL = 255  # RFC 3768 5.2.3 / RFC 5798 5.1.1.3: sent with TTL / hop limit 255
CHECKSUM_OFFSET = 6  # RFC 5798 5.1: the checksum is bytes 6-7 of the VRRP message
DEFAULT_RCVBUF = 4 << 20  # the kernel doubles it: 8 MiB, 2,000 adverts at 4 KiB each (see above)
DEFAULT_SNDBUF = 1 << 20  # a burst of adverts (hundreds of instances x peers) must not hit EAGAIN
DRAIN_LIMIT = 512  # packets per readiness; the reader fires again if more are queued
# Seconds of handling per readiness: the loop's timers run between, the heartbeat among them
# (the parent declares a VRRP child hung after 2 advert intervals; 1,000 MASTERs preempted at
# once cost 0.4 ms an advert, 200 ms for one drain)
DRAIN_BUDGET = 0.01

# Linux values the socket module does not export (include/uapi/linux/in.h, in6.h, socket.h).
IP_PKTINFO = 8
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0
IP_FREEBIND = 15
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29
IPV6_FREEBIND = 78
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SO_RXQ_OVFL = 40
OVERFLOW_LOG_EVERY = 60.0  # s between two lines about receive-queue drops

_ANCBUF = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4) + 64
_RECVBUF = 65535
_INT = struct.Struct("@i")
_V6_HOPS = (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)
_IN_PKTINFO = struct.Struct("@i4s4s")  # ipi_ifindex, ipi_spec_dst, ipi_addr
_IN6_PKTINFO = struct.Struct("@16sI")  # ipi6_addr, ipi6_ifindex


@dataclass(frozen=True, slots=True)
class Received:
    """One VRRP message as it arrived. `payload` is the VRRP message (from the version
    field; for IPv4 the IP header is stripped and the data cut at its total length).
    `ttl` is the IPv4 TTL or the IPv6 hop limit; `ifindex` the interface it came in on."""

    payload: bytes
    src: IPAddress
    dst: IPAddress
    ttl: int
    ifindex: int
    datagram: bytes = b""  # protocol 51 (IPsec AH) only: the IPv4 datagram, header included


@dataclass(frozen=True)
class PeerTable:
    """What `unicast_peer { ADDR [min_ttl N] [max_ttl N] }` and `check_unicast_src` accept.

    keepalived drops an advert from a source that is not a peer only with
    `check_unicast_src`, and drops one from a peer whose TTL is outside that peer's
    min_ttl..max_ttl (the limits keep a router a known number of hops away)."""

    ttl_limits: Mapping[IPAddress, tuple[int, int]] = field(default_factory=dict)
    only_peers: bool = False

    @classmethod
    def of(cls, peers: Iterable[UnicastPeer], *, check_unicast_src: bool) -> PeerTable:
        """From the `unicast_peer` lines of the instances that share a socket."""
        limits = {
            p.address: (0 if p.min_ttl is None else p.min_ttl, 255 if p.max_ttl is None else p.max_ttl) for p in peers
        }
        return cls(limits, check_unicast_src)

    def reject(self, rx: Received) -> str | None:
        """Why `rx` is not accepted ("not_peer", "peer_ttl"), or None."""
        limits = self.ttl_limits.get(rx.src)
        if limits is None:
            return "not_peer" if self.only_peers else None
        lo, hi = limits
        return None if lo <= rx.ttl <= hi else "peer_ttl"


@dataclass
class SocketStats:
    received: int = 0
    sent: int = 0
    send_errors: int = 0
    recv_errors: int = 0
    overflow: int = 0  # datagrams the kernel dropped for a full receive buffer (SO_RXQ_OVFL)
    dropped: Counter[str] = field(default_factory=Counter)


class VrrpSocket:
    """A raw protocol 112 socket on one interface for one family.

    `src` is the address adverts go out from (unicast_src_ip, mcast_src_ip, or the
    interface's primary IPv4 / link-local IPv6 address, found by the caller). With
    `unicast=True` the socket is bound to `src` and sends to peers; otherwise it joins
    `group` (vrrp_mcast_group4/6, default 224.0.0.18 / ff02::12) on the interface.
    `unicast_ttl` is keepalived's `unicast_ttl` (None: 255 for IPv4, the kernel's
    default for IPv6, as keepalived 2.2.7 sends). Raises OSError when the socket cannot
    be set up (no such interface, not root)."""

    def __init__(
        self,
        ifname: str,
        src: IPAddress,
        *,
        unicast: bool = False,
        group: IPAddress | None = None,
        unicast_ttl: int | None = None,
        peers: PeerTable | None = None,
        rcvbuf: int = DEFAULT_RCVBUF,
        sndbuf: int = DEFAULT_SNDBUF,
        proto: int = VRRP_PROTO,
    ) -> None:
        self.ifname = ifname
        self.proto = proto
        if proto == AH_PROTO and src.version != 4:
            raise ValueError("IPsec AH is IPv4 only (keepalived refuses it with IPv6)")
        self.family = src.version
        self.src = src
        self.unicast = unicast
        self.group: IPAddress | None = None if unicast else (group or (MCAST_V4 if self.family == 4 else MCAST_V6))
        if self.group is not None and self.group.version != self.family:
            raise ValueError(f"multicast group {self.group} is not of the family of {src}")
        self.peers = peers
        self.stats = SocketStats()
        self.ifindex = socket.if_nametoindex(ifname)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._overflow_logged_at: float | None = None
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        self.sock = socket.socket(af, socket.SOCK_RAW, proto)
        try:
            self._setup(unicast_ttl, rcvbuf, sndbuf)
        except BaseException:
            self.sock.close()
            raise
        # The group's sockaddr is built once: str() of the address cost more than the rest of
        # send(), which a master calls for every advert.
        self._group_addr = self._sockaddr(self.group) if self.group is not None else None
        # IPv6 multicast: the source (link-local, or mcast_src_ip) is chosen per packet.
        self._send_anc: list[tuple[int, int, bytes]] = (
            [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, _IN6_PKTINFO.pack(src.packed, self.ifindex))]
            if self.family == 6 and not unicast
            else []
        )

    @property
    def key(self) -> tuple[str, int, IPAddress | None, int]:
        """What sockets are shared by: (interface, family, unicast source, protocol)."""
        return (self.ifname, self.family, self.src if self.unicast else None, self.proto)

    def _setup(self, unicast_ttl: int | None, rcvbuf: int, sndbuf: int) -> None:
        s = self.sock
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
        _force_buffer(s, SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf)
        _force_buffer(s, SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf)
        s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        if self.family == 4:
            self._setup_v4(unicast_ttl)
        else:
            self._setup_v6(unicast_ttl)

    def _setup_v4(self, unicast_ttl: int | None) -> None:
        s = self.sock
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, VRRP_TOS)
        # keepalived's header has no DF bit; the kernel would set it (PMTU discovery).
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        if self.proto == AH_PROTO:
            # the AH's ICV covers the IP header: we build it (ah.seal), as keepalived does
            s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        if self.unicast:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL if unicast_ttl is None else unicast_ttl)
            s.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            s.bind((str(self.src), 0))
            return
        assert self.group is not None
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        # struct ip_mreqn: the interface by index, and our address as the source of what
        # we send to the group (the kernel uses it as saddr).
        mreqn = struct.pack("@4s4si", self.group.packed, self.src.packed, self.ifindex)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)

    def _setup_v6(self, unicast_ttl: int | None) -> None:
        s = self.sock
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, VRRP_TOS)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, CHECKSUM_OFFSET)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        if self.unicast:
            if unicast_ttl is not None:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, unicast_ttl)
            # The address may still be tentative (DAD) when we start; bind anyway, the
            # kernel delivers to us once it is usable.
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
            assert isinstance(self.src, IPv6Address)
            scope = self.ifindex if self.src.is_link_local else 0
            s.bind((str(self.src), 0, 0, scope))
            return
        assert self.group is not None
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
        # Before Linux 4.20 there is no IPV6_MULTICAST_ALL; SO_BINDTODEVICE still keeps
        # other interfaces' memberships out.
        with contextlib.suppress(OSError):
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
        mreq = self.group.packed + struct.pack("@I", self.ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)

    def fileno(self) -> int:
        return self.sock.fileno()

    # ------------------------------------------------------------------ send

    def send(self, payload: bytes, dst: IPAddress, *, ttl: int | None = None) -> bool:
        """Send one VRRP message to `dst` (the group, or one unicast peer: call once per
        peer, each with its own checksum). `ttl` overrides the socket's TTL / hop limit for
        this packet. False (counted in stats, logged at debug) when the kernel refuses it:
        interface down, no route, buffer full; VRRP's next advert is the retry."""
        anc = self._send_anc
        if ttl is not None:
            cmsg = (socket.IPPROTO_IP, socket.IP_TTL) if self.family == 4 else _V6_HOPS
            anc = [*anc, (*cmsg, _INT.pack(ttl))]
        addr = self._group_addr if dst is self.group and self._group_addr is not None else self._sockaddr(dst)
        try:
            if anc:
                self.sock.sendmsg([payload], anc, 0, addr)
            else:
                self.sock.sendto(payload, addr)
        except OSError as e:
            self.stats.send_errors += 1
            log.debug("VRRP send on %s to %s failed: %s", self.ifname, dst, e)
            return False
        self.stats.sent += 1
        return True

    def _sockaddr(self, dst: IPAddress) -> tuple[str, int] | tuple[str, int, int, int]:
        if self.family == 4:
            return (str(dst), 0)
        assert isinstance(dst, IPv6Address)
        return (str(dst), 0, 0, self.ifindex if (dst.is_link_local or dst.is_multicast) else 0)

    def send_each(self, make: Callable[[IPAddress], bytes], dsts: Iterable[IPAddress]) -> int:
        """Unicast: one copy per peer, each built for its destination (the v3 IPv4
        checksum covers it). Returns how many went out."""
        return sum(self.send(make(dst), dst) for dst in dsts)

    # --------------------------------------------------------------- receive

    def recv(self) -> Received | None:
        """The next acceptable message, or None when nothing is queued. Packets this
        socket should not have (malformed, not to our group, our own, refused by the
        peer table) are counted in `stats.dropped` and skipped."""
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(_RECVBUF, _ANCBUF)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                # An ICMP error queued on the socket, or the interface went away: report
                # once per call and let the next readiness try again.
                self.stats.recv_errors += 1
                if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    log.debug("VRRP receive on %s: %s", self.ifname, e)
                return None
            rx = self._parse_v4(data, anc) if self.family == 4 else self._parse_v6(data, anc, addr)
            if rx is None:
                continue
            reason = self._reject(rx)
            if reason is not None:
                self.stats.dropped[reason] += 1
                continue
            self.stats.received += 1
            return rx

    def drain(self, limit: int = DRAIN_LIMIT) -> list[Received]:
        """Everything queued, up to `limit` messages."""
        out: list[Received] = []
        while len(out) < limit:
            rx = self.recv()
            if rx is None:
                break
            out.append(rx)
        return out

    def attach(self, loop: asyncio.AbstractEventLoop, handler: Callable[[Received], None]) -> None:
        """Call `handler` for every message, from the loop, draining on each readiness up to
        DRAIN_LIMIT messages or DRAIN_BUDGET seconds (the reader fires again on the next pass
        for the rest)."""

        def readable() -> None:
            deadline = loop.time() + DRAIN_BUDGET
            for _ in range(DRAIN_LIMIT):
                rx = self.recv()
                if rx is None:
                    return
                handler(rx)
                if loop.time() >= deadline:
                    return

        self.detach()
        loop.add_reader(self.sock.fileno(), readable)
        self._loop = loop

    def detach(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None

    def close(self) -> None:
        """Stop reading and close; leaving the group is implicit in the close."""
        self.detach()
        self.sock.close()

    def __enter__(self) -> VrrpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reject(self, rx: Received) -> str | None:
        if rx.src == self.src:
            return "own"  # a unicast peer list that names ourselves
        if self.group is not None and rx.dst != self.group:
            return "not_group"
        if self.peers is not None:
            return self.peers.reject(rx)
        return None

    def _overflowed(self, value: bytes) -> None:
        """SO_RXQ_OVFL: the socket's drop count so far (a u32 that wraps)."""
        if len(value) < 4:
            return
        total = int.from_bytes(value[:4], sys.byteorder)
        if total == self.stats.overflow:
            return
        self.stats.overflow = total
        now = time.monotonic()
        if self._overflow_logged_at is None or now - self._overflow_logged_at >= OVERFLOW_LOG_EVERY:
            self._overflow_logged_at = now
            rcvbuf = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            log.warning(
                "VRRP receive queue on %s overflowed: %d adverts dropped by the kernel so far"
                " (receive buffer %d bytes)",
                self.ifname,
                total,
                rcvbuf,
            )

    def _parse_v4(self, data: bytes, anc: list[tuple[int, int, bytes]]) -> Received | None:
        if len(data) < 20 or data[0] >> 4 != 4:
            self.stats.dropped["malformed"] += 1
            return None
        ihl = (data[0] & 0x0F) * 4
        total = int.from_bytes(data[2:4], "big")
        if ihl < 20 or total < ihl or len(data) < ihl:
            self.stats.dropped["malformed"] += 1
            return None
        ifindex = self.ifindex
        for level, kind, value in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= _IN_PKTINFO.size:
                ifindex = _IN_PKTINFO.unpack_from(value)[0]
            elif level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL:
                self._overflowed(value)
        datagram = b""
        start = ihl
        if self.proto == AH_PROTO:
            if total < ihl + AH_LEN or len(data) < total:
                self.stats.dropped["malformed"] += 1
                return None
            datagram = data[:total]
            start = ihl + AH_LEN
        return Received(
            data[start:total],
            _v4_address(data[12:16]),
            _v4_address(data[16:20]),
            data[8],
            ifindex,
            datagram,
        )

    def _parse_v6(self, data: bytes, anc: list[tuple[int, int, bytes]], addr: object) -> Received | None:
        dst: IPAddress | None = None
        ifindex = self.ifindex
        hops = -1
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL:
                self._overflowed(value)
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_PKTINFO and len(value) >= _IN6_PKTINFO.size:
                raw, ifindex = _IN6_PKTINFO.unpack_from(value)
                dst = IPv6Address(raw)
            elif kind == socket.IPV6_HOPLIMIT and len(value) >= _INT.size:
                hops = _INT.unpack_from(value)[0]
        if dst is None or hops < 0 or not isinstance(addr, tuple) or not addr:
            self.stats.dropped["malformed"] += 1
            return None
        # Python gives a scoped link-local source as "fe80::1%eth0"; the scope is ifindex.
        src = ip_address(str(addr[0]).split("%", 1)[0])
        return Received(data, src, dst, hops, ifindex)


_V4_SEEN: dict[bytes, IPv4Address] = {}
_V4_SEEN_MAX = 4096  # addresses kept (the peers and groups adverts come from and go to)


def _v4_address(raw: bytes) -> IPv4Address:
    """IPv4Address of 4 bytes of a header, the same object for the same bytes: building one
    cost more than the rest of parsing a datagram, and equal ones compare at once."""
    addr = _V4_SEEN.get(raw)
    if addr is None:
        if len(_V4_SEEN) >= _V4_SEEN_MAX:
            _V4_SEEN.clear()  # a flood of forged sources must not grow it without bound
        addr = _V4_SEEN[raw] = IPv4Address(raw)
    return addr


def _force_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    """SO_*BUFFORCE goes past net.core.[rw]mem_max (we run as root); else the capped size."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, plain, size)
