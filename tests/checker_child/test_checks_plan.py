"""The checkers' reload plan (pure): which running checks a new configuration keeps."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from checker_child.checks_plan import plan_checks
from checker_child.state import RsId
from conf.checkers import AnyChecker, HttpGet, TcpCheck
from conf.lvs import RealServer, VirtualServer

VS = VirtualServer(address=IPv4Address("10.0.0.1"), port=80)
RS = RealServer(address=IPv4Address("10.0.0.2"), port=80)
A, B = RsId("VS", "A"), RsId("VS", "B")


@dataclass(eq=False)
class Running:
    rs: RsId
    conf: AnyChecker
    gone: bool = False


Entry = tuple[RsId, VirtualServer, RealServer, tuple[AnyChecker, ...]]


def servers(*entries: tuple[RsId, tuple[AnyChecker, ...]]) -> list[Entry]:
    return [(rs, VS, RS, checkers) for rs, checkers in entries]


def test_unchanged_checkers_are_kept_in_order_and_the_rest_replaced() -> None:
    t1, t2 = TcpCheck(connect_timeout=1), TcpCheck(connect_timeout=2)
    old = [Running(A, t1), Running(A, t1), Running(A, t2), Running(B, HttpGet())]
    plan = plan_checks(old, servers((A, (t1, TcpCheck(connect_timeout=3), t1)), (B, ())))
    # the two equal TCP_CHECKs are matched in order; the changed one is added, t2 and B's removed
    assert [(spec[1], kept) for spec, kept in plan.order] == [(0, old[0]), (1, None), (2, old[1])]
    assert [spec[1] for spec in plan.added] == [1]
    assert [k for _, k in plan.kept] == [old[0], old[1]]
    assert list(plan.removed) == [old[2], old[3]]


def test_a_check_already_stopped_is_neither_kept_nor_removed_again() -> None:
    t = TcpCheck()
    old = [Running(A, t, gone=True)]
    plan = plan_checks(old, servers((A, (t,))))
    assert plan.kept == () and len(plan.added) == 1 and plan.removed == ()


def test_a_moved_real_server_starts_afresh() -> None:
    t = TcpCheck()
    old = [Running(A, t)]
    plan = plan_checks(old, servers((B, (t,))))
    assert plan.kept == () and list(plan.removed) == old
