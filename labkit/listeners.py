"""Listeners for the checker workload tests and the benchmark: TCP listeners that accept
and close, which can be stopped and started again on the same address and port (a real
server going away and coming back), and many of them at once on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket


class Listener:
    """Accepts and closes at once on (host, port); `stop()` and `start()` again keep the port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> Listener:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.server = await asyncio.start_server(self._client, sock=sock)
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
            self.server = None


class AcceptCloseSockets:
    """Many raw listening sockets served by one loop reader each: accept, close. Cheaper
    than asyncio servers when there are thousands (the benchmark's real servers)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.socks: list[socket.socket] = []
        self.accepted = 0

    def listen(self, host: str, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(4096)
        sock.setblocking(False)
        self.socks.append(sock)
        self.loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        for sock in self.socks:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(sock.fileno())
            sock.close()
        self.socks.clear()
