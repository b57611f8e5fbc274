"""vrrp_child.ah: keepalived 2.2.7's `auth_type AH` datagrams, captured on the lab's bridge
(keepalived on both nodes, tcpdump -x), rebuilt byte for byte and verified; tampering with
any covered byte, the key, or the SPI fails the ICV check; the mutable fields do not."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from vrrp_child import ah
from vrrp_child.packet import AUTH_AH, MCAST_V4, Advert, DropReason, PacketError, decode, encode

N1 = IPv4Address("192.0.2.11")
N2 = IPv4Address("192.0.2.12")
VIP = IPv4Address("192.0.2.100")

# Multicast, auth_pass secret1, VRID 51, advert_int 1: node 1 (priority 150) as master, its
# first advert (IP ID 1, sequence 1), and its priority-0 advert at stop (ID 5, sequence 5);
# then node 2's first advert as the new master: its IP ID starts at 1 but its sequence number
# continues above the last one it accepted (6).
KA_MCAST_FIRST = (
    "45c0004000010000ff3318acc000020be0000012"
    "70040000c000020b00000001" + "1c1cdf725d050d07e188f8bb"
    "2133960102018465c00002640000000000000000"
)
KA_MCAST_PRIO0 = (
    "45c0004000050000ff3318a8c000020be0000012"
    "70040000c000020b00000005" + "94110903dba5465f1433d1ee"
    "2133000102011a66c00002640000000000000000"
)
KA_MCAST_TAKEOVER = (
    "45c0004000010000ff3318abc000020ce0000012"
    "70040000c000020c00000006" + "240bef5d6cc576f2ed3336de"
    "213364010201b665c00002640000000000000000"
)
# Unicast 192.0.2.11 -> 192.0.2.12, auth_pass pw, VRID 52: the TTL is left out of the ICV.
KA_UNICAST = (
    "45c0004000010000ff3336b2c000020bc000020c"
    "70040000c000020b00000001" + "0ef44a7c355566ef13ab47d8"
    "2134960102018464c00002640000000000000000"
)

Case = tuple[str, IPv4Address, int, int, int, int]  # hex, source, VRID, priority, sequence, IP ID
MCAST: list[Case] = [
    (KA_MCAST_FIRST, N1, 51, 150, 1, 1),
    (KA_MCAST_PRIO0, N1, 51, 0, 5, 5),
    (KA_MCAST_TAKEOVER, N2, 51, 100, 6, 1),
]


def _advert(vrid: int, priority: int) -> Advert:
    return Advert(2, vrid, priority, (VIP,), 100, auth_type=AUTH_AH)


@pytest.mark.parametrize("case", MCAST)
def test_seal_rebuilds_keepalived_multicast(case: Case) -> None:
    hexdata, src, vrid, prio, seq, ip_id = case
    payload = encode(_advert(vrid, prio), src, MCAST_V4)
    key = ah.key_of(b"secret1")
    assert ah.seal(payload, src, MCAST_V4, key=key, seq=seq, ip_id=ip_id).hex() == hexdata


def test_seal_rebuilds_keepalived_unicast() -> None:
    payload = encode(_advert(52, 150), N1, N2)
    got = ah.seal(payload, N1, N2, key=ah.key_of(b"pw"), seq=1, ip_id=1, unicast=True)
    assert got.hex() == KA_UNICAST


@pytest.mark.parametrize("case", MCAST)
def test_unseal_keepalived_multicast(case: Case) -> None:
    hexdata, src, vrid, prio, seq, _ip_id = case
    sealed = ah.unseal(bytes.fromhex(hexdata), ah.key_of(b"secret1"), unicast=False)
    assert (sealed.spi, sealed.seq) == (int(src), seq)
    advert = decode(sealed.payload, src, MCAST_V4, 255, multicast=True)
    assert advert == _advert(vrid, prio)


def test_unseal_unicast_ignores_ttl() -> None:
    data = bytearray(bytes.fromhex(KA_UNICAST))
    key = ah.key_of(b"pw")
    assert ah.unseal(bytes(data), key, unicast=True).seq == 1
    data[8] = 62  # a unicast advert may cross routers: RFC 2402 appendix A, TTL is mutable
    assert ah.unseal(bytes(data), key, unicast=True).seq == 1
    # multicast keeps the TTL covered (keepalived zeroes it for unicast only)
    with pytest.raises(PacketError):
        ah.unseal(bytes(data), key, unicast=False)


def test_mutable_fields_are_not_covered() -> None:
    data = bytearray(bytes.fromhex(KA_MCAST_FIRST))
    data[1] = 0x00  # TOS (a DSCP rewrite)
    data[6] = 0x40  # DF
    data[10:12] = b"\x12\x34"  # header checksum
    assert ah.unseal(bytes(data), ah.key_of(b"secret1"), unicast=False).seq == 1


@pytest.mark.parametrize(
    "offset",
    [
        4,  # IP ID: immutable (RFC 2402 appendix A), keepalived covers it
        12,  # source address
        19,  # destination address
        25,  # SPI
        31,  # sequence number
        32,  # ICV
        46,  # VRRP priority
        52,  # VIP
        59,  # authentication data
    ],
)
def test_tampered_byte_fails(offset: int) -> None:
    data = bytearray(bytes.fromhex(KA_MCAST_FIRST))
    data[offset] ^= 0x01
    with pytest.raises(PacketError) as e:
        ah.unseal(bytes(data), ah.key_of(b"secret1"), unicast=False)
    assert e.value.reason is DropReason.AUTH_FAILURE
    assert "invalid IPSEC HMAC-MD5 value" in e.value.detail


def test_wrong_password_fails() -> None:
    with pytest.raises(PacketError, match="HMAC-MD5"):
        ah.unseal(bytes.fromhex(KA_MCAST_FIRST), ah.key_of(b"secret2"), unicast=False)


def test_key_is_eight_bytes_nul_padded() -> None:
    assert ah.key_of(b"secret1") == b"secret1\0"
    assert ah.key_of(b"0123456789") == b"01234567"  # keepalived keeps 8 bytes of auth_pass
    data = bytes.fromhex(KA_MCAST_FIRST)
    assert ah.unseal(data, ah.key_of(b"secret1"), unicast=False).seq == 1


def test_spi_must_be_the_source() -> None:
    # A correctly keyed datagram whose SPI is not its source: keepalived drops it after the ICV.
    payload = encode(_advert(51, 150), N1, MCAST_V4)
    good = ah.seal(payload, N1, MCAST_V4, key=ah.key_of(b"k"), seq=1, ip_id=1)
    data = bytearray(good)
    data[24:28] = N2.packed
    data[32:44] = ah.icv(bytes(data), ah.key_of(b"k"), unicast=False)
    with pytest.raises(PacketError, match="SPI"):
        ah.unseal(bytes(data), ah.key_of(b"k"), unicast=False)


def test_other_next_header_is_not_vrrp() -> None:
    data = bytearray(bytes.fromhex(KA_MCAST_FIRST))
    data[20] = 6
    with pytest.raises(ah.NotVrrp):
        ah.unseal(bytes(data), ah.key_of(b"secret1"), unicast=False)


@pytest.mark.parametrize("size", [0, 19, 20, 43])
def test_short(size: int) -> None:
    with pytest.raises(PacketError) as e:
        ah.unseal(bytes.fromhex(KA_MCAST_FIRST)[:size], b"k" * 8, unicast=False)
    assert e.value.reason is DropReason.LENGTH


def test_seal_refuses_ip_id_zero() -> None:
    with pytest.raises(ValueError):
        ah.seal(b"", N1, MCAST_V4, key=b"k" * 8, seq=1, ip_id=0)


def test_seq_counter_as_keepalived() -> None:
    c = ah.SeqCounter()
    assert c.next_advert() == (1, 1)
    assert c.next_advert() == (2, 2)
    # a backup takes the master's numbers; replays and old numbers are refused
    assert c.accept(5) and c.seq == 5
    assert not c.accept(5) and not c.accept(3)
    assert c.next_advert() == (6, 3)  # a new master continues above what it accepted
    c.ip_id = 0xFFFF
    assert c.next_advert()[1] == 1  # the IP ID skips 0
    c.seq = ah.SEQ_MAX + 1
    assert c.next_advert()[0] == ah.SEQ_MAX + 1  # keepalived stops counting there


def test_seq_above_covers_twice_the_advert_rate_since_the_report() -> None:
    # reported 100 at t=10 s; 5.5 s later at advert_int 1: 100 + 2 * 6 + 16
    assert ah.seq_above(100, 10.0, 15.5, 1.0) == 128
    assert ah.seq_above(100, 10.0, 9.0, 1.0) == 116  # a clock seen going back counts as no time
    assert ah.seq_above(ah.SEQ_MAX, 0.0, 100.0, 1.0) == ah.SEQ_MAX  # never past keepalived's stop


def test_reported_seq_reads_the_state_report() -> None:
    assert ah.reported_seq({"state": "MASTER", "ah_seq": 7, "ah_at": 3.5}) == (7, 3.5)
    assert ah.reported_seq({"state": "MASTER"}) is None
    assert ah.reported_seq(None) is None
