"""The Internet checksum (RFC 1071), shared by the VRRP codec, the ICMPv6 NA frames and the
checker's ICMP echo: bytes in, a 16-bit number out."""

from __future__ import annotations


def fold(total: int) -> int:
    """The RFC 1071 checksum of data whose big-endian integer value (plus pseudo-header
    terms) is `total`. The one's complement sum of non-zero data is never 0 but 0xFFFF,
    hence the special case; all-zero data sums to 0 and checksums to 0xFFFF."""
    rest = total % 0xFFFF
    if rest == 0:
        return 0 if total else 0xFFFF
    return 0xFFFF - rest


def checksum(data: bytes, pseudo: int = 0) -> int:
    """RFC 1071 checksum of `data` (its checksum field zeroed) plus a pseudo-header sum.
    Data that carries a right checksum gives 0. Summing the data as one big integer is
    the one's complement sum mod 0xFFFF (2^16 = 1 mod 0xFFFF), and much faster in Python
    than adding 16-bit words."""
    if len(data) & 1:
        data += b"\0"
    return fold(int.from_bytes(data, "big") + pseudo)
