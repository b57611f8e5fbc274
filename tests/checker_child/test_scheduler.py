"""The check timing rules on simulated time: retry / delay_before_retry, verdicts,
recovery runs, warmup spread, the timer wheel and the in-flight bound."""

from __future__ import annotations

import asyncio
import random
import statistics
from collections.abc import Callable
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from checker_child.scheduler import Attempts, Lateness, Scheduler, first_delay
from checker_child.wheel import TimerWheel

# ---------------------------------------------------------------- Attempts


def test_failure_is_retried_then_declared_down() -> None:
    a = Attempts(retry=3, delay_loop=10, delay_before_retry=2)
    a.has_run = True
    steps = [a.outcome(False) for _ in range(4)]
    assert [s.verdict for s in steps] == [None, None, None, False]
    assert [s.delay for s in steps] == [2, 2, 2, 10]
    assert steps[-1].gave_up and steps[-1].last_try
    assert not a.is_up


def test_retry_zero_fails_at_once() -> None:
    a = Attempts(retry=0, delay_loop=5, delay_before_retry=1, has_run=True)
    s = a.outcome(False)
    assert s.verdict is False and s.delay == 5


def test_success_during_retries_resets_them() -> None:
    a = Attempts(retry=2, delay_loop=10, delay_before_retry=1, has_run=True)
    assert a.outcome(False).verdict is None
    s = a.outcome(True)
    assert s.verdict is None and s.delay == 10  # still up: nothing to say
    assert a.retry_it == 0
    assert [a.outcome(False).verdict for _ in range(3)] == [None, None, False]


def test_down_checker_comes_up_at_first_success() -> None:
    a = Attempts(retry=1, delay_loop=10, delay_before_retry=3, is_up=False, has_run=True)
    s = a.outcome(True)
    assert s.verdict is True and a.is_up and s.delay == 10


def test_down_checker_keeps_retrying_without_new_verdicts() -> None:
    a = Attempts(retry=1, delay_loop=10, delay_before_retry=3, is_up=False, has_run=True)
    steps = [a.outcome(False) for _ in range(4)]
    assert [s.verdict for s in steps] == [None, None, None, None]
    assert [s.delay for s in steps] == [3, 10, 3, 10]


def test_first_run_confirms_state() -> None:
    up = Attempts(retry=1, delay_loop=1, delay_before_retry=1)
    assert up.outcome(True).verdict is True  # keepalived logs the first success
    assert up.outcome(True).verdict is None
    alpha = Attempts(retry=1, delay_loop=1, delay_before_retry=1, is_up=False)
    assert alpha.outcome(False).verdict is None
    s = alpha.outcome(False)
    assert s.verdict is False and s.gave_up  # alpha: the first verdict confirms down


def test_recovery_needs_one_pass_per_url_without_fast_recovery() -> None:
    a = Attempts(retry=0, delay_loop=3, delay_before_retry=1, is_up=False, has_run=True, recovery_runs=3)
    assert [a.outcome(True).verdict for _ in range(2)] == [None, None]
    assert a.outcome(False).verdict is None  # a failure starts the count again
    assert [a.outcome(True).verdict for _ in range(3)] == [None, None, True]
    # an up checker does not need them
    a.outcome(True)
    assert a.outcome(False).verdict is False


@given(st.lists(st.booleans(), max_size=60), st.integers(0, 4), st.booleans())
def test_attempts_invariants(results: list[bool], retry: int, alpha: bool) -> None:
    a = Attempts(retry=retry, delay_loop=10, delay_before_retry=1, is_up=not alpha)
    fails = 0
    for ok in results:
        was_up = a.is_up
        s = a.outcome(ok)
        fails = 0 if ok else fails + 1
        assert a.retry_it <= retry
        if s.verdict is not None:
            assert s.verdict is ok and a.is_up is ok
            assert s.delay == 10
        if s.verdict is False and was_up:
            # down only after retry+1 failures in a row
            assert fails >= retry + 1
        if ok:
            assert a.is_up
        assert s.delay in (1, 10)


# ---------------------------------------------------------------- warmup


def test_first_delay_spread() -> None:
    rng = random.Random(7)
    values = [first_delay(None, 10.0, rng) for _ in range(2000)]
    assert min(values) >= 0 and max(values) <= 10
    assert 4 < statistics.mean(values) < 6  # spread evenly, not bunched
    assert first_delay(0, 10, rng) == 0
    assert all(0 <= first_delay(2.5, 60, rng) <= 2.5 for _ in range(100))


# ---------------------------------------------------------------- TimerWheel


