"""DNS_CHECK: one query of `type` for `name` over UDP (port 53 unless the real server
or connect_port says otherwise); the server passes when its answer comes within
connect_timeout with rcode NOERROR.

keepalived's rule (check_dns.c), which we keep: only the reply header is judged.
- A datagram shorter than a header, with another id, or that is not a response (QR
  clear) is ignored: the check keeps waiting for the real answer until the timeout.
- The answer with our id and QR set passes when its rcode is 0 (NOERROR), even with no
  answer records (NODATA) or a body that does not parse; any other rcode fails.
- An ICMP port unreachable (ECONNREFUSED on the connected socket) fails at once.

The query is keepalived's: a fresh random id, RD set, one question of class IN, no EDNS.
It is built by dnspython once per checker; each attempt only puts a new id in it.

Failure texts are keepalived's log lines: "DNS_CHECK ([10.0.0.1]:udp:53) read timeout
from socket", "... read error occurred. (rcode = 3)".
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
from dataclasses import replace

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from conf.checkers import DnsCheck

from .base import Probe, ProbeEnv, Result, Target, failed, make_socket
from .tcp import fmt_check

DNS_PORT = 53
HEADER = struct.Struct("!HH")  # id, flags: all of the header the check looks at
HEADER_SIZE = 12
RECV_SIZE = 4096  # keepalived's DNS_BUFFER_SIZE is smaller; only the header matters
QR = 0x8000


def build_query(checker: DnsCheck) -> bytes:
    """The query in wire format, id 0. Raises ValueError for a name DNS cannot carry."""
    try:
        name = dns.name.from_text(checker.name)
        query = dns.message.make_query(name, dns.rdatatype.from_text(checker.type), use_edns=False)
        query.id = 0
        query.flags = dns.flags.RD
        return query.to_wire()
    except dns.exception.DNSException as e:
        raise ValueError(f"cannot query name '{checker.name}': {e}") from e


def with_id(wire: bytes, qid: int) -> bytes:
    return struct.pack("!H", qid) + wire[2:]


def judge(reply: bytes, qid: int) -> int | None:
    """The rcode of `reply` if it is the answer to query `qid`, None if it is not (too
    short, another id, not a response): keepalived keeps waiting then."""
    if len(reply) < HEADER_SIZE:
        return None
    rid: int
    flags: int
    rid, flags = HEADER.unpack_from(reply)
    if rid != qid or not flags & QR:
        return None
    return flags & 0xF


def probe(checker: DnsCheck, env: ProbeEnv) -> Probe:
    """One query per call; retries and timers are the workload's."""
    del env
    try:
        wire: bytes | None = build_query(checker)
        problem = ""
    except ValueError as e:
        wire, problem = None, str(e)

    async def run(target: Target) -> Result:
        if target.port is None:
            target = replace(target, port=DNS_PORT)
        prefix = f"DNS_CHECK ({fmt_check(target, 'udp')})"
        if wire is None:
            return failed(f"{prefix} {problem}")
        return await ask(target, wire, prefix)

    return run


async def ask(target: Target, wire: bytes, prefix: str) -> Result:
    loop = asyncio.get_running_loop()
    qid = random.getrandbits(16)
    ignored = 0
    try:
        sock = make_socket(target, socket.SOCK_DGRAM)
    except OSError as e:
        return failed(f"{prefix} UDP socket bind failed. ({_strerror(e)})")
    try:
        try:
            sock.connect(target.sockaddr())  # UDP: sets the peer, never waits
        except OSError as e:
            return failed(f"{prefix} network unreachable for [{target.address}]:{target.port} ({_strerror(e)})")
        try:
            async with asyncio.timeout(target.timeout):
                try:
                    await loop.sock_sendall(sock, with_id(wire, qid))
                except OSError as e:
                    return failed(f"{prefix} failed to write socket. ({_strerror(e)})")
                while True:
                    try:
                        reply = await loop.sock_recv(sock, RECV_SIZE)
                    except OSError as e:
                        code = e.errno or 0
                        return failed(f"{prefix} failed to read socket; errno {code} ({_strerror(e)})")
                    rcode = judge(reply, qid)
                    if rcode is None:
                        ignored += 1
                        continue
                    if rcode != 0:
                        return failed(f"{prefix} read error occurred. (rcode = {rcode}, {_rcode_name(rcode)})")
                    return Result(True, f"{prefix} succeed on service")
        except TimeoutError:
            extra = f" ({ignored} datagram(s) that were not the answer ignored)" if ignored else ""
            return failed(f"{prefix} read timeout from socket{extra}")
    finally:
        sock.close()


def _strerror(e: OSError) -> str:
    if e.strerror:
        return e.strerror
    if e.errno:
        return os.strerror(e.errno)
    return str(e) or type(e).__name__


def _rcode_name(rcode: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(rcode))
    except ValueError:
        return str(rcode)
