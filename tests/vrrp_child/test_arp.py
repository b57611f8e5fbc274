"""vrrp_child.arp: frames compared byte for byte with keepalived 2.2.7's (golden captures
below, and live in a namespace), and sent for real with AF_PACKET (on `pair`, a `Lab.pair()`
of labkit/lab.py: see conftest.py)."""

from __future__ import annotations

import shutil
import struct
import time
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from labkit.lab import Lab, Node
from tests.vrrp_child.conftest import needs_root
from vrrp_child.arp import (
    FrameSender,
    announcement,
    detail_line,
    gratuitous_arp,
    ipv6_forwarding,
    mac_bytes,
    unsolicited_na,
)
from watchdog.checksum import checksum

# Captured from keepalived 2.2.7 (tshark on the veth peer): VIP 192.0.2.100 from the
# interface MAC e2:05:12:f2:c3:9f, and from the VMAC of VRID 51 with use_vmac.
KEEPALIVED_GARP = bytes.fromhex("ffffffffffffe20512f2c39f08060001080006040001e20512f2c39fc0000264ffffffffffffc0000264")
KEEPALIVED_GARP_VMAC = bytes.fromhex(
    "ffffffffffff00005e0001330806000108000604000100005e000133c0000264ffffffffffffc0000264"
)
# VIP 2001:db8::100: with IPv6 forwarding off (O only), and on the VMAC of VRID 52 with
# forwarding on (R and O).
KEEPALIVED_NA = bytes.fromhex(
    "333300000001e20512f2c39f86dd6000000000203aff20010db8000000000000000000000100ff02000000000000"
    "0000000000000001880040962000000020010db80000000000000000000001000201e20512f2c39f"
)
KEEPALIVED_NA_VMAC_ROUTER = bytes.fromhex(
    "33330000000100005e00023486dd6000000000203aff20010db8000000000000000000000100ff02000000000000"
    "0000000000000001880018f9a000000020010db8000000000000000000000100020100005e000234"
)


def test_garp_matches_keepalived() -> None:
    assert gratuitous_arp("e2:05:12:f2:c3:9f", IPv4Address("192.0.2.100")) == KEEPALIVED_GARP
    assert gratuitous_arp(bytes.fromhex("00005e000133"), IPv4Address("192.0.2.100")) == KEEPALIVED_GARP_VMAC


def test_na_matches_keepalived() -> None:
    assert unsolicited_na("e2:05:12:f2:c3:9f", IPv6Address("2001:db8::100")) == KEEPALIVED_NA
    vmac = unsolicited_na("00:00:5e:00:02:34", IPv6Address("2001:db8::100"), router=True)
    assert vmac == KEEPALIVED_NA_VMAC_ROUTER


