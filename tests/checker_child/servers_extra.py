"""Small real servers on loopback for the SMTP, DNS and UDP check tests (the HTTP/TCP ones
are in servers.py). Each is an async context manager on an ephemeral port of `host` that
yields a `Listening` (unpacks as `(host, port)`, records what it saw) and stops on exit.

- smtp_server(helo_reply=)   aiosmtpd's SMTP protocol on our loop; records HELO names
- smtp_script(lines)         a fake SMTP server that writes `lines` as its banner
                             ("554 go away") and answers every command line with `reply`
- dns_server(answer)         a UDP responder; `answer(query_bytes) -> [datagrams]`;
                             helpers noerror / rcode / garbage / silent / wrong_id
- udp_server(answer)         a UDP server; `answer(datagram) -> [datagrams]`; echo, silent
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from aiosmtpd.smtp import SMTP


@dataclass
class Listening:
    host: str
    port: int
    seen: list[bytes] = field(default_factory=list)  # datagrams or command lines received
    helo: list[str] = field(default_factory=list)  # SMTP: HELO names
    peers: list[str] = field(default_factory=list)  # UDP: the source address of each datagram
    accepted: int = 0

    def __iter__(self) -> Iterator[str | int]:
        return iter((self.host, self.port))

    @property
    def address(self) -> IPv4Address | IPv6Address:
        return ip_address(self.host)


# ---------------------------------------------------------------- SMTP


class _Handler:
    """aiosmtpd handler: records the HELO name and answers it with `helo_reply`."""

    def __init__(self, served: Listening, helo_reply: str | None) -> None:
        self.served = served
        self.helo_reply = helo_reply

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:  # noqa: N802
        self.served.helo.append(hostname)
        if self.helo_reply is not None:
            return self.helo_reply
        session.host_name = hostname
        return f"250 {server.hostname}"


@contextlib.asynccontextmanager
async def smtp_server(host: str = "127.0.0.1", *, helo_reply: str | None = None) -> AsyncIterator[Listening]:
    """A real SMTP server (aiosmtpd): banner 220, HELO 250 (or `helo_reply`), QUIT 221."""
    loop = asyncio.get_running_loop()
    served = Listening(host, 0)
    handler = _Handler(served, helo_reply)

    def factory() -> asyncio.Protocol:
        served.accepted += 1
        proto: asyncio.Protocol = SMTP(handler, hostname="mx.test", loop=loop)
        return proto

    server = await loop.create_server(factory, host, 0)
    served.port = server.sockets[0].getsockname()[1]
    try:
        yield served
    finally:
        server.close()
        await _close_all(server)


async def _close_all(server: asyncio.Server) -> None:
    close_clients = getattr(server, "close_clients", None)
    if close_clients is not None:
        close_clients()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1):
            await server.wait_closed()


@contextlib.asynccontextmanager
async def smtp_script(
    banner: Sequence[str],
    host: str = "127.0.0.1",
    *,
    reply: Sequence[str] = ("250 ok",),
    close_after_banner: bool = False,
) -> AsyncIterator[Listening]:
    """A fake SMTP server: writes the `banner` lines, then answers each command line with
    the `reply` lines (QUIT with 221 and a close)."""
    served = Listening(host, 0)
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.accepted += 1
        writers.add(writer)
        try:
            writer.write("".join(f"{line}\r\n" for line in banner).encode())
            await writer.drain()
            if close_after_banner:
                return
            while line := await reader.readline():
                served.seen.append(line)
                if line.upper().startswith(b"QUIT"):
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                writer.write("".join(f"{r}\r\n" for r in reply).encode())
                await writer.drain()
        except OSError:
            pass
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, host, 0)
    served.port = server.sockets[0].getsockname()[1]
    try:
        yield served
    finally:
        server.close()
        for w in list(writers):
            w.transport.abort()
        await _close_all(server)


# ---------------------------------------------------------------- UDP and DNS

Answer = Callable[[bytes], Sequence[bytes]]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, served: Listening, answer: Answer) -> None:
        self.served = served
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.served.seen.append(data)
        self.served.peers.append(str(addr[0]))
        assert self.transport is not None
        for out in self.answer(data):
            self.transport.sendto(out, addr)


@contextlib.asynccontextmanager
async def udp_server(answer: Answer, host: str = "127.0.0.1") -> AsyncIterator[Listening]:
    loop = asyncio.get_running_loop()
    served = Listening(host, 0)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Udp(served, answer), local_addr=(host, 0), family=family
    )
    served.port = transport.get_extra_info("sockname")[1]
    sock = transport.get_extra_info("socket")
    # Room for a burst of 1,000 probes (the default buffer holds about 250 datagrams);
    # SO_RCVBUFFORCE passes rmem_max as root, else SO_RCVBUF gets what it may.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
    try:
        yield served
    finally:
        transport.close()


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody listens on (a datagram there gets ICMP port unreachable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def echo(data: bytes) -> Sequence[bytes]:
    return [data]


def silent(data: bytes) -> Sequence[bytes]:
    return []


def fixed(*replies: bytes) -> Answer:
    return lambda data: list(replies)


def dns_server(answer: Answer, host: str = "127.0.0.1") -> contextlib.AbstractAsyncContextManager[Listening]:
    return udp_server(answer, host)


def noerror(data: bytes) -> Sequence[bytes]:
    """A proper answer: NOERROR with one record of the asked type (SOA for anything but
    A/AAAA) for the asked name."""
    query = dns.message.from_wire(data)
    reply = dns.message.make_response(query)
    question = query.question[0]
    if question.rdtype == dns.rdatatype.A:
        rdata = "192.0.2.1"
    elif question.rdtype == dns.rdatatype.AAAA:
        rdata = "2001:db8::1"
    else:
        rdata = "ns.test. admin.test. 1 3600 600 86400 60"
        rrset = dns.rrset.from_text(question.name, 60, "IN", "SOA", rdata)
        reply.answer.append(rrset)
        return [reply.to_wire()]
    reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", dns.rdatatype.to_text(question.rdtype), rdata))
    return [reply.to_wire()]


def rcode(code: int, *, header_only: bool = False) -> Answer:
    """An answer with rcode `code` (NXDOMAIN, SERVFAIL, or 0 with no records: NODATA).
    `header_only`: just the 12-byte header with QR and that rcode, nothing else."""

    def answer(data: bytes) -> Sequence[bytes]:
        if header_only:
            return [data[:2] + bytes([0x81, 0x80 | code]) + bytes(8)]
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.Rcode(code))
        return [reply.to_wire()]

    return answer


def wrong_id_then(then: Answer) -> Answer:
    """First an answer with another id and a copy of the query itself (QR clear), then `then`."""

    def answer(data: bytes) -> Sequence[bytes]:
        good = list(then(data))
        bad_id = bytes([data[0] ^ 0xFF, data[1]]) + good[0][2:] if good else b""
        return [bad_id, data, b"\x00\x01", *good]

    return answer
