"""The typed condition reports (watchdog.status) and the STATUS= summaries built from them."""

from __future__ import annotations

from collections.abc import Mapping

from haparent.specs import checker_summary, vrrp_summary
from watchdog.protocol import Json
from watchdog.status import (
    NO_IPVS_IN_KERNEL,
    Conditions,
    Degraded,
    IpvsStatus,
    cleared,
    degraded,
    degraded_of,
    ipvs_of,
    ipvs_report,
    is_condition,
    summary_tail,
)


def merged(*reports: Mapping[str, Json]) -> dict[str, Json]:
    """What the parent keeps: later reports win, None removes (supervisor.merge_state)."""
    out: dict[str, Json] = {}
    for changes in reports:
        for key, value in changes.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
    return out


def test_condition_keys_cannot_be_configured_names() -> None:
    # keepalived.conf reads a word starting with "!" as a comment: no instance is named so.
    assert all(is_condition(k) for k in (*degraded("fifo:/x", "t"), *ipvs_report(NO_IPVS_IN_KERNEL)))
    assert not any(is_condition(k) for k in ("VI_1", "group:G", "[10.0.0.1]:tcp:80 -> [10.0.0.2]:tcp:80"))


def test_degraded_round_trip_and_clear() -> None:
    state = merged(degraded("fifo:/run/x", "notify FIFO /run/x: Permission denied"), degraded("socket:VI_1", "b"))
    assert degraded_of(state) == [
        Degraded("fifo:/run/x", "notify FIFO /run/x: Permission denied"),
        Degraded("socket:VI_1", "b"),
    ]
    assert degraded_of(merged(state, cleared("fifo:/run/x"))) == [Degraded("socket:VI_1", "b")]
    assert degraded_of({"!degraded:x": "not a dict", "VI_1": {"state": "MASTER"}}) == []


def test_ipvs_round_trip() -> None:
    assert ipvs_of(ipvs_report(NO_IPVS_IN_KERNEL)) == IpvsStatus(False, "no IPVS in the kernel")
    assert ipvs_of(ipvs_report(IpvsStatus(True))) == IpvsStatus(True)
    assert ipvs_of({}) is None
    assert summary_tail(ipvs_report(IpvsStatus(True))) == []


def test_conditions_report_each_change_once() -> None:
    sent: list[Mapping[str, Json]] = []
    c = Conditions(sent.append)
    c.set("fifo:/a", "A")
    c.set("fifo:/a", "A")  # unchanged: not reported again
    c.set("fifo:/b", "B")
    c.clear("nothing")  # never raised: nothing to report
    c.replace("fifo:", {"fifo:/b": "B", "fifo:/c": "C"})  # /a cleared, /b kept, /c raised
    assert sent == [degraded("fifo:/a", "A"), degraded("fifo:/b", "B"), cleared("fifo:/a"), degraded("fifo:/c", "C")]
    assert c.raised == {"fifo:/b": "B", "fifo:/c": "C"}


def test_checker_summary_says_ipvs_is_not_programmed() -> None:
    rs: dict[str, Json] = {f"VS -> RS{i}": {"state": "UP" if i else "DOWN", "weight": 1} for i in range(10)}
    state = merged(rs, {"VS": {"state": "QUORUM_UP"}}, ipvs_report(NO_IPVS_IN_KERNEL))
    assert checker_summary(state) == "9/10 real servers up; IPVS not programmed: no IPVS in the kernel"
    state = merged(state, degraded("fifo:/run/x", "notify FIFO /run/x: No such file or directory"))
    assert checker_summary(state) == (
        "9/10 real servers up; IPVS not programmed: no IPVS in the kernel; "
        "degraded: notify FIFO /run/x: No such file or directory"
    )
    # a programmed table adds nothing; the counts are as before
    assert checker_summary(merged(rs, ipvs_report(IpvsStatus(True)))) == "9/10 real servers up"
    assert checker_summary(ipvs_report(NO_IPVS_IN_KERNEL)) == "IPVS not programmed: no IPVS in the kernel"


def test_vrrp_summary_lists_degraded_conditions_until_cleared() -> None:
    state = merged({"VI_1": {"state": "MASTER"}}, degraded("fifo:/run/x", "notify FIFO /run/x: Permission denied"))
    assert vrrp_summary(state) == "1 MASTER; degraded: notify FIFO /run/x: Permission denied"
    state = merged(state, degraded("socket:VI_2", "(VI_2) cannot open its VRRP socket on eth1: No such device"))
    assert vrrp_summary(state) == (
        "1 MASTER; degraded: notify FIFO /run/x: Permission denied, "
        "(VI_2) cannot open its VRRP socket on eth1: No such device"
    )
    assert vrrp_summary(merged(state, cleared("fifo:/run/x"), cleared("socket:VI_2"))) == "1 MASTER"
    assert vrrp_summary({}) == ""
