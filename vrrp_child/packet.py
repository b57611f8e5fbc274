"""VRRP advertisements on the wire: encode and decode, byte for byte.

VRRPv2 is RFC 3768 (IPv4 only); VRRPv3 is RFC 5798 as amended by RFC 9568 (IPv4 and
IPv6). This module answers one question: "is this datagram a well-formed VRRP
advertisement, and what does it say?" It knows no socket and no instance. Whether an
instance wants the advert (version, VRID, authentication, interval, addresses) is
`vrrp_child.receive`'s business, and what it does with it is the state machine's.

The payload is the VRRP message alone (what follows the IPv4 header, or what an IPv6 raw
socket returns); the caller supplies the addresses and TTL/hop limit from the IP header.

Checksums (RFC 1071 one's complement sum) are computed from a Python integer: since
2**16 == 1 (mod 0xFFFF), the one's complement sum of the 16-bit words of any even-length
byte string is congruent to that string read as one big-endian integer, modulo 0xFFFF.
Even-length parts (header, addresses, pseudo-header fields) can therefore simply be
added, with no per-word loop and no per-length struct format.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Final

from watchdog.checksum import fold

IPAddress = IPv4Address | IPv6Address

VRRP_PROTO: Final = 112
MCAST_V4: Final = IPv4Address("224.0.0.18")
MCAST_V6: Final = IPv6Address("ff02::12")
# RFC 3768 / RFC 5798 section 5.1.1.3 (5.1.2.3 for IPv6): sent with TTL / hop limit 255 and
# discarded otherwise, so that an advert cannot have crossed a router.
VRRP_TTL: Final = 255

TYPE_ADVERTISEMENT: Final = 1  # RFC 5798 section 5.2.2: the only packet type
HEADER_LEN: Final = 8
# RFC 3768 section 5.3.6-5.3.10: Auth Type 0 (none); keepalived uses 1 for its plain
# password (`auth_type PASS`) and 2 for IPsec AH (`auth_type AH`, IP protocol 51).
AUTH_NONE: Final = 0
AUTH_PASS: Final = 1
AUTH_AH: Final = 2
AUTH_DATA_LEN: Final = 8  # RFC 3768 section 5.3.10: two 32-bit words, always present in v2
V3_MAX_ADVER_INT: Final = 0x0FFF  # RFC 5798 section 5.2.7: 12 bits of centiseconds
V2_MAX_ADVER_INT_CS: Final = 255 * 100  # RFC 3768 section 5.3.7: 8 bits of seconds

_V2_HEADER: Final = struct.Struct("!BBBBBBH")  # vers/type, vrid, prio, count, auth type, adver int, csum
_V3_HEADER: Final = struct.Struct("!BBBBHH")  # vers/type, vrid, prio, count, rsvd|max adver int, csum
_ADDR_LEN: Final = {4: 4, 6: 16}


class DropReason(enum.Enum):
    """Why a received advert was not used. Each is one counter; `stats_line` names the line
    of keepalived's statistics dump (SIGUSR2, /tmp/keepalived.stats) it is counted in."""

    TTL = "ttl"
    VERSION = "version"
    TYPE = "type"
    LENGTH = "length"
    ADDR_COUNT = "addr_count"  # VRRPv3 with no address (RFC 5798 section 5.2.5)
    CHECKSUM = "checksum"
    INTERVAL = "interval"  # v2 interval mismatch; v3 interval 0 (RFC 5798 erratum 8301)
    FAMILY = "family"  # source and destination of different families: never from a real socket
    VRID = "vrid"
    AUTH_INVALID_TYPE = "auth_invalid_type"
    AUTH_TYPE_MISMATCH = "auth_type_mismatch"
    AUTH_FAILURE = "auth_failure"
    AUTH_UNSUPPORTED = "auth_unsupported"  # IPsec AH: parsed in the config, not implemented
    ADDRESS_LIST = "address_list"

    @property
    def stats_line(self) -> tuple[str, str] | None:
        """(section, line) in keepalived's stats dump, or None where keepalived shows no line
        (it counts version and checksum errors only for SNMP)."""
        return _STATS_LINES.get(self)


_STATS_LINES: Final[dict[DropReason, tuple[str, str]]] = {
    DropReason.LENGTH: ("Packet Errors", "Length"),
    DropReason.TTL: ("Packet Errors", "TTL"),
    DropReason.TYPE: ("Packet Errors", "Invalid Type"),
    DropReason.INTERVAL: ("Packet Errors", "Advertisement Interval"),
    DropReason.ADDR_COUNT: ("Packet Errors", "Address List"),
    DropReason.ADDRESS_LIST: ("Packet Errors", "Address List"),
    DropReason.AUTH_INVALID_TYPE: ("Authentication Errors", "Invalid Type"),
    DropReason.AUTH_UNSUPPORTED: ("Authentication Errors", "Invalid Type"),
    DropReason.AUTH_TYPE_MISMATCH: ("Authentication Errors", "Type Mismatch"),
    DropReason.AUTH_FAILURE: ("Authentication Errors", "Failure"),
}


