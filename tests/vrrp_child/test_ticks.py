"""vrrp_child.ticks: many deadlines on one loop timer, on a simulated loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from vrrp_child.ticks import RUN_BUDGET, Ticks


@dataclass
class Handle:
    when: float
    fn: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Loop:
    now: float = 10.0
    handles: list[Handle] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, fn: Callable[[], None], /) -> Handle:
        h = Handle(when, fn)
        self.handles.append(h)
        return h

    def armed(self) -> list[float]:
        return [h.when for h in self.handles if not h.cancelled]

    def fire(self) -> None:
        """Run the earliest live loop timer, with the clock at its time (or later)."""
        h = min((h for h in self.handles if not h.cancelled), key=lambda h: h.when)
        self.handles.remove(h)
        self.now = max(self.now, h.when)
        h.fn()


def test_one_loop_timer_for_many_deadlines_in_order() -> None:
    loop = Loop()
    ticks = Ticks(loop)
    ran: list[str] = []
    ticks.call_at(12.0, lambda: ran.append("b"))
    ticks.call_at(13.0, lambda: ran.append("c"))
    ticks.call_at(11.0, lambda: ran.append("a"))
    assert loop.armed() == [11.0]  # re-armed for the new earliest, the old one cancelled
    loop.fire()
    assert ran == ["a"] and loop.armed() == [12.0]
    loop.fire()
    loop.fire()
    assert ran == ["a", "b", "c"] and loop.armed() == [] and len(ticks) == 0


def test_cancelled_timers_never_run_and_the_loop_timer_moves_on() -> None:
    loop = Loop()
    ticks = Ticks(loop)
    ran: list[str] = []
    first = ticks.call_at(11.0, lambda: ran.append("first"))
    ticks.call_at(12.0, lambda: ran.append("second"))
    first.cancel()
    assert first.cancelled
    loop.fire()  # the wakeup for 11.0 finds nothing to run and re-arms for 12.0
    assert ran == [] and loop.armed() == [12.0]
    loop.fire()
    assert ran == ["second"]


def test_deadlines_due_while_running_are_served_by_the_same_wakeup() -> None:
    # A takeover's instances have deadlines a few ms apart; when running the first ones
    # takes that long, the rest are done in the same pass, not one wakeup each.
    loop = Loop()
    ticks = Ticks(loop, budget=0.05)
    ran: list[float] = []

    def work(t: float) -> Callable[[], None]:
        def run() -> None:
            ran.append(t)
            loop.now += 0.002  # each callback takes 2 ms

        return run

    for i in range(5):
        ticks.call_at(11.0 + i * 0.001, work(11.0 + i * 0.001))
    ticks.call_at(11.5, work(11.5))
    loop.fire()
    assert len(ran) == 5 and loop.armed() == [11.5]


def test_a_long_burst_gives_the_loop_a_turn_after_the_budget() -> None:
    # 250 takeovers due together: after RUN_BUDGET of them the loop gets a turn (the netlink
    # batch of their VIPs goes out), and the rest run from a loop timer armed at once.
    loop = Loop()
    ticks = Ticks(loop)
    ran: list[int] = []
    begun: list[float] = []
    ended: list[float] = []
    ticks.starting = lambda: begun.append(loop.now)
    ticks.finished = lambda: ended.append(loop.now)

    def work(i: int) -> Callable[[], None]:
        def run() -> None:
            ran.append(i)
            loop.now += RUN_BUDGET / 4  # each takes a quarter of the budget

        return run

    for i in range(10):
        ticks.call_at(11.0, work(i))
    assert not ticks.due()
    loop.fire()
    assert ran == [0, 1, 2, 3] and loop.armed() == [11.0] and ticks.due()
    assert begun == [11.0] and ended == [pytest.approx(11.0 + RUN_BUDGET)]
    loop.fire()
    loop.fire()
    assert ran == list(range(10)) and loop.armed() == [] and not ticks.due()
    assert len(begun) == len(ended) == 3


def test_due_skips_cancelled_timers() -> None:
    loop = Loop()
    ticks = Ticks(loop)
    first = ticks.call_at(9.0, lambda: None)
    ticks.call_at(12.0, lambda: None)
    assert ticks.due()
    first.cancel()
    assert not ticks.due() and len(ticks) == 1


def test_a_timer_set_from_a_callback_is_armed_after_the_pass() -> None:
    loop = Loop()
    ticks = Ticks(loop)
    ran: list[float] = []

    def advert() -> None:
        ran.append(loop.now)
        ticks.call_at(loop.now + 1.0, advert)  # the Adver_Timer restarts

    ticks.call_at(11.0, advert)
    for _ in range(3):
        loop.fire()
    assert ran == [11.0, 12.0, 13.0] and loop.armed() == [14.0]


def test_not_before_its_deadline() -> None:
    loop = Loop(now=10.0)
    ticks = Ticks(loop)
    ran: list[str] = []
    ticks.call_at(11.0, lambda: ran.append("x"))
    ticks.call_at(11.0001, lambda: ran.append("y"))
    loop.fire()
    assert ran == ["x"] and loop.armed() == [11.0001]


def test_a_failing_callback_leaves_the_others_scheduled() -> None:
    loop = Loop()
    ticks = Ticks(loop)
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    ticks.call_at(11.0, boom)
    ticks.call_at(11.0, lambda: ran.append("after"))
    with pytest.raises(RuntimeError):
        loop.fire()  # asyncio hands this to the loop's exception handler
    assert loop.armed() == [11.0]
    loop.fire()
    assert ran == ["after"]


def test_close_cancels_everything() -> None:
    loop = Loop()
    ticks = Ticks(loop)
    ticks.call_at(11.0, lambda: None)
    ticks.close()
    assert loop.armed() == [] and len(ticks) == 0


def test_early_timers_share_the_wakeup_of_an_earlier_one() -> None:
    loop = Loop()
    ticks = Ticks(loop)
    ran: list[str] = []
    ticks.call_at(11.000, lambda: ran.append("a"))
    ticks.call_at(11.015, lambda: ran.append("b"), early=0.02)  # may go 20 ms early
    ticks.call_at(11.015, lambda: ran.append("c"))  # may not
    ticks.call_at(11.050, lambda: ran.append("d"), early=0.02)  # too far
    loop.fire()
    assert ran == ["a", "b"] and loop.armed() == [11.015]
    loop.fire()
    assert ran == ["a", "b", "c"] and loop.armed() == [11.05]