def test_timer_wheel_reschedule_and_cancel() -> None:
    h: TimerWheel[str] = TimerWheel(0.5)
    h.push(5, "a")
    h.push(3, "b")
    h.push(9, "c")
    h.push(1, "a")  # moved earlier: the old entry is ignored
    h.cancel("c")
    assert h.next_when() == 1
    assert h.pop_due(4) == [(1, "a"), (3, "b")]
    assert h.pop_due(100) == []
    assert len(h) == 0


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 100)), max_size=200))
def test_timer_wheel_matches_a_dict(ops: list[tuple[int, float]]) -> None:
    h: TimerWheel[int] = TimerWheel(0.002)
    model: dict[int, float] = {}
    for key, when in ops:
        h.push(when, key)
        model[key] = when
    popped = h.pop_due(50)
    assert sorted(popped) == sorted((w, k) for k, w in model.items() if w <= 50)
    assert [w for w, _ in popped] == sorted(w for w, _ in popped)
    rest = h.pop_due(1000)
    assert sorted(k for _, k in rest) == sorted(k for k, w in model.items() if w > 50)


# ---------------------------------------------------------------- Scheduler on a fake clock


class FakeLoop:
    """time() and call_at() on simulated time; `run_until(t)` fires timers in order."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, int, Callable[[], None], list[bool]]] = []
        self.n = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, fn: Callable[[], None]) -> Any:
        cancelled = [False]
        self.n += 1
        self.timers.append((when, self.n, fn, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    def run_until(self, t: float) -> None:
        while True:
            live = [x for x in self.timers if not x[3][0] and x[0] <= t]
            if not live:
                break
            item = min(live, key=lambda x: (x[0], x[1]))
            self.timers.remove(item)
            self.now = max(self.now, item[0])
            item[2]()
        self.now = t


def test_scheduler_simulated_retry_timeline() -> None:
    """delay_loop 10, retry 3, delay_before_retry 2; the server dies at t=15: the attempts
    at 20, 22, 24 fail and are retried, the one at 26 gives the down verdict."""
    loop = FakeLoop()
    a = Attempts(retry=3, delay_loop=10, delay_before_retry=2)
    runs: list[float] = []
    verdicts: list[tuple[float, bool]] = []

    def started(key: str) -> None:
        runs.append(loop.now)
        step = a.outcome(loop.now < 15)
        if step.verdict is not None:
            verdicts.append((loop.now, step.verdict))
        sched.done()
        sched.later(step.delay, key)

    sched: Scheduler[str] = Scheduler(cast(asyncio.AbstractEventLoop, loop), started)
    sched.at(0.0, "rs1")
    loop.run_until(40)
    assert runs == [0, 10, 20, 22, 24, 26, 36, 38, 40]
    assert verdicts == [(0, True), (26, False)]


def test_scheduler_bounds_checks_in_flight() -> None:
    loop = FakeLoop()
    running: list[int] = []
    peak = [0]
    sched: Scheduler[int] = Scheduler(cast(asyncio.AbstractEventLoop, loop), running.append, max_inflight=10)
    for k in range(100):
        sched.at(1.0, k)
    loop.run_until(1.0)
    assert len(running) == 10 and sched.inflight == 10
    order: list[int] = list(running)
    for t in range(2, 20):
        loop.now = 1.0 + t * 0.01
        for _ in range(10):
            if running:
                running.pop(0)
                sched.done()
        order.extend(x for x in running if x not in order)
        peak[0] = max(peak[0], sched.inflight)
    assert peak[0] <= 10
    assert sorted(order) == list(range(100))  # every one ran, in FIFO order
    assert order == list(range(100))
    assert sched.lateness.max > 0.05  # the waiting ones started late, and it shows
    assert sched.deferred >= 1


def test_scheduler_cancel() -> None:
    loop = FakeLoop()
    ran: list[str] = []
    sched: Scheduler[str] = Scheduler(cast(asyncio.AbstractEventLoop, loop), ran.append)
    sched.at(1, "a")
    sched.at(2, "b")
    sched.cancel("a")
    loop.run_until(5)
    assert ran == ["b"]


def test_lateness_percentiles() -> None:
    lat = Lateness()
    for i in range(101):
        lat.add(i / 1000)
    assert lat.percentile(50) == 0.05
    assert lat.percentile(99) == 0.099
    assert lat.max == 0.1


def test_scheduler_on_the_real_loop_is_punctual() -> None:
    asyncio.run(_punctual())


async def _punctual() -> None:
    """1000 keys spread over 0.5 s on the real loop start within a few ms of their time."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    count = [0]

    def start(key: int) -> None:
        sched.done()
        count[0] += 1
        if count[0] == 1000:
            done.set()

    sched: Scheduler[int] = Scheduler(loop, start)
    t0 = loop.time() + 0.05
    for k in range(1000):
        sched.at(t0 + k * 0.0005, k)
    await asyncio.wait_for(done.wait(), 10)
    assert sched.lateness.percentile(50) < 0.05
    sched.close()
