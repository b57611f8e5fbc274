"""GARP / NA pacing (vrrp_garp_interval, vrrp_gna_interval, garp_group)."""

from __future__ import annotations

import ipaddress

from vrrp_child.arp import gratuitous_arp, unsolicited_na
from vrrp_child.pacing import Intervals, Pacer, is_na

MAC = "02:00:00:00:00:01"
ARP = gratuitous_arp(MAC, ipaddress.IPv4Address("192.0.2.100"))
NA = unsolicited_na(MAC, ipaddress.IPv6Address("2001:db8::100"))


def test_no_interval_sends_everything_at_once() -> None:
    ready, wake = Pacer().offer("eth0", [ARP] * 5 + [NA] * 3, 10.0)
    assert len(ready) == 8 and wake is None
    assert is_na(NA) and not is_na(ARP)


def test_interval_spaces_frames_per_kind() -> None:
    p = Pacer(default=Intervals(garp=0.1, gna=0.5))
    ready, wake = p.offer("eth0", [ARP, ARP, ARP, NA, NA], 10.0)
    assert ready == [ARP, NA] and wake == 10.1
    ready, wake = p.due("eth0", 10.1)
    assert ready == [ARP] and wake is not None and abs(wake - 10.2) < 1e-9
    ready, wake = p.due("eth0", 10.25)
    assert ready == [ARP] and wake == 10.5
    ready, wake = p.due("eth0", 10.5)
    assert ready == [NA] and wake is None


def test_garp_group_overrides_per_interface() -> None:
    p = Pacer(intervals={"eth1": Intervals(garp=1.0)}, default=Intervals())
    assert p.offer("eth0", [ARP, ARP], 0.0) == ([ARP, ARP], None)
    assert p.offer("eth1", [ARP, ARP], 0.0) == ([ARP], 1.0)
