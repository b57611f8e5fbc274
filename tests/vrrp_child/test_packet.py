"""vrrp_child.packet: golden adverts byte for byte, every drop reason, tshark's view of our
adverts, fuzzing, and the cost of encode + decode."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vrrp_child.pcap import ip_header, parse_ip, write_pcap
from vrrp_child.packet import (
    AUTH_AH,
    AUTH_PASS,
    MCAST_V4,
    MCAST_V6,
    Advert,
    DropReason,
    IPAddress,
    PacketError,
    decode,
    encode,
)
from watchdog.checksum import checksum

FIXTURES = Path(__file__).parent / "fixtures" / "adverts.json"
GOLDEN: list[dict[str, Any]] = json.loads(FIXTURES.read_text())["adverts"]

V4_SRC = IPv4Address("192.0.2.1")
V6_SRC = IPv6Address("fe80::1")


def _advert(entry: dict[str, Any]) -> Advert:
    d = entry["decoded"]
    return Advert(
        version=d["version"],
        vrid=d["vrid"],
        priority=d["priority"],
        addresses=tuple(ip_address(a) for a in d["addresses"]),
        adver_int_cs=d["adver_int_cs"],
        auth_type=d["auth_type"],
        auth_data=d["auth_data"].encode(),
    )


def _endpoints(entry: dict[str, Any]) -> tuple[IPAddress, IPAddress]:
    return ip_address(entry["src"]), ip_address(entry["dst"])


def _decode(payload: bytes, src: IPAddress, dst: IPAddress, ttl: int | None = 255) -> Advert:
    return decode(payload, src, dst, ttl, multicast=dst.is_multicast)


def _reseal(payload: bytes, src: IPAddress, dst: IPAddress, *, pseudo: bool = True) -> bytes:
    """`payload` with a correct checksum (v3: with the pseudo-header unless told otherwise),
    so that a test reaches the check after the checksum."""
    zeroed = payload[:6] + b"\0\0" + payload[8:]
    extra = int(src) + int(dst) + 112 + len(payload) if payload[0] >> 4 == 3 and pseudo else 0
    return payload[:6] + checksum(zeroed, extra).to_bytes(2, "big") + payload[8:]


V2 = Advert(2, 51, 150, (IPv4Address("192.0.2.51"), IPv4Address("198.51.100.51")), 100, AUTH_PASS, b"secret12")
V3_4 = Advert(3, 52, 200, (IPv4Address("192.0.2.52"),), 10)
V3_6 = Advert(3, 53, 100, (IPv6Address("fe80::53"), IPv6Address("2001:db8::53")), 100)


# ---------------------------------------------------------------- golden adverts


@pytest.mark.parametrize("entry", GOLDEN, ids=[e["name"] for e in GOLDEN])
def test_golden_decode(entry: dict[str, Any]) -> None:
    src, dst = _endpoints(entry)
    assert _decode(bytes.fromhex(entry["vrrp"]), src, dst, entry["ttl"]) == _advert(entry)


@pytest.mark.parametrize("entry", GOLDEN, ids=[e["name"] for e in GOLDEN])
def test_golden_encode(entry: dict[str, Any]) -> None:
    src, dst = _endpoints(entry)
    as_v2 = entry["checksum"] == "message"
    assert encode(_advert(entry), src, dst, v3_checksum_as_v2=as_v2).hex() == bytes.fromhex(entry["vrrp"]).hex()


def test_golden_set_covers_what_the_issue_asks() -> None:
    """Real keepalived captures of v2 PASS, v3 IPv4, v3 IPv6 and unicast, adverts and
    priority 0 adverts, beside the worked packets of vrrp-wire.md section 5."""
    captured = [e for e in GOLDEN if e["origin"].startswith("keepalived 2.2.7 capture")]
    kinds = {
        (e["decoded"]["version"], ip_address(e["src"]).version, ip_address(e["dst"]).is_multicast) for e in captured
    }
    assert kinds == {(2, 4, True), (2, 4, False), (3, 4, True), (3, 4, False), (3, 6, True), (3, 6, False)}
    assert any(e["decoded"]["auth_type"] == AUTH_PASS for e in captured)
    assert any(e["decoded"]["priority"] == 0 for e in captured)
    assert {e["checksum"] for e in GOLDEN} == {"v2", "pseudo-header", "message"}


def test_ip_header_builder_matches_a_real_capture() -> None:
    """The test helper that frames our adverts for tshark builds the header keepalived and
    gopacket's capture have (TOS 0xc0, TTL 255, protocol 112, id 0)."""
    entry = next(e for e in GOLDEN if e["name"] == "gopacket-v2")
    src, dst = _endpoints(entry)
    assert ip_header(src, dst, 20).hex() == bytes.fromhex(entry["ip_header"]).hex()
    for e in GOLDEN:
        if e["origin"].startswith("keepalived") and e["ip_header"]:
            raw = bytes.fromhex(e["ip_header"]) + bytes.fromhex(e["vrrp"])
            packet = parse_ip(raw)
            assert (str(packet.src), str(packet.dst), packet.ttl, packet.proto) == (e["src"], e["dst"], e["ttl"], 112)
            assert packet.payload == bytes.fromhex(e["vrrp"])


