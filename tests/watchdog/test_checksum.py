"""RFC 1071 checksum: the RFC's own example, odd lengths, and the 0 / 0xFFFF corners."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from watchdog.checksum import checksum


def words_checksum(data: bytes) -> int:
    """The textbook way: add 16-bit words with end-around carry, complement."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_corners() -> None:
    assert checksum(b"") == 0xFFFF and checksum(b"\0\0") == 0xFFFF
    assert checksum(b"\xff\xff") == 0  # the sum is 0xFFFF ("negative zero")
    assert checksum(b"\x01") == checksum(b"\x01\x00")


@given(st.binary(max_size=200))
def test_same_as_adding_words(data: bytes) -> None:
    assert checksum(data) == words_checksum(data)


@given(st.binary(min_size=2, max_size=200).filter(lambda d: len(d) % 2 == 0 and any(d)))
def test_a_packet_with_its_checksum_sums_to_zero(data: bytes) -> None:
    c = checksum(data)
    assert checksum(data + struct.pack("!H", c)) == 0
