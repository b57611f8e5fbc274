"""Interfaces and addresses over rtnetlink: what the VRRP child asks the kernel.

Messages are pyroute2's rtnetlink codecs (ifinfmsg, ifaddrmsg) sent on our own
NETLINK_ROUTE socket. Two reasons not to go through pyroute2's IPRoute objects:
- pyroute2 0.9's synchronous IPRoute runs its own asyncio loop and refuses to work while
  the child's loop is running, and AsyncIPRoute waits for one reply per request;
- VIPs must go in as a batch: many requests in one sendmsg(), with only the last one
  asking for an ACK (the kernel still answers every failed request with an error, in
  order, so the final ACK proves that everything before it has been processed).
The kernel does rtnetlink work inside sendmsg(): measured in a namespace, 250 VIPs go in
as a batch in about 0.9 ms (2.4 ms one request at a time on this socket, 39 ms with
IPRoute.addr one by one), so batches run on the loop without a thread. Encoding is the
costly part (about 40 us a request in pyroute2), hence the cache in `address_request`.

keepalived's way (vrrp_ipaddress.c, man keepalived.conf "virtual_ipaddress") followed here:
- IPv6 VIPs always get IFA_F_NODAD: a backup must never DAD-fail the master's address;
- no broadcast address unless `brd` is given; the label only for IPv4;
- the address protocol is RTPROT_KEEPALIVED (18, "keepalived" in rt_protos) in IFA_PROTO,
  which kernels from 6.1 keep and older ones ignore.
Adding a present address or removing an absent one is not an error: the answer says
which requests changed something.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
)
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from conf.addresses import IpAddressEntry
from conf.values import IPAddress
from watchdog.rtmarshal import RtnlMarshal

# rt_protos: "18 keepalived"; carried in IFA_PROTO (Linux 6.1) so that `ip -d addr`
# shows who owns the address.
RTPROT_KEEPALIVED = 18

# linux/if_addr.h
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
IFA_F_HOMEADDRESS = 0x10
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
IFA_F_MCAUTOJOIN = 0x400
INFINITY_LIFE_TIME = 0xFFFFFFFF

# linux/if.h
IFF_UP = 0x1
IFF_RUNNING = 0x40

# linux/netlink.h socket options and ACK flags
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_ERR = struct.Struct("=i")
_RECV_SIZE = 1 << 16
# Requests per sendmsg(): every failed one queues an error on our socket, and each of
# those costs about a page of receive buffer, so a chunk must fit in it.
CHUNK = 128
_RCVBUF = 1 << 20
_TIMEOUT = 5.0

# Idempotence: "already there" for an add, "not there" for a removal.
_ADD_NOOP = frozenset({errno.EEXIST})
_DEL_NOOP = frozenset({errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH})


class NetlinkError(OSError):
    """A request the kernel refused (errno and, where the kernel says it, why)."""


@dataclass(frozen=True)
class Interface:
    """One link as the VRRP child needs it."""

    index: int
    name: str
    mac: str  # "aa:bb:cc:dd:ee:ff"; "" for links without one
    up: bool  # IFF_UP: administratively up
    running: bool  # IFF_RUNNING: carrier, operationally up
    mtu: int
    kind: str | None  # IFLA_INFO_KIND ("macvlan", "veth", ...), None for plain devices
    link: int | None  # IFLA_LINK: the lower device (a macvlan's base interface)
    primary_ipv4: ipaddress.IPv4Address | None
    link_local_ipv6: ipaddress.IPv6Address | None
    flags: int = 0  # ifi_flags (IFF_*), for the link watch's log lines as keepalived prints them


@dataclass(frozen=True)
class Failure:
    entry: IpAddressEntry
    ifname: str
    errno: int
    message: str


Item = tuple[IpAddressEntry, str]


@dataclass(frozen=True)
class BatchResult:
    """What one add or remove batch did: `changed` were added/removed now, `unchanged`
    were already present (add) or already absent (remove)."""

    changed: tuple[Item, ...] = ()
    unchanged: tuple[Item, ...] = ()
    failed: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Pending:
    item: Item
    data: bytes
    seq: int = 0
    error: int = 0
    message: str = field(default="")


class Rtnl:
    """A NETLINK_ROUTE socket for requests (no multicast groups: it never receives
    anything it did not ask for). Every call is synchronous and short."""

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _RCVBUF)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK):
                # Older kernels lack some of these; they only make answers smaller/filtered.
                with contextlib.suppress(OSError):
                    sock.setsockopt(SOL_NETLINK, opt, 1)
            sock.bind((0, 0))
            sock.settimeout(_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._seq = 0
        self._marshal = RtnlMarshal()

    def close(self) -> None:
        self._sock.close()

    @property
    def portid(self) -> int:
        """The kernel puts it in the notifications of the changes this socket asks for."""
        return int(self._sock.getsockname()[0])

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ low level

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0x7FFFFFFF or 1
        return self._seq

    @staticmethod
    def _encode(msg: Any, mtype: int, flags: int, seq: int) -> bytes:
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = seq
        msg["header"]["pid"] = 0
        msg.encode()
        return bytes(msg.data)

    def _recv(self) -> Iterator[tuple[int, int, int, bytes, int]]:
        """Yield (type, flags, seq, buffer, offset) for each message of one datagram."""
        data = self._sock.recv(_RECV_SIZE)
        off = 0
        while off + _HDR.size <= len(data):
            length, mtype, flags, seq, _pid = _HDR.unpack_from(data, off)
            if length < _HDR.size:
                break
            yield mtype, flags, seq, data, off
            off += (length + 3) & ~3

    @staticmethod
    def _error_of(data: bytes, off: int, flags: int) -> tuple[int, str]:
        """The errno (positive, 0 for an ACK) and the extended ACK text of NLMSG_ERROR."""
        (code,) = _ERR.unpack_from(data, off + _HDR.size)
        text = ""
        if flags & NLM_F_ACK_TLVS:
            inner = off + _HDR.size + _ERR.size
            inner_len = _HDR.size if flags & NLM_F_CAPPED else _HDR.unpack_from(data, inner)[0]
            pos = inner + ((inner_len + 3) & ~3)
            end = off + _HDR.unpack_from(data, off)[0]
            while pos + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, pos)
                if alen < 4:
                    break
                if atype & 0x3FFF == NLMSGERR_ATTR_MSG:
                    text = data[pos + 4 : pos + alen].split(b"\0", 1)[0].decode(errors="replace")
                pos += (alen + 3) & ~3
        return -code, text

    def transact(self, requests: Sequence[bytes]) -> list[tuple[int, str]]:
        """Send encoded requests in chunks, one sendmsg() each, with an ACK asked only on a
        chunk's last request; return (errno, extended ACK text) per request, errno 0 for
        success. The sequence numbers and the ACK flag are written here."""
        results: list[tuple[int, str]] = [(0, "")] * len(requests)
        for start in range(0, len(requests), CHUNK):
            chunk = requests[start : start + CHUNK]
            seqs: dict[int, int] = {}
            buf = bytearray()
            for i, data in enumerate(chunk):
                seq = self._next_seq()
                seqs[seq] = start + i
                at = len(buf)
                buf += data
                length, mtype, flags, _seq, _pid = _HDR.unpack_from(data)
                if i == len(chunk) - 1:
                    flags |= NLM_F_ACK
                _HDR.pack_into(buf, at, length, mtype, flags, seq, 0)
                buf += bytes(-len(buf) % 4)
            self._sock.send(buf)
            last_seq = self._seq
            done = False
            while not done:
                for mtype, flags, seq, data, off in self._recv():
                    if mtype != NLMSG_ERROR or seq not in seqs:
                        continue
                    results[seqs[seq]] = self._error_of(data, off, flags)
                    done = done or seq == last_seq
        return results

    def request(self, msg: Any, mtype: int, flags: int = 0) -> None:
        """One request with an ACK; raise NetlinkError if the kernel refuses it."""
        data = self._encode(msg, mtype, NLM_F_REQUEST | flags, 0)
        ((err, text),) = self.transact([data])
        if err:
            raise NetlinkError(err, text or os.strerror(err))

    def dump(self, msg: Any, mtype: int, dump: bool = True) -> list[Any]:
        """A dump request, or a plain get (`dump` False) answered by one message; the
        decoded replies."""
        seq = self._next_seq()
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else 0)
        self._sock.send(self._encode(msg, mtype, flags, seq))
        out: list[Any] = []
        while True:
            for mtype_in, mflags, mseq, data, off in self._recv():
                if mseq != seq:
                    continue
                if mtype_in == NLMSG_DONE:
                    return out
                if mtype_in == NLMSG_ERROR:
                    err, text = self._error_of(data, off, mflags)
                    if err:
                        raise NetlinkError(err, text or os.strerror(err))
                    return out
                length = _HDR.unpack_from(data, off)[0]
                out.extend(self._marshal.parse(data[off : off + length]))
                if not flags & NLM_F_DUMP:
                    return out

    # ------------------------------------------------------------ links

    def link_index(self, name: str) -> int | None:
        try:
            return socket.if_nametoindex(name)
        except OSError:
            return None

    def links(self, index: int = 0, name: str | None = None) -> list[Any]:
        """RTM_GETLINK: one link by index or name, or all of them."""
        msg = ifinfmsg()
        msg["index"] = index
        if name is not None and not index:
            idx = self.link_index(name)
            if idx is None:
                return []
            msg["index"] = idx
        try:
            return self.dump(msg, RTM_GETLINK, dump=not msg["index"])
        except NetlinkError as e:
            if e.errno == errno.ENODEV:
                return []
            raise

    def addresses(self, index: int = 0, family: int = socket.AF_UNSPEC) -> list[Any]:
        """RTM_GETADDR for one interface (filtered in the kernel with strict checking)."""
        msg = ifaddrmsg()
        msg["family"] = family
        msg["index"] = index
        replies = self.dump(msg, RTM_GETADDR)
        return [r for r in replies if not index or r["index"] == index]

    def interface(self, name: str, exclude: Iterable[IPAddress] = ()) -> Interface | None:
        """The interface called `name`, or None. The primary IPv4 address is the first
        non-secondary one the kernel lists (the oldest, as keepalived picks it), and the
        link-local IPv6 address the first fe80::/10 one; `exclude` skips our own VIPs."""
        replies = self.links(name=name)
        if not replies:
            return None
        link = replies[0]
        skip = {ipaddress.ip_address(a) for a in exclude}
        v4: ipaddress.IPv4Address | None = None
        v6: ipaddress.IPv6Address | None = None
        for a in self.addresses(link["index"]):
            local = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
            if local is None:
                continue
            ip = ipaddress.ip_address(local)
            if ip in skip:
                continue
            flags = a.get_attr("IFA_FLAGS") or a["flags"]
            if isinstance(ip, ipaddress.IPv4Address):
                if v4 is None and not flags & IFA_F_SECONDARY:
                    v4 = ip
            elif v6 is None and ip.is_link_local and not flags & IFA_F_TENTATIVE:
                v6 = ip
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        lower = link.get_attr("IFLA_LINK")
        return Interface(
            flags=link["flags"],
            index=link["index"],
            name=link.get_attr("IFLA_IFNAME"),
            mac=link.get_attr("IFLA_ADDRESS") or "",
            up=bool(link["flags"] & IFF_UP),
            running=bool(link["flags"] & IFF_RUNNING),
            mtu=link.get_attr("IFLA_MTU") or 0,
            kind=kind,
            link=lower if lower and lower != link["index"] else None,
            primary_ipv4=v4,
            link_local_ipv6=v6,
        )

    def set_link_up(self, index: int, up: bool = True) -> None:
        msg = ifinfmsg()
        msg["index"] = index
        msg["change"] = IFF_UP
        msg["flags"] = IFF_UP if up else 0
        self.request(msg, RTM_NEWLINK)

    def delete_link(self, index: int) -> bool:
        """Delete a link; False if it was already gone."""
        msg = ifinfmsg()
        msg["index"] = index
        try:
            self.request(msg, RTM_DELLINK)
        except NetlinkError as e:
            if e.errno == errno.ENODEV:
                return False
            raise
        return True

    # ------------------------------------------------------------ addresses

    def add_addresses(self, items: Iterable[Item]) -> BatchResult:
        """Add VIPs (virtual_ipaddress / virtual_ipaddress_excluded entries, each with the
        interface it goes on) as one batch."""
        return self._batch(items, add=True)

    def remove_addresses(self, items: Iterable[Item]) -> BatchResult:
        return self._batch(items, add=False)

    def present_addresses(self, ifname: str) -> frozenset[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """Every address on `ifname` with its prefix length (empty if there is no such link)."""
        index = self.link_index(ifname)
        if index is None:
            return frozenset()
        out: set[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = set()
        for a in self.addresses(index):
            local = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
            if local is not None:
                out.add(ipaddress.ip_interface(f"{local}/{a['prefixlen']}"))
        return frozenset(out)

    def which_present(self, items: Iterable[Item]) -> list[Item]:
        """The items whose address (with its prefix length) is on its interface."""
        cache: dict[str, frozenset[ipaddress.IPv4Interface | ipaddress.IPv6Interface]] = {}
        out: list[Item] = []
        for entry, ifname in items:
            if ifname not in cache:
                cache[ifname] = self.present_addresses(ifname)
            if entry.address in cache[ifname]:
                out.append((entry, ifname))
        return out

    def remove_stale(self, items: Iterable[Item]) -> BatchResult:
        """Start-up clean-up: keepalived removes the VIPs of an instance starting as BACKUP
        that a previous run (crashed, or killed with -9) left on the interfaces, so that
        two nodes never answer for them. Only the present ones are asked to go."""
        return self.remove_addresses(self.which_present(items))

    def prepare(self, items: Iterable[Item]) -> None:
        """Encode the add and remove requests of these items ahead of need (the workload does
        it when its instances start as BACKUP, so that becoming MASTER costs only the kernel's
        work)."""
        for entry, ifname in items:
            index = self.link_index(ifname)
            if index is not None:
                address_request(entry, index, True)
                address_request(entry, index, False)

    def _batch(self, items: Iterable[Item], add: bool) -> BatchResult:
        pending: list[_Pending] = []
        failed: list[Failure] = []
        indexes: dict[str, int | None] = {}
        for entry, ifname in items:
            if ifname not in indexes:
                indexes[ifname] = self.link_index(ifname)
            index = indexes[ifname]
            if index is None:
                failed.append(Failure(entry, ifname, errno.ENODEV, f"no interface {ifname}"))
                continue
            pending.append(_Pending((entry, ifname), address_request(entry, index, add)))
        answers = self.transact([p.data for p in pending])
        noop = _ADD_NOOP if add else _DEL_NOOP
        changed: list[Item] = []
        unchanged: list[Item] = []
        for p, (err, text) in zip(pending, answers, strict=True):
            if not err:
                changed.append(p.item)
            elif err in noop:
                unchanged.append(p.item)
            else:
                failed.append(Failure(p.item[0], p.item[1], err, text or os.strerror(err)))
        return BatchResult(tuple(changed), tuple(unchanged), tuple(failed))


@functools.lru_cache(maxsize=16384)
def address_request(entry: IpAddressEntry, index: int, add: bool) -> bytes:
    """RTM_NEWADDR / RTM_DELADDR for one entry, without its sequence number (set when the
    batch is sent). The options are keepalived's (man keepalived.conf, virtual_ipaddress).

    Cached: pyroute2 takes about 40 us to encode one request while the kernel adds 250
    addresses in under 1 ms, so an instance's requests are encoded once (see
    `Rtnl.prepare`) and a takeover only pays for the kernel's work."""
    msg = ifaddrmsg()
    v6 = entry.family == 6
    msg["family"] = socket.AF_INET6 if v6 else socket.AF_INET
    msg["prefixlen"] = entry.prefixlen
    msg["index"] = index
    msg["scope"] = entry.scope or 0
    local = str(entry.ip)
    attrs: list[tuple[str, Any]] = [("IFA_LOCAL", local), ("IFA_ADDRESS", str(entry.peer) if entry.peer else local)]
    if not v6 and entry.label:
        attrs.append(("IFA_LABEL", entry.label))
    if add:
        flags = 0
        if v6 or entry.nodad:
            flags |= IFA_F_NODAD
        if entry.home:
            flags |= IFA_F_HOMEADDRESS
        if entry.mngtmpaddr:
            flags |= IFA_F_MANAGETEMPADDR
        if entry.noprefixroute:
            flags |= IFA_F_NOPREFIXROUTE
        if entry.autojoin:
            flags |= IFA_F_MCAUTOJOIN
        msg["flags"] = flags & 0xFF
        if flags:
            attrs.append(("IFA_FLAGS", flags))
        broadcast = entry.broadcast
        if not v6 and broadcast is not None:
            attrs.append(("IFA_BROADCAST", str(broadcast)))
        if entry.preferred_lft is not None:
            attrs.append(
                (
                    "IFA_CACHEINFO",
                    {"ifa_preferred": entry.preferred_lft, "ifa_valid": INFINITY_LIFE_TIME, "cstamp": 0, "tstamp": 0},
                )
            )
        attrs.append(("IFA_PROTO", RTPROT_KEEPALIVED))
    msg["attrs"] = attrs
    mtype = RTM_NEWADDR if add else RTM_DELADDR
    flags = NLM_F_REQUEST | (NLM_F_CREATE | NLM_F_EXCL if add else 0)
    return Rtnl._encode(msg, mtype, flags, 0)