# ---------------------------------------------------------------- checksums


def test_v3_ipv4_accepts_both_checksum_forms() -> None:
    src = IPv4Address("192.0.2.2")
    pseudo = encode(V3_4, src, MCAST_V4)
    message_only = encode(V3_4, src, MCAST_V4, v3_checksum_as_v2=True)
    assert pseudo != message_only
    assert _decode(pseudo, src, MCAST_V4) == _decode(message_only, src, MCAST_V4) == V3_4


def test_v3_ipv4_pseudo_header_uses_the_real_destination() -> None:
    """keepalived 2.2.7 puts the unicast peer, not 224.0.0.18, in the pseudo-header (the
    pre-1.3.6 form that `old_unicast_checksum` covers is not accepted)."""
    src, peer = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
    payload = encode(V3_4, src, peer)
    assert _decode(payload, src, peer) == V3_4
    old_form = encode(V3_4, src, MCAST_V4)
    with pytest.raises(PacketError) as e:
        _decode(old_form, src, peer)
    assert e.value.reason is DropReason.CHECKSUM


def test_v3_ipv6_needs_the_pseudo_header() -> None:
    """vrrp-wire.md 5.4: 0xdc05 with the pseudo-header; the message-only 0xda34 is wrong."""
    entry = next(e for e in GOLDEN if e["name"] == "synthetic-v3-ipv6")
    src, dst = _endpoints(entry)
    good = bytes.fromhex(entry["vrrp"])
    bad = good[:6] + b"\xda\x34" + good[8:]
    assert checksum(good[:6] + b"\0\0" + good[8:]) == 0xDA34
    with pytest.raises(PacketError) as e:
        _decode(bad, src, dst)
    assert (e.value.reason, e.value.detail) == (DropReason.CHECKSUM, "Invalid VRRPv3 checksum")
    with pytest.raises(ValueError):
        encode(_advert(entry), src, IPv4Address("224.0.0.18"))


def test_v2_checksum_has_no_pseudo_header() -> None:
    """vrrp-wire.md 5.1: with a pseudo-header gopacket's v2 advert would carry 0x18f5."""
    entry = next(e for e in GOLDEN if e["name"] == "gopacket-v2")
    src, dst = _endpoints(entry)
    good = bytes.fromhex(entry["vrrp"])
    with pytest.raises(PacketError) as e:
        _decode(good[:6] + b"\x18\xf5" + good[8:], src, dst)
    assert (e.value.reason, e.value.detail) == (DropReason.CHECKSUM, "Invalid VRRPv2 checksum")
    # v3_checksum_as_v2 means nothing to v2.
    assert encode(_advert(entry), src, dst, v3_checksum_as_v2=True) == good