class PacketError(ValueError):
    """A datagram that is not a valid advert. `detail` is keepalived's wording without the
    "(instance) " prefix, which the caller adds once it knows the instance."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP advertisement, as decoded or to be encoded.

    `adver_int_cs` is in centiseconds for both versions (v2 carries whole seconds: 1 s is
    100). `auth_data` is v2 only, without its NUL padding (the wire has 8 bytes)."""

    version: int
    vrid: int
    priority: int
    addresses: tuple[IPAddress, ...]
    adver_int_cs: int
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""


def _pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> int:
    """The pseudo-header's contribution to the sum: source, destination, protocol 112 and
    the VRRP message length. IPv4 (RFC 768 layout, as keepalived and FRR use for VRRPv3)
    and IPv6 (RFC 8200 section 8.1) lay them out differently but every field is 16-bit
    aligned, so the sums are equal."""
    return int(src) + int(dst) + VRRP_PROTO + length


def _check_encodable(advert: Advert, src: IPAddress, dst: IPAddress) -> int:
    """Raise ValueError for an advert that cannot go on the wire; return the family."""
    family = src.version
    if dst.version != family:
        raise ValueError(f"source {src} and destination {dst} are of different families")
    if not 1 <= advert.vrid <= 255:
        raise ValueError(f"VRID {advert.vrid} out of range 1-255")
    if not 0 <= advert.priority <= 255:
        raise ValueError(f"priority {advert.priority} out of range 0-255")
    if len(advert.addresses) > 255:
        raise ValueError(f"{len(advert.addresses)} addresses do not fit the 8-bit count")
    for address in advert.addresses:
        if address.version != family:
            raise ValueError(f"address {address} is not of the family of {src}")
    if advert.version == 2:
        if family != 4:
            raise ValueError("VRRPv2 is IPv4 only (RFC 3768)")
        if advert.adver_int_cs % 100 or not 0 <= advert.adver_int_cs <= V2_MAX_ADVER_INT_CS:
            raise ValueError(f"VRRPv2 interval {advert.adver_int_cs} cs is not a whole number of seconds 0-255")
        if advert.auth_type == AUTH_AH and advert.auth_data:
            # keepalived's AH adverts carry zero authentication data: the ICV is in the AH
            # (vrrp_child.ah wraps the message).
            raise ValueError("IPsec AH adverts carry no authentication data")
        if not 0 <= advert.auth_type <= 255:
            raise ValueError(f"auth type {advert.auth_type} out of range")
        if len(advert.auth_data) > AUTH_DATA_LEN:
            raise ValueError(f"authentication data longer than {AUTH_DATA_LEN} bytes")
    elif advert.version == 3:
        if not 1 <= advert.adver_int_cs <= V3_MAX_ADVER_INT:
            raise ValueError(f"VRRPv3 interval {advert.adver_int_cs} cs out of range 1-{V3_MAX_ADVER_INT}")
        if advert.auth_type != AUTH_NONE or advert.auth_data:
            raise ValueError("VRRPv3 has no authentication (RFC 5798 section 9)")
    else:
        raise ValueError(f"VRRP version {advert.version} is neither 2 nor 3")
    return family


def encode(advert: Advert, src: IPAddress, dst: IPAddress, *, v3_checksum_as_v2: bool = False) -> bytes:
    """The VRRP message for `advert` sent from `src` to `dst`, checksum included.

    v2: checksum over the message alone (RFC 3768 section 5.3.8). v3 over IPv4: with the
    IPv4 pseudo-header, as keepalived (all versions' default) and FRR do, or over the
    message alone with `v3_checksum_as_v2` (RFC 9568 section 5.2.8, Cisco, Juniper). v3
    over IPv6: with the IPv6 pseudo-header (RFC 5798 section 5.2.8). Raises ValueError for
    an advert that cannot be encoded."""
    family = _check_encodable(advert, src, dst)
    body = b"".join([a.packed for a in advert.addresses])
    count = len(advert.addresses)
    if advert.version == 2:
        body += advert.auth_data.ljust(AUTH_DATA_LEN, b"\0")
        first = _V2_HEADER.pack(
            0x21, advert.vrid, advert.priority, count, advert.auth_type, advert.adver_int_cs // 100, 0
        )
        csum = fold(int.from_bytes(first, "big") + int.from_bytes(body, "big"))
        return (
            _V2_HEADER.pack(
                0x21, advert.vrid, advert.priority, count, advert.auth_type, advert.adver_int_cs // 100, csum
            )
            + body
        )
    pseudo = 0
    if family == 6 or not v3_checksum_as_v2:
        pseudo = _pseudo_header(src, dst, HEADER_LEN + len(body))
    first = _V3_HEADER.pack(0x31, advert.vrid, advert.priority, count, advert.adver_int_cs, 0)
    csum = fold(int.from_bytes(first, "big") + int.from_bytes(body, "big") + pseudo)
    return _V3_HEADER.pack(0x31, advert.vrid, advert.priority, count, advert.adver_int_cs, csum) + body