# Module-level shorthands for one-off callers; a long-lived user keeps one Rtnl.


def add_addresses(items: Iterable[Item], rtnl: Rtnl | None = None) -> BatchResult:
    if rtnl is not None:
        return rtnl.add_addresses(items)
    with Rtnl() as r:
        return r.add_addresses(items)


def remove_addresses(items: Iterable[Item], rtnl: Rtnl | None = None) -> BatchResult:
    if rtnl is not None:
        return rtnl.remove_addresses(items)
    with Rtnl() as r:
        return r.remove_addresses(items)


def present_addresses(
    ifname: str, rtnl: Rtnl | None = None
) -> frozenset[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    if rtnl is not None:
        return rtnl.present_addresses(ifname)
    with Rtnl() as r:
        return r.present_addresses(ifname)


def remove_stale(items: Iterable[Item], rtnl: Rtnl | None = None) -> BatchResult:
    if rtnl is not None:
        return rtnl.remove_stale(items)
    with Rtnl() as r:
        return r.remove_stale(items)


def interface(name: str, rtnl: Rtnl | None = None, exclude: Iterable[IPAddress] = ()) -> Interface | None:
    if rtnl is not None:
        return rtnl.interface(name, exclude)
    with Rtnl() as r:
        return r.interface(name, exclude)
