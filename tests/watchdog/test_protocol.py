"""The pipe protocol: every message round-trips, lines stay under PIPE_BUF, and no input
whatsoever makes the decoder raise anything but ProtocolError (or the reader raise at all)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog import payload
from watchdog.protocol import (
    PIPE_BUF,
    TYPES,
    Answer,
    Bye,
    Direction,
    Dump,
    DumpKind,
    Heartbeat,
    Hello,
    Json,
    LineReader,
    Message,
    MessageTooLarge,
    ProtocolError,
    Query,
    Ready,
    Reload,
    Reloaded,
    Resume,
    State,
    Stop,
    decode,
    decode_stream,
    encode,
)

EXAMPLES: list[Message] = [
    Hello(123, "vrrp", "0.1.0"),
    Ready(),
    Heartbeat(7, 12345.25),
    State(data={"VI_1": {"state": "MASTER", "priority": 100}, "VI_2": None}),
    State(file="/tmp/x.state"),
    Reloaded(True),
    Reloaded(False, "k.conf:3: error: bad"),
    Bye("parent gone"),
    Reload("/etc/keepalived/keepalived.conf"),
    Resume(data={}),
    Dump("/tmp/pykeepalived.data", DumpKind.DATA),
    Query(4, DumpKind.JSON),
    Answer(data={"id": 4, "text": "[]", "pid": 812}),
    Stop(),
]


def test_every_type_has_an_example() -> None:
    assert {m.type for m in EXAMPLES} == set(TYPES)


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: m.type)
def test_round_trip_is_one_short_line(msg: Message) -> None:
    line = encode(msg)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and len(line) <= PIPE_BUF
    assert json.loads(line)["t"] == msg.type
    assert decode(line) == msg
    assert decode(line, msg.direction) == msg


def test_wire_format_is_the_documented_one() -> None:
    assert encode(Heartbeat(1, 2.5)) == b'{"t":"heartbeat","seq":1,"time":2.5}\n'
    assert encode(Reload("/k.conf")) == b'{"t":"reload","path":"/k.conf"}\n'


def test_unknown_fields_are_ignored() -> None:
    # A newer peer may add fields during a reload; an older one must still understand it.
    assert decode(b'{"t":"heartbeat","seq":3,"time":1,"load":0.5,"extra":{"x":[1]}}') == Heartbeat(3, 1.0)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"t":"frobnicate"}', "unknown message type 'frobnicate'"),
        (b'{"seq":1}', "no message type"),
        (b"[1,2]", "not a JSON object"),
        (b"not json", "not JSON"),
        (b'{"t":"heartbeat","seq":"1","time":1}', "'seq' must be an integer"),
        (b'{"t":"heartbeat","seq":true,"time":1}', "'seq' must be an integer"),
        (b'{"t":"reloaded","ok":1}', "'ok' must be true or false"),
        (b'{"t":"dump","path":"/x","format":"xml"}', "unknown dump kind 'xml'"),
        (b'{"t":"state"}', "exactly one of 'data' and 'file'"),
        (b'{"t":"state","data":{},"file":"/x"}', "exactly one of 'data' and 'file'"),
        (b'{"t":"hello","pid":1}', "'role' must be a string"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_bad_lines_are_protocol_errors(line: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        decode(line)


def test_direction_is_enforced() -> None:
    with pytest.raises(ProtocolError, match="not a parent->child message"):
        decode(encode(Ready()), Direction.DOWN)
    with pytest.raises(ProtocolError, match="not a child->parent message"):
        decode(encode(Stop()), Direction.UP)


def test_too_large_is_refused_at_encode() -> None:
    with pytest.raises(MessageTooLarge):
        encode(State(data={"x": "y" * PIPE_BUF}))


def test_reader_splits_lines_across_reads() -> None:
    reader = LineReader()
    first = encode(Heartbeat(1, 1.0))
    line = first + encode(Ready())
    cut = len(first) + 3  # the second read ends inside the second line
    assert reader.feed(line[:5]) == []
    assert reader.feed(line[5:cut]) == [first]
    assert reader.feed(line[cut:]) == [encode(Ready())]


def test_reader_drops_an_oversized_line_and_recovers() -> None:
    reader = LineReader()
    messages, errors = decode_stream(reader, b"x" * (PIPE_BUF + 10), Direction.UP)
    assert messages == [] and errors == ["line longer than PIPE_BUF dropped"]
    # The rest of the oversized line, then a good one.
    messages, errors = decode_stream(reader, b"yyy\n" + encode(Ready()), Direction.UP)
    assert messages == [Ready()] and errors == []


def test_payload_spills_to_a_file_and_back(tmp_path: Path) -> None:
    big: dict[str, Json] = {f"VI_{n}": {"state": "MASTER", "priority": n} for n in range(300)}
    msg, line = payload.pack(State, big, str(tmp_path))
    assert len(line) <= PIPE_BUF and msg.file is not None and Path(msg.file).parent == tmp_path
    received = decode(line, Direction.UP)
    assert isinstance(received, State)
    assert payload.unpack(received) == big
    assert not Path(msg.file).exists()  # read once, then removed


def test_a_large_state_goes_as_lines_whose_keys_together_are_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of takeovers reports many instances at once: parts of the keys, each one line,
    instead of a file; the parent's key-by-key merge of the parts in order is the whole."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    big: dict[str, Json] = {f"VI_0_{n}": {"state": "MASTER", "priority": 100, "id": "x" * 70} for n in range(250)}
    lines = payload.state_lines(big)
    assert len(lines) > 1 and all(len(line) <= PIPE_BUF for line in lines)
    merged: dict[str, Json] = {}
    for line in lines:
        msg = decode(line, Direction.UP)
        assert isinstance(msg, State) and msg.file is None
        merged.update(payload.unpack(msg))
    assert merged == big and list(merged) == list(big)
    assert payload.state_lines({"VI_1": {"state": "BACKUP"}}) == [encode(State(data={"VI_1": {"state": "BACKUP"}}))]
    # one key that no line can hold still goes through a file
    (line,) = payload.state_lines({"VI_1": {"notes": "y" * PIPE_BUF}})
    spilled = decode(line, Direction.UP)
    assert isinstance(spilled, State) and spilled.file is not None
    assert payload.unpack(spilled) == {"VI_1": {"notes": "y" * PIPE_BUF}}
    assert list(tmp_path.iterdir()) == []


def test_small_payload_stays_inline(tmp_path: Path) -> None:
    msg, _ = payload.pack(Resume, {"VI_1": {"state": "BACKUP"}}, str(tmp_path))
    assert msg.file is None and list(tmp_path.iterdir()) == []


def test_missing_payload_file_is_a_protocol_error(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="cannot read"):
        payload.unpack(State(file=str(tmp_path / "gone")))


# Fuzzing -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
message_like = st.dictionaries(
    st.sampled_from(["t", "seq", "time", "pid", "role", "ok", "error", "path", "format", "data", "file", "x"]),
    json_values | st.sampled_from(list(TYPES)),
    max_size=6,
).map(lambda d: json.dumps(d).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | message_like)
def test_decode_raises_only_protocol_error(line: bytes) -> None:
    try:
        msg = decode(line)
    except ProtocolError:
        return
    assert isinstance(msg, Message)
    assert decode(encode(msg)) == msg  # whatever is accepted re-encodes to itself


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3000) | message_like.map(lambda b: b + b"\n"), max_size=8))
def test_stream_of_garbage_never_raises(chunks: list[bytes]) -> None:
    reader = LineReader()
    for chunk in chunks:
        messages, errors = decode_stream(reader, chunk, Direction.UP)
        assert all(isinstance(m, Message) for m in messages)
        assert all(isinstance(e, str) for e in errors)


def test_deep_nesting_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode(b"[" * 4000)


def test_state_messages_read_together_are_applied_as_one() -> None:
    """The parent merges consecutive inline states (the lines of one report): the same result
    as applying them in order, deletions included; anything between them, or a file, ends a run."""
    a = State(data={"VI_1": {"state": "MASTER"}, "VI_2": {"state": "BACKUP"}, "VI_3": {"state": "BACKUP"}})
    b = State(data={"VI_2": None, "VI_4": {"state": "MASTER"}})
    c = State(data={"VI_2": {"state": "FAULT"}, "VI_3": None})
    merged = payload.merged_states([a, b, c, Ready(), b, State(file="/x")])
    assert merged[1:] == [Ready(), b, State(file="/x")]
    applied: dict[str, Json] = {}
    for msg in (a, b, c):  # as haparent.supervisor's merge_state applies them
        for key, value in (msg.data or {}).items():
            if value is None:
                applied.pop(key, None)
            else:
                applied[key] = value
    one = merged[0]
    assert isinstance(one, State) and one.data is not None
    assert {k: v for k, v in one.data.items() if v is not None} == applied
    assert [k for k, v in one.data.items() if v is None] == ["VI_3"]