@pytest.mark.parametrize("vip", ["2001:db8::1", "fe80::53", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"])
@pytest.mark.parametrize("src", [None, "fe80::1"])
def test_na_fields_and_checksum(vip: str, src: str | None) -> None:
    target = IPv6Address(vip)
    source = IPv6Address(src) if src else None
    frame = unsolicited_na("02:00:00:00:00:01", target, source)
    assert len(frame) == 86
    assert frame[:6] == bytes.fromhex("333300000001") and frame[12:14] == b"\x86\xdd"
    version, plen, nh, hlim, s, d = struct.unpack("!IHBB16s16s", frame[14:54])
    assert (version >> 28, plen, nh, hlim) == (6, 32, 58, 255)
    assert IPv6Address(s) == (source or target) and IPv6Address(d) == IPv6Address("ff02::1")
    icmp = frame[54:]
    assert (icmp[0], icmp[1], icmp[4]) == (136, 0, 0x20)  # NA, code 0, R=0 S=0 O=1
    assert IPv6Address(icmp[8:24]) == target
    assert icmp[24:32] == bytes.fromhex("0201020000000001")  # target link-layer option
    # RFC 4443 section 2.3: the sum over pseudo-header and message, checksum included, is 0.
    assert checksum(s + d + struct.pack("!I3xB", 32, 58) + icmp) == 0


def test_mac_parsing_and_announcement() -> None:
    assert mac_bytes("0:0:5E:0:1:a") == bytes.fromhex("00005e00010a")
    for bad in ("00:00:5e:00:01", "zz:00:5e:00:01:01", b"\x00" * 5):
        with pytest.raises(ValueError):
            mac_bytes(bad)
    assert announcement("02:00:00:00:00:01", ip_address("192.0.2.9")) == gratuitous_arp(
        "02:00:00:00:00:01", IPv4Address("192.0.2.9")
    )
    assert announcement("02:00:00:00:00:01", ip_address("2001:db8::9"), router=True)[58] == 0xA0


# ---------------------------------------------------------------- on the wire


def is_arp(frame: bytes) -> bool:
    return frame[12:14] == b"\x08\x06"


def is_na(frame: bytes) -> bool:
    return frame[12:14] == b"\x86\xdd" and frame[20] == 58 and frame[54] == 136


def mac_of(node: Node, dev: str) -> str:
    return str(node.ip_json("link", "show", "dev", dev)[0]["address"])


@pytest.mark.lab
@needs_root
def test_sender_puts_exact_frames_on_the_wire(pair: Lab) -> None:
    a, b = pair.nodes
    mac = mac_of(a, "va")
    frames = [gratuitous_arp(mac, IPv4Address("192.0.2.100")), unsolicited_na(mac, IPv6Address("2001:db8::100"))]
    with b.sniff("vb") as cap, a.inside(), FrameSender() as sender:
        assert sender.send_many("va", frames) == 2
        got = cap.frames(lambda f: is_arp(f) or is_na(f), 2, settle=0.2)
        # Unknown interface: nothing sent, nothing raised.
        assert not sender.send("nosuch0", frames[0])
        assert sender.dropped == 1
    assert got == frames


@pytest.mark.lab
@needs_root
def test_sender_recovers_when_the_interface_is_recreated(pair: Lab) -> None:
    a = pair.node(1)
    a.ip("link", "add", "vx", "type", "veth", "peer", "name", "vy")
    a.ip("link", "set", "vx", "up")
    frame = gratuitous_arp("02:00:00:00:00:01", IPv4Address("192.0.2.5"))
    with a.inside(), FrameSender() as sender:
        assert sender.send("vx", frame)
        a.ip("link", "del", "vx")
        assert not sender.send("vx", frame)
        a.ip("link", "add", "vx", "type", "veth", "peer", "name", "vy")
        a.ip("link", "set", "vx", "up")
        assert sender.send("vx", frame)


@pytest.mark.lab
@needs_root
def test_measure_garp_burst_for_250_vips(pair: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """garp_master_repeat 5 (keepalived's default) for 250 VIPs: 1250 frames."""
    a, b = pair.nodes
    mac = mac_of(a, "va")
    vips = [IPv4Address(f"198.51.100.{i + 1}") for i in range(250)]
    with b.sniff("vb") as cap, a.inside(), FrameSender() as sender:
        t = time.perf_counter()
        frames = [gratuitous_arp(mac, v) for v in vips]
        build = time.perf_counter() - t
        t = time.perf_counter()
        sent = sum(sender.send_many("va", frames) for _ in range(5))
        burst = time.perf_counter() - t
        got = cap.frames(is_arp, 1250, timeout=10)
    assert sent == 1250 and sender.dropped == 0
    assert len(got) == 1250 and got[:250] == frames
    with capsys.disabled():
        print(f"\nGARP burst for 250 VIPs x 5: build {build * 1000:.2f} ms, send {burst * 1000:.2f} ms")
    assert burst < 0.5


def _keepalived_frames(the_lab: Lab, config: str, count: int) -> list[bytes]:
    """keepalived 2.2.7 (VRRP only) in node 1, the GARP/NA frames it sends as seen on vb in node 2."""
    with the_lab.node(2).sniff("vb") as cap, the_lab.node(1).keepalived(config, args=["-P"]):
        return cap.frames(lambda f: is_arp(f) or is_na(f), count, timeout=15, settle=0.5)


KEEPALIVED_CONF = """
global_defs {{
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 2
}}
vrrp_instance V4 {{
    interface va
    {vmac4}
    state MASTER
    virtual_router_id 61
    priority 255
    advert_int 1
    virtual_ipaddress {{
        192.0.2.61/24
        198.51.100.61
    }}
}}
vrrp_instance V6 {{
    interface va
    {vmac6}
    state MASTER
    virtual_router_id 62
    priority 255
    advert_int 1
    virtual_ipaddress {{
        fe80::62/64
        2001:db8::62/64
    }}
}}
"""


@pytest.mark.lab
@needs_root
@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
@pytest.mark.parametrize("vmac", [False, True], ids=["interface-mac", "use_vmac"])
@pytest.mark.parametrize("forwarding", [0, 1])
def test_frames_equal_keepalived_live(pair: Lab, vmac: bool, forwarding: int) -> None:
    """keepalived 2.2.7 becoming master; every GARP/NA it sends equals ours for that VIP."""
    a = pair.node(1)
    for path in ("all", "default", "va"):
        a.write_sysctl(f"ipv6/conf/{path}/forwarding", forwarding)
    config = KEEPALIVED_CONF.format(vmac4="use_vmac" if vmac else "", vmac6="use_vmac" if vmac else "")
    frames = _keepalived_frames(pair, config, 8)
    # keepalived takes R from the interface's IPv6 forwarding; so does our sender's caller.
    with a.inside():
        assert ipv6_forwarding("va") is bool(forwarding)
        assert not ipv6_forwarding("nosuch0")
    mac = mac_of(a, "va")
    mac4, mac6 = ("00:00:5e:00:01:3d", "00:00:5e:00:02:3e") if vmac else (mac, mac)
    expected = {
        gratuitous_arp(mac4, IPv4Address("192.0.2.61")),
        gratuitous_arp(mac4, IPv4Address("198.51.100.61")),
        unsolicited_na(mac6, IPv6Address("fe80::62"), router=bool(forwarding)),
        unsolicited_na(mac6, IPv6Address("2001:db8::62"), router=bool(forwarding)),
    }
    assert len(frames) == 8  # 4 VIPs, vrrp_garp_master_repeat 2
    assert set(frames) == expected


def test_detail_line_per_frame_is_keepalived_s() -> None:
    """-D logs `Sending gratuitous ARP on IF for ADDR` (and the NA's line) for each frame sent."""
    mac = "02:00:00:00:00:01"
    garp = gratuitous_arp(mac, IPv4Address("192.0.2.9"))
    na = unsolicited_na(mac, IPv6Address("2001:db8::9"))
    assert detail_line("eth0", garp) == "Sending gratuitous ARP on eth0 for 192.0.2.9"
    assert detail_line("eth0", na) == "Sending unsolicited Neighbour Advert on eth0 for 2001:db8::9"


class _Wire:
    """A socket that keeps what is sent (FrameSender._socks takes it in place of AF_PACKET's)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, frame: bytes, address: tuple[str, int]) -> int:
        self.sent.append((frame, address))
        return len(frame)

    def close(self) -> None:
        pass


def test_rounds_of_several_vips_log_a_line_per_frame_in_wire_order(caplog: pytest.LogCaptureFixture) -> None:
    """garp_master_repeat's rounds (v4, v6, v4, v6, ...): each frame goes with its own protocol
    and its -D line, in the order sent, though each VIP's line is made once."""
    mac = "02:00:00:00:00:01"
    garp, na = gratuitous_arp(mac, IPv4Address("192.0.2.9")), unsolicited_na(mac, IPv6Address("2001:db8::9"))
    wire = _Wire()
    with FrameSender() as sender, caplog.at_level("DEBUG", logger="pykeepalived_vrrp"):
        sender._socks["eth0"] = wire  # type: ignore[assignment]
        assert sender.send_many("eth0", [garp, na] * 3) == 6
    assert wire.sent == [(garp, ("eth0", 0x0806)), (na, ("eth0", 0x86DD))] * 3
    assert caplog.messages == [detail_line("eth0", garp), detail_line("eth0", na)] * 3