@pytest.mark.parametrize(
    ("advert", "src", "dst"),
    [(V2, V4_SRC, MCAST_V4), (V3_4, V4_SRC, MCAST_V4), (V3_6, V6_SRC, MCAST_V6)],
    ids=["v2", "v3-ipv4", "v3-ipv6"],
)
def test_any_flipped_bit_fails_the_checksum(advert: Advert, src: IPAddress, dst: IPAddress) -> None:
    """Every single-bit error is caught, except in the version/type byte and the count,
    which fail their own checks first."""
    payload = encode(advert, src, dst)
    for offset in range(1, len(payload)):
        for bit in range(8):
            bad = bytearray(payload)
            bad[offset] ^= 1 << bit
            with pytest.raises(PacketError) as e:
                _decode(bytes(bad), src, dst)
            want = DropReason.CHECKSUM if offset != 3 else (DropReason.LENGTH, DropReason.ADDR_COUNT)
            assert e.value.reason in (want if isinstance(want, tuple) else (want,)), (offset, bit)


def test_checksum_edge_cases() -> None:
    assert checksum(b"") == 0xFFFF
    assert checksum(b"\0\0\0\0") == 0xFFFF
    assert checksum(b"\xff\xff") == 0x0000  # one's complement: the sum is 0xffff, never 0
    assert checksum(b"\x01") == checksum(b"\x01\x00") == 0xFEFF  # odd length: padded with a zero byte
    # RFC 1071 section 3's example: the sum of 0001 f203 f4f5 f6f7 is 0xddf2.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2


# ---------------------------------------------------------------- drop reasons, in RFC order


def _reason(payload: bytes, src: IPAddress, dst: IPAddress, ttl: int | None = 255, multicast: bool = True) -> str:
    with pytest.raises(PacketError) as e:
        decode(payload, src, dst, ttl, multicast=multicast)
    assert isinstance(e.value, ValueError)
    assert str(e.value) == e.value.detail
    return f"{e.value.reason.name}: {e.value.detail}"


def test_ttl_must_be_255_for_multicast_only() -> None:
    payload = encode(V2, V4_SRC, MCAST_V4)
    assert _reason(payload, V4_SRC, MCAST_V4, ttl=254) == "TTL: invalid TTL/HL. Received 254 and expect 255"
    # Unicast: keepalived does not check it (unicast_ttl, min_ttl/max_ttl are the instance's).
    peer = IPv4Address("192.0.2.2")
    assert decode(encode(V2, V4_SRC, peer), V4_SRC, peer, 64, multicast=False) == V2
    # No IP_RECVTTL control message: nothing to check.
    assert decode(payload, V4_SRC, MCAST_V4, None, multicast=True) == V2
    # TTL comes first: a bad TTL on garbage is a TTL error.
    assert _reason(b"\x99", V4_SRC, MCAST_V4, ttl=1).startswith("TTL:")


def test_version() -> None:
    payload = encode(V2, V4_SRC, MCAST_V4)
    for version in (0, 1, 4, 15):
        bad = bytes([version << 4 | 1]) + payload[1:]
        assert _reason(bad, V4_SRC, MCAST_V4) == f"VERSION: wrong version. Received {version} and expect 2 or 3"
    v2_over_v6 = b"\x21" + encode(V3_6, V6_SRC, MCAST_V6)[1:]
    assert _reason(v2_over_v6, V6_SRC, MCAST_V6).startswith("VERSION: wrong version. Received 2 over IPv6")


def test_type() -> None:
    payload = encode(V3_4, V4_SRC, MCAST_V4)
    bad = _reseal(b"\x32" + payload[1:], V4_SRC, MCAST_V4)
    assert _reason(bad, V4_SRC, MCAST_V4) == "TYPE: Invalid packet type. 2 and expect 1"
    # The type is checked before the length (RFC order: version, type, length).
    assert _reason(b"\x30", V4_SRC, MCAST_V4).startswith("TYPE:")


