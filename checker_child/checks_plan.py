"""The checkers' part of a reload, as a pure plan: which running checks the new
configuration keeps, which checkers it adds and which checks it removes.

A running check is kept when its real server (same virtual server name, same address and
port) has a checker of the same type with the same settings, matched in order (the n-th
TCP_CHECK of a real server to its n-th unchanged TCP_CHECK), as Servers matches checker
states: it keeps its timer, its retry state and its counters. A checker whose settings
changed is removed and added again (keepalived restarts it too); there is no "changed".

The plan is watchdog.reload's `ReloadPlan` (the VRRP child's too) over the checkers keyed by
(real server, settings, occurrence); `CheckPlan` carries it with the running checks and the new
configuration's order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from checker_child.state import RsId
from conf.checkers import AnyChecker
from conf.lvs import RealServer, VirtualServer
from watchdog.reload import plan


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


# A checker's identity across configurations: its real server, its settings (a frozen
# value), and which of the real server's checkers with those settings it is (0 for the
# first): the n-th unchanged TCP_CHECK of a real server is its n-th one again.
CheckKey = tuple[RsId, AnyChecker, int]
X = TypeVar("X")


def keyed(items: Iterable[tuple[RsId, AnyChecker, X]]) -> dict[CheckKey, X]:
    out: dict[CheckKey, X] = {}
    seen: Counter[tuple[RsId, AnyChecker]] = Counter()
    for rs, conf, x in items:
        out[(rs, conf, seen[(rs, conf)])] = x
        seen[(rs, conf)] += 1
    return out


def plan_checks(
    old: Iterable[C], real_servers: Iterable[tuple[RsId, VirtualServer, RealServer, tuple[AnyChecker, ...]]]
) -> CheckPlan[C]:
    running = keyed((c.rs, c.conf, c) for c in old if not c.gone)
    wanted = keyed(
        (rs_id, conf, (rs_id, i, conf, vs, rsc))
        for rs_id, vs, rsc, checkers in real_servers
        for i, conf in enumerate(checkers)
    )
    # The settings are part of the key: a key on both sides is kept, never "changed".
    p = plan({key: key[1] for key in running}, {key: key[1] for key in wanted})
    kept = set(p.kept)
    order = tuple((spec, running[key] if key in kept else None) for key, spec in wanted.items())
    return CheckPlan(order, tuple(running[key] for key in p.removed))
