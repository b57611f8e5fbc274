"""vrrp_child.track_process: matching and quorum rules (pure), the proc connector decoder (fuzzed),
and the watcher on real processes: copies of sleep/sh under a unique name, started and killed."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf.trackers import TrackProcess
from vrrp_child.track_process import (
    Change,
    ProcessTable,
    ProcessWatcher,
    ProcInfo,
    Quorum,
    matches,
    open_connector,
    parse_events,
    read_proc,
)

PROC_EVENT_FORK, PROC_EVENT_EXEC, PROC_EVENT_EXIT = 0x1, 0x2, 0x80000000  # linux/cn_proc.h


def spec(*process: str, **kw: object) -> TrackProcess:
    return TrackProcess(name="t", process=tuple(process), **kw)  # type: ignore[arg-type]


# ---- matches


def test_match_by_comm() -> None:
    p = ProcInfo(1, 0, "sshd", ("/usr/sbin/sshd", "-D"))
    assert matches(p, spec("sshd"))
    assert not matches(p, spec("ssh"))  # exact, not pgrep's regular expression
    assert not matches(p, spec("/usr/sbin/sshd"))  # a path needs full_command
    assert matches(p, spec("/usr/sbin/sshd", full_command=True))
    assert not matches(p, spec("sshd", full_command=True))  # argv[0] is the path


def test_match_parameters() -> None:
    p = ProcInfo(1, 0, "haproxy", ("/usr/sbin/haproxy", "-f", "/etc/haproxy.cfg", "-db"))
    assert not matches(p, spec("haproxy", "-f"))  # parameters imply full_command: argv[0] is the path
    assert matches(p, spec("/usr/sbin/haproxy", "-f", "/etc/haproxy.cfg", "-db"))
    assert not matches(p, spec("/usr/sbin/haproxy", "-f", "/etc/haproxy.cfg"))  # exact: all of them
    assert matches(p, spec("/usr/sbin/haproxy", "-f", "/etc/haproxy.cfg", param_match="partial"))
    assert not matches(p, spec("/usr/sbin/haproxy", "-f", "/etc/hap", param_match="partial"))
    assert matches(p, spec("/usr/sbin/haproxy", "-f", "/etc/hap", param_match="initial"))
    assert not matches(p, spec("/usr/sbin/haproxy", "-f", "/etc/x", param_match="initial"))
    assert not matches(p, spec("/usr/sbin/haproxy", "-x", "/etc/hap", param_match="initial"))
    assert matches(p, spec("/usr/sbin/haproxy", param_match="partial"))  # no parameters: any
    assert matches(p, spec("/usr/sbin/haproxy", "", param_match="initial"))
    too_many = spec("/usr/sbin/haproxy", "-f", "/etc/haproxy.cfg", "-db", "-x", param_match="partial")
    assert not matches(p, too_many)
    bare = ProcInfo(1, 0, "haproxy", ("/usr/sbin/haproxy",))
    assert matches(bare, spec("/usr/sbin/haproxy", full_command=True))
    assert not matches(bare, spec("/usr/sbin/haproxy", "", param_match="initial"))
    assert not matches(ProcInfo(1, 0, "kthreadd"), spec("kthreadd", full_command=True))  # no cmdline
    assert not matches(bare, spec())


# ---- Quorum


def test_quorum_range() -> None:
    q = Quorum(spec("x", quorum=2, quorum_max=3), 0)
    assert not q.up
    assert q.update(1, "other", 0) is None
    assert q.update(2, "other", 0) is True
    assert q.update(3, "other", 0) is None
    assert q.update(4, "other", 0) is False
    assert q.update(3, "exit", 0) is True
    assert Quorum(spec("x", quorum_max=0), 0).up  # quorum_max 0: up while none runs
    assert not Quorum(spec("x", quorum_max=0), 1).up


def test_quorum_delays() -> None:
    q = Quorum(spec("x", delay=2.0), 1)
    assert q.up
    assert q.update(0, "exit", 10.0) is None and q.deadline == 12.0
    assert q.expire(11.0) is None
    assert q.expire(12.0) is False and q.deadline is None
    assert q.update(1, "other", 13.0) is True  # an exec: no fork delay
    assert q.update(0, "exit", 14.0) is None
    assert q.update(1, "other", 15.0) is None and q.deadline is None  # restarted in time: no bounce
    assert q.up
    assert q.update(0, "other", 16.0) is False  # lost by exec/comm change: not delayed
    assert q.update(1, "fork", 17.0) is None and q.deadline == 19.0
    assert q.update(2, "fork", 17.5) is None and q.deadline == 19.0  # same verdict: timer runs on
    assert q.expire(19.0) is True
    f = Quorum(spec("x", fork_delay=1.0, quorum=2), 1)
    assert f.update(2, "fork", 0.0) is None
    assert f.update(1, "other", 0.5) is None and f.deadline is None  # the forked child exec'd: no up
    assert not f.up


def test_table_causes() -> None:
    t = ProcessTable({"a": spec("a"), "b": spec("b", quorum=2)})
    assert t.rebuild([ProcInfo(10, 1, "a"), ProcInfo(11, 1, "b"), ProcInfo(12, 1, "c")]) == {
        "a": Change(0, 1, "other"),
        "b": Change(0, 1, "other"),
    }
    assert t.update({13: ProcInfo(13, 10, "a")}) == {"a": Change(1, 2, "fork")}  # child of a member
    assert t.update({14: ProcInfo(14, 1, "b")}) == {"b": Change(1, 2, "other")}
    assert t.update({13: ProcInfo(13, 10, "other")}) == {"a": Change(2, 1, "other")}  # exec'd away
    assert t.update({14: None}) == {"b": Change(2, 1, "exit")}
    assert t.update({99: None, 98: ProcInfo(98, 1, "zz")}) == {}
    # The parent and its forked child seen in one batch: still a fork.
    assert t.update({20: ProcInfo(20, 1, "b"), 21: ProcInfo(21, 20, "b")}) == {"b": Change(1, 3, "fork")}
    assert t.update({20: None, 21: None}) == {"b": Change(3, 1, "exit")}
    assert t.rebuild([ProcInfo(11, 1, "b")]) == {"a": Change(1, 0, "exit")}


# ---- connector decoding


def event(what: int, *ids: int, seq: int = 0, ack: int = 0) -> bytes:
    data = struct.pack("=IIQ", what, 0, 0) + struct.pack(f"={len(ids)}i", *ids)
    cn = struct.pack("=IIIIHH", 1, 1, seq, ack, len(data), 0) + data
    return struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn


def test_parse_events() -> None:
    assert parse_events(event(PROC_EVENT_FORK, 100, 100, 200, 200)) == [(PROC_EVENT_FORK, 200, 100)]
    assert parse_events(event(PROC_EVENT_FORK, 100, 100, 201, 200)) == []  # a new thread
    assert parse_events(event(PROC_EVENT_EXEC, 7, 7)) == [(PROC_EVENT_EXEC, 7, 0)]
    assert parse_events(event(PROC_EVENT_EXIT, 8, 8, 0, 9, 1, 1)) == [(PROC_EVENT_EXIT, 8, 0)]
    assert parse_events(event(PROC_EVENT_EXIT, 9, 8, 0, 9)) == []  # a thread exits
    assert parse_events(event(PROC_EVENT_EXEC, 7, 7, ack=1)) == []
    assert parse_events(event(0x4, 7, 7, 0, 0)) == []  # uid change: not interesting
    two = event(PROC_EVENT_EXEC, 1, 1) + event(PROC_EVENT_EXIT, 2, 2, 0, 0)
    assert parse_events(two) == [(PROC_EVENT_EXEC, 1, 0), (PROC_EVENT_EXIT, 2, 0)]


@given(st.binary(max_size=300))
def test_parse_events_never_raises(data: bytes) -> None:
    for what, pid, _ in parse_events(data):
        assert what in (PROC_EVENT_FORK, PROC_EVENT_EXEC, PROC_EVENT_EXIT, 0x200)
        assert isinstance(pid, int)


def test_read_proc_self() -> None:
    me = read_proc(os.getpid(), cmdline=True)
    assert me is not None and me.ppid == os.getppid() and me.cmdline and len(me.comm) <= 15
    assert read_proc(os.getpid(), cmdline=False) == ProcInfo(me.pid, me.ppid, me.comm)
    assert read_proc(2**22 + 1, cmdline=False) is None


# ---- real processes


@pytest.fixture
def binaries(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Copies of sleep and sh under unique names (comm is at most 15 characters)."""
    tag = uuid.uuid4().hex[:8]
    sleep, sh = tmp_path / f"pks{tag}", tmp_path / f"pkh{tag}"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", sleep)
    shutil.copy(shutil.which("sh") or "/bin/sh", sh)
    yield str(sleep), str(sh)