def test_length() -> None:
    payload = encode(V2, V4_SRC, MCAST_V4)
    assert _reason(b"", V4_SRC, MCAST_V4) == "LENGTH: vrrp packet too short, length 0 and expect at least 8"
    assert _reason(payload[:5], V4_SRC, MCAST_V4) == "LENGTH: vrrp packet too short, length 5 and expect at least 8"
    assert _reason(payload[:-1], V4_SRC, MCAST_V4) == "LENGTH: vrrp packet too short, length 23 and expect 24"
    assert _reason(payload + b"\0\0", V4_SRC, MCAST_V4) == "LENGTH: vrrp packet too long, length 26 and expect 24"
    # The count decides how long the message must be: v2 has the 8 bytes of auth data.
    assert _reason(payload[:-8], V4_SRC, MCAST_V4) == "LENGTH: vrrp packet too short, length 16 and expect 24"
    v6 = encode(V3_6, V6_SRC, MCAST_V6)
    assert _reason(v6[:-4], V6_SRC, MCAST_V6) == "LENGTH: vrrp packet too short, length 36 and expect 40"
    # IPv4-sized addresses from an IPv6 source do not add up.
    v3_4 = encode(V3_4, V4_SRC, MCAST_V4)
    assert _reason(v3_4, V6_SRC, MCAST_V6) == "LENGTH: vrrp packet too short, length 12 and expect 24"


def test_v3_address_count_must_not_be_zero() -> None:
    empty = _reseal(bytes.fromhex("31346400000a0000"), V4_SRC, MCAST_V4)
    assert _reason(empty, V4_SRC, MCAST_V4).startswith("ADDR_COUNT: received a VRRPv3 advert with no address")
    # v2 allows it: keepalived sends such adverts for an instance without VIPs (see the fixtures).
    no_vip = Advert(2, 56, 120, (), 100)
    assert _decode(encode(no_vip, V4_SRC, MCAST_V4), V4_SRC, MCAST_V4) == no_vip


def test_v3_interval_zero_is_invalid() -> None:
    payload = encode(V3_4, V4_SRC, MCAST_V4)
    zero = _reseal(payload[:4] + b"\0\0" + payload[6:], V4_SRC, MCAST_V4)
    assert _reason(zero, V4_SRC, MCAST_V4) == "INTERVAL: advertisement interval 0 is invalid (RFC 5798 erratum 8301)"
    # The checksum comes first.
    assert _reason(payload[:4] + b"\0\0" + payload[6:], V4_SRC, MCAST_V4).startswith("CHECKSUM:")


def test_v3_reserved_bits_are_ignored() -> None:
    """RFC 5798 section 5.2.5: Rsvd "MUST be set to zero on transmission and ignored on
    reception"."""
    payload = encode(V3_4, V4_SRC, MCAST_V4)
    dirty = _reseal(payload[:4] + bytes([payload[4] | 0xF0]) + payload[5:], V4_SRC, MCAST_V4)
    assert _decode(dirty, V4_SRC, MCAST_V4) == V3_4


def test_decode_takes_any_bytes_like_buffer() -> None:
    payload = encode(V2, V4_SRC, MCAST_V4)
    for buffer in (bytearray(payload), memoryview(payload)):
        advert = _decode(buffer, V4_SRC, MCAST_V4)  # type: ignore[arg-type]
        assert advert == V2 and type(advert.auth_data) is bytes
        hash(advert)


def test_family_mismatch_is_a_packet_error() -> None:
    payload = encode(V3_4, V4_SRC, MCAST_V4)
    assert _reason(payload, V4_SRC, MCAST_V6).startswith("FAMILY:")


# ---------------------------------------------------------------- fields


