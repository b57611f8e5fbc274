"""track_file: a number read from a file, re-read when the file changes (inotify).

keepalived.conf(5), "Track files": "The file will be read whenever it is modified"; the value
is multiplied by the weight of each object tracking it (VRRP instances, sync groups, and real
servers through FILE_CHECK). This module reads the value and reports changes; what a value
does to a priority or a real server's weight belongs to the users of `FileWatcher`.

keepalived's rules (trackers/track_file.c) followed here:
- the value is C strtol(text, base 0) of the first 127 bytes: leading white space, a sign,
  `0x` hex and leading-zero octal; no digits (empty, garbage) is 0; a missing or unreadable
  file is 0;
- a number outside the C int range is ignored with "Invalid number N read from PATH -
  ignoring": the last value stays (at start-up the value is then 0);
- the directory is watched, not the file, for IN_CLOSE_WRITE, IN_DELETE and IN_MOVE: a
  file written and closed, replaced by rename (editors, `mv tmp f`), truncated through
  open(O_TRUNC) or deleted is seen. Writes through a file still held open are only seen on
  close, and truncate(2) without an open is not seen at all, as with keepalived;
- the path is resolved (realpath) when the watch starts; a file that does not exist yet is
  looked for in its (resolved) directory; a missing directory is not retried ("Track file
  directory for X does not exist - removing"), the value stays 0.
Events are drained in one pass of the loop and each affected path is read once afterwards,
so a burst (delete then create, several writes) reports the final value once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from inotify_simple import INotify, flags, parse_events

from conf.trackers import InitFile

log = logging.getLogger(__name__)

# keepalived reads the file into a 128-byte buffer and keeps one byte for the NUL.
READ_SIZE = 127
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
WATCH_MASK = flags.CLOSE_WRITE | flags.DELETE | flags.MOVED_FROM | flags.MOVED_TO


def strtol(text: str) -> int | None:
    """C strtol(text, NULL, 0) on a C string; None where it sets ERANGE. No digits: 0."""
    text = text.split("\0", 1)[0]
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    base = 10
    if text.startswith(("0x", "0X"), i) and i + 2 < n and text[i + 2] in _DIGITS[16]:
        base, i = 16, i + 2
    elif text.startswith("0", i):
        base = 8
    digits = _DIGITS[base]
    start = i
    while i < n and text[i] in digits:
        i += 1
    if i == start:
        return 0
    value = int(text[start:i], base)
    value = -value if negative else value
    if not LONG_MIN <= value <= LONG_MAX:
        return None
    return value


def parse_status(text: str) -> int | None:
    """The value keepalived takes from a track file's text; None: out of the C int range,
    which keepalived ignores (the previous value stays)."""
    value = strtol(text)
    if value is None or not INT_MIN <= value <= INT_MAX:
        return None
    return value


def parse_value(text: str) -> int:
    """The value of a track file's text; an out-of-range number reads as 0 (as at start-up)."""
    value = parse_status(text)
    return 0 if value is None else value


def _long_for_log(text: str) -> int:
    """What keepalived's "Invalid number %ld" prints: strtol's result, clamped on ERANGE."""
    value = strtol(text)
    if value is not None:
        return value
    return LONG_MIN if text.lstrip(_C_SPACE).startswith("-") else LONG_MAX


def _read_text(path: str) -> str | None:
    """The first READ_SIZE bytes of the file as text; None if it cannot be read. O_NONBLOCK so
    that a FIFO at the path cannot hang the loop."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, READ_SIZE)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("latin-1")  # byte for byte: only ASCII digits, signs and spaces matter


def read_status(path: str) -> int | None:
    """The file's value; missing, unreadable or empty: 0; None: an out-of-range number (logged)."""
    text = _read_text(path)
    if text is None:
        return 0
    value = parse_status(text)
    if value is None:
        log.info("Invalid number %d read from %s - ignoring", _long_for_log(text), path)
    return value


def read_value(path: str) -> int:
    """The file's value as keepalived reads it at start-up (anything unusable is 0)."""
    text = _read_text(path)
    return 0 if text is None else parse_value(text)


