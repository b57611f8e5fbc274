"""Helpers for the edge tests (netlink, ARP/NA, VMAC): run our code inside a namespace of
the lab (`tests.vrrp_child.keepalived_lab.lab`), look with `ip -j`, and capture frames on
the peer with an AF_PACKET socket."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003

_libc = ctypes.CDLL(None, use_errno=True)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run the block in namespace `ns` (this thread only: sockets opened in the block stay
    in it), and come back to where we were, also on failure."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def ip_json(ns: str, *args: str) -> Any:
    out = subprocess.run(["ip", "-n", ns, "-j", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True)


def sysctl(ns: str, path: str) -> str:
    with inside(ns), open(f"/proc/sys/net/{path}") as f:
        return f.read().strip()


class Capture:
    """Every frame arriving on an interface of a namespace from the moment it is made."""

    def __init__(self, ns: str, ifname: str) -> None:
        with inside(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind((ifname, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.setblocking(False)

    def frames(
        self, want: Callable[[bytes], bool], count: int, timeout: float = 5.0, settle: float = 0.0
    ) -> list[bytes]:
        """Frames that `want`, until `count` came (then `settle` more seconds for extras)
        or `timeout` passed."""
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if len(got) >= count:
                if settle <= 0:
                    return got
                deadline, settle = now + settle, 0.0
            if now >= deadline:
                return got
            ready, _, _ = select.select([self.sock], [], [], deadline - now)
            while ready:
                try:
                    frame, addr = self.sock.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] != socket.PACKET_OUTGOING and want(frame):
                    got.append(frame)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_arp(frame: bytes) -> bool:
    return frame[12:14] == b"\x08\x06"


def is_na(frame: bytes) -> bool:
    return frame[12:14] == b"\x86\xdd" and frame[20] == 58 and frame[54] == 136