def test_v2_auth_data_padding() -> None:
    short = replace(V2, auth_data=b"p55")
    payload = encode(short, V4_SRC, MCAST_V4)
    assert payload[-8:] == b"p55\0\0\0\0\0"
    assert _decode(payload, V4_SRC, MCAST_V4) == short
    none = Advert(2, 1, 100, (V4_SRC,), 300)
    assert encode(none, V4_SRC, MCAST_V4)[-8:] == bytes(8)
    assert _decode(encode(none, V4_SRC, MCAST_V4), V4_SRC, MCAST_V4).auth_data == b""


def test_intervals() -> None:
    """v2 carries whole seconds (RFC 3768 section 5.3.7), v3 12 bits of centiseconds."""
    v2 = replace(V2, adver_int_cs=25500)
    assert encode(v2, V4_SRC, MCAST_V4)[5] == 255
    assert _decode(encode(v2, V4_SRC, MCAST_V4), V4_SRC, MCAST_V4).adver_int_cs == 25500
    v3 = replace(V3_4, adver_int_cs=4095)
    assert encode(v3, V4_SRC, MCAST_V4)[4:6] == b"\x0f\xff"
    assert _decode(encode(v3, V4_SRC, MCAST_V4), V4_SRC, MCAST_V4).adver_int_cs == 4095


def test_encode_refuses_what_cannot_be_sent() -> None:
    peer = IPv4Address("192.0.2.2")
    bad = {
        "vrid 0": replace(V3_4, vrid=0),
        "vrid 256": replace(V3_4, vrid=256),
        "priority 256": replace(V3_4, priority=256),
        "priority -1": replace(V3_4, priority=-1),
        "v3 interval 0": replace(V3_4, adver_int_cs=0),
        "v3 interval 4096": replace(V3_4, adver_int_cs=4096),
        "v3 auth": replace(V3_4, auth_type=AUTH_PASS, auth_data=b"x"),
        "v2 interval 1.5 s": replace(V2, adver_int_cs=150),
        "v2 interval 256 s": replace(V2, adver_int_cs=25600),
        "v2 AH with auth data": replace(V2, auth_type=AUTH_AH, auth_data=b"x"),
        "v2 auth type 256": replace(V2, auth_type=256),
        "v2 long password": replace(V2, auth_data=b"123456789"),
        "version 4": replace(V3_4, version=4),
        "mixed families": replace(V3_4, addresses=(V4_SRC, V6_SRC)),
        "256 addresses": replace(V3_4, addresses=tuple(IPv4Address(0xC0000200 + i) for i in range(256))),
    }
    for what, advert in bad.items():
        with pytest.raises(ValueError):
            encode(advert, V4_SRC, peer)
            pytest.fail(what)
    with pytest.raises(ValueError, match="IPv4 only"):
        encode(replace(V2, addresses=(V6_SRC,)), V6_SRC, MCAST_V6)
    with pytest.raises(ValueError, match="different families"):
        encode(V3_4, V4_SRC, MCAST_V6)
    # 255 addresses is the most the count can say.
    many = replace(V3_4, addresses=tuple(IPv4Address(0xC0000200 + i) for i in range(255)))
    assert _decode(encode(many, V4_SRC, peer), V4_SRC, peer) == many


def test_stats_lines_are_keepalived_s() -> None:
    """keepalived 2.2.7's SIGUSR2 dump (/tmp/keepalived.stats) groups its counters so."""
    lines = {r: r.stats_line for r in DropReason}
    assert lines[DropReason.LENGTH] == ("Packet Errors", "Length")
    assert lines[DropReason.TTL] == ("Packet Errors", "TTL")
    assert lines[DropReason.TYPE] == ("Packet Errors", "Invalid Type")
    assert lines[DropReason.INTERVAL] == ("Packet Errors", "Advertisement Interval")
    assert lines[DropReason.ADDRESS_LIST] == lines[DropReason.ADDR_COUNT] == ("Packet Errors", "Address List")
    assert lines[DropReason.AUTH_INVALID_TYPE] == ("Authentication Errors", "Invalid Type")
    assert lines[DropReason.AUTH_TYPE_MISMATCH] == ("Authentication Errors", "Type Mismatch")
    assert lines[DropReason.AUTH_FAILURE] == ("Authentication Errors", "Failure")
    assert lines[DropReason.VERSION] is lines[DropReason.CHECKSUM] is lines[DropReason.VRID] is None


