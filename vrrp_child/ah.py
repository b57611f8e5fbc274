"""IPsec AH around VRRPv2 adverts: keepalived 2.2.7's `auth_type AH`, byte for byte.

keepalived does not use the kernel's IPsec: it builds the whole IPv4 datagram itself
(IP_HDRINCL) and puts an Authentication Header (RFC 2402, the same layout as RFC 4302
section 2) between the IP header and the VRRP message, with an HMAC-MD5-96 ICV (RFC 2403).
Checked against keepalived 2.2.7 in the lab:

    IPv4  45 c0 LEN  ID 0000 TTL 33 CSUM SRC DST     TOS 0xc0, no DF, TTL 255, protocol 51
    AH    70 04 0000 SPI SEQ ICV(12)                 next header 112, payload length 4
    VRRP  21 VRID PRIO COUNT 02 INT CSUM ADDRS 00*8  auth type 2, auth data all zero

- Payload Len 4: RFC 2402 section 2.2, AH length in 32-bit words minus 2 ((12 + 12) / 4 - 2).
- SPI: the sender's IPv4 address. There is no SA negotiation for multicast, so keepalived
  takes a value no other sender can pick (its comment cites draft-paridaens-xcast-sec-
  framework); a receiver drops an advert whose SPI is not its IP source.
- Sequence number (RFC 2402 section 3.3.2): one counter per instance, shared by sending and
  receiving. A sender increments it before each advert (the first is 1; every unicast peer
  gets the same number); a receiver accepts only a number above it, and then takes that
  number. A backup that becomes master therefore continues above the old master's count,
  which keepalived's backups require. `SeqCounter` is that counter.
- The IP ID is a per-instance count from 1, skipping 0 (with IP_HDRINCL the kernel would
  replace a zero ID and break the ICV, which covers it).
- The ICV (RFC 2402 section 3.3.3.1): HMAC-MD5 keyed with `auth_pass` NUL-padded to 8
  bytes, over the IP header with its mutable fields zeroed (TOS, flags and fragment offset,
  header checksum, and the TTL for unicast only: a multicast advert's TTL must be 255, so it
  stays covered), then the AH with a zero ICV, then the VRRP message; the first 12 bytes.
  IP options, if any, are covered as received (keepalived does the same).

This module is pure: bytes in, bytes out. The socket (`vrrp_child.sockets`, protocol 51 with
IP_HDRINCL) and the instance (which owns the counters) are the callers.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Final

from vrrp_child.packet import VRRP_PROTO, DropReason, PacketError
from watchdog.checksum import fold

AH_PROTO: Final = 51  # IANA protocol number of the Authentication Header (RFC 2402)
AH_LEN: Final = 24  # next header, payload len, reserved, SPI, sequence, 12-byte ICV
AH_PAYLOAD_LEN: Final = 4  # RFC 2402 section 2.2: (24 / 4) - 2
ICV_LEN: Final = 12  # RFC 2403 section 3: HMAC-MD5 truncated to 96 bits
ICV_OFFSET: Final = 12  # within the AH
IPV4_HEADER_LEN: Final = 20
KEY_LEN: Final = 8  # keepalived's auth_data: auth_pass, at most 8 bytes, NUL padded
IP_TOS: Final = 0xC0  # IPTOS_PREC_INTERNETCONTROL, as keepalived's vrrp_build_ip4
# keepalived stops counting at 0xFFFFFFFE (RFC 2402 section 3.3.2: the number must not
# cycle); at one advert a second that is 136 years away.
SEQ_MAX: Final = 0xFFFFFFFD

_IP: Final = struct.Struct("!BBHHHBBH4s4s")
_AH: Final = struct.Struct("!BBHII")  # next header, payload len, reserved, SPI, sequence


def key_of(auth_pass: bytes) -> bytes:
    """The HMAC key: the password's first 8 bytes, NUL padded (keepalived's auth_data)."""
    return auth_pass[:KEY_LEN].ljust(KEY_LEN, b"\0")


def icv(datagram: bytes, key: bytes, *, unicast: bool) -> bytes:
    """The 96-bit ICV of an IPv4 datagram carrying an AH right after its IP header.

    RFC 2402 section 3.3.3.1.1.1: the mutable fields are zeroed for the computation (TOS,
    flags/fragment offset, header checksum; keepalived leaves the ID, which is immutable,
    and zeroes the TTL for unicast only), and so is the ICV itself."""
    ihl = (datagram[0] & 0x0F) * 4
    covered = bytearray(datagram[: ihl + AH_LEN])
    covered[1] = 0
    covered[6:8] = b"\0\0"
    covered[10:12] = b"\0\0"
    if unicast:
        covered[8] = 0
    covered[ihl + ICV_OFFSET : ihl + AH_LEN] = bytes(ICV_LEN)
    # hashlib and hmac load OpenSSL's libcrypto (about 3 MB resident): AH instances only.
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    mac = hmac.new(key, bytes(covered), hashlib.md5)
    mac.update(datagram[ihl + AH_LEN :])
    return mac.digest()[:ICV_LEN]


def seal(
    payload: bytes,
    src: IPv4Address,
    dst: IPv4Address,
    *,
    key: bytes,
    seq: int,
    ip_id: int,
    ttl: int = 255,
    unicast: bool = False,
) -> bytes:
    """The IPv4 datagram keepalived sends for the VRRP message `payload`: IP header, AH,
    message. The header checksum is filled in too (the kernel recomputes it with
    IP_HDRINCL, so these are the bytes on the wire)."""
    if not 1 <= ip_id <= 0xFFFF:
        raise ValueError(f"IP ID {ip_id} out of range 1-65535 (the kernel replaces 0)")
    if not 0 <= seq <= 0xFFFFFFFF:
        raise ValueError(f"sequence number {seq} out of range")
    total = IPV4_HEADER_LEN + AH_LEN + len(payload)
    ip = _IP.pack(0x45, IP_TOS, total, ip_id, 0, ttl, AH_PROTO, 0, src.packed, dst.packed)
    ah = _AH.pack(VRRP_PROTO, AH_PAYLOAD_LEN, 0, int(src), seq)
    unsigned = ip + ah + bytes(ICV_LEN) + payload
    mac = icv(unsigned, key, unicast=unicast)
    csum = fold(int.from_bytes(ip, "big")).to_bytes(2, "big")
    return ip[:10] + csum + ip[12:] + ah + mac + payload


@dataclass(frozen=True, slots=True)
class Sealed:
    """What an authenticated datagram carried: the AH's SPI and sequence number, and the
    VRRP message (for packet.decode)."""

    spi: int
    seq: int
    payload: bytes


class NotVrrp(ValueError):
    """An AH that protects something other than VRRP: not ours, dropped without a word
    (keepalived's VRRP_PACKET_DROP)."""


def unseal(datagram: bytes, key: bytes, *, unicast: bool) -> Sealed:
    """Check the AH of a received IPv4 datagram (IP header included, cut at its total
    length) and return what it protects. The sequence number is the caller's
    (`SeqCounter.accept`): it is state, not validity.

    keepalived's order (vrrp_check_packet, vrrp_in_chk_ipsecah): next header 112, then the
    ICV ("invalid IPSEC HMAC-MD5 value"), then the SPI. Raises PacketError (LENGTH for a
    datagram too short to hold an AH, AUTH_FAILURE for a bad ICV or SPI) or NotVrrp."""
    if len(datagram) < IPV4_HEADER_LEN or datagram[0] >> 4 != 4:
        raise PacketError(DropReason.LENGTH, "IPv4 VRRP packet with AH too short")
    ihl = (datagram[0] & 0x0F) * 4
    if ihl < IPV4_HEADER_LEN or len(datagram) < ihl + AH_LEN:
        raise PacketError(DropReason.LENGTH, f"IPv4 VRRP packet with AH too short - {len(datagram)} bytes")
    next_header, payload_len, _reserved, spi, seq = _AH.unpack_from(datagram, ihl)
    if next_header != VRRP_PROTO:
        raise NotVrrp(f"AH for protocol {next_header}")
    if payload_len != AH_PAYLOAD_LEN:
        # Another ICV length (RFC 4302 section 2.2): not HMAC-MD5-96, so not keepalived's.
        raise PacketError(DropReason.AUTH_FAILURE, f"IPSEC-AH : payload length {payload_len} and expect 4")
    received = datagram[ihl + ICV_OFFSET : ihl + AH_LEN]
    import hmac  # noqa: PLC0415 (libcrypto for AH instances only, as in icv())

    if not hmac.compare_digest(received, icv(datagram, key, unicast=unicast)):
        raise PacketError(
            DropReason.AUTH_FAILURE, "IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation or bad password !"
        )
    src = int.from_bytes(datagram[12:16], "big")
    if spi != src:
        raise PacketError(DropReason.AUTH_FAILURE, f"IPSEC AH : invalid IPSEC SPI value. {src} and expect {spi}")
    return Sealed(spi, seq, datagram[ihl + AH_LEN :])


@dataclass
class SeqCounter:
    """An instance's AH sequence number and IP ID (RFC 2402 section 3.3.2 anti-replay, as
    keepalived keeps it: one number for what it sends and what it has accepted)."""

    seq: int = 0
    ip_id: int = 0

    def next_advert(self) -> tuple[int, int]:
        """(sequence number, IP ID) for the next advert: both advance once per advert,
        whatever the number of unicast peers it goes to."""
        if self.seq <= SEQ_MAX:
            self.seq += 1
        self.ip_id = self.ip_id % 0xFFFF + 1  # 1..65535: never 0
        return self.seq, self.ip_id

    def accept(self, seq: int) -> bool:
        """A received number: True (and remembered) when above every number seen or sent."""
        if seq > self.seq:
            self.seq = seq
            return True
        return False


# A MASTER's counter reported to the parent goes on growing: one number per advert, and a few
# more for priority-0 and lower-priority answers; twice the advert rate covers them.
RESUME_RATE: Final = 2
RESUME_MARGIN: Final = 16


def seq_above(reported: int, reported_at: float, now: float, advert_int: float) -> int:
    """A sequence number above every one a MASTER that reported `reported` at `reported_at`
    (time.monotonic(), which is system-wide) can have sent by `now`: where a successor child
    (or the parent's priority-0 release) goes on. keepalived's backups accept any number above
    the last one (vrrp_in_chk_ipsecah), so a gap is harmless; a number at or below it is
    dropped as a replay, which is what restarting at 0 did."""
    elapsed = max(0.0, now - reported_at)
    return min(SEQ_MAX, reported + RESUME_RATE * math.ceil(elapsed / max(advert_int, 0.01)) + RESUME_MARGIN)


def reported_seq(state: object) -> tuple[int, float] | None:
    """The (counter, time) of an instance's state report (`ah_seq`, `ah_at`), if any."""
    if not isinstance(state, dict):
        return None
    seq, at = state.get("ah_seq"), state.get("ah_at")
    if isinstance(seq, int) and isinstance(at, (int, float)):
        return seq, float(at)
    return None
