"""PING_CHECK: one ICMP / ICMPv6 echo request to the real server; it passes when the
echo reply comes back within connect_timeout (keepalived's check_ping.c).

Like keepalived, the echo goes out on a "ping socket" (SOCK_DGRAM, IPPROTO_ICMP(V6)):
the kernel gives each socket its own echo identifier and hands it only the replies that
carry it, so thousands of concurrent checks each read just their own reply, and the
socket takes bindto / bind_if / fwmark like any other (base.make_socket). icmplib is not
used: its privileged mode reads every ICMP packet of the host on every raw socket (1,000
checks in flight means a million wake-ups), and it cannot set SO_MARK or
SO_BINDTODEVICE.

Ping sockets are allowed only to the groups in /proc/sys/net/ipv4/ping_group_range
(default "1 0": nobody). keepalived lowers the range's start to 0 so that root may use
them, and puts it back when it stops; `allow_ping_sockets` / `restore_ping_group_range`
do the same (the first PING_CHECK attempt that needs it calls the former; the workload
calls the latter at stop). If the range cannot be changed (a read-only /proc/sys), the
check falls back to a raw socket, filtering replies by identifier and sequence.

The request is keepalived's: an 8-byte echo header and 128 bytes of its filler text.
Failure texts are keepalived's log lines: "ICMP connection to address [10.0.0.1]:tcp:0
timeout.", "ICMP connection to [10.0.0.1]:tcp:0 failed.".
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import random
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from conf.checkers import PingCheck
from watchdog.checksum import checksum

from .base import Probe, ProbeEnv, Result, Target, describe_error, failed, make_socket
from .tcp import fmt_check

log = logging.getLogger(__name__)

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
ICMP_ECHO, ICMP_ECHOREPLY = 8, 0
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
ECHO = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
# keepalived's set_buf() over ICMP_BUFSIZE (128) bytes.
FILLER = (b"keepalived check - " * 7)[:128]
RECV_SIZE = 2048

_seq = itertools.count(random.getrandbits(16))


@dataclass
class _GroupRange:
    saved: str | None = None  # the range as we found it, when we changed it
    tried: bool = False  # allow_ping_sockets ran (it is not retried on every check)


_range = _GroupRange()


def next_seq() -> int:
    return next(_seq) & 0xFFFF


def echo_request(family: int, ident: int, seq: int, payload: bytes = FILLER) -> bytes:
    """An echo request; the checksum is filled in for ICMPv4 (the kernel computes it on
    ping sockets and for ICMPv6, and leaves it alone on an IPv4 raw socket)."""
    kind = ICMP6_ECHO_REQUEST if family == socket.AF_INET6 else ICMP_ECHO
    head = ECHO.pack(kind, 0, 0, ident, seq)
    if family == socket.AF_INET6:
        return head + payload
    return ECHO.pack(kind, 0, checksum(head + payload), ident, seq) + payload


def parse_reply(family: int, data: bytes, *, raw: bool) -> tuple[int, int, int] | None:
    """(type, identifier, sequence) of an ICMP message as a socket hands it over, None if
    it is too short. An IPv4 raw socket includes the IP header; a ping socket does not."""
    if raw and family == socket.AF_INET:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < ECHO.size:
        return None
    kind, _code, _sum, ident, seq = ECHO.unpack_from(data)
    return kind, ident, seq


def read_group_range(path: Path = PING_GROUP_RANGE) -> tuple[int, int] | None:
    try:
        lo, hi = path.read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return None


def allow_ping_sockets(path: Path = PING_GROUP_RANGE) -> bool:
    """Let our group open ping sockets, as keepalived does at start-up: lower the range's
    start to 0 (keeping its end), remember the old value for restore_ping_group_range.
    True when ping sockets should now work. Blocking file I/O on /proc: instant."""
    _range.tried = True
    found = read_group_range(path)
    if found is None:
        return False
    lo, hi = found
    gid = os.getegid()
    if lo <= gid <= hi:
        return True
    if lo > 1 and hi > 1:
        log.info("Warning: %s being expanded from %d %d to 0 %d", path, lo, hi, hi)
    try:
        path.write_text(f"0\t{hi}\n")
    except OSError as e:
        log.info("Write %s failed - errno %d", path, e.errno or 0)
        return False
    if _range.saved is None:
        _range.saved = f"{lo}\t{hi}\n"
    return 0 <= gid <= hi


def restore_ping_group_range(path: Path = PING_GROUP_RANGE) -> None:
    """Put back the range allow_ping_sockets changed (keepalived does it at exit)."""
    saved, _range.saved = _range.saved, None
    _range.tried = False
    if saved is None:
        return
    try:
        path.write_text(saved)
    except OSError as e:
        log.info("Write %s failed - errno %d", path, e.errno or 0)


def open_icmp_socket(target: Target, *, raw: bool = False) -> tuple[socket.socket, bool]:
    """A ping socket (raw=False), else a raw one (raw=True) when ping sockets are not
    allowed for us and cannot be made so (or when asked for). Raises OSError when
    neither opens."""
    proto = socket.IPPROTO_ICMPV6 if target.family == socket.AF_INET6 else socket.IPPROTO_ICMP
    if raw:
        return make_socket(target, socket.SOCK_RAW, proto), True
    try:
        return make_socket(target, socket.SOCK_DGRAM, proto), False
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            raise
    if not _range.tried and allow_ping_sockets():
        try:
            return make_socket(target, socket.SOCK_DGRAM, proto), False
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM):
                raise
    return make_socket(target, socket.SOCK_RAW, proto), True


def probe(checker: PingCheck, env: ProbeEnv) -> Probe:
    """One echo request per call; retries and timers are the workload's."""
    del checker, env  # PING_CHECK has no options of its own (the Target carries them)

    async def run(target: Target) -> Result:
        where = fmt_check(target)
        try:
            await echo(target)
        except TimeoutError:
            return failed(f"ICMP connection to address {where} timeout.")
        except OSError as e:
            return failed(f"ICMP connection to {where} failed. ({describe_error(e)})")
        return Result(True, f"ICMP connection to {where} success.")

    return run


async def echo(target: Target, *, raw: bool = False) -> None:
    """Send one echo request and wait for its echo reply. TimeoutError when none came in
    time; OSError when the request cannot be sent (no route, ...). `raw`: use a raw
    socket even if ping sockets work (tests)."""
    loop = asyncio.get_running_loop()
    sock, raw = open_icmp_socket(target, raw=raw)
    try:
        # The kernel sets the identifier of a ping socket's echoes (it is the socket's
        # "port"); on a raw socket we pick one and filter replies by it ourselves.
        ident = random.getrandbits(16) if raw else 0
        seq = next_seq()
        sock.connect(target.sockaddr(0))
        if not raw:
            ident = sock.getsockname()[1]
        request = echo_request(target.family, ident, seq)
        reply_types = (ICMP6_ECHO_REPLY,) if target.family == socket.AF_INET6 else (ICMP_ECHOREPLY,)
        async with asyncio.timeout(target.timeout):
            await loop.sock_sendall(sock, request)
            while True:
                data = await loop.sock_recv(sock, RECV_SIZE)
                got = parse_reply(target.family, data, raw=raw)
                if got is None:
                    continue
                kind, rid, rseq = got
                if kind in reply_types and rid == ident and rseq == seq:
                    return
                # Anything else on a raw socket is someone else's ICMP; a ping socket
                # only shows replies to itself, where a stale sequence is skipped too.
    finally:
        sock.close()
