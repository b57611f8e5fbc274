"""Payloads too large for one pipe line travel through a file (DESIGN.md: "a larger
payload goes to a file whose path is sent"). The sender writes a private temporary file;
the receiver reads and deletes it."""

from __future__ import annotations

import contextlib
import json
import os
from typing import TypeVar

from watchdog.protocol import Json, Message, MessageTooLarge, Payload, ProtocolError, State, encode

P = TypeVar("P", bound=Payload)


def spill_dir() -> str:
    """keepalived's rule for its temporary files: $TMPDIR, default /tmp."""
    return os.environ.get("TMPDIR") or "/tmp"


def pack(cls: type[P], data: dict[str, Json], directory: str | None = None) -> tuple[P, bytes]:
    """The message and its encoded line: inline if it fits, else via a file."""
    msg = cls(data=data)
    try:
        return msg, encode(msg)
    except MessageTooLarge:
        pass
    import tempfile  # noqa: PLC0415 (rare; with shutil and random, 0.4 MB otherwise held by every process)

    fd, path = tempfile.mkstemp(prefix="pykeepalived-", suffix=f".{cls.type}", dir=directory or spill_dir())
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    msg = cls(file=path)
    return msg, encode(msg)


def state_lines(data: dict[str, Json]) -> list[bytes]:
    """A `state` report as lines that each fit in PIPE_BUF: one if it fits, else its keys split
    in halves until each part does (the parent applies a report key by key, so the parts in
    order do what the whole would); only a single key too large for a line goes through a file.
    A burst of 250 VRRP takeovers reports 20-60 instances at a time (about 130 bytes each):
    lines, not a temporary file written, read and deleted before each slice's VIPs."""
    try:
        return [encode(State(data=data))]
    except MessageTooLarge:
        if len(data) < 2:
            return [pack(State, data)[1]]
    items = list(data.items())
    half = len(items) // 2
    return state_lines(dict(items[:half])) + state_lines(dict(items[half:]))


def merged_states(messages: list[Message]) -> list[Message]:
    """Consecutive inline `state` messages read together (the lines of one report) as one: the
    parent applies a report key by key, so the merge does what they did in order, and the
    parent's work per report (the hold rule, STATUS=) is done once."""
    out: list[Message] = []
    for msg in messages:
        last = out[-1] if out else None
        if isinstance(msg, State) and isinstance(last, State) and msg.file is None and last.file is None:
            out[-1] = State(data={**(last.data or {}), **(msg.data or {})})
        else:
            out.append(msg)
    return out


def unpack(msg: Payload) -> dict[str, Json]:
    """The payload's object; a file is read once and removed."""
    if msg.file is None:
        return dict(msg.data or {})
    try:
        with open(msg.file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ProtocolError(f"cannot read the '{msg.type}' payload file {msg.file}: {e}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(msg.file)
    if not isinstance(data, dict):
        raise ProtocolError(f"the '{msg.type}' payload file {msg.file} does not hold an object")
    return data
