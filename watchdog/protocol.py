"""The parent <-> child pipe protocol (DESIGN.md, "The pipe protocol").

One message is one line of JSON, `{"t": "<type>", ...}`, at most PIPE_BUF bytes with its
newline, so that a write(2) to a pipe is atomic and two writers never interleave. This
module is pure: messages in, bytes out and back. Reading a pipe, spilling a large payload
to a file and logging live with the callers (`watchdog.payload`, `watchdog.runtime`,
`haparent.supervisor`).

Compatibility rules, so that a parent and a child of different versions can talk during a
reload: unknown fields are ignored; an unknown type, a missing field or a field of the
wrong type is a `ProtocolError` that the receiver logs and skips.
"""

from __future__ import annotations

import enum
import json
import select
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

# A write of at most PIPE_BUF bytes to a pipe is atomic (pipe(7)); Linux: 4096.
PIPE_BUF = select.PIPE_BUF

# JSON values as json.loads returns them.
Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"


class ProtocolError(ValueError):
    """A line that is not a valid message (for the receiver to log and skip)."""


class MessageTooLarge(ValueError):
    """An encoded message would exceed PIPE_BUF: send its payload through a file."""


class Direction(enum.Enum):
    UP = "child->parent"
    DOWN = "parent->child"


class DumpKind(enum.StrEnum):
    """What SIGUSR1, SIGUSR2 and SIGRTMIN+2 ask for (keepalived's .data, .stats, .json)."""

    DATA = "data"
    STATS = "stats"
    JSON = "json"
    STATUS = "status"  # ours, on the pipe only: the JSON dump and more (pykeepalivedctl, /metrics)


def _int(d: Mapping[str, object], key: str) -> int:
    v = d.get(key)
    # bool is an int in Python but not in the protocol.
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError(f"field '{key}' must be an integer")
    return v


def _float(d: Mapping[str, object], key: str) -> float:
    v = d.get(key)
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise ProtocolError(f"field '{key}' must be a number")
    return float(v)