def init_file(path: str, init: InitFile | None, *, reload: bool = False) -> None:
    """track_file `init_file [VALUE] [overwrite]`: write VALUE (default 0) if the file does not
    exist, or over an existing regular file with `overwrite` (not on a reload: keepalived keeps
    the file then). The value goes to a temporary file renamed over the path, so that a symlink
    planted at the path is replaced rather than followed and readers never see a partial file."""
    if init is None:
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        log.error("Unable to initialise track file %s - %s", path, e.strerror)
        return
    if st is not None:
        if not init.overwrite:
            return
        if not stat.S_ISREG(st.st_mode):
            log.error("Cannot initialise track file %s - it is not a regular file", path)
            return
        if reload:
            return
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=".track_file.", dir=directory)
    except OSError as e:
        log.error("Unable to initialise track file %s - %s", path, e.strerror)
        return
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"{init.value}\n")
            os.fchmod(f.fileno(), 0o644)
        os.rename(tmp, path)
    except OSError as e:
        log.error("Unable to initialise track file %s - %s", path, e.strerror)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def resolve(path: str) -> tuple[str, str] | str:
    """(directory, name) to watch for `path`, resolved as keepalived does; or the log line
    saying why it cannot be watched."""
    try:
        real = os.path.realpath(path, strict=True)
    except FileNotFoundError:
        head, name = os.path.split(path)
        try:
            directory = os.path.realpath(head or ".", strict=True)
        except OSError:
            return f"Track file directory for {path} does not exist - removing"
        if not os.path.isdir(directory):
            return f"Track file directory for {path} does not exist - removing"
        return directory, name
    except OSError:
        return f"track file {path} is not accessible - ignoring"
    return os.path.split(real)


@dataclass
class _Watched:
    refs: int
    value: int
    target: tuple[str, str] | None  # (resolved directory, name); None: not watchable
    wd: int | None = None


@dataclass
class _Dir:
    path: str
    names: dict[str, set[str]] = field(default_factory=dict)  # file name -> watched paths


class FileWatcher:
    """Reports `changed(path, value)` when the value of a watched file changes.

    Several paths may share a directory (one inotify watch), and a path may be watched by
    several users: `watch` and `unwatch` are counted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[str, int], None]) -> None:
        self.loop = loop
        self.changed = changed
        self.paths: dict[str, _Watched] = {}
        self.dirs: dict[int, _Dir] = {}  # inotify watch descriptor -> directory
        self.inotify: INotify | None = None
        try:
            self.inotify = INotify(nonblocking=True)
        except OSError as e:
            log.error("Unable to monitor track files - %s", e.strerror)
            return
        loop.add_reader(self.inotify.fileno(), self._readable)

    def watch(self, path: str) -> int:
        """Start (or share) watching `path`; returns its current value."""
        entry = self.paths.get(path)
        if entry is not None:
            entry.refs += 1
            return entry.value
        target = resolve(path)
        if isinstance(target, str):
            log.error("%s", target)
            self.paths[path] = _Watched(1, 0, None)
            return 0
        full = os.path.join(*target)
        entry = _Watched(1, read_value(full), target)
        self.paths[path] = entry
        if self.inotify is not None:
            try:
                entry.wd = self.inotify.add_watch(target[0], WATCH_MASK)
            except OSError as e:
                log.error("Unable to watch track file %s - %s", path, e.strerror)
            else:
                d = self.dirs.setdefault(entry.wd, _Dir(target[0]))
                d.names.setdefault(target[1], set()).add(path)
        return entry.value

    def unwatch(self, path: str) -> None:
        entry = self.paths.get(path)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs > 0:
            return
        del self.paths[path]
        if entry.wd is None or entry.target is None or entry.wd not in self.dirs:
            return
        d = self.dirs[entry.wd]
        users = d.names.get(entry.target[1], set())
        users.discard(path)
        if not users:
            d.names.pop(entry.target[1], None)
        if not d.names:
            del self.dirs[entry.wd]
            if self.inotify is not None:
                with contextlib.suppress(OSError):  # the directory may be gone already
                    self.inotify.rm_watch(entry.wd)

    def value(self, path: str) -> int:
        entry = self.paths.get(path)
        return 0 if entry is None else entry.value

    def close(self) -> None:
        if self.inotify is None:
            return
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.inotify.fileno())
        self.inotify.close()
        self.inotify = None
        self.dirs.clear()

    def _readable(self) -> None:
        touched: set[str] = set()
        assert self.inotify is not None
        while True:
            try:
                data = os.read(self.inotify.fileno(), 65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                log.info("inotify read() returned error %d - %s", e.errno, e.strerror)
                break
            if not data:
                break
            for event in parse_events(data):
                self._collect(event.wd, event.mask, event.name, touched)
        for path in sorted(touched):
            self._refresh(path)

    def _collect(self, wd: int, mask: int, name: str, touched: set[str]) -> None:
        if mask & flags.Q_OVERFLOW:
            touched.update(self.paths)  # events were lost: read every file again
            return
        if mask & flags.ISDIR:
            return
        d = self.dirs.get(wd)
        if mask & flags.IGNORED and d is not None:
            # The directory was removed or unmounted: its watch is gone.
            for users in d.names.values():
                for path in users:
                    self.paths[path].wd = None
            del self.dirs[wd]
        if not mask & WATCH_MASK:
            log.info("Unknown inotify event 0x%x", mask)
            return
        if d is not None:
            touched.update(d.names.get(name, ()))

    def _refresh(self, path: str) -> None:
        entry = self.paths.get(path)
        if entry is None or entry.target is None:
            return
        value = read_status(os.path.join(*entry.target))
        if value is None or value == entry.value:
            return
        entry.value = value
        self.changed(path, value)
