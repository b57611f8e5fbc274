"""Small real servers on loopback for the health check tests.

Each is an async context manager that listens on an ephemeral port of `host`
(127.0.0.1 by default; "::1" and 127.0.0.2 work too), yields a `Served` that unpacks
as `(host, port)` and records what it saw, and stops (closing every connection) on exit:

    async with http_server({"/": Reply(200, b"hello")}) as srv:
        host, port = srv
        ...
        srv.requests[0].header("Host")

- http_server(routes)       HTTP/1.x; a route is a Reply or a function Seen -> Reply
- https_server(routes)      the same over TLS with a trustme certificate (srv.ca);
                            records the SNI name; client_ca= asks for a client certificate
- tcp_listener()            accepts and closes at once
- silent_server()           accepts, reads, never answers (a half-open service)
- reset_server()            accepts, waits for the first bytes, answers with a RST
- garbage_server(data)      sends `data` to whoever connects, then closes
- free_port(host)           a port where nothing listens (connection refused)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

import h11
import trustme

from watchdog.tls import enable as enable_tls

CERT_NAMES = ("localhost", "127.0.0.1", "::1", "www.example.test")


@dataclass(frozen=True)
class Reply:
    """How to answer one request."""

    status: int = 200
    body: bytes = b""
    headers: Sequence[tuple[str, str]] = ()
    reason: str = ""  # default: "OK" for 200, else "Status"
    version: str = "1.1"  # of the status line
    chunked: bool = False  # Transfer-Encoding: chunked, in chunks of `chunk_size` bytes
    chunk_size: int = 7
    content_length: bool = True  # False: no Content-Length (the body ends at close)
    delay: float = 0.0  # seconds before answering
    close_after: int | None = None  # close after this many body bytes, promising them all

    def encode_head(self) -> bytes:
        reason = self.reason or ("OK" if self.status == 200 else "Status")
        lines = [f"HTTP/{self.version} {self.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
        elif self.content_length:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def encode_body(self) -> bytes:
        body = self.body if self.close_after is None else self.body[: self.close_after]
        if not self.chunked:
            return body
        out = bytearray()
        for i in range(0, len(body), self.chunk_size):
            piece = body[i : i + self.chunk_size]
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
        if self.close_after is None:
            out += b"0\r\n\r\n"
        return bytes(out)


@dataclass
class Seen:
    """One request as the server received it."""

    raw: bytes  # the request head as sent, up to and with the blank line
    method: str = ""
    target: str = ""
    http_version: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    sni: str | None = None
    peer: tuple[str, int] = ("", 0)  # the client's address and port
    client_cert: bool = False  # TLS: the client presented a certificate

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class Served:
    host: str
    port: int
    requests: list[Seen] = field(default_factory=list)
    accepted: int = 0  # connections accepted
    peers: list[tuple[str, int]] = field(default_factory=list)  # their source (address, port)
    received: int = 0  # silent_server: bytes read
    ca: trustme.CA | None = None  # https_server: the CA that signed its certificate
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # set when the server stops

    async def wait_for(self, predicate: Callable[[Served], bool], timeout: float = 3.0) -> bool:
        """Wait until `predicate(self)` (the server side runs after the client's connect
        returns); False if it is still false after `timeout` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def __iter__(self) -> Iterator[str | int]:
        return iter((self.host, self.port))

    @property
    def address(self) -> IPv4Address | IPv6Address:
        return ip_address(self.host)


Route = Reply | Callable[[Seen], Reply]
NOT_FOUND = Reply(404, b"not found\n")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound then released: refused until someone takes it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _serve(
    host: str,
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter, Served], object],
    *,
    ssl_ctx: ssl.SSLContext | None = None,
    served: Served | None = None,
) -> AsyncIterator[Served]:
    """Run `handle` per connection; on exit, close the listener and every connection."""
    tasks: set[asyncio.Task[object]] = set()
    writers: set[asyncio.StreamWriter] = set()
    box = served

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert box is not None
        if box.stop.is_set():
            writer.transport.abort()
            return
        box.accepted += 1
        peer = writer.get_extra_info("peername") or ("", 0)
        box.peers.append((str(peer[0]), int(peer[1])))
        writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            result = handle(reader, writer, box)
            if asyncio.iscoroutine(result):
                await result
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # our own teardown; asyncio's stream callback would report it as an error
        finally:
            tasks.discard(task)
            writers.discard(writer)
            if not writer.is_closing():
                writer.close()

    if ssl_ctx is not None:
        server = await asyncio.start_server(on_connect, host, 0, ssl=ssl_ctx, ssl_handshake_timeout=10)
    else:
        server = await asyncio.start_server(on_connect, host, 0)
    port = server.sockets[0].getsockname()[1]
    if box is None:
        box = Served(host, port)
    else:
        box.host, box.port = host, port
    try:
        async with server:
            yield box
            server.close()
            box.stop.set()
            for w in list(writers):
                w.transport.abort()
            if tasks:
                await asyncio.wait(list(tasks), timeout=5)
            for t in list(tasks):
                t.cancel()
            await asyncio.sleep(0)  # let connections accepted just now start, see `stop` and end
    finally:
        server.close()
        box.stop.set()


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, h11.Request | None]:
    """The request head as raw bytes and as h11 parses it (None: not HTTP)."""
    conn = h11.Connection(h11.SERVER)
    raw = bytearray()
    while b"\r\n\r\n" not in raw and len(raw) < 65536:
        data = await reader.read(4096)
        if not data:
            break
        raw += data
    head = bytes(raw[: raw.find(b"\r\n\r\n") + 4]) if b"\r\n\r\n" in raw else bytes(raw)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return head, None
    return head, event if isinstance(event, h11.Request) else None


