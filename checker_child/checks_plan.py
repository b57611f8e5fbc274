"""The checkers' part of a reload, as a pure plan: which running checks the new
configuration keeps, which checkers it adds and which checks it removes.

A running check is kept when its real server (same virtual server name, same address and
port) has a checker of the same type with the same settings, matched in order (the n-th
TCP_CHECK of a real server to its n-th unchanged TCP_CHECK), as Servers matches checker
states: it keeps its timer, its retry state and its counters. A checker whose settings
changed is removed and added again (keepalived restarts it too); there is no "changed".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from checker_child.state import RsId
from conf.checkers import AnyChecker
from conf.lvs import RealServer, VirtualServer


class Running(Protocol):
    @property
    def rs(self) -> RsId: ...
    @property
    def conf(self) -> AnyChecker: ...
    @property
    def gone(self) -> bool: ...


C = TypeVar("C", bound=Running)

# One checker of the new configuration: its real server, its index among the real
# server's checkers, its settings, and the virtual and real server it belongs to.
Spec = tuple[RsId, int, AnyChecker, VirtualServer, RealServer]


@dataclass(frozen=True)
class CheckPlan(Generic[C]):
    order: tuple[tuple[Spec, C | None], ...]  # every new checker in order, with the check it keeps (None: added)
    removed: tuple[C, ...]

    @property
    def kept(self) -> tuple[tuple[Spec, C], ...]:
        return tuple((spec, old) for spec, old in self.order if old is not None)

    @property
    def added(self) -> tuple[Spec, ...]:
        return tuple(spec for spec, old in self.order if old is None)


def plan_checks(
    old: Iterable[C], real_servers: Iterable[tuple[RsId, VirtualServer, RealServer, tuple[AnyChecker, ...]]]
) -> CheckPlan[C]:
    old = list(old)
    by_rs: dict[RsId, list[C]] = {}
    for c in old:
        by_rs.setdefault(c.rs, []).append(c)
    order: list[tuple[Spec, C | None]] = []
    kept: set[int] = set()
    for rs_id, vs, rsc, checkers in real_servers:
        olds = by_rs.get(rs_id, [])
        taken: set[int] = set()
        for i, conf in enumerate(checkers):
            match = _match(conf, olds, taken)
            if match is not None and not match.gone:
                kept.add(id(match))
                order.append(((rs_id, i, conf, vs, rsc), match))
            else:
                order.append(((rs_id, i, conf, vs, rsc), None))
    removed = tuple(o for o in old if id(o) not in kept)
    return CheckPlan(tuple(order), removed)


def _match(conf: AnyChecker, olds: list[C], taken: set[int]) -> C | None:
    for j, o in enumerate(olds):
        if j not in taken and type(o.conf) is type(conf) and o.conf == conf:
            taken.add(j)
            return o
    return None
