"""The VRRP child's log lines held back while urgent work runs, and written once it is done.

A takeover of many instances is latency-bound: each instance that becomes MASTER must have
its advert, VIPs and GARPs out within milliseconds of its deadline, and writing its log
lines (formatting, a write or a syslog datagram per line: about half of what a takeover
cost with -D, measured by bench/vrrp_failover.py) pushed the later instances back. While a
burst of timers runs, `LogBuffer.hold()` puts itself in place of the root logger's handlers
and keeps every record, in order; `write_out()` hands them to the real handlers afterwards,
a slice at a time, giving way whenever a timer is due again.

Nothing written changes: a record keeps the time it was made (%(asctime)s is that time,
not the time it is written), its message is rendered when it is kept (so an argument that
changes afterwards cannot change the line), and the order of lines is the order of the
calls, whichever logger they came from.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

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
