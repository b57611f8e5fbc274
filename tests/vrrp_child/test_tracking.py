"""The pure rules of vrrp_child/tracking.py: weights, reverse, FAULT, clamping, rise/fall.

The expected values come from keepalived.conf(5) and from keepalived 2.2.7 itself (priority
100 with chk_true weight 10 -> 110, a failing weight -20 -> 90, a failing weight 4 reverse
-> no change, track_file value -3 weight 3 -> -9, track_interface lo weight 5 -> +5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conf.trackers import TrackRef, VrrpScript
from conf.vrrp import VrrpInstance, VrrpSyncGroup
from vrrp_child.tracking import (
    ScriptCounter,
    ScriptState,
    TrackStatus,
    Verdict,
    binary_weight,
    effective_priority,
    file_result,
    group_verdict,
    instance_verdict,
    quorum_met,
    script_step,
)

GOOD, BAD, INIT = ScriptState.GOOD, ScriptState.BAD, ScriptState.INIT


def ref(name: str, weight: int = 0, reverse: bool = False) -> TrackRef:
    return TrackRef(name, weight, reverse)


def inst(**kw: object) -> VrrpInstance:
    return VrrpInstance(name="VI_1", virtual_router_id=1, priority=100, **kw)  # type: ignore[arg-type]


# ---- weights of scripts, interfaces, processes ---------------------------------------------


@pytest.mark.parametrize(
    ("up", "weight", "reverse", "added"),
    [
        (True, 10, False, 10),  # positive weight: added while up
        (False, 10, False, 0),
        (True, -10, False, 0),  # negative weight: added while down
        (False, -10, False, -10),
        (True, 10, True, -10),  # reverse: "the priority is decreased when up"
        (False, 10, True, 0),
        (True, -10, True, 0),
        (False, -10, True, 10),  # ... "and increased when down"
        (True, 253, False, 253),
        (False, -253, False, -253),
        (True, 0, False, 0),
        (False, 0, True, 0),
    ],
)
def test_binary_weight(up: bool, weight: int, reverse: bool, added: int) -> None:
    assert binary_weight(up, weight, reverse) == added


@pytest.mark.parametrize(
    ("state", "weight", "reverse", "delta", "faults"),
    [
        (GOOD, 10, False, 10, ()),
        (BAD, 10, False, 0, ()),
        (BAD, -20, False, -20, ()),
        (GOOD, -20, False, 0, ()),
        (BAD, 4, True, 0, ()),  # measured on keepalived 2.2.7
        (GOOD, 4, True, -4, ()),
        (BAD, -4, True, 4, ()),
        (GOOD, 0, False, 0, ()),
        (BAD, 0, False, 0, ("track script chk failed",)),  # weight 0: failure is FAULT
        (GOOD, 0, True, 0, ("track script chk succeeded (reverse)",)),  # 'weight 0 reverse': down when up
        (BAD, 0, True, 0, ()),
    ],
)
def test_script_weights_and_faults(
    state: ScriptState, weight: int, reverse: bool, delta: int, faults: tuple[str, ...]
) -> None:
    v = instance_verdict(inst(track_script=(ref("chk", weight, reverse),)), TrackStatus(scripts={"chk": state}))
    assert v == Verdict(delta, faults, ())


@pytest.mark.parametrize(("weight", "reverse"), [(0, False), (0, True), (10, False), (-10, True)])
def test_script_without_result_adds_nothing_and_faults_nothing(weight: int, reverse: bool) -> None:
    # keepalived: a script in INIT changes no priority; weight 0 makes the instance wait
    v = instance_verdict(inst(track_script=(ref("chk", weight, reverse),)), TrackStatus(scripts={"chk": INIT}))
    assert v.delta == 0 and v.faults == ()
    assert v.waiting == (("chk",) if weight == 0 else ())
    # not known at all: the same as INIT
    assert instance_verdict(inst(track_script=(ref("chk", weight, reverse),)), TrackStatus()) == v


@pytest.mark.parametrize(
    ("up", "weight", "reverse", "delta", "faults"),
    [
        (True, 0, False, 0, ()),
        (False, 0, False, 0, ("interface eth1 down",)),  # default weight 0: down is FAULT
        (True, 0, True, 0, ("interface eth1 up (reverse)",)),
        (False, 0, True, 0, ()),
        (True, 5, False, 5, ()),  # measured: lo weight 5 -> +5
        (False, 5, False, 0, ()),
        (False, -30, False, -30, ()),
        (False, -30, True, 30, ()),
    ],
)
def test_interface(up: bool, weight: int, reverse: bool, delta: int, faults: tuple[str, ...]) -> None:
    v = instance_verdict(inst(track_interface=(ref("eth1", weight, reverse),)), TrackStatus(interfaces={"eth1": up}))
    assert (v.delta, v.faults) == (delta, faults)


def test_unknown_interface_is_down() -> None:
    v = instance_verdict(inst(track_interface=(ref("nope"),)), TrackStatus())
    assert v.faults == ("interface nope down",)


@pytest.mark.parametrize(
    ("up", "weight", "reverse", "delta", "faults"),
    [
        (True, 1, False, 1, ()),  # vrrp_track_process default weight 1
        (False, 1, False, 0, ()),
        (False, -50, False, -50, ()),
        (True, 254, False, 254, ()),  # clamped later, by effective_priority
        (False, 0, False, 0, ("track process haproxy quorum not achieved",)),
        (True, 0, True, 0, ("track process haproxy quorum achieved (reverse)",)),
    ],
)
def test_process(up: bool, weight: int, reverse: bool, delta: int, faults: tuple[str, ...]) -> None:
    v = instance_verdict(inst(track_process=(ref("haproxy", weight, reverse),)), TrackStatus(processes={"haproxy": up}))
    assert (v.delta, v.faults) == (delta, faults)


@pytest.mark.parametrize(
    ("count", "quorum", "quorum_max", "met"),
    [(0, 1, None, False), (1, 1, None, True), (50, 1, None, True), (2, 2, 3, True), (4, 2, 3, False), (0, 1, 0, False)],
)
def test_quorum(count: int, quorum: int, quorum_max: int | None, met: bool) -> None:
    assert quorum_met(count, quorum, quorum_max) is met


# ---- track_file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "weight", "reverse", "result"),
    [
        (-3, 3, False, -9),  # measured: file -3, weight 3 -> priority 100 -> 91 (with lo +5: 96)
        (0, 0, False, 0),
        (1, 0, False, None),  # weight 0: non-zero is FAULT
        (-1, 0, False, None),
        (0, 0, True, None),  # ... reverse: zero is FAULT
        (7, 0, True, 0),
        (10, 2, True, -20),  # reverse negates
        (200, 2, False, 253),  # at most 253
        (-127, 2, False, None),  # -254: FAULT
        (-126, 2, False, -252),
        (-127, 1, False, -127),
        (-253, 1, False, -253),  # -253 still adds
        (-254, 1, False, None),  # "less than -253": FAULT
        (1000, -1, False, None),  # the value read is clamped to 254 first: -254 -> FAULT
        (10**9, 1, False, 253),
        (-(10**9), -1, False, 253),
        (5, 2147483647, False, 253),
    ],
)
def test_file_result(value: int, weight: int, reverse: bool, result: int | None) -> None:
    assert file_result(value, weight, reverse) == result


def test_file_in_verdict() -> None:
    v = instance_verdict(
        inst(track_file=(ref("tf", 3), ref("zero", 0), ref("neg", 1))),
        TrackStatus(files={"tf": -3, "zero": 4, "neg": -300}),
    )
    assert v.delta == -9
    assert v.faults == ("track file zero has status 4", "track file neg has status -300")
    # a file that is not there reads as 0
    assert instance_verdict(inst(track_file=(ref("gone", 0),)), TrackStatus()).faults == ()


# ---- sums, clamping, owners ----------------------------------------------------------------


def test_sum_of_weights_as_measured() -> None:
    # keepalived 2.2.7: 100 +10 (chk_true) -20 (killall failing) -2 (false, weight -2)
    # -3 (sleep timed out, weight -3); seed2 succeeding with -7 and false3 failing with
    # 4 reverse add nothing -> 85; chk_seed (weight 0) failing -> FAULT.
    i = inst(
        track_script=(
            ref("chk_true", 10),
            ref("chk_seed", 0),
            ref("chk_seed2", -7),
            ref("chk_killall", -20),
            ref("chk_hang", -3),
            ref("chk_false3", 4, True),
            ref("chk_if", -2),
        )
    )
    status = TrackStatus(
        scripts={
            "chk_true": GOOD,
            "chk_seed": BAD,
            "chk_seed2": GOOD,
            "chk_killall": BAD,
            "chk_hang": BAD,
            "chk_false3": BAD,
            "chk_if": BAD,
        }
    )
    v = instance_verdict(i, status)
    assert effective_priority(100, v.delta) == 85
    assert v.faults == ("track script chk_seed failed",)


@pytest.mark.parametrize(
    ("base", "delta", "prio"),
    [
        (100, 0, 100),
        (100, 154, 254),  # trackers never make an instance the owner
        (100, 155, 254),
        (100, -99, 1),
        (100, -100, 1),
        (100, -1000, 1),
        (254, 10, 254),
        (1, -1, 1),
        (255, -50, 255),  # the address owner never changes
        (255, 50, 255),
    ],
)
def test_effective_priority(base: int, delta: int, prio: int) -> None:
    assert effective_priority(base, delta) == prio


@given(st.integers(1, 254), st.integers(-(10**6), 10**6))
def test_effective_priority_stays_in_range(base: int, delta: int) -> None:
    assert 1 <= effective_priority(base, delta) <= 254


@given(st.integers(-(10**6), 10**6))
def test_owner_is_never_changed(delta: int) -> None:
    assert effective_priority(255, delta) == 255


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(-253, 253), st.booleans()),
        max_size=30,
    ),
    st.integers(1, 254),
)
def test_verdict_of_any_scripts(items: list[tuple[bool, int, bool]], base: int) -> None:
    refs = tuple(ref(f"s{i}", w, r) for i, (_, w, r) in enumerate(items))
    status = TrackStatus(scripts={f"s{i}": GOOD if ok else BAD for i, (ok, _, _) in enumerate(items)})
    v = instance_verdict(inst(track_script=refs), status)
    assert v.delta == sum(binary_weight(ok, w, r) for ok, w, r in items)
    assert len(v.faults) == sum(1 for ok, w, r in items if w == 0 and ok == r)
    assert 1 <= effective_priority(base, v.delta) <= 254


# ---- sync groups ---------------------------------------------------------------------------


def test_sync_group_member_ignores_weighted_trackers() -> None:
    i = inst(
        track_script=(ref("w", -20), ref("z", 0)),
        track_interface=(ref("eth1", -10),),
        track_file=(ref("tf", 2),),
        track_process=(ref("p", 5),),
    )
    status = TrackStatus(
        scripts={"w": BAD, "z": BAD}, interfaces={"eth1": False}, files={"tf": 5}, processes={"p": True}
    )
    alone = instance_verdict(i, status)
    assert alone.delta == -20 - 10 + 10 + 5
    group = VrrpSyncGroup(name="G", group=("VI_1",))
    member = instance_verdict(i, status, group)
    assert member == Verdict(0, ("track script z failed",), ())  # weight 0 still faults
    tracking = VrrpSyncGroup(name="G", group=("VI_1",), sync_group_tracking_weight=True)
    assert instance_verdict(i, status, tracking) == alone
    deprecated = VrrpSyncGroup(name="G", group=("VI_1",), global_tracking=True)
    assert instance_verdict(i, status, deprecated) == alone


def test_group_verdict_is_the_groups_own_trackers() -> None:
    group = VrrpSyncGroup(
        name="G",
        group=("VI_1", "VI_2"),
        track_script=(ref("gs", 0), ref("gw", 7)),
        track_interface=(ref("eth2"),),
        track_file=(ref("gf", 1),),
    )
    status = TrackStatus(scripts={"gs": GOOD, "gw": GOOD}, interfaces={"eth2": False}, files={"gf": -4})
    assert group_verdict(group, status) == Verdict(7 - 4, ("interface eth2 down",), ())
    # the member's own verdict does not include them
    assert instance_verdict(inst(), status, group) == Verdict()
    waiting = group_verdict(group, TrackStatus(interfaces={"eth2": True}))
    assert waiting.waiting == ("gs",) and waiting.delta == 0 and waiting.faults == ()


def test_verdicts_add_up() -> None:
    assert Verdict(3, ("a",), ("x",)) + Verdict(-5, ("b",)) == Verdict(-2, ("a", "b"), ("x",))


# ---- rise / fall ---------------------------------------------------------------------------


def script(rise: int = 1, fall: int = 1, init_fail: bool = False) -> VrrpScript:
    return VrrpScript(name="chk", rise=rise, fall=fall, init_fail=init_fail)


def run(s: VrrpScript, results: str) -> list[ScriptState]:
    """The state after each result of `results` ("+" success, "-" failure)."""
    counter = ScriptCounter.initial(s)
    out = []
    for c in results:
        counter = script_step(counter, c == "+", s)
        assert 0 <= counter.result <= s.rise + s.fall - 1
        out.append(counter.state)
    return out


def states(text: str) -> list[ScriptState]:
    return [{"G": GOOD, "B": BAD, "I": INIT}[c] for c in text]


@pytest.mark.parametrize(
    ("rise", "fall", "results", "expect"),
    [
        (1, 1, "+-+-", "GBGB"),
        (1, 1, "--++", "BBGG"),
        # the first result out of INIT decides at once, whatever rise/fall say
        (3, 3, "+", "G"),
        (3, 3, "-", "B"),
        # fall 3: three failures in a row
        (1, 3, "+--+---", "GGGGGGB"),
        # rise 3 after a failure: three successes in a row
        (3, 1, "-++-+++", "BBBBBBG"),
        (2, 2, "+--++", "GGBBG"),
        (2, 2, "+-+--", "GGGGB"),  # a success in between starts the count over
        (5, 5, "-+++++-----", "BBBBBGGGGGB"),
    ],
)
def test_rise_fall(rise: int, fall: int, results: str, expect: str) -> None:
    assert run(script(rise, fall), results) == states(expect)


def test_init_fail_starts_like_keepalived_2_2_7() -> None:
    # keepalived 2.2.7 resets a tracked script to INIT; init_fail changes nothing (measured)
    assert ScriptCounter.initial(script(2, 2, init_fail=True)) == ScriptCounter(1, INIT)
    assert run(script(2, 2, init_fail=True), "+") == [GOOD]


@given(st.integers(1, 6), st.integers(1, 6), st.lists(st.booleans(), max_size=60))
def test_rise_fall_rule(rise: int, fall: int, results: list[bool]) -> None:
    """After the first result: GOOD once `rise` successes came in a row while BAD, BAD once
    `fall` failures came in a row while GOOD."""
    s = script(rise, fall)
    counter = ScriptCounter.initial(s)
    state = INIT
    streak_ok = streak_bad = 0
    for ok in results:
        counter = script_step(counter, ok, s)
        streak_ok, streak_bad = (streak_ok + 1, 0) if ok else (0, streak_bad + 1)
        if state is INIT:
            state = GOOD if ok else BAD
            streak_ok = streak_bad = 0
        elif state is BAD and streak_ok >= rise:
            state, streak_ok = GOOD, 0
        elif state is GOOD and streak_bad >= fall:
            state, streak_bad = BAD, 0
        assert counter.state is state
