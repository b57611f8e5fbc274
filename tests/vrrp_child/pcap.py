"""Just enough libpcap file format and IP header work for the VRRP wire tests: read what
tshark captured (`-F pcap`), and write our own adverts, with IP headers built here, for
tshark to dissect."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from vrrp_child.packet import VRRP_PROTO, VRRP_TTL, IPAddress
from watchdog.checksum import checksum

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # the record is an IPv4 or IPv6 packet, told apart by its version nibble

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TOS_NETWORK_CONTROL = 0xC0  # keepalived's IPv4 TOS and IPv6 traffic class


@dataclass(frozen=True)
class IpPacket:
    src: IPAddress
    dst: IPAddress
    ttl: int  # TTL or hop limit
    proto: int  # protocol or next header
    header: bytes
    payload: bytes


def read_pcap(path: Path) -> list[tuple[int, bytes]]:
    """(link type, frame) for each record of a little-endian libpcap file."""
    data = path.read_bytes()
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = _GLOBAL.unpack_from(data)
    if magic not in (_MAGIC_US, _MAGIC_NS):
        raise ValueError(f"{path}: not a little-endian libpcap file (write it with -F pcap)")
    frames = []
    offset = _GLOBAL.size
    while offset < len(data):
        _sec, _frac, incl_len, _orig_len = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        frames.append((linktype, data[offset : offset + incl_len]))
        offset += incl_len
    return frames


def write_pcap(path: Path, packets: list[bytes], linktype: int = LINKTYPE_RAW) -> None:
    out = [_GLOBAL.pack(_MAGIC_US, 2, 4, 0, 0, 65535, linktype)]
    for i, packet in enumerate(packets):
        out.append(_RECORD.pack(1_700_000_000 + i, 0, len(packet), len(packet)))
        out.append(packet)
    path.write_bytes(b"".join(out))


def ip_of_frame(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet in a frame, or None for anything else (ARP, neighbour discovery ...)."""
    if linktype == LINKTYPE_RAW:
        return frame
    if linktype == LINKTYPE_ETHERNET and len(frame) > 14 and frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
        return frame[14:]
    return None


def parse_ip(packet: bytes) -> IpPacket:
    if packet[0] >> 4 == 4:
        ihl = (packet[0] & 0x0F) * 4
        _vihl, _tos, total, _id, _frag, ttl, proto, _csum, src, dst = _IPV4.unpack_from(packet)
        return IpPacket(IPv4Address(src), IPv4Address(dst), ttl, proto, packet[:ihl], packet[ihl:total])
    _vtcfl, length, next_header, hlim, src6, dst6 = _IPV6.unpack_from(packet)
    return IpPacket(IPv6Address(src6), IPv6Address(dst6), hlim, next_header, packet[:40], packet[40 : 40 + length])


def ip_header(src: IPAddress, dst: IPAddress, payload_len: int, ttl: int = VRRP_TTL) -> bytes:
    """The IP header keepalived puts in front of an advert: TOS/traffic class 0xc0,
    TTL/hop limit 255, protocol 112, IPv4 id 0 and no fragmentation."""
    if isinstance(src, IPv4Address):
        fields = [0x45, _TOS_NETWORK_CONTROL, 20 + payload_len, 0, 0, ttl, VRRP_PROTO]
        head = _IPV4.pack(*fields, 0, src.packed, dst.packed)
        return _IPV4.pack(*fields, checksum(head), src.packed, dst.packed)
    return _IPV6.pack(0x6 << 28 | _TOS_NETWORK_CONTROL << 20, payload_len, VRRP_PROTO, ttl, src.packed, dst.packed)
