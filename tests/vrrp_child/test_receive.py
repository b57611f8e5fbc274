"""vrrp_child.receive: the instance checks after decode, their order, their verdicts and
keepalived 2.2.7's log lines (the expected lines below were copied from a keepalived 2.2.7
backup receiving such adverts in a network namespace lab)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from tests.conf.util import config_of, parse
from vrrp_child.packet import AUTH_AH, AUTH_NONE, AUTH_PASS, MCAST_V4, Advert, DropReason, decode, encode
from vrrp_child.receive import ACCEPT, Expect, Verdict, check

VIP_A, VIP_B, VIP_C = IPv4Address("192.0.2.60"), IPv4Address("192.0.2.160"), IPv4Address("192.0.2.163")

V2_EXPECT = Expect(2, 61, AUTH_PASS, b"right", 100, (VIP_A,), name="M61")
V2_ADVERT = Advert(2, 61, 200, (VIP_A,), 100, AUTH_PASS, b"right")
V3_EXPECT = Expect(3, 60, AUTH_NONE, b"", 100, (VIP_A, VIP_B), name="M60")
V3_ADVERT = Advert(3, 60, 200, (VIP_B, VIP_A), 100)


def test_matching_adverts_are_accepted() -> None:
    assert check(V2_ADVERT, V2_EXPECT) is ACCEPT
    # The address list is compared as a set: order on the wire does not matter.
    assert check(V3_ADVERT, V3_EXPECT) == Verdict(True, None, None)


def test_what_decode_returns_is_checked_the_same() -> None:
    src = IPv4Address("192.0.2.1")
    advert = decode(encode(V2_ADVERT, src, MCAST_V4), src, MCAST_V4, 255, multicast=True)
    assert check(advert, V2_EXPECT) is ACCEPT


def test_version_and_vrid() -> None:
    v3 = Advert(3, 61, 200, (VIP_A,), 100)
    assert check(v3, V2_EXPECT) == Verdict(False, DropReason.VERSION, "(M61) wrong version. Received 3 and expect 2")
    other = replace(V2_ADVERT, vrid=62)
    assert check(other, V2_EXPECT) == Verdict(
        False, DropReason.VRID, "(M61) received VRID mismatch. Received 62, Expected 61"
    )


def test_invalid_auth_type() -> None:
    for auth_type in (3, 255):
        verdict = check(replace(V2_ADVERT, auth_type=auth_type), V2_EXPECT)
        assert verdict == Verdict(False, DropReason.AUTH_INVALID_TYPE, f"(M61) Invalid auth type: {auth_type}")


def test_auth_type_mismatch() -> None:
    none = replace(V2_ADVERT, auth_type=AUTH_NONE, auth_data=b"")
    assert check(none, V2_EXPECT) == Verdict(
        False, DropReason.AUTH_TYPE_MISMATCH, "(M61) received a 0 auth, expecting 1!"
    )
    no_auth = replace(V2_EXPECT, auth_type=AUTH_NONE, auth_pass=b"")
    assert check(V2_ADVERT, no_auth) == Verdict(
        False, DropReason.AUTH_TYPE_MISMATCH, "(M61) received a 1 auth, expecting 0!"
    )
    ah = replace(V2_ADVERT, auth_type=AUTH_AH)
    assert check(ah, V2_EXPECT).reason is DropReason.AUTH_TYPE_MISMATCH


def test_ah_type_checked_here_icv_by_the_instance() -> None:
    # The AH itself (ICV, SPI, sequence) is vrrp_child.ah's, checked before decoding.
    expect = replace(V2_EXPECT, auth_type=AUTH_AH)
    assert check(replace(V2_ADVERT, auth_type=AUTH_AH, auth_data=b""), expect) == Verdict(True)
    assert expect.advert(100).auth_data == b""  # keepalived sends zeros in the VRRP message


def test_password() -> None:
    wrong = replace(V2_ADVERT, auth_data=b"wrong")
    assert check(wrong, V2_EXPECT) == Verdict(False, DropReason.AUTH_FAILURE, "(M61) received an invalid passwd!")
    # A prefix is not the password: all 8 bytes (NUL padded) are compared.
    assert check(replace(V2_ADVERT, auth_data=b"righ"), V2_EXPECT).reason is DropReason.AUTH_FAILURE
    assert check(replace(V2_ADVERT, auth_data=b"right\0\0\0"), V2_EXPECT) is ACCEPT
    # keepalived uses the first 8 bytes of a longer password.
    long = replace(V2_EXPECT, auth_pass=b"secret12345")
    assert check(replace(V2_ADVERT, auth_data=b"secret12"), long) is ACCEPT


def test_v2_interval_mismatch_drops() -> None:
    slow = replace(V2_EXPECT, name="M62", adver_int_cs=200)
    assert check(V2_ADVERT, slow) == Verdict(
        False, DropReason.INTERVAL, "(M62) advertisement interval mismatch mine=2 sec rcv'd=1 sec"
    )


def test_v3_interval_mismatch_is_accepted() -> None:
    """RFC 5798 section 6.4.2: the backup adopts the master's interval."""
    assert check(replace(V3_ADVERT, adver_int_cs=10), V3_EXPECT) is ACCEPT


