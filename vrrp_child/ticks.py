"""One loop timer for the deadlines of many VRRP instances.

Every instance has one deadline at a time (a BACKUP's Master_Down_Timer, a MASTER's
Adver_Timer), so 250 masters fire 250 timers a second. As asyncio TimerHandles each one
costs a handle object, a context copy and a heap whose comparisons run in Python, and
deadlines a few milliseconds apart (instances that took over one after the other) each
cost a loop wakeup of their own. Measured with bench/vrrp_failover.py (250 masters,
advert_int 1): that machinery was about a third of the VRRP child's steady CPU.

Here the deadlines sit in one heap of (when, seq, Timer) tuples, compared in C, with a
single loop timer armed for the earliest; a wakeup runs every deadline that has come due
by the time the previous ones are done, re-reading the clock as it goes, so the deadlines
of a burst are served together. Cancelling is lazy: a cancelled Timer stays in the heap
and is skipped when its time comes (a BACKUP moves its down deadline with every advert).

A wakeup runs callbacks for RUN_BUDGET at most, then gives the loop a turn and goes on at
once: what the callbacks queued with call_soon, the one netlink batch of the VIPs of the
instances that became MASTER and its GARPs, goes out between two slices, so the first
instances of a burst of 250 takeovers do not wait for the VIPs of the last.

`starting` and `finished` run around each wakeup's timers: the VRRP child holds its log
lines back meanwhile (vrrp_child.logbuffer), so that a takeover's adverts, VIPs and GARPs
are not kept waiting behind the writing of the lines that describe them. `due()` tells
work that can wait whether a timer is due now.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

# A deadline this close is due: the same slack as fsm._SLACK, so a timer never fires before
# the state machine would accept its Tick.
SLACK = 1e-6
RUN_BUDGET = 0.005  # s of callbacks per wakeup before the loop gets a turn (see the module docstring)


class _Handle(Protocol):
    def cancel(self) -> None: ...


class Loop(Protocol):
    """What Ticks needs of the event loop (asyncio's, or a test's simulated one)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None], /) -> _Handle: ...


class Timer:
    """One scheduled callback; cancel() before it ran keeps it from running."""

    __slots__ = ("callback", "early", "when")

    def __init__(self, when: float, callback: Callable[[], None], early: float = 0.0) -> None:
        self.when = when
        self.early = early  # it may run this much before `when` if the loop is awake anyway
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self.callback = None

    @property
    def cancelled(self) -> bool:
        return self.callback is None


class Ticks:
    """Deadlines of many instances on one loop timer (see the module docstring)."""

    def __init__(self, loop: Loop, budget: float = RUN_BUDGET) -> None:
        self.loop = loop
        self.budget = budget
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._handle: _Handle | None = None
        self._armed_at: float | None = None
        self._running = False
        self.starting: Callable[[], None] | None = None
        self.finished: Callable[[], None] | None = None

    def call_at(self, when: float, callback: Callable[[], None], early: float = 0.0) -> Timer:
        """Run `callback` at `when`; with `early`, up to that much sooner when a wakeup for
        another timer comes first (masters' adverts then share wakeups)."""
        timer = Timer(when, callback, early)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if not self._running and (self._armed_at is None or when < self._armed_at):
            self._arm()
        return timer

    def __len__(self) -> int:
        """Scheduled timers, cancelled ones not yet dropped included."""
        return len(self._heap)

    def due(self) -> bool:
        """A live timer's time has come (the loop timer for it is then armed)."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return bool(heap) and heap[0][0] <= self.loop.time() + SLACK

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_at = None
        self._heap.clear()

    def _arm(self) -> None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        when = heap[0][0] if heap else None
        if when == self._armed_at:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = None if when is None else self.loop.call_at(when, self._run)

    def _run(self) -> None:
        self._handle = None
        self._armed_at = None
        self._running = True
        heap = self._heap
        time = self.loop.time
        if self.starting is not None:
            self.starting()
        until = time() + self.budget
        try:
            while heap and heap[0][0] - heap[0][2].early <= (now := time()) + SLACK and now < until:
                timer = heapq.heappop(heap)[2]
                callback = timer.callback
                if callback is not None:
                    timer.callback = None
                    callback()
        finally:
            # An exception from a callback reaches the loop's handler; the timers still due
            # run at once from the re-armed timer.
            self._running = False
            self._arm()
            if self.finished is not None:
                self.finished()