# ---------------------------------------------------------------- properties and fuzzing

addresses_v4: st.SearchStrategy[IPAddress] = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
addresses_v6: st.SearchStrategy[IPAddress] = st.builds(IPv6Address, st.integers(0, 2**128 - 1))


@st.composite
def adverts(draw: st.DrawFn) -> tuple[Advert, IPAddress, IPAddress, bool]:
    version = draw(st.sampled_from([2, 3]))
    family = 4 if version == 2 else draw(st.sampled_from([4, 6]))
    addr = addresses_v4 if family == 4 else addresses_v6
    src, dst = draw(addr), draw(addr)
    addresses = tuple(draw(st.lists(addr, min_size=0 if version == 2 else 1, max_size=12)))
    if version == 2:
        auth_type = draw(st.sampled_from([0, AUTH_PASS, 3, 255]))
        auth_data = draw(st.binary(max_size=8)).rstrip(b"\0")
        interval = draw(st.integers(0, 255)) * 100
    else:
        auth_type, auth_data, interval = 0, b"", draw(st.integers(1, 4095))
    advert = Advert(version, draw(st.integers(1, 255)), draw(st.integers(0, 255)), addresses, interval)
    return replace(advert, auth_type=auth_type, auth_data=auth_data), src, dst, draw(st.booleans())


@given(adverts())
@settings(max_examples=400)
def test_roundtrip(case: tuple[Advert, IPAddress, IPAddress, bool]) -> None:
    advert, src, dst, as_v2 = case
    payload = encode(advert, src, dst, v3_checksum_as_v2=as_v2)
    assert decode(payload, src, dst, 255, multicast=True) == advert
    assert encode(decode(payload, src, dst, None, multicast=False), src, dst, v3_checksum_as_v2=as_v2) == payload


def _decode_or_packet_error(payload: bytes, src: IPAddress, dst: IPAddress, ttl: int | None, multicast: bool) -> None:
    try:
        advert = decode(payload, src, dst, ttl, multicast=multicast)
    except PacketError as e:
        assert isinstance(e.reason, DropReason)
        assert e.detail
        return
    # Whatever decodes encodes again and decodes to itself, but for what we never send:
    # VRID 0 (no instance has it: receive.check drops it) and IPsec AH.
    if advert.vrid == 0 or advert.auth_type == AUTH_AH:
        return
    assert decode(encode(advert, src, dst), src, dst, ttl, multicast=multicast) == advert


endpoints = st.one_of(
    st.tuples(addresses_v4, addresses_v4),
    st.tuples(addresses_v6, addresses_v6),
    st.tuples(addresses_v4, addresses_v6),
)


@given(st.binary(max_size=300), endpoints, st.one_of(st.none(), st.integers(0, 255)), st.booleans())
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_random_bytes(payload: bytes, ends: tuple[IPAddress, IPAddress], ttl: int | None, multicast: bool) -> None:
    _decode_or_packet_error(payload, ends[0], ends[1], ttl, multicast)


