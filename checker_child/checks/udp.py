"""UDP_CHECK: send `payload` to the real server and judge what comes back within
connect_timeout (keepalived's check_udp.c and layer4.c).

keepalived's rules, which we keep:
- The datagram is `payload`, else keepalived's fixed 32 bytes "keepalived check - ..."
  (the man page says "random"; keepalived 2.2.7 sends this filler, and so do we, so the
  real server sees the same packet).
- The socket has IP_RECVERR / IPV6_RECVERR, so an ICMP error for the datagram (port,
  host or network unreachable) fails the check as soon as it arrives.
- Without `require_reply`: silence until the timeout passes (a UDP service need not
  answer); any reply passes; an ICMP error fails.
- With `require_reply`: silence fails. With a HEX_STR, the reply's length must lie in
  min_reply_length..max_reply_length and its first min(len(reply), len(HEX_STR)) bytes
  must match (X digits match anything). A bare `require_reply` takes any reply of any
  length: keepalived only looks at the lengths when there is data to compare.

Failure texts are keepalived's log lines: "UDP connection to [10.0.0.1]:udp:53 failed.",
"UDP check to [10.0.0.1]:udp:53 reply data mismatch.".
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

from conf.checkers import ReplyPattern, UdpCheck

from .base import Probe, ProbeEnv, Result, Target, describe_error, failed, make_socket
from .tcp import fmt_check

# keepalived's set_buf(): "keepalived check - " repeated over UDP_BUFSIZE (32) bytes.
DEFAULT_PAYLOAD = (b"keepalived check - " * 2)[:32]
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
RECV_SIZE = 65536  # a whole datagram, so that a reply longer than max_reply_length is seen as such


def reply_ok(reply: bytes, pattern: ReplyPattern, min_len: int, max_len: int) -> bool:
    """keepalived's check_udp_reply, inverted: True when `reply` is acceptable."""
    if not pattern.data:
        return True  # a bare require_reply: any reply
    if not min_len <= len(reply) <= max_len:
        return False
    return all((r ^ d) & m == 0 for r, d, m in zip(reply, pattern.data, pattern.mask, strict=False))


def probe(checker: UdpCheck, env: ProbeEnv) -> Probe:
    """One datagram per call; retries and timers are the workload's."""
    del env
    payload = checker.payload if checker.payload is not None else DEFAULT_PAYLOAD
    pattern = checker.require_reply
    lo, hi = checker.min_reply_length, checker.max_reply_length

    async def run(target: Target) -> Result:
        where = fmt_check(target, "udp")
        try:
            reply = await exchange(target, payload)
        except TimeoutError:
            if pattern is None:
                return Result(True, f"UDP connection to {where} success. (no reply)")
            return failed(f"UDP connection to {where} failed. (no reply)")
        except OSError as e:
            return failed(f"UDP connection to {where} failed. ({describe_error(e)})")
        if pattern is not None and not reply_ok(reply, pattern, lo, hi):
            return failed(f"UDP check to {where} reply data mismatch. ({len(reply)} bytes: {reply[:16].hex()})")
        return Result(True, f"UDP connection to {where} success.")

    return run


async def exchange(target: Target, payload: bytes) -> bytes:
    """Send `payload`, return the first reply. TimeoutError when none came within the
    timeout; OSError for an ICMP error or a socket that cannot send."""
    if target.port is None:
        target = replace(target, port=0)
    loop = asyncio.get_running_loop()
    sock = make_socket(target, socket.SOCK_DGRAM)
    try:
        if target.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        sock.connect(target.sockaddr())  # UDP: sets the peer, never waits
        async with asyncio.timeout(target.timeout):
            await loop.sock_sendall(sock, payload)
            return await loop.sock_recv(sock, RECV_SIZE)
    finally:
        sock.close()
