"""watchdog.trackfile: the value parser against the C library's strtol, init_file, and the
inotify watcher with real files in a temporary directory on a real event loop."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conf.trackers import InitFile
from watchdog.trackfile import FileWatcher, init_file, parse_status, parse_value, read_value, strtol

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.strtol.restype = ctypes.c_long
_libc.strtol.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]


def c_strtol(text: str) -> int | None:
    """The real strtol(text, NULL, 0); None when it sets ERANGE."""
    ctypes.set_errno(0)
    value = int(_libc.strtol(text.encode("latin-1"), None, 0))
    return None if ctypes.get_errno() else value


# ---- parse_value: pure


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("", 0),
        ("42", 42),
        ("  42\n", 42),
        (" \t\v\f\r\n7", 7),
        ("-7\n", -7),
        ("+5", 5),
        ("12abc", 12),
        ("abc", 0),
        ("- 5", 0),
        ("+-5", 0),
        ("0x1f", 31),
        ("0X1F", 31),
        ("-0x10", -16),
        ("0x", 0),
        ("0xg", 0),
        ("010", 8),  # base 0: a leading zero means octal, as keepalived reads it
        ("08", 0),
        ("2147483647", 2147483647),
        ("-2147483648", -2147483648),
        ("3 4", 3),
        ("\u0663", 0),  # a non-ASCII digit is not a digit for strtol
        ("\x005", 0),  # C string: stops at the NUL
        ("5\x009", 5),
    ],
)
def test_parse_value(text: str, value: int) -> None:
    assert parse_value(text) == value
    assert parse_status(text) == value


@pytest.mark.parametrize("text", ["2147483648", "-2147483649", "99999999999999999999999", "-0x8000000000000001"])
def test_out_of_int_range_is_ignored(text: str) -> None:
    assert parse_status(text) is None  # keepalived: "Invalid number ... - ignoring"
    assert parse_value(text) == 0


@given(st.text(alphabet=" \t\n\v+-0123456789abcdefxXgz\x00", max_size=30))
@settings(max_examples=2000)
def test_strtol_agrees_with_libc(text: str) -> None:
    assert strtol(text) == c_strtol(text.split("\0", 1)[0])


@given(st.text(max_size=200))
def test_parse_value_never_raises(text: str) -> None:
    value = parse_value(text)
    assert -(2**31) <= value < 2**31


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["", " ", "\n", "  \t"]), st.sampled_from(["", "\n", " x"]))
def test_decimal_round_trip(n: int, before: str, after: str) -> None:
    assert parse_value(f"{before}{n}{after}") == n


# ---- read_value and init_file: real files


def test_read_value_files(tmp_path: Path) -> None:
    assert read_value(str(tmp_path / "missing")) == 0
    f = tmp_path / "f"
    f.write_text("17\n")
    assert read_value(str(f)) == 17
    f.write_text(" " * 130 + "5")  # keepalived reads 127 bytes: the number is beyond them
    assert read_value(str(f)) == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    assert read_value(str(fifo)) == 0  # opened non-blocking: no writer, no hang
    assert time.monotonic() - t0 < 1
    assert read_value(str(tmp_path)) == 0  # a directory cannot be read


def test_init_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "f"
    init_file(str(f), None)
    assert not f.exists()
    init_file(str(f), InitFile())
    assert f.read_text() == "0\n"
    assert f.stat().st_mode & 0o777 == 0o644
    init_file(str(f), InitFile(5))  # exists, no overwrite: kept
    assert f.read_text() == "0\n"
    init_file(str(f), InitFile(-9, overwrite=True))
    assert f.read_text() == "-9\n"
    init_file(str(f), InitFile(3, overwrite=True), reload=True)  # not on a reload
    assert f.read_text() == "-9\n"
    g = tmp_path / "g"
    init_file(str(g), InitFile(7, overwrite=True), reload=True)  # missing: created even on reload
    assert g.read_text() == "7\n"
    # A symlink planted at the path is replaced, its target left alone.
    target = tmp_path / "target"
    target.write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(target)
    init_file(str(link), InitFile(1, overwrite=True))
    assert target.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "1\n"
    with caplog.at_level(logging.ERROR):
        init_file(str(tmp_path), InitFile(1, overwrite=True))
        init_file(str(tmp_path / "nodir" / "f"), InitFile(1))
    assert "Cannot initialise track file" in caplog.text and "it is not a regular file" in caplog.text
    assert "Unable to initialise track file" in caplog.text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".track_file.")]


# ---- FileWatcher on a real loop


Seen = list[tuple[str, int]]


def run(body: Callable[[FileWatcher, Seen], Awaitable[None]]) -> Seen:
    seen: Seen = []

    async def main() -> None:
        w = FileWatcher(asyncio.get_running_loop(), lambda p, v: seen.append((p, v)))
        try:
            await body(w, seen)
        finally:
            w.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    return seen


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def settle() -> None:
    """Long enough for inotify events to have been delivered and handled."""
    await asyncio.sleep(0.2)


def test_watch_write_rename_truncate_delete(tmp_path: Path) -> None:
    f = tmp_path / "state"
    f.write_text("3\n")
    path = str(f)

    async def body(w: FileWatcher, seen: Seen) -> None:
        assert w.watch(path) == 3
        f.write_text("10\n")
        await until(lambda: seen == [(path, 10)])
        f.write_text("10")  # same value: not reported
        await settle()
        assert seen == [(path, 10)]
        tmp = tmp_path / "tmp"
        tmp.write_text("-4\n")
        os.rename(tmp, f)  # replaced by rename, as editors and `mv tmp f` do
        await until(lambda: seen[-1] == (path, -4))
        with open(f, "w"):  # truncated by open(O_TRUNC)
            pass
        await until(lambda: seen[-1] == (path, 0))
        f.write_text("8")
        await until(lambda: seen[-1] == (path, 8))
        f.unlink()
        await until(lambda: seen[-1] == (path, 0))
        f.write_text("0x20")
        await until(lambda: seen[-1] == (path, 32))
        f.write_text("garbage")
        await until(lambda: seen[-1] == (path, 0))
        f.write_text("-2147483648")
        await until(lambda: seen[-1] == (path, -(2**31)))
        os.rename(f, tmp_path / "away")  # moved away: 0
        await until(lambda: seen[-1] == (path, 0))
        assert w.value(path) == 0

    seen = run(body)
    assert seen == [(path, v) for v in (10, -4, 0, 8, 0, 32, 0, -(2**31), 0)]


def test_huge_number_keeps_last_value(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "state"
    f.write_text("5")
    path = str(f)

    async def body(w: FileWatcher, seen: Seen) -> None:
        assert w.watch(path) == 5
        f.write_text("99999999999")
        await settle()
        assert seen == []
        assert w.value(path) == 5
        f.write_text("6")
        await until(lambda: seen == [(path, 6)])

    with caplog.at_level(logging.INFO):
        run(body)
    assert f"Invalid number 99999999999 read from {path} - ignoring" in caplog.text


def test_huge_number_at_start_reads_0(tmp_path: Path) -> None:
    f = tmp_path / "state"
    f.write_text("4294967296")

    async def body(w: FileWatcher, seen: Seen) -> None:
        assert w.watch(str(f)) == 0

    assert run(body) == []


def test_burst_is_coalesced(tmp_path: Path) -> None:
    f = tmp_path / "state"
    path = str(f)

    async def body(w: FileWatcher, seen: Seen) -> None:
        assert w.watch(path) == 0
        for i in range(1, 51):  # no await in between: the loop sees them in one pass
            f.write_text(str(i))
        f.unlink()
        f.write_text("77")
        await until(lambda: bool(seen))
        await settle()

    assert run(body) == [(path, 77)]


def test_file_created_later_and_several_files_in_one_dir(tmp_path: Path) -> None:
    a, b, c = (str(tmp_path / n) for n in "abc")

    async def body(w: FileWatcher, seen: Seen) -> None:
        assert w.watch(a) == 0
        assert w.watch(b) == 0
        assert len(w.dirs) == 1
        Path(b).write_text("2")
        await until(lambda: seen == [(b, 2)])
        Path(c).write_text("9")  # not watched
        Path(a).write_text("1")
        await until(lambda: seen == [(b, 2), (a, 1)])
        await settle()
        assert (c, 9) not in seen

    run(body)


def test_refcount_and_unwatch(tmp_path: Path) -> None:
    f = tmp_path / "state"
    path = str(f)

    async def body(w: FileWatcher, seen: Seen) -> None:
        w.watch(path)
        w.watch(path)
        w.unwatch(path)
        f.write_text("1")
        await until(lambda: seen == [(path, 1)])
        w.unwatch(path)
        assert w.dirs == {} and w.paths == {}
        f.write_text("2")
        await settle()
        assert seen == [(path, 1)]
        w.unwatch(path)  # unknown: no error
        assert w.watch(path) == 2  # watched again: the current value
        f.write_text("3")
        await until(lambda: seen[-1] == (path, 3))

    run(body)


def test_relative_and_symlinked_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "value"
    target.write_text("1")
    link = tmp_path / "link"
    link.symlink_to(target)
    monkeypatch.chdir(real_dir)

    async def body(w: FileWatcher, seen: Seen) -> None:
        assert w.watch(str(link)) == 1
        assert w.watch("value") == 1
        target.write_text("5")
        await until(lambda: sorted(seen) == [(str(link), 5), ("value", 5)])

    run(body)


def test_missing_directory_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = str(tmp_path / "nodir" / "f")

    async def body(w: FileWatcher, seen: Seen) -> None:
        assert w.watch(path) == 0
        (tmp_path / "nodir").mkdir()
        Path(path).write_text("4")
        await settle()
        assert seen == []  # keepalived does not retry either
        w.unwatch(path)

    with caplog.at_level(logging.ERROR):
        run(body)
    assert f"Track file directory for {path} does not exist - removing" in caplog.text


def test_watched_directory_removed(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    f = d / "f"
    f.write_text("1")
    path = str(f)

    async def body(w: FileWatcher, seen: Seen) -> None:
        assert w.watch(path) == 1
        f.unlink()
        d.rmdir()
        await until(lambda: seen == [(path, 0)] and not w.dirs)
        w.unwatch(path)  # its watch is already gone: no error

    run(body)
