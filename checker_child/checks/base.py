"""What every health check shares: where it connects (`Target`), what it finds
(`Result`), and opening a socket with keepalived's connection options.

A check is an `async def probe(target) -> Result` made for one checker of one real
server. It never raises for the server's sake: a refused, reset, half-open, slow or
garbage answer is a failed `Result` whose `detail` says why in a few words (it goes
into keepalived's log lines). Only a bug in our code may raise.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conf.lvs import SslConf
    from watchdog.scripts import ScriptRunner

IPAddress = IPv4Address | IPv6Address

SO_MARK = getattr(socket, "SO_MARK", 36)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


@dataclass(frozen=True)
class Target:
    """Where one checker connects, with the real server's values filled in
    (`connect_ip` else the real server's address, `connect_port` else its port)."""

    address: IPAddress
    port: int | None = None  # None: the real server has no port and none is configured
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    timeout: float = 5.0  # connect_timeout (s): for the whole exchange (keepalived re-arms it per read)

    @property
    def family(self) -> int:
        return socket.AF_INET6 if self.address.version == 6 else socket.AF_INET

    def sockaddr(self, port: int | None = None) -> tuple[str, int] | tuple[str, int, int, int]:
        p = self.port if port is None else port
        scope = 0
        if isinstance(self.address, IPv6Address) and self.address.is_link_local and self.bind_if:
            scope = socket.if_nametoindex(self.bind_if)
        if self.family == socket.AF_INET6:
            return (str(self.address), p or 0, 0, scope)
        return (str(self.address), p or 0)

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True)
class Result:
    ok: bool
    detail: str = ""  # why it failed ("connection refused", "status code 500"), or what it saw
    weight: int | None = None  # MISC_CHECK misc_dynamic: the real server's new weight


OK = Result(True)

Probe = Callable[[Target], Awaitable[Result]]


@dataclass(frozen=True)
class ProbeEnv:
    """What a probe factory may need besides its checker: the script runner (MISC_CHECK)
    and the top-level `SSL { ca certificate key password }` block (SSL_GET)."""

    runner: ScriptRunner | None = None
    ssl: SslConf | None = None


def failed(detail: str) -> Result:
    return Result(False, detail)


def describe_error(e: BaseException) -> str:
    """A short text for a failed exchange, as a log line wants it."""
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, (asyncio.IncompleteReadError, EOFError)):
        return "connection closed early"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


def make_socket(target: Target, kind: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
    """A non-blocking socket with `bindto`, `bind_port`, `bind_if` and `fwmark` applied."""
    sock = socket.socket(target.family, kind, proto)
    try:
        sock.setblocking(False)
        if target.fwmark:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, target.fwmark)
        if target.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, target.bind_if.encode())
        if target.bindto is not None or target.bind_port is not None:
            if target.bind_port is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            any_addr = "::" if target.family == socket.AF_INET6 else "0.0.0.0"
            host = str(target.bindto) if target.bindto is not None else any_addr
            sock.bind((host, target.bind_port or 0))
        return sock
    except BaseException:
        sock.close()
        raise


async def connect(target: Target, port: int | None = None) -> socket.socket:
    """A connected TCP socket to `target` (at `port` if given), within `target.timeout`.
    Raises OSError / TimeoutError; the caller turns them into a failed Result."""
    sock = make_socket(target)
    try:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(target.timeout):
            await loop.sock_connect(sock, target.sockaddr(port))
        return sock
    except BaseException:
        sock.close()
        raise


async def open_stream(target: Target, port: int | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """connect() wrapped in asyncio streams."""
    sock = await connect(target, port)
    try:
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
