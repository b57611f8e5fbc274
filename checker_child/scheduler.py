"""When each health check runs: keepalived's timing rules as pure objects, and one loop
timer for all checkers.

- `Attempts` (pure): one checker's retry state. keepalived (check_*.c epilogs): a failed
  attempt is retried `retry` times, `delay_before_retry` apart, and only then is the
  checker declared down ("Check on service ... failed after N retries."); a success
  declares it up at once. A checker that is down keeps being retried the same way. After
  a verdict (or a success) the next run is `delay_loop` later.
  HTTP_GET/SSL_GET without `fast_recovery` (keepalived.conf(5)): a checker that is down
  (alpha at start, or after a failure) checks one url per `delay_loop`, so it comes up
  only after as many passing runs as it has urls; our probe checks every url each run,
  so we ask for that many consecutive passing runs.
- `first_delay`: the first run is at a random point of [0, warmup] (warmup defaults to
  delay_loop) so that thousands of checkers do not all fire at once.
- `TimerWheel` (checker_child.wheel, pure): due times of many keys, in slots of one TICK.
- `Scheduler`: the wheel driven by one `loop.call_at` handle (firing at most once per
  TICK), and a bound on the number of checks in flight (each holds a file descriptor);
  due checks beyond it wait in FIFO order. It records how late each check started (start - due), for the STATS dump and
  the benchmark.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from checker_child.wheel import TimerWheel

K = TypeVar("K", bound=Hashable)

LATENESS_SAMPLES = 65536  # the most recent start lateness values kept for percentiles
# The timer fires at most once per TICK: 10,000 checks a second at random offsets would
# otherwise wake the loop thousands of times a second for one or two checks each (each
# wake-up is a system call and a loop pass); a check starts at most this much later.
TICK = 0.002


def first_delay(warmup: float | None, delay_loop: float, rng: random.Random | None = None) -> float:
    """The delay before a checker's first run: uniform in [0, warmup] (keepalived's
    `warmup`, default delay_loop; 0 disables the spread)."""
    span = delay_loop if warmup is None else warmup
    if span <= 0:
        return 0.0
    return (rng or random).uniform(0.0, span)


@dataclass(frozen=True)
class Step:
    """What one attempt's result means: a verdict to hand to the real server's state
    (None: nothing new), when to run next, and what to log."""

    verdict: bool | None
    delay: float
    gave_up: bool = False  # the failure that exhausted the retries: "failed after N retries"
    last_try: bool = False  # a failure with no retry left


_QUIET: dict[float, Step] = {}


def _quiet(delay: float) -> Step:
    """Step(None, delay), shared: what a passing up checker gets 10,000 times a second."""
    step = _QUIET.get(delay)
    if step is None:
        step = _QUIET[delay] = Step(None, delay)
    return step


@dataclass
class Attempts:
    """One checker's retry/recovery state (keepalived's retry_it, is_up, has_run)."""

    retry: int
    delay_loop: float
    delay_before_retry: float
    is_up: bool = True
    has_run: bool = False
    recovery_runs: int = 1  # passing runs needed to come up (HTTP urls without fast_recovery)
    retry_it: int = 0
    passes: int = 0

    def outcome(self, ok: bool) -> Step:
        if ok:
            self.retry_it = 0
            if self.is_up and self.has_run:
                self.passes = 0
                return _quiet(self.delay_loop)
            self.passes += 1
            if not self.is_up and self.passes < self.recovery_runs:
                return Step(None, self.delay_loop)
            self.passes = 0
            self.is_up = True
            self.has_run = True
            return Step(True, self.delay_loop)
        self.passes = 0
        if self.retry_it < self.retry:
            self.retry_it += 1
            return Step(None, self.delay_before_retry)
        self.retry_it = 0
        if self.is_up or not self.has_run:
            self.is_up = False
            self.has_run = True
            return Step(False, self.delay_loop, gave_up=True, last_try=True)
        return Step(None, self.delay_loop, last_try=True)

    @property
    def last_try_next(self) -> bool:
        """Whether a failure of the next attempt would be the last (no retry left)."""
        return self.retry_it >= self.retry


class Lateness:
    """Start lateness samples (seconds): count, and percentiles of the recent ones."""

    def __init__(self, size: int = LATENESS_SAMPLES) -> None:
        self.samples: deque[float] = deque(maxlen=size)
        self.count = 0
        self.max = 0.0

    def add(self, late: float) -> None:
        self.samples.append(late)
        self.count += 1
        if late > self.max:  # noqa: PLR1730 (not max(): a call 10,000 times a second)
            self.max = late

    def percentile(self, p: float) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        i = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[i]

    def reset(self) -> None:
        self.samples.clear()
        self.count = 0
        self.max = 0.0


class Scheduler(Generic[K]):
    """Runs `start(key)` for each key when it is due, from one loop timer.

    `start` begins a check and returns at once; the caller reports its end with `done()`.
    At most `max_inflight` checks run at a time; due keys beyond that wait their turn
    (and their lateness shows it). `after_batch` runs after each timer pass that started
    checks (the TCP connects collect what completed meanwhile)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        start: Callable[[K], None],
        max_inflight: int = 4096,
        tick: float = TICK,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        self.loop = loop
        self.start = start
        self.after_batch = after_batch  # called after the timer started a batch of checks
        self.max_inflight = max(1, max_inflight)
        self.due: TimerWheel[K] = TimerWheel(tick if tick > 0 else TICK)
        self.waiting: deque[tuple[float, K]] = deque()
        self.inflight = 0
        self.lateness = Lateness()
        self.started = 0
        self.deferred = 0  # checks that waited for a free slot
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._tick = tick
        self._floor = 0.0  # no firing before this (the last firing + tick)
        self._closed = False

    def __len__(self) -> int:
        return len(self.due)

    def at(self, when: float, key: K) -> None:
        """Run `key` at loop time `when` (replaces a pending run of the same key)."""
        self.due.push(when, key)
        armed = self._armed_at
        if armed is None or when < armed:  # else the live timer comes first (no call: 10,000 a second)
            self._arm(when)

    def later(self, delay: float, key: K) -> None:
        self.at(self.loop.time() + delay, key)

    def cancel(self, key: K) -> None:
        self.due.cancel(key)
        if self.waiting:  # in place: _drain_waiting may hold it
            kept = [e for e in self.waiting if e[1] != key]
            self.waiting.clear()
            self.waiting.extend(kept)

    def done(self) -> None:
        """A started check finished: its slot goes to the next waiting one."""
        self.inflight -= 1
        if self.waiting:
            self._drain_waiting()

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.due.clear()
        self.waiting.clear()

    def _arm(self, when: float) -> None:
        if self._closed:
            return
        when = max(when, self._floor)
        if self._armed_at is not None and self._armed_at <= when:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        now = self.loop.time()
        self._floor = now + self._tick
        for when, key in self.due.pop_due(now):
            self.waiting.append((when, key))
        started = self.started
        self._drain_waiting()
        if self.after_batch is not None and self.started != started:
            self.after_batch()
        nxt = self.due.next_when()
        if nxt is not None:
            self._arm(nxt)

    def _drain_waiting(self) -> None:
        waiting = self.waiting
        if not waiting:
            return
        clock, add, start, popleft = self.loop.time, self.lateness.add, self.start, waiting.popleft
        while waiting and self.inflight < self.max_inflight:
            when, key = popleft()
            late = clock() - when
            add(late if late > 0.0 else 0.0)
            self.inflight += 1
            self.started += 1
            start(key)
        if waiting:
            self.deferred += 1  # a burst found every slot taken
