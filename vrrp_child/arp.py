"""Gratuitous ARP and unsolicited neighbour advertisements for the VIPs of a new master.

RFC 5798 section 6.4.2 ("Transition to Master"): broadcast a gratuitous ARP for each IPv4
VIP and send an unsolicited neighbour advertisement (RFC 4861 section 7.2.6) for each
IPv6 VIP, so that hosts and switches learn where the addresses went.

The frames are keepalived 2.2.7's, byte for byte (captured on a veth peer):
- ARP: an ARP *request* (opcode 1), Ethernet broadcast, sender and target protocol
  address both the VIP, sender hardware address the sending MAC (the VMAC with
  `use_vmac`, else the interface's), target hardware address ff:ff:ff:ff:ff:ff.
- NA: from the VIP itself to ff02::1 (Ethernet 33:33:00:00:00:01), hop limit 255,
  flags S=0 O=1 and R=1 only when IPv6 forwarding is on for the interface, target the
  VIP, one target link-layer address option with the sending MAC.
The builders are pure; `FrameSender` puts them on the wire with AF_PACKET sockets.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from watchdog.checksum import checksum

log = logging.getLogger("pykeepalived_vrrp")

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ND_NEIGHBOR_ADVERT = 136
ND_OPT_TARGET_LL_ADDR = 2
ND_NA_FLAG_ROUTER = 0x80
ND_NA_FLAG_SOLICITED = 0x40
ND_NA_FLAG_OVERRIDE = 0x20
IPPROTO_ICMPV6 = 58
# RFC 4861 section 7.1.2: a receiver drops an NA whose hop limit is not 255.
ND_HOP_LIMIT = 255

BROADCAST_MAC = b"\xff" * 6
ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"  # RFC 2464 section 7: 33:33 + low 32 bits

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_NA = struct.Struct("!BBHI16sBB6s")

Mac = bytes | str


def mac_bytes(mac: Mac) -> bytes:
    """ "aa:bb:cc:dd:ee:ff" (or the 6 bytes) as 6 bytes."""
    if isinstance(mac, bytes):
        raw = mac
    else:
        parts = mac.split(":")
        if len(parts) != 6:
            raise ValueError(f"not a MAC address: {mac!r}")
        raw = bytes(int(p, 16) for p in parts)
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def gratuitous_arp(mac: Mac, ip: IPv4Address) -> bytes:
    """The 42-byte gratuitous ARP request for `ip` from `mac` (RFC 5227 section 3 calls
    this form an ARP Announcement; keepalived sends the request form)."""
    hw = mac_bytes(mac)
    addr = ip.packed
    return _ETH.pack(BROADCAST_MAC, hw, ETH_P_ARP) + _ARP.pack(
        ARPHRD_ETHER, 0x0800, 6, 4, ARPOP_REQUEST, hw, addr, BROADCAST_MAC, addr
    )


def unsolicited_na(mac: Mac, ip6: IPv6Address, src_ll: IPv6Address | None = None, *, router: bool = False) -> bytes:
    """The 86-byte unsolicited neighbour advertisement for `ip6` from `mac` (RFC 4861
    section 7.2.6: Solicited 0, Override 1, to all-nodes). The IPv6 source is `src_ll`,
    or the VIP itself when None, as keepalived sends it; `router` sets R, which keepalived
    does when the interface forwards IPv6 (see `ipv6_forwarding`)."""
    hw = mac_bytes(mac)
    src = (src_ll or ip6).packed
    dst = ALL_NODES.packed
    flags = ND_NA_FLAG_OVERRIDE | (ND_NA_FLAG_ROUTER if router else 0)
    # RFC 4861 section 4.4; the option length is in units of 8 octets.
    body = _NA.pack(ND_NEIGHBOR_ADVERT, 0, 0, flags << 24, ip6.packed, ND_OPT_TARGET_LL_ADDR, 1, hw)
    pseudo = src + dst + struct.pack("!I3xB", len(body), IPPROTO_ICMPV6)
    csum = checksum(pseudo + body)
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    ip_header = _IP6.pack(6 << 28, len(body), IPPROTO_ICMPV6, ND_HOP_LIMIT, src, dst)
    return _ETH.pack(ALL_NODES_MAC, hw, ETH_P_IPV6) + ip_header + body


def announcement(mac: Mac, ip: IPv4Address | IPv6Address, *, router: bool = False) -> bytes:
    """The GARP or NA frame for one VIP."""
    if isinstance(ip, IPv4Address):
        return gratuitous_arp(mac, ip)
    return unsolicited_na(mac, ip, router=router)


def ipv6_forwarding(ifname: str) -> bool:
    """Whether `ifname` forwards IPv6 (keepalived sets the NA's R flag from this)."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding") as f:
            return f.read().strip() not in ("", "0")
    except OSError:
        return False


# Sending failures that mean "this interface is gone or down": the socket is dropped and
# reopened on the next send.
_GONE = frozenset({errno.ENXIO, errno.ENODEV, errno.ENETDOWN})


def detail_line(ifname: str, frame: bytes) -> str:
    """keepalived's -D line for each frame sent (vrrp_arp.c, vrrp_ndisc.c): the address is the
    ARP sender's (offset 28) or the NA's target (Ethernet 14 + IPv6 40 + ICMPv6 8)."""
    if struct.unpack_from("!H", frame, 12)[0] == ETH_P_ARP:
        return f"Sending gratuitous ARP on {ifname} for {IPv4Address(frame[28:32])}"
    return f"Sending unsolicited Neighbour Advert on {ifname} for {IPv6Address(frame[62:78])}"


class FrameSender:
    """AF_PACKET sockets, one per interface, non-blocking, bound with protocol 0 so that
    they never receive: a send never waits, and a frame the kernel cannot queue now is
    dropped (and counted) rather than delaying the loop; the repeats make up for it."""

    def __init__(self) -> None:
        self._socks: dict[str, socket.socket] = {}
        self.dropped = 0

    def _socket(self, ifname: str) -> socket.socket:
        sock = self._socks.get(ifname)
        if sock is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, 0)
            try:
                sock.bind((ifname, 0))
            except OSError:
                sock.close()
                raise
            self._socks[ifname] = sock
        return sock

    def send(self, ifname: str, frame: bytes) -> bool:
        """Send one Ethernet frame on `ifname`; False if it could not go now."""
        return self.send_many(ifname, (frame,)) == 1

    def send_many(self, ifname: str, frames: Iterable[bytes]) -> int:
        """Send frames on `ifname` in order; the number sent (the rest were dropped)."""
        sent = 0
        pending = list(frames)
        try:
            sock = self._socket(ifname)
        except OSError:
            self.dropped += len(pending)
            return 0
        detail = log.isEnabledFor(logging.DEBUG)
        # garp_master_repeat sends each VIP's one frame object several times over, round after
        # round (Instance._send_rounds): its protocol and its -D line are worked out once, and the
        # one record is written once per copy sent, as keepalived writes its line for each
        known: dict[bytes, tuple[int, logging.LogRecord | None]] = {}
        for frame in pending:
            seen = known.get(frame)
            if seen is None:
                made = (
                    log.makeRecord(log.name, logging.DEBUG, "", 0, detail_line(ifname, frame), (), None)
                    if detail
                    else None
                )
                seen = known[frame] = (struct.unpack_from("!H", frame, 12)[0], made)
            proto, record = seen
            if record is not None:
                log.handle(record)
            try:
                sock.sendto(frame, (ifname, proto))
            except OSError as e:
                self.dropped += len(pending) - sent
                if e.errno in _GONE:
                    self.forget(ifname)
                return sent
            sent += 1
        return sent

    def forget(self, ifname: str) -> None:
        """Close the socket of an interface that went away (or was recreated)."""
        sock = self._socks.pop(ifname, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for name in list(self._socks):
            self.forget(name)

    def __enter__(self) -> FrameSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