@given(st.binary(min_size=1, max_size=80), endpoints)
@settings(max_examples=1000)
def test_fuzz_plausible_headers(tail: bytes, ends: tuple[IPAddress, IPAddress]) -> None:
    """Random bodies behind a valid version/type byte, resealed so that the checks after
    the checksum are reached too."""
    src, dst = ends
    for first in (0x21, 0x31):
        payload = bytes([first]) + tail
        if len(payload) >= 8 and src.version == dst.version:
            payload = _reseal(payload, src, dst)
        _decode_or_packet_error(payload, src, dst, 255, True)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[bytes, IPAddress, IPAddress]:
    entry = draw(st.sampled_from(GOLDEN))
    src, dst = _endpoints(entry)
    payload = bytearray(bytes.fromhex(entry["vrrp"]))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "extend", "insert", "delete"]))
        if kind in ("flip", "set") and payload:
            i = draw(st.integers(0, len(payload) - 1))
            payload[i] = payload[i] ^ (1 << draw(st.integers(0, 7))) if kind == "flip" else draw(st.integers(0, 255))
        elif kind == "cut":
            del payload[draw(st.integers(0, len(payload))) :]
        elif kind == "extend":
            payload += draw(st.binary(min_size=1, max_size=40))
        elif kind == "insert":
            i = draw(st.integers(0, len(payload)))
            payload[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif payload:
            i = draw(st.integers(0, len(payload) - 1))
            del payload[i]
    if draw(st.booleans()) and len(payload) >= 8:
        payload = bytearray(_reseal(bytes(payload), src, dst, pseudo=draw(st.booleans())))
    return bytes(payload), src, dst


@given(mutations(), st.one_of(st.none(), st.integers(0, 255)), st.booleans())
@settings(max_examples=1500)
def test_fuzz_mutated_golden_adverts(case: tuple[bytes, IPAddress, IPAddress], ttl: int | None, mc: bool) -> None:
    payload, src, dst = case
    _decode_or_packet_error(payload, src, dst, ttl, mc)


# ---------------------------------------------------------------- tshark

_TSHARK_FIELDS = [
    "vrrp.version",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "vrrp.addr_count",
    "vrrp.checksum",
    "vrrp.checksum.status",
    "vrrp.ip_addr",
    "vrrp.ipv6_addr",
    "vrrp.adver_int",
    "vrrp.short_adver_int",
    "vrrp.auth_type",
    "vrrp.auth_string",
    "_ws.expert",
]


def _tshark(pcap: Path, *prefs: str) -> list[dict[str, str]]:
    argv = ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]
    for pref in prefs:
        argv += ["-o", pref]
    for f in _TSHARK_FIELDS:
        argv += ["-e", f]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
    return [dict(zip(_TSHARK_FIELDS, line.split("|"), strict=True)) for line in out.splitlines()]


