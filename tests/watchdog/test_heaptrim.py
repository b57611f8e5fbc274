"""watchdog.heaptrim: free C heap pages go back to the kernel (issue 15, memory), in this
process, in a child once started and after each reload, and in the parent before a fork."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from haparent.system import RealSystem
from tests.watchdog.heap import heap_rss_kb, heap_with_holes
from tests.watchdog.test_runtime import spawn  # noqa: F401 (fixture)
from watchdog import heaptrim
from watchdog.protocol import Ready, Reload, Reloaded, Resume

FREED_KB = 38_000  # what heap_with_holes() frees between the blocks it keeps


def test_trim_gives_the_free_pages_between_live_objects_back() -> None:
    kept = heap_with_holes()
    before = heap_rss_kb()
    assert heaptrim.trim() is True
    after = heap_rss_kb()
    assert before - after > FREED_KB * 0.7, (before, after)
    assert all(len(block) == 2000 for block in kept)  # what is live stays


def test_without_malloc_trim_in_the_c_library_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    heaptrim._malloc_trim.cache_clear()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # musl: no such symbol
    try:
        assert heaptrim.trim() is False
    finally:
        monkeypatch.undo()
        heaptrim._malloc_trim.cache_clear()
    assert heaptrim.trim() in (True, False)  # glibc again


def test_the_parent_trims_before_it_forks() -> None:
    kept = heap_with_holes()
    before = heap_rss_kb()
    spawned = RealSystem().spawn(lambda read_fd, write_fd: 0, ())
    try:
        assert before - heap_rss_kb() > FREED_KB * 0.7
    finally:
        os.waitpid(spawned.pid, 0)
        os.close(spawned.read_fd)
        os.close(spawned.write_fd)
    assert len(kept) > 0


def _eventually_below(limit_kb: int, measure: Callable[[], int], timeout: float = 3.0) -> int:
    deadline = time.monotonic() + timeout
    while (kb := measure()) >= limit_kb and time.monotonic() < deadline:
        time.sleep(0.05)
    return kb


def test_a_child_trims_once_started_and_after_each_reload(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    child = spawn("leaves-holes")
    child.send(Resume({}))
    child.read_until(Ready)
    # Without the trims the child's heap would keep the 38 MB freed by each step resident.
    limit = 24_000
    assert _eventually_below(limit, lambda: heap_rss_kb(child.proc.pid)) < limit
    child.send(Reload(str(tmp_path / "k.conf")))
    assert child.read_until(Reloaded) == Reloaded(True)
    assert _eventually_below(limit, lambda: heap_rss_kb(child.proc.pid)) < limit