def decode(
    payload: bytes,
    src: IPAddress,
    dst: IPAddress,
    ttl: int | None,
    *,
    multicast: bool,
) -> Advert:
    """The advert in `payload`, or PacketError (and never any other exception).

    The checks are RFC 5798 section 7.1's (RFC 3768 section 7.1 for v2), in its order:
    TTL/hop limit 255 when `multicast` (keepalived skips it for unicast, and so do we when
    the TTL is unknown), version, type, complete length for the address count, checksum.
    A v3 IPv4 advert is accepted with either checksum form (pseudo-header or not): which
    one a peer uses is configuration, not validity (vrrp-wire.md section 3). A v3 advert
    must carry an address (RFC 5798 section 5.2.5, erratum 8299; keepalived refuses a v3
    instance without VIPs); a v2 advert may carry none, and keepalived sends such adverts."""
    if type(payload) is not bytes:  # a bytearray or memoryview from recvmsg_into
        payload = bytes(payload)
    family, version, addr_end = _checked_header(payload, src, dst, ttl, multicast)
    total = int.from_bytes(payload, "big")
    if version == 2:
        # The sum over a valid message, checksum included, is 0xFFFF (never 0: byte 0 is not).
        if total % 0xFFFF:
            raise PacketError(DropReason.CHECKSUM, "Invalid VRRPv2 checksum")
        adver_int_cs = payload[5] * 100
        auth_type = payload[4]
        auth_data = payload[addr_end:].rstrip(b"\0")
    else:
        with_pseudo = (total + _pseudo_header(src, dst, len(payload))) % 0xFFFF == 0
        # RFC 9568 section 5.2.8's message-only form is valid for IPv4 only.
        if not with_pseudo and (family == 6 or total % 0xFFFF):
            raise PacketError(DropReason.CHECKSUM, "Invalid VRRPv3 checksum")
        adver_int_cs = ((payload[4] << 8) | payload[5]) & V3_MAX_ADVER_INT
        if not adver_int_cs:
            raise PacketError(DropReason.INTERVAL, "advertisement interval 0 is invalid (RFC 5798 erratum 8301)")
        auth_type = AUTH_NONE
        auth_data = b""
    if family == 4:
        addresses: tuple[IPAddress, ...] = tuple(
            [IPv4Address(payload[i : i + 4]) for i in range(HEADER_LEN, addr_end, 4)]
        )
    else:
        addresses = tuple([IPv6Address(payload[i : i + 16]) for i in range(HEADER_LEN, addr_end, 16)])
    return Advert(version, payload[1], payload[2], addresses, adver_int_cs, auth_type, auth_data)


def _checked_header(
    payload: bytes, src: IPAddress, dst: IPAddress, ttl: int | None, multicast: bool
) -> tuple[int, int, int]:
    """decode's checks before the checksum, in RFC 5798 section 7.1's order: (family,
    version, where the addresses end)."""
    if multicast and ttl is not None and ttl != VRRP_TTL:
        raise PacketError(DropReason.TTL, f"invalid TTL/HL. Received {ttl} and expect {VRRP_TTL}")
    family = src.version
    if dst.version != family:
        raise PacketError(DropReason.FAMILY, f"source {src} and destination {dst} are of different families")
    size = len(payload)
    if not size:
        raise PacketError(DropReason.LENGTH, f"vrrp packet too short, length 0 and expect at least {HEADER_LEN}")
    version = payload[0] >> 4
    if version not in (2, 3):
        raise PacketError(DropReason.VERSION, f"wrong version. Received {version} and expect 2 or 3")
    if version == 2 and family == 6:
        raise PacketError(
            DropReason.VERSION, "wrong version. Received 2 over IPv6 and expect 3 (RFC 3768 is IPv4 only)"
        )
    if payload[0] & 0x0F != TYPE_ADVERTISEMENT:
        raise PacketError(DropReason.TYPE, f"Invalid packet type. {payload[0] & 0x0F} and expect {TYPE_ADVERTISEMENT}")
    if size < HEADER_LEN:
        raise PacketError(DropReason.LENGTH, f"vrrp packet too short, length {size} and expect at least {HEADER_LEN}")
    count = payload[3]
    if version == 3 and count == 0:
        raise PacketError(DropReason.ADDR_COUNT, "received a VRRPv3 advert with no address (RFC 5798 section 5.2.5)")
    addr_end = HEADER_LEN + count * _ADDR_LEN[family]
    expected = addr_end + AUTH_DATA_LEN if version == 2 else addr_end
    if size != expected:
        how = "long" if size > expected else "short"
        raise PacketError(DropReason.LENGTH, f"vrrp packet too {how}, length {size} and expect {expected}")
    return family, version, addr_end