def _expected_fields(advert: Advert, payload: bytes) -> dict[str, str]:
    v4 = [str(a) for a in advert.addresses if a.version == 4]
    v6 = [str(a) for a in advert.addresses if a.version == 6]
    fields = {
        "vrrp.version": str(advert.version),
        "vrrp.virt_rtr_id": str(advert.vrid),
        "vrrp.prio": str(advert.priority),
        "vrrp.addr_count": str(len(advert.addresses)),
        "vrrp.checksum": f"0x{payload[6]:02x}{payload[7]:02x}",
        "vrrp.checksum.status": "1",  # Wireshark's PROTO_CHECKSUM_E_GOOD
        "vrrp.ip_addr": ",".join(v4),
        "vrrp.ipv6_addr": ",".join(v6),
        "_ws.expert": "",
    }
    if advert.version == 2:
        fields["vrrp.adver_int"] = str(advert.adver_int_cs // 100)
        fields["vrrp.auth_type"] = str(advert.auth_type)
    else:
        fields["vrrp.short_adver_int"] = str(advert.adver_int_cs)
    if advert.auth_type == AUTH_PASS:
        fields["vrrp.auth_string"] = advert.auth_data.decode()
    return fields


def _our_adverts() -> list[tuple[Advert, IPAddress, IPAddress, bool]]:
    """Every golden advert re-encoded by us, and a few more: both v3/IPv4 checksum forms,
    unicast, IPv6 with global addresses, the largest interval and the smallest."""
    cases = [(_advert(e), *_endpoints(e), e["checksum"] == "message") for e in GOLDEN]
    peer4, peer6 = IPv4Address("192.0.2.2"), IPv6Address("2001:db8::2")
    cases += [
        (V2, V4_SRC, MCAST_V4, False),
        (replace(V2, adver_int_cs=25500, priority=0), V4_SRC, peer4, False),
        (V3_4, V4_SRC, MCAST_V4, False),
        (V3_4, V4_SRC, MCAST_V4, True),
        (replace(V3_4, adver_int_cs=1), V4_SRC, peer4, False),
        (replace(V3_4, adver_int_cs=4095), V4_SRC, peer4, True),
        (V3_6, V6_SRC, MCAST_V6, False),
        (replace(V3_6, priority=255), IPv6Address("2001:db8::1"), peer6, False),
    ]
    return cases


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


@needs_tshark
@pytest.mark.parametrize("message_only", [False, True], ids=["pseudo-header", "rfc9568-message-only"])
def test_tshark_dissects_our_adverts_with_good_checksums(tmp_path: Path, message_only: bool) -> None:
    """Our adverts, framed in the IP header keepalived builds, are valid VRRP with a good
    checksum for tshark 4.0. Wireshark's `vrrp.v3_checksum_as_in_v2` preference (default
    FALSE: the pseudo-header, as keepalived) picks the v3/IPv4 form it verifies; IPv6 and
    v2 are the same either way."""
    cases = [c for c in _our_adverts() if c[3] == message_only or c[0].version == 2 or c[1].version == 6]
    packets, expected = [], []
    for advert, src, dst, as_v2 in cases:
        payload = encode(advert, src, dst, v3_checksum_as_v2=as_v2)
        packets.append(ip_header(src, dst, len(payload)) + payload)
        expected.append(_expected_fields(advert, payload))
    pcap = tmp_path / "ours.pcap"
    write_pcap(pcap, packets)
    pref = f"vrrp.v3_checksum_as_in_v2:{'TRUE' if message_only else 'FALSE'}"
    seen = _tshark(pcap, pref)
    assert len(seen) == len(expected)
    for got, want in zip(seen, expected, strict=True):
        assert {k: got[k] for k in want} == want


@needs_tshark
def test_tshark_flags_a_bad_checksum(tmp_path: Path) -> None:
    """The check above can fail: tshark reports the message-only form as bad under its
    default preference, and a corrupted v2 checksum too."""
    v3 = encode(V3_4, V4_SRC, MCAST_V4, v3_checksum_as_v2=True)
    v2 = bytearray(encode(V2, V4_SRC, MCAST_V4))
    v2[7] ^= 1
    write_pcap(tmp_path / "bad.pcap", [ip_header(V4_SRC, MCAST_V4, len(p)) + p for p in (v3, bytes(v2))])
    statuses = [row["vrrp.checksum.status"] for row in _tshark(tmp_path / "bad.pcap")]
    assert statuses == ["0", "0"]  # PROTO_CHECKSUM_E_BAD


# ---------------------------------------------------------------- cost


def test_encode_decode_cost() -> None:
    """A master with 250 instances sends 250 adverts a second; encode + decode of one
    advert must stay in the microseconds. The figure is printed (pytest -s) for the issue
    note; the bound is loose so that a slow CI machine does not fail."""
    results = {}
    for label, advert, src, dst in (
        ("v2 PASS, 2 VIPs", V2, V4_SRC, MCAST_V4),
        ("v3 IPv4, 1 VIP", V3_4, V4_SRC, MCAST_V4),
        ("v3 IPv6, 2 VIPs", V3_6, V6_SRC, MCAST_V6),
        (
            "v3 IPv4, 20 VIPs",
            replace(V3_4, addresses=tuple(IPv4Address(0xC0000200 + i) for i in range(20))),
            V4_SRC,
            MCAST_V4,
        ),
    ):
        rounds = 20000
        start = time.perf_counter()
        for _ in range(rounds):
            decode(encode(advert, src, dst), src, dst, 255, multicast=True)
        results[label] = (time.perf_counter() - start) / rounds * 1e6
    print("\nencode+decode per advert: " + ", ".join(f"{k}: {v:.1f} us" for k, v in results.items()))
    assert max(results.values()) < 200
