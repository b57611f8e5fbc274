"""watchdog.reload: the plan is pure; the steps are all rolled back or reported as switched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.reload import ReloadFailed, ReloadPlan, Step, apply_steps, plan


def same_kind(old: tuple[str, int], new: tuple[str, int]) -> bool:
    return old[0] == new[0]  # the "identity": a value of the same kind can be changed in place


def test_kept_added_removed_changed_in_configuration_order() -> None:
    old = {"a": ("x", 1), "b": ("x", 1), "c": ("x", 1), "d": ("x", 1)}
    new = {"e": ("x", 1), "d": ("x", 2), "b": ("x", 1), "c": ("y", 1)}
    p = plan(old, new, same_kind)
    assert p == ReloadPlan(kept=("b",), added=("e", "c"), removed=("a", "c"), changed=("d",))
    assert p.replaced == ("c",) and not p.empty


def test_without_same_every_difference_is_a_change() -> None:
    assert plan({"a": 1}, {"a": 2}) == ReloadPlan(changed=("a",))
    assert plan({"a": 1}, {"a": 1}) == ReloadPlan(kept=("a",))
    assert plan({"a": 1}, {"a": 1}).empty
    assert plan({}, {}) == ReloadPlan()


configs = st.dictionaries(st.sampled_from("abcdef"), st.tuples(st.sampled_from("xy"), st.integers(0, 2)))


@given(configs, configs)
def test_the_plan_covers_both_configurations(old: dict[str, tuple[str, int]], new: dict[str, tuple[str, int]]) -> None:
    p = plan(old, new, same_kind)
    assert set(p.kept) | set(p.changed) | set(p.added) == set(new)
    assert set(p.kept) | set(p.changed) | set(p.removed) == set(old)
    assert not set(p.kept) & set(p.changed)
    assert set(p.added) & set(p.removed) == set(p.replaced)
    assert all(old[k] == new[k] for k in p.kept)
    assert all(old[k] != new[k] and same_kind(old[k], new[k]) for k in p.changed)
    assert all(not same_kind(old[k], new[k]) for k in p.replaced)
    assert plan(old, old, same_kind) == ReloadPlan(kept=tuple(old))


class World:
    """Three concerns, each on configuration "old" or "new"."""

    def __init__(self) -> None:
        self.on = {"routes": "old", "trackers": "old", "groups": "old"}

    def step(self, name: str, *, fails: bool = False, undo: bool = True) -> Step:
        def apply() -> None:
            self.on[name] = "new"  # a failing step fails after part of its work
            if fails:
                raise OSError(f"{name} broke")

        def back() -> None:
            self.on[name] = "old"

        return Step(name, apply, back if undo else None)


def test_a_second_step_that_fails_rolls_everything_back() -> None:
    w = World()
    with pytest.raises(ReloadFailed) as failed:
        apply_steps([w.step("routes"), w.step("trackers", fails=True), w.step("groups")])
    e = failed.value
    assert w.on == {"routes": "old", "trackers": "old", "groups": "old"}
    assert (e.failed, e.rolled_back, e.switched, e.partial) == ("trackers", ("routes", "trackers"), (), False)
    assert e.log_line() == (
        "Reload failed, keeping the running configuration: trackers: OSError: trackers broke"
        " (rolled back: routes, trackers)"
    )


def test_after_a_step_that_cannot_be_undone_the_report_says_what_switched() -> None:
    w = World()
    with pytest.raises(ReloadFailed) as failed:
        apply_steps([w.step("routes", undo=False), w.step("trackers", fails=True), w.step("groups")])
    e = failed.value
    assert w.on == {"routes": "new", "trackers": "new", "groups": "old"}  # nothing undone
    assert (e.switched, e.not_applied, e.rolled_back, e.partial) == (("routes", "trackers"), ("groups",), (), True)
    assert e.log_line() == (
        "Reload failed part-way in trackers: OSError: trackers broke; switched to the new configuration:"
        " routes, trackers; still on the previous configuration: groups"
    )
    assert "keeping the running configuration" not in e.log_line()


def test_an_undo_that_fails_is_reported_as_switched() -> None:
    w = World()

    def stuck() -> None:
        raise OSError("cannot")

    steps = [Step("routes", lambda: None, stuck), w.step("trackers"), w.step("groups", fails=True)]
    with pytest.raises(ReloadFailed) as failed:
        apply_steps(steps)
    e = failed.value
    assert w.on["trackers"] == "old" and e.partial
    assert (e.failed, e.switched) == ("groups", ("routes",))


def test_a_failing_step_that_cannot_be_undone_is_reported_in_part() -> None:
    w = World()
    with pytest.raises(ReloadFailed) as failed:
        apply_steps([w.step("routes"), w.step("trackers", fails=True, undo=False), w.step("groups")])
    e = failed.value
    assert w.on == {"routes": "new", "trackers": "new", "groups": "old"}
    assert (e.switched, e.not_applied, e.partial) == (("routes", "trackers"), ("groups",), True)


def test_steps_that_all_succeed_switch_everything() -> None:
    w = World()
    apply_steps([w.step("routes"), w.step("trackers"), w.step("groups")])
    assert set(w.on.values()) == {"new"}
