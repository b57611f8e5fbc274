"""The VRRP child's log lines: held back while urgent work runs and written once it is done,
and their records made without what no line shows.

A takeover of many instances is latency-bound: each instance that becomes MASTER must have
its advert, VIPs and GARPs out within milliseconds of its deadline, and writing its log
lines (formatting, a write or a syslog datagram per line: with -D about 40 % of the child's
time in a profile of a graceful takeover of 250 instances) pushed the later instances back.
While a burst of timers runs, `LogBuffer.hold()` puts itself in place of the root logger's handlers
and keeps every record, in order; `write_out()` hands them to the real handlers afterwards,
a slice at a time, giving way whenever a timer is due again.

Nothing written changes: a record keeps the time it was made (%(asctime)s is that time,
not the time it is written), its message is rendered when it is kept (so an argument that
changes afterwards cannot change the line), and the order of lines is the order of the
calls, whichever logger they came from.

`lean_log_records()` (the VRRP child calls it at its start) turns off what the logging module
gathers for each record and no line of ours shows (haparent.logs formats the time, the pid and
the message): the caller's frame, found by walking the stack on every call, the thread and the
process names (the module's own "Optimization" switches), and makes records with `LeanRecord`,
which has every attribute a LogRecord has, with the same values, without recomputing the
file name of an unknown caller for each one. With -D a takeover logs about ten lines per
instance; making their records was about a quarter of its time in Python.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

RELEASE_SLICE = 64  # records written between two looks at the timers


class LogBuffer(logging.Handler):
    """Holds the root logger's records while `hold()` is in force (see the module docstring)."""

    def __init__(self, root: logging.Logger | None = None) -> None:
        super().__init__()
        self.root = root if root is not None else logging.getLogger()
        self.records: deque[logging.LogRecord] = deque()
        self._saved: list[logging.Handler] | None = None

    @property
    def holding(self) -> bool:
        return self._saved is not None

    def hold(self) -> None:
        """From now on, records are kept instead of written."""
        if self._saved is None:
            self._saved = self.root.handlers
            self.root.handlers = [self]

    def handle(self, record: logging.LogRecord) -> bool:
        # rendered now: "%s" of a mutable argument must say what it said at the call
        record.msg = record.getMessage()
        record.args = None
        self.records.append(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() keeps it
        self.handle(record)

    def write_out(self, yield_to: Callable[[], bool] = lambda: False) -> bool:
        """Write the kept records to the real handlers, in order; stop between two slices
        when `yield_to()` says something more urgent waits (the caller tries again later).
        True when everything was written and the real handlers are back in place."""
        handlers = self._saved if self._saved is not None else self.root.handlers
        records = self.records
        while records:
            if yield_to():
                return False
            for _ in range(min(RELEASE_SLICE, len(records))):
                record = records.popleft()
                for handler in handlers:
                    if record.levelno >= handler.level:
                        handler.handle(record)
        if self._saved is not None:
            self.root.handlers = self._saved
            self._saved = None
        return True

    def unhold(self) -> bool:
        """Back to writing at once if nothing was kept; False if records wait for write_out()."""
        if self.records:
            return False
        if self._saved is not None:
            self.root.handlers = self._saved
            self._saved = None
        return True


def lean_log_records() -> None:
    """The process's records as LeanRecord, without the caller's frame, thread or process name."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.setLogRecordFactory(LeanRecord)


class LeanRecord(logging.LogRecord):
    """logging.LogRecord's attributes, set as its __init__ sets them with logThreads and
    logMultiprocessing off (CPython 3.11), and the time taken the same way, so that a
    formatter writes the same bytes; the file name and module of a caller (one unknown
    caller without logging._srcfile) are worked out once per path."""

    def __init__(  # noqa: PLR0917 - logging.LogRecord's signature, which the logging module calls
        self,
        name: str,
        level: int,
        pathname: str,
        lineno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        sinfo: str | None = None,
        **kwargs: object,
    ) -> None:
        ct = time.time()
        self.name = name
        self.msg = msg
        # LogRecord's "a dictionary as the sole argument" rule (a str is never a Mapping)
        if args and len(args) == 1 and type(args[0]) is not str and isinstance(args[0], Mapping) and args[0]:
            args = args[0]
        self.args = args
        self.levelname = logging.getLevelName(level)
        self.levelno = level
        self.pathname = pathname
        self.filename, self.module = _file_and_module(pathname)
        self.exc_info = exc_info
        self.exc_text = None
        self.stack_info = sinfo
        self.lineno = lineno
        self.funcName = func  # type: ignore[assignment]  # None without the caller's frame, as LogRecord's
        self.created = ct
        self.msecs = int((ct - int(ct)) * 1000) + 0.0
        self.relativeCreated = (ct - _START) * 1000
        self.thread = None
        self.threadName = None
        self.processName = None
        self.process = os.getpid() if logging.logProcesses else None
        self.taskName = None  # Python 3.12's asyncio task name, off here


# the logging module's start time, which relativeCreated counts from
_START: float = getattr(logging, "_startTime", time.time())
_FILES: dict[str, tuple[str, str]] = {}


def _file_and_module(pathname: str) -> tuple[str, str]:
    known = _FILES.get(pathname)
    if known is None:
        try:
            filename = os.path.basename(pathname)
            known = (filename, os.path.splitext(filename)[0])
        except (TypeError, ValueError, AttributeError):
            known = (pathname, "Unknown module")
        if len(_FILES) < 256:
            _FILES[pathname] = known
    return known