def _answer(routes: Mapping[str, Route], default: Route, seen: Seen) -> Reply:
    route = routes.get(seen.target.split("?", 1)[0], default)
    return route(seen) if callable(route) else route


def _http_handler(
    routes: Mapping[str, Route], default: Route, sni_names: dict[int, str | None] | None = None
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter, Served], object]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, served: Served) -> None:
        head, req = await _read_head(reader)
        peer = writer.get_extra_info("peername") or ("", 0)
        seen = Seen(raw=head, peer=(str(peer[0]), int(peer[1])))
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is not None:
            seen.sni = (sni_names or {}).pop(id(sslobj), None)
            seen.client_cert = sslobj.getpeercert() is not None and bool(sslobj.getpeercert())
        if req is not None:
            seen.method = req.method.decode()
            seen.target = req.target.decode("latin-1")
            seen.http_version = req.http_version.decode()
            seen.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in req.headers.raw_items()]
        served.requests.append(seen)
        if req is None:
            return
        reply = _answer(routes, default, seen)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        writer.write(reply.encode_head() + reply.encode_body())
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
        # Let the client read to the end before the transport goes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(), 5)  # the client closes; abort()ed at stop

    return handle


@contextlib.asynccontextmanager
async def http_server(
    routes: Mapping[str, Route] | None = None, *, host: str = "127.0.0.1", default: Route = NOT_FOUND
) -> AsyncIterator[Served]:
    """An HTTP server answering `routes` by path (query string ignored); other paths: `default`."""
    async with _serve(host, _http_handler(routes or {}, default)) as served:
        yield served


def server_context(
    ca: trustme.CA, sni_names: dict[int, str | None], client_ca: trustme.CA | None = None
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*CERT_NAMES).configure_cert(ctx)
    if client_ca is not None:
        client_ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED

    def on_sni(obj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni_names[id(obj)] = name

    ctx.sni_callback = on_sni
    return ctx


@contextlib.asynccontextmanager
async def https_server(
    routes: Mapping[str, Route] | None = None,
    *,
    host: str = "127.0.0.1",
    default: Route = NOT_FOUND,
    ca: trustme.CA | None = None,
    client_ca: trustme.CA | None = None,
) -> AsyncIterator[Served]:
    """The HTTP server over TLS, with a certificate for CERT_NAMES signed by `ca` (a new
    trustme CA if None; `srv.ca`). Each Seen has the SNI name the client sent.
    `client_ca`: require a client certificate signed by it."""
    # Our packages import asyncio without ssl (watchdog/tls.py); a TLS server needs it back.
    enable_tls()
    ca = ca or trustme.CA()
    sni_names: dict[int, str | None] = {}
    ctx = server_context(ca, sni_names, client_ca)
    served = Served(host, 0, ca=ca)
    async with _serve(host, _http_handler(routes or {}, default, sni_names), ssl_ctx=ctx, served=served) as s:
        yield s


@contextlib.asynccontextmanager
async def tcp_listener(host: str = "127.0.0.1") -> AsyncIterator[Served]:
    """Accepts and closes at once (a healthy TCP_CHECK target)."""

    def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, served: Served) -> None:
        writer.close()

    async with _serve(host, handle) as served:
        yield served


@contextlib.asynccontextmanager
async def silent_server(host: str = "127.0.0.1") -> AsyncIterator[Served]:
    """Accepts, reads whatever comes and never answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, served: Served) -> None:
        while data := await reader.read(4096):
            served.received += len(data)
        await served.stop.wait()

    async with _serve(host, handle) as served:
        yield served


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.asynccontextmanager
async def reset_server(host: str = "127.0.0.1", *, wait_for_data: bool = True) -> AsyncIterator[Served]:
    """Accepts and resets the connection (after the first bytes, if `wait_for_data`)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, served: Served) -> None:
        if wait_for_data:
            await reader.read(1)
        _rst(writer)

    async with _serve(host, handle) as served:
        yield served


@contextlib.asynccontextmanager
async def garbage_server(
    data: bytes | Callable[[], bytes], host: str = "127.0.0.1", *, wait_for_data: bool = True
) -> AsyncIterator[Served]:
    """Sends `data` (or what `data()` returns at each connection; after the request head,
    if `wait_for_data`), then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, served: Served) -> None:
        if wait_for_data:
            head, _ = await _read_head(reader)
            served.requests.append(Seen(raw=head))
        writer.write(data() if callable(data) else data)
        await writer.drain()
        writer.close()

    async with _serve(host, handle) as served:
        yield served