Seen = list[tuple[float, str, bool]]


def kill_group(p: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)


class Harness:
    def __init__(self, w: ProcessWatcher, seen: Seen) -> None:
        self.w, self.seen = w, seen
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, *argv: str) -> asyncio.subprocess.Process:
        # a session of its own, so that killing it takes its children (a shell's subshells) too
        p = await asyncio.create_subprocess_exec(*argv, start_new_session=True)
        self.procs.append(p)
        return p

    async def kill(self, p: asyncio.subprocess.Process) -> None:
        kill_group(p)
        await p.wait()
        self.procs.remove(p)

    async def until(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < n:
            assert time.monotonic() < deadline, f"timed out waiting for report {n}: {self.seen}"
            await asyncio.sleep(0.01)

    def states(self) -> list[bool]:
        return [up for _, _, up in self.seen]


def run(body: Callable[[Harness], Awaitable[None]]) -> Seen:
    seen: Seen = []

    async def main() -> None:
        w = ProcessWatcher(asyncio.get_running_loop(), lambda n, up: seen.append((time.monotonic(), n, up)))
        h = Harness(w, seen)
        try:
            await body(h)
        finally:
            w.close()
            for p in h.procs:
                kill_group(p)
                await p.wait()

    asyncio.run(asyncio.wait_for(main(), 60))
    return seen


def connector_available() -> bool:
    try:
        open_connector().close()
    except OSError:
        return False
    return True


needs_connector = pytest.mark.skipif(
    os.geteuid() != 0 or not connector_available(), reason="needs the proc connector (root, initial netns)"
)


@needs_connector
def test_quorum_and_quorum_max(binaries: tuple[str, str]) -> None:
    sleep, _ = binaries
    name = os.path.basename(sleep)

    async def body(h: Harness) -> None:
        tp = TrackProcess(name="tp", process=(name,), quorum=2, quorum_max=3)
        assert h.w.configure({"tp": tp}) == {"tp": False}
        assert not h.w.polling
        a = await h.start(sleep, "1000")
        await asyncio.sleep(0.3)
        assert h.seen == []
        b = await h.start(sleep, "1001")
        await h.until(1)
        c = await h.start(sleep, "1002")
        await asyncio.sleep(0.3)
        assert h.states() == [True]
        d = await h.start(sleep, "1003")
        await h.until(2)  # 4 > quorum_max
        await h.kill(d)
        await h.until(3)
        for p in (a, b, c):
            await h.kill(p)
        await h.until(4)
        await asyncio.sleep(0.3)
        assert h.states() == [True, False, True, False]
        assert h.w.configure({"tp": tp}) == {"tp": False}  # reload, unchanged

    run(body)


@needs_connector
def test_parameters_and_full_command(binaries: tuple[str, str]) -> None:
    sleep, _ = binaries

    async def body(h: Harness) -> None:
        specs = {
            "exact": TrackProcess(name="exact", process=(sleep, "2000")),
            "initial": TrackProcess(name="initial", process=(sleep, "20"), param_match="initial"),
            "full": TrackProcess(name="full", process=(sleep,), full_command=True),
        }
        assert h.w.configure(specs) == {"exact": False, "initial": False, "full": False}
        p = await h.start(sleep, "2001")
        await h.until(2)
        assert sorted((n, up) for _, n, up in h.seen) == [("full", True), ("initial", True)]
        q = await h.start(sleep, "2000")
        await h.until(3)
        assert h.seen[-1][1:] == ("exact", True)
        await h.kill(q)
        await h.kill(p)
        await h.until(6)

    run(body)


@needs_connector
def test_terminate_delay_absorbs_a_restart(binaries: tuple[str, str]) -> None:
    sleep, _ = binaries
    name = os.path.basename(sleep)

    async def body(h: Harness) -> None:
        tp = TrackProcess(name="tp", process=(name,), terminate_delay=1.0)
        p = await h.start(sleep, "1000")
        assert h.w.configure({"tp": tp}) == {"tp": True}
        await h.kill(p)
        await asyncio.sleep(0.2)
        await h.start(sleep, "1000")  # restarted within the delay: no report at all
        await asyncio.sleep(1.5)
        assert h.seen == []
        await h.kill(h.procs[0])
        t0 = time.monotonic()
        await h.until(1)
        assert h.states() == [False]
        assert 0.8 <= h.seen[0][0] - t0 <= 3.0

    run(body)


@needs_connector
def test_fork_delay(binaries: tuple[str, str]) -> None:
    _, sh = binaries
    name = os.path.basename(sh)

    async def body(h: Harness) -> None:
        tp = TrackProcess(name="tp", process=(name,), quorum=2, fork_delay=1.0)
        assert h.w.configure({"tp": tp}) == {"tp": False}
        t0 = time.monotonic()
        # The shell forks `sleep` children (they are briefly the shell, then exec): no report;
        # after 0.5 s it forks a subshell that stays: up, one fork_delay later.
        await h.start(sh, "-c", "sleep 0.5; (while :; do sleep 0.2; done) & wait")
        await h.until(1)
        assert h.states() == [True]
        assert h.seen[0][0] - t0 >= 1.4, (h.seen[0][0] - t0, h.seen)

    run(body)


CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def new_netns() -> Iterator[None]:
    """This thread in a fresh network namespace (where the proc connector refuses), then back."""
    libc = ctypes.CDLL(None, use_errno=True)
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        assert libc.unshare(CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
        yield
    finally:
        assert libc.setns(saved, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
        os.close(saved)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_polling_without_connector(binaries: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    sleep, _ = binaries
    name = os.path.basename(sleep)

    async def body(h: Harness) -> None:
        with new_netns():
            assert h.w.configure({"tp": TrackProcess(name="tp", process=(name,))}) == {"tp": False}
        assert h.w.polling
        p = await h.start(sleep, "1000")
        await h.until(1, timeout=4)
        await h.kill(p)
        await h.until(2, timeout=4)
        assert h.states() == [True, False]
        h.w.configure({})  # nothing to track: polling stops
        assert h.w._poll is None

    with caplog.at_level(logging.WARNING):
        run(body)
    assert caplog.text.count("polling /proc every 1s") == 1


@needs_connector
def test_reload_keeps_pending_delay(binaries: tuple[str, str]) -> None:
    sleep, _ = binaries
    name = os.path.basename(sleep)

    async def body(h: Harness) -> None:
        a = TrackProcess(name="a", process=(name,), terminate_delay=1.0)
        p = await h.start(sleep, "1000")
        assert h.w.configure({"a": a}) == {"a": True}
        await h.kill(p)
        await asyncio.sleep(0.3)
        # Reload while a's delay runs: a keeps its state and timer, b is new, nothing reported yet.
        assert h.w.configure({"a": a, "b": TrackProcess(name="b", process=(name,), quorum_max=0)}) == {
            "a": True,
            "b": True,
        }
        await h.until(1)
        assert [(n, up) for _, n, up in h.seen] == [("a", False)]
        assert h.w.configure({}) == {}
        assert h.w.timers == {} and h.w.sock is None

    run(body)
