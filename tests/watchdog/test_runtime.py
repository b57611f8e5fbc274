"""The child runtime in a real process, driven over real pipes as the parent drives it."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchdog.protocol import (
    Bye,
    Direction,
    Dump,
    DumpKind,
    Heartbeat,
    Hello,
    LineReader,
    Message,
    Ready,
    Reload,
    Reloaded,
    Resume,
    State,
    Stop,
    decode_stream,
    encode,
)

ROOT = Path(__file__).resolve().parents[2]
GOOD = "virtual_server 192.0.2.1 80 {\n  real_server 10.0.0.1 80 {\n  }\n}\n"
TWO = GOOD + "virtual_server 192.0.2.2 80 {\n  real_server 10.0.0.1 80 {\n  }\n}\n"


class Child:
    def __init__(self, proc: subprocess.Popen[bytes], down: int, up: int) -> None:
        self.proc, self.down, self.up = proc, down, up
        self.reader = LineReader()
        self.seen: list[tuple[float, Message]] = []

    def send(self, msg: Message) -> None:
        os.write(self.down, encode(msg))

    def read_until(self, want: type[Message], timeout: float = 5.0) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, msg in self.seen:
                if isinstance(msg, want):
                    self.seen = [(a, m) for a, m in self.seen if a > at]
                    return msg
            self.pump(deadline - time.monotonic())
        raise AssertionError(f"no {want.__name__} within {timeout} s; saw {[m for _, m in self.seen]}")

    def pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.up], [], [], max(0.0, timeout))
        if ready:
            data = os.read(self.up, 65536)
            if not data:
                time.sleep(0.01)
                return
            messages, errors = decode_stream(self.reader, data, Direction.UP)
            assert errors == []
            self.seen.extend((time.monotonic(), m) for m in messages)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    children: list[Child] = []

    def start(workload: str = "reporting", text: str = GOOD, interval: float = 0.1, timeout: float = 0.5) -> Child:
        config = tmp_path / "k.conf"
        config.write_text(text)
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.watchdog.child_host",
                workload,
                str(down_r),
                str(up_w),
                str(config),
                str(interval),
                str(timeout),
            ],
            pass_fds=(down_r, up_w),
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path)),
        )
        os.close(down_r)
        os.close(up_w)
        child = Child(proc, down_w, up_r)
        children.append(child)
        return child

    yield start
    for child in children:  # always clean up, even after a failed assertion
        if child.proc.poll() is None:
            child.proc.kill()
        child.proc.wait()
        for fd in (child.down, child.up):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_a_reload_that_fails_part_way_says_what_switched(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    child = spawn("half-reload")
    child.read_until(Hello)
    child.send(Resume(data={}))
    child.read_until(Ready)
    child.send(Reload(str(tmp_path / "k.conf")))
    refused = child.read_until(Reloaded)
    assert refused == Reloaded(
        False, "trackers: OSError: trackers broke; switched to the new configuration: routes, trackers"
    )
    child.read_until(Heartbeat)  # still running
    child.send(Stop())
    assert child.proc.wait(5) == 0


def test_lifecycle_hello_resume_ready_reload_dump_stop(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    child = spawn()
    hello = child.read_until(Hello)
    assert isinstance(hello, Hello) and hello.pid == child.proc.pid and hello.role == "checker"
    child.send(Resume(data={"VI_1": {"state": "MASTER"}}))
    assert child.read_until(State) == State(data={"resumed": {"VI_1": {"state": "MASTER"}}, "instances": 1})
    child.read_until(Ready)
    # Reload re-reads the file: the workload sees the new config.
    (tmp_path / "k.conf").write_text(TWO)
    child.send(Reload(str(tmp_path / "k.conf")))
    assert child.read_until(State) == State(data={"instances": 2})
    assert child.read_until(Reloaded) == Reloaded(True)
    # A config with errors is refused with the reason; the child keeps running.
    (tmp_path / "k.conf").write_text(f"include {tmp_path / 'k.conf'}\n")  # an include cycle: an error
    child.send(Reload(str(tmp_path / "k.conf")))
    refused = child.read_until(Reloaded)
    assert isinstance(refused, Reloaded) and not refused.ok and "include cycle" in refused.error
    child.send(Dump(str(tmp_path / "x.data"), DumpKind.DATA))
    child.send(Dump(str(tmp_path / "x.json"), DumpKind.JSON))
    child.read_until(Heartbeat)
    deadline = time.monotonic() + 3
    while not (tmp_path / "x.json").exists() and time.monotonic() < deadline:
        child.pump(0.1)
    assert "Healthcheck child process" in (tmp_path / "x.data").read_text()
    assert "Reloads = 1" in (tmp_path / "x.data").read_text()
    assert (tmp_path / "x.json").read_text() == "[]\n"
    child.send(Stop())
    assert child.read_until(Bye) == Bye("asked by the parent")
    assert child.proc.wait(timeout=3) == 0


def test_heartbeats_come_at_the_interval(spawn) -> None:  # type: ignore[no-untyped-def]
    child = spawn(interval=0.1)
    child.send(Resume(data={}))
    child.read_until(Ready)
    first = child.read_until(Heartbeat)
    t0 = time.monotonic()
    for _ in range(5):
        child.read_until(Heartbeat)
    elapsed = time.monotonic() - t0
    assert 0.3 < elapsed < 1.5
    assert isinstance(first, Heartbeat)


def test_a_blocked_loop_sends_no_heartbeat(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    child = spawn("blocking", interval=0.1)
    child.send(Resume(data={}))
    child.read_until(Ready)
    child.pump(0.3)
    child.seen.clear()
    child.send(Dump(str(tmp_path / "slow.data"), DumpKind.DATA))
    # Time the gaps between heartbeats from the moment the blocking dump was asked for.
    gaps: list[float] = []
    last = time.monotonic()
    deadline = last + 2.5
    while time.monotonic() < deadline:
        child.pump(0.05)
        for at, msg in child.seen:
            if isinstance(msg, Heartbeat):
                gaps.append(at - last)
                last = at
        child.seen.clear()
    assert max(gaps) > 1.2  # the 1.5 s block is a silence the parent will notice
    assert sorted(gaps)[len(gaps) // 2] < 0.3  # and otherwise they keep coming


def test_eof_from_the_parent_ends_the_child_cleanly(spawn) -> None:  # type: ignore[no-untyped-def]
    child = spawn()
    child.send(Resume(data={}))
    child.read_until(Ready)
    t0 = time.monotonic()
    os.close(child.down)
    assert child.proc.wait(timeout=3) == 0
    assert time.monotonic() - t0 < 2.0


def test_a_child_without_resume_still_starts(spawn) -> None:  # type: ignore[no-untyped-def]
    child = spawn(timeout=0.3)
    child.read_until(Ready, timeout=3)


def test_permanent_error_is_the_exit_code(spawn) -> None:  # type: ignore[no-untyped-def]
    child = spawn("no-permission")
    child.send(Resume(data={}))
    child.read_until(Bye)
    assert child.proc.wait(timeout=3) == 4


def test_the_lines_of_a_report_go_in_one_write_and_a_part_the_pipe_had_no_room_for_waits() -> None:
    import asyncio

    from watchdog.runtime import _Outbox

    r, w = os.pipe()
    os.set_blocking(w, False)
    loop = asyncio.new_event_loop()
    try:
        box = _Outbox(w, loop, lambda: None)
        import fcntl

        free = fcntl.fcntl(w, 1032) - 3000  # F_GETPIPE_SZ
        os.write(w, b"x" * free)  # room for 3,000 bytes only
        lines = b"".join(b"%04d" % i + b"y" * 1995 + b"\n" for i in range(4))  # four lines of 2,000 bytes
        box.send(lines)
        assert box.pending and box.watching  # the rest waits for room
        got = b""
        while len(got) < free + len(lines):
            got += os.read(r, 65536)
            box.flush()
        assert got == b"x" * free + lines and not box.pending and not box.watching
    finally:
        loop.close()
        os.close(r)
        os.close(w)
