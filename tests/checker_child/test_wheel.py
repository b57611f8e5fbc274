"""The timing wheel (checker_child.wheel), pure: against a dict of key -> due time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checker_child.wheel import TimerWheel

# push(key, when) / cancel(key) / pop_due(now) with `now` never going back
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 30), st.floats(0, 10)),
        st.tuples(st.just("cancel"), st.integers(0, 30), st.just(0.0)),
        st.tuples(st.just("pop"), st.just(0), st.floats(0, 1)),
    ),
    max_size=300,
)


@given(_ops, st.sampled_from([0.002, 0.01, 0.5, 3.0]))
def test_wheel_behaves_as_a_dict_of_due_times(ops: list[tuple[str, int, float]], slot: float) -> None:
    w: TimerWheel[int] = TimerWheel(slot)
    model: dict[int, float] = {}
    now = 0.0
    for op, key, x in ops:
        if op == "push":
            w.push(x, key)
            model[key] = x
        elif op == "cancel":
            w.cancel(key)
            model.pop(key, None)
        else:
            now += x
            popped = w.pop_due(now)
            due = {k: t for k, t in model.items() if t <= now}
            assert sorted(popped) == sorted((t, k) for k, t in due.items())
            assert [t for t, _ in popped] == sorted(t for t, _ in popped)  # earliest first
            for k in due:
                del model[k]
        assert len(w) == len(model)
        assert w.next_when() == (min(model.values()) if model else None)


def test_a_slot_is_emptied_only_up_to_now() -> None:
    w: TimerWheel[str] = TimerWheel(1.0)
    w.push(5.2, "a")
    w.push(5.8, "b")
    w.push(5.5, "c")
    assert w.pop_due(5.5) == [(5.2, "a"), (5.5, "c")]
    assert w.next_when() == 5.8
    assert w.pop_due(5.6) == []
    assert w.pop_due(6.0) == [(5.8, "b")]
    assert w.next_when() is None


def test_rescheduling_many_times_keeps_the_wheel_small() -> None:
    """10,000 checks rescheduled over and over (stale entries) do not pile up."""
    w: TimerWheel[int] = TimerWheel(0.002)
    for rnd in range(20):
        for k in range(10_000):
            w.push(rnd + k / 10_000, k)
    assert len(w) == 10_000
    assert w._entries <= 2 * 10_000 + 1024
    popped = w.pop_due(19.5)
    assert len(popped) == 5001 and all(t >= 19 for t, _ in popped)


def test_slot_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TimerWheel(0)