def _str(d: Mapping[str, object], key: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise ProtocolError(f"field '{key}' must be a string")
    return v


def _bool(d: Mapping[str, object], key: str) -> bool:
    v = d.get(key)
    if not isinstance(v, bool):
        raise ProtocolError(f"field '{key}' must be true or false")
    return v


def _optional_str(d: Mapping[str, object], key: str) -> str | None:
    v = d.get(key)
    if v is not None and not isinstance(v, str):
        raise ProtocolError(f"field '{key}' must be a string")
    return v


def _dump_kind(d: Mapping[str, object], key: str) -> DumpKind:
    value = _str(d, key)
    try:
        return DumpKind(value)
    except ValueError:
        raise ProtocolError(f"unknown dump kind '{value[:40]}' in '{key}'") from None


def _optional_object(d: Mapping[str, object], key: str) -> dict[str, Json] | None:
    v = d.get(key)
    if v is not None and not isinstance(v, dict):
        raise ProtocolError(f"field '{key}' must be an object")
    return v


@dataclass(frozen=True)
class Message:
    """Base of every message: `type` is the wire's "t", `direction` who may send it."""

    type: ClassVar[str]
    direction: ClassVar[Direction]

    def fields(self) -> dict[str, Json]:
        return {}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        return cls()


@dataclass(frozen=True)
class Payload(Message):
    """A message carrying a JSON object, inline (`data`) or, when too large for one
    line, in a file whose path is sent (`file`); see watchdog.payload."""

    data: dict[str, Json] | None = None
    file: str | None = None

    def fields(self) -> dict[str, Json]:
        return {"file": self.file} if self.file is not None else {"data": self.data}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        data, file = _optional_object(d, "data"), _optional_str(d, "file")
        if (data is None) == (file is None):
            raise ProtocolError("exactly one of 'data' and 'file' is needed")
        return cls(data=data, file=file)


# child -> parent


@dataclass(frozen=True)
class Hello(Message):
    type = "hello"
    direction = Direction.UP
    pid: int
    role: str
    version: str

    def fields(self) -> dict[str, Json]:
        return {"pid": self.pid, "role": self.role, "version": self.version}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        return cls(_int(d, "pid"), _str(d, "role"), _str(d, "version", ""))


@dataclass(frozen=True)
class Ready(Message):
    """The child has read its configuration and started its work."""

    type = "ready"
    direction = Direction.UP


@dataclass(frozen=True)
class Heartbeat(Message):
    """Sent from the child's event loop; `time` is the child's monotonic clock."""

    type = "heartbeat"
    direction = Direction.UP
    seq: int
    time: float

    def fields(self) -> dict[str, Json]:
        return {"seq": self.seq, "time": self.time}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        return cls(_int(d, "seq"), _float(d, "time"))


@dataclass(frozen=True)
class State(Payload):
    """What changed, keyed by name (an instance, a real server); a null value means the
    thing is gone. The parent merges these and hands the result to a successor."""

    type = "state"
    direction = Direction.UP


@dataclass(frozen=True)
class Answer(Payload):
    """The answer to a `query`: `{"id": the query's id, "text": the dump}` (ours: the
    control socket's status and dumps, without a file in $TMPDIR)."""

    type = "answer"
    direction = Direction.UP


@dataclass(frozen=True)
class Reloaded(Message):
    type = "reloaded"
    direction = Direction.UP
    ok: bool
    error: str = ""

    def fields(self) -> dict[str, Json]:
        return {"ok": self.ok, "error": self.error}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        return cls(_bool(d, "ok"), _str(d, "error", ""))


@dataclass(frozen=True)
class Bye(Message):
    """The child is exiting on purpose (asked to stop, or its parent is gone)."""

    type = "bye"
    direction = Direction.UP
    reason: str = ""

    def fields(self) -> dict[str, Json]:
        return {"reason": self.reason}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        return cls(_str(d, "reason", ""))


# parent -> child


@dataclass(frozen=True)
class Reload(Message):
    """Re-read the configuration at `path` (already validated by the parent)."""

    type = "reload"
    direction = Direction.DOWN
    path: str

    def fields(self) -> dict[str, Json]:
        return {"path": self.path}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        return cls(_str(d, "path"))


@dataclass(frozen=True)
class Resume(Payload):
    """The last state the predecessor reported (empty for a first start). Always the
    first message a new child receives."""

    type = "resume"
    direction = Direction.DOWN


@dataclass(frozen=True)
class Dump(Message):
    type = "dump"
    direction = Direction.DOWN
    path: str
    format: DumpKind

    def fields(self) -> dict[str, Json]:
        return {"path": self.path, "format": self.format.value}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        return cls(_str(d, "path"), _dump_kind(d, "format"))


@dataclass(frozen=True)
class Query(Message):
    """Send the dump of kind `what` back in an `answer` carrying `id` (the control socket)."""

    type = "query"
    direction = Direction.DOWN
    id: int
    what: DumpKind

    def fields(self) -> dict[str, Json]:
        return {"id": self.id, "what": self.what.value}

    @classmethod
    def from_fields(cls, d: Mapping[str, object]) -> Message:
        return cls(_int(d, "id"), _dump_kind(d, "what"))


@dataclass(frozen=True)
class Stop(Message):
    type = "stop"
    direction = Direction.DOWN


TYPES: dict[str, type[Message]] = {
    cls.type: cls for cls in (Hello, Ready, Heartbeat, State, Answer, Reloaded, Bye, Reload, Resume, Dump, Query, Stop)
}


def encode(msg: Message) -> bytes:
    """One line, newline included. ASCII-only JSON, so no raw newline can appear inside."""
    obj: dict[str, Json] = {"t": msg.type}
    obj.update(msg.fields())
    line = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii") + b"\n"
    if len(line) > PIPE_BUF:
        raise MessageTooLarge(f"'{msg.type}' message of {len(line)} bytes exceeds PIPE_BUF ({PIPE_BUF})")
    return line


def decode(line: bytes, direction: Direction | None = None) -> Message:
    """One line (with or without its newline) -> a message; `direction` restricts which
    types the receiver accepts. Anything else is a ProtocolError, never another exception."""
    if len(line) > PIPE_BUF:
        raise ProtocolError(f"line of {len(line)} bytes exceeds PIPE_BUF")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("not a JSON object")
    t = obj.get("t")
    if not isinstance(t, str):
        raise ProtocolError("no message type ('t')")
    cls = TYPES.get(t)
    if cls is None:
        raise ProtocolError(f"unknown message type '{t[:40]}'")
    if direction is not None and cls.direction is not direction:
        raise ProtocolError(f"'{t}' is not a {direction.value} message")
    return cls.from_fields(obj)


class LineReader:
    """Splits a byte stream into lines. A line longer than PIPE_BUF is dropped whole (it
    cannot be a message) and reported once, instead of growing the buffer forever."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False
        self.oversized = 0  # lines dropped for length

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines: list[bytes] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            if self._discarding:
                self._discarding = False
            elif len(line) > PIPE_BUF:
                self.oversized += 1
            else:
                lines.append(line)
        if len(self._buf) > PIPE_BUF:
            if not self._discarding:
                self.oversized += 1
            self._discarding = True
            self._buf.clear()
        return lines


def decode_stream(reader: LineReader, data: bytes, direction: Direction) -> tuple[list[Message], list[str]]:
    """Feed bytes, return (messages, errors). Never raises for any input."""
    messages: list[Message] = []
    errors: list[str] = []
    before = reader.oversized
    for line in reader.feed(data):
        try:
            messages.append(decode(line, direction))
        except ProtocolError as e:
            errors.append(str(e))
    errors.extend(["line longer than PIPE_BUF dropped"] * (reader.oversized - before))
    return messages, errors
