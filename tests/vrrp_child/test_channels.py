"""The VRRP child's permission probe (vrrp_child.channels), with a fake socket opener."""

from __future__ import annotations

import errno
import socket

from vrrp_child.channels import Refused, garp_channel, probe
from vrrp_child.packet import VRRP_PROTO


class _Closed:
    def close(self) -> None:
        pass


def opener(refuse: dict[tuple[int, int], int], opened: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    def open_(af: int, kind: int, proto: int) -> socket.socket:
        opened.append((af, proto))
        code = refuse.get((af, proto))
        if code is not None:
            raise OSError(code, errno.errorcode[code])
        return _Closed()  # type: ignore[return-value]

    return open_


def test_keepalived_names_the_shared_channel_by_family() -> None:
    assert garp_channel([6, 4]) == "gratuitous ARP"
    assert garp_channel([6]) == "gratuitous NDISC"


def test_the_packet_channel_first_as_keepalived() -> None:
    opened: list[tuple[int, int]] = []
    refused = probe([4], opener({(socket.AF_PACKET, 0): errno.EPERM}, opened))
    assert isinstance(refused, Refused) and refused.channel == "gratuitous ARP"
    assert refused.keepalived_line() == "Error 1 while registering gratuitous ARP shared channel"
    assert "Operation not permitted" in refused.reason() or "EPERM" in refused.reason()
    assert opened == [(socket.AF_PACKET, 0)]  # stops at the first refusal


def test_raw_vrrp_socket_refused() -> None:
    opened: list[tuple[int, int]] = []
    refused = probe([6], opener({(socket.AF_INET6, VRRP_PROTO): errno.EACCES}, opened))
    assert refused is not None and refused.channel == "VRRP IPv6"
    assert opened == [(socket.AF_PACKET, 0), (socket.AF_INET6, VRRP_PROTO)]


def test_other_errors_and_no_instances_are_not_permission_problems() -> None:
    opened: list[tuple[int, int]] = []
    assert probe([4], opener({(socket.AF_INET, VRRP_PROTO): errno.EPROTONOSUPPORT}, opened)) is None
    assert probe([], opener({}, opened)) is None