def test_keepalived_order_auth_before_interval_before_addresses() -> None:
    everything_wrong = Advert(2, 61, 200, (VIP_C,), 300, AUTH_PASS, b"wrong")
    assert check(everything_wrong, V2_EXPECT).reason is DropReason.AUTH_FAILURE
    assert check(replace(everything_wrong, auth_data=b"right"), V2_EXPECT).reason is DropReason.INTERVAL
    assert check(replace(everything_wrong, auth_data=b"right", adver_int_cs=100), V2_EXPECT).reason is (
        DropReason.ADDRESS_LIST
    )


def test_v3_address_list_mismatch_is_logged_and_accepted() -> None:
    """RFC 5798 section 7.1: log and continue. (keepalived 2.2.7 drops the advert, so its
    backup becomes master beside a master with other VIPs.)"""
    expect = Expect(3, 60, AUTH_NONE, b"", 100, (VIP_B,), name="M60")
    advert = Advert(3, 60, 200, (VIP_A,), 100)
    assert check(advert, expect) == Verdict(
        True,
        DropReason.ADDRESS_LIST,
        "(M60) ip address associated with VRID 60 not present in MASTER advert: 192.0.2.160",
    )
    count = Advert(3, 60, 200, (VIP_B, VIP_C), 100)
    assert check(count, expect) == Verdict(
        True, DropReason.ADDRESS_LIST, "(M60) received an unexpected ip number count 2, expected 1!"
    )


def test_v2_address_list_mismatch_drops_unless_from_the_owner() -> None:
    """RFC 3768 section 7.1: "If the packet was not generated by the address owner
    (Priority does not equal 255 (decimal)), the receiver MUST drop the packet"."""
    expect = Expect(2, 63, AUTH_NONE, b"", 100, (VIP_A,), name="M63")
    advert = Advert(2, 63, 200, (VIP_A, VIP_C), 100)
    log = "(M63) received an unexpected ip number count 2, expected 1!"
    assert check(advert, expect) == Verdict(False, DropReason.ADDRESS_LIST, log)
    assert check(replace(advert, priority=255), expect) == Verdict(True, DropReason.ADDRESS_LIST, log)
    # A priority 0 advert with the wrong list is dropped too (keepalived counts Priority
    # Zero only for adverts that pass its checks).
    assert not check(replace(advert, priority=0), expect).accept


def test_skip_check_adv_addr() -> None:
    advert = Advert(3, 60, 200, (VIP_C,), 100)
    assert check(advert, V3_EXPECT, check_addresses=False) is ACCEPT
    v2 = Advert(2, 61, 200, (VIP_C,), 100, AUTH_PASS, b"right")
    assert check(v2, V2_EXPECT, check_addresses=False) is ACCEPT


def test_no_vips_expected() -> None:
    expect = Expect(2, 56, AUTH_NONE, b"", 100, (), name="NO_VIP")
    assert check(Advert(2, 56, 120, (), 100), expect) is ACCEPT
    assert check(Advert(2, 56, 120, (VIP_A,), 100), expect).log == (
        "(NO_VIP) received an unexpected ip number count 1, expected 0!"
    )


def test_ipv6() -> None:
    ll, glob = IPv6Address("fe80::53"), IPv6Address("2001:db8::53")
    expect = Expect(3, 53, AUTH_NONE, b"", 100, (ll, glob), name="V3_V6")
    assert check(Advert(3, 53, 100, (glob, ll), 100), expect) is ACCEPT
    other = Advert(3, 53, 100, (ll, IPv6Address("2001:db8::54")), 100)
    assert check(other, expect).log == (
        "(V3_V6) ip address associated with VRID 53 not present in MASTER advert: 2001:db8::53"
    )


def test_expect_compares_by_value() -> None:
    assert Expect(3, 60, 0, b"", 100, (VIP_A,)) == Expect(3, 60, 0, b"", 100, (VIP_A,))
    assert hash(Expect(3, 60, 0, b"", 100, (VIP_A,))) == hash(Expect(3, 60, 0, b"", 100, (VIP_A,)))


def test_expect_from_instance(tmp_path: Path) -> None:
    config = config_of(
        parse(
            tmp_path,
            """
            vrrp_instance V2_PASS {
                interface eth0
                virtual_router_id 51
                advert_int 2
                authentication {
                    auth_type PASS
                    auth_pass secret12
                }
                virtual_ipaddress {
                    192.0.2.51/24
                    198.51.100.51
                }
                virtual_ipaddress_excluded {
                    192.0.2.99
                }
            }
            vrrp_instance V3_V6 {
                interface eth0
                virtual_router_id 53
                advert_int 0.5
                virtual_ipaddress {
                    fe80::53/64
                    2001:db8::53/64
                }
            }
            """,
        )
    )
    v2 = Expect.from_instance(config.vrrp_instance["V2_PASS"])
    assert v2 == Expect(
        2, 51, AUTH_PASS, b"secret12", 200, (IPv4Address("192.0.2.51"), IPv4Address("198.51.100.51")), "V2_PASS"
    )
    v6 = Expect.from_instance(config.vrrp_instance["V3_V6"])
    assert v6 == Expect(3, 53, AUTH_NONE, b"", 50, (IPv6Address("fe80::53"), IPv6Address("2001:db8::53")), "V3_V6")
