"""The control socket: how `pykeepalivedctl` asks the running daemon for its status, a
reload with its result, or a dump on stdout (keepalived has only signals and /tmp files).

A Unix stream socket, root-only twice over: its directory is 0700 and the socket 0600, and
each peer's credentials (SO_PEERCRED) must be root's or the daemon's own user. One request
per connection, one JSON line of at most MAX_REQUEST bytes; one JSON answer, then close.
Everything is non-blocking and bounded: a client that sends nothing, or never reads its
answer, is dropped after CLIENT_TIMEOUT, and at most MAX_CLIENTS are served at once, so the
parent's loop (heartbeats, signals, sd_notify) never waits for a client.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from watchdog.protocol import Json

log = logging.getLogger("pykeepalived")

DEFAULT_PATH = "/run/pykeepalived/control.sock"
MAX_REQUEST = 4096  # bytes of one request line
MAX_ANSWER = 64 * 1024 * 1024  # bytes of one answer (a dump of a huge configuration)
MAX_CLIENTS = 128
CLIENT_TIMEOUT = 5.0  # s to send a request and to read the answer (a status waits for the children)
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlError(OSError):
    """The socket cannot be set up (its directory is not ours, the path is taken)."""


class InUse(ControlError):
    """Another daemon (with other pidfiles) listens there already."""


@dataclass
class Request:
    cmd: str
    args: dict[str, Json]


@dataclass
class Client:
    sock: socket.socket
    deadline: float
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    asked: bool = False  # its one request was handed over: later bytes are ignored
    answered: bool = False  # the answer is queued: close once it is sent

    def fileno(self) -> int:
        return self.sock.fileno()


def parse_request(line: bytes) -> Request | str:
    """A request line -> Request, or the error text to answer with."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return "the request is not JSON"
    if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
        return 'the request must be a JSON object with a "cmd"'
    return Request(obj["cmd"], {k: v for k, v in obj.items() if k != "cmd"})


def encode_answer(answer: dict[str, Json]) -> bytes:
    data = json.dumps(answer, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    if len(data) > MAX_ANSWER:
        data = json.dumps({"ok": False, "error": f"the answer is larger than {MAX_ANSWER} bytes"}).encode() + b"\n"
    return data


def _prepare_directory(path: str) -> None:
    """The socket's directory: created 0700, or an existing one that only root can write.
    A symlink or a directory another user controls could redirect or hijack the socket."""
    directory = os.path.dirname(path) or "."
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode):
        raise ControlError(errno.ENOTDIR, "not a directory (or a symbolic link)", directory)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ControlError(errno.EPERM, "not owned by us or writable by others", directory)


class ControlServer:
    """The listening socket and its clients; the supervisor routes readable fds here and
    answers the requests it hands back."""

    def __init__(self, path: str, clock: Callable[[], float]) -> None:
        self.path = path
        self.clock = clock
        self.clients: dict[int, Client] = {}
        _prepare_directory(path)
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise ControlError(errno.EEXIST, "exists and is not a socket", path)
            if _answers(path):
                raise InUse(errno.EADDRINUSE, "in use by another daemon", path)
            os.unlink(path)  # a stale socket of an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            old = os.umask(0o177)
            try:
                sock.bind(path)
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
            sock.listen(MAX_CLIENTS)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def fds(self) -> list[int]:
        return [self.sock.fileno(), *self.clients]

    def owns(self, fd: int) -> bool:
        return fd == self.sock.fileno() or fd in self.clients

    def pending_output(self) -> bool:
        return any(c.outbuf for c in self.clients.values())

    def next_deadline(self) -> float | None:
        return min((c.deadline for c in self.clients.values()), default=None)

    def readable(self, fd: int) -> list[tuple[Client, Request | str]]:
        """Accept or read; the requests that are complete (or their error text)."""
        if fd == self.sock.fileno():
            self._accept()
            return []
        client = self.clients.get(fd)
        if client is None or client.answered:
            return []
        try:
            data = client.sock.recv(MAX_REQUEST + 1)
        except BlockingIOError:
            return []
        except OSError:
            self.close(client)
            return []
        if not data:
            self.close(client)
            return []
        if client.asked:
            return []  # one request per connection
        client.inbuf += data
        nl = client.inbuf.find(b"\n")
        if nl < 0:
            if len(client.inbuf) <= MAX_REQUEST:
                return []
            request: Request | str = f"the request is longer than {MAX_REQUEST} bytes"
        else:
            request = parse_request(bytes(client.inbuf[:nl]))
        client.asked = True
        client.inbuf.clear()
        return [(client, request)]

    def _accept(self) -> None:
        for _ in range(MAX_CLIENTS):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("Control socket: cannot accept a connection: %s", e.strerror)
                return
            conn.setblocking(False)
            if len(self.clients) >= MAX_CLIENTS or not _trusted(conn):
                conn.close()
                continue
            self.clients[conn.fileno()] = Client(conn, self.clock() + CLIENT_TIMEOUT)

    def answer(self, client: Client, answer: dict[str, Json]) -> None:
        if client.fileno() not in self.clients or client.answered:
            return
        client.answered = True
        client.outbuf += encode_answer(answer)
        client.deadline = self.clock() + CLIENT_TIMEOUT
        self.flush()

    def flush(self) -> None:
        """Send what the socket buffers take; a client whose answer is out is closed."""
        for client in list(self.clients.values()):
            while client.outbuf:
                try:
                    sent = client.sock.send(client.outbuf)
                except BlockingIOError:
                    break
                except OSError:
                    self.close(client)
                    break
                del client.outbuf[:sent]
            if client.answered and not client.outbuf:
                self.close(client)

    def expire(self) -> list[Client]:
        """Drop clients past their deadline; the ones that were still waiting for an answer."""
        now = self.clock()
        gone = [c for c in self.clients.values() if now >= c.deadline]
        for client in gone:
            self.close(client)
        return [c for c in gone if not c.answered]

    def close(self, client: Client) -> None:
        self.clients.pop(client.fileno(), None)
        with contextlib.suppress(OSError):
            client.sock.close()

    def shutdown(self) -> None:
        for client in list(self.clients.values()):
            self.close(client)
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _answers(path: str) -> bool:
    """Whether a daemon listens on the socket at `path` (a stale one refuses the connection)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def _trusted(conn: socket.socket) -> bool:
    """SO_PEERCRED: root, or the user the daemon runs as (the directory keeps others out
    already; this holds even if someone loosened its mode)."""
    try:
        _, uid, _ = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    except OSError:
        return False
    return uid in (0, os.geteuid())
