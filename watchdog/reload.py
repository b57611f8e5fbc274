"""A reload as a diff, applied in steps that either all switch or are all rolled back, or an
honest report of what switched (supervisor's reload: added, changed, removed, unchanged).

`plan(old, new, same)` is pure: two mappings of name to immutable configuration in, a
`ReloadPlan` out. `same(old, new)` says whether the running object can carry on with the new
configuration (a VRRP instance with the same VRID, interface, family...); when it cannot, the
name is both removed and added (replaced).

`apply_steps(steps)` runs the steps in order. When one raises:

- if every step that ran, the failing one included, can be undone, they are undone in
  reverse order (an `undo` puts the old configuration back whatever part of `apply` ran) and
  `ReloadFailed` says the running configuration is kept;
- if one cannot be undone (a VRRP instance removed by the reload has sent its priority 0 and
  released its VIPs), nothing is undone: `ReloadFailed` names exactly what switched to the
  new configuration (the failing step, in part), where it failed and what was not applied.

Both children use it: the VRRP child for its instances and the concerns around them (static
routes, trackers, sync groups...), the checker for its virtual and real servers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class ReloadPlan(Generic[K]):
    """What a reload does to the named things of one kind, in configuration order (new
    configuration's order; `removed` in the old one's)."""

    kept: tuple[K, ...] = ()  # in both, the same configuration
    added: tuple[K, ...] = ()  # new, or replaced (also in `removed`)
    removed: tuple[K, ...] = ()  # gone, or replaced (also in `added`)
    changed: tuple[K, ...] = ()  # in both, a new configuration the running object takes on

    @property
    def replaced(self) -> tuple[K, ...]:
        gone = set(self.removed)
        return tuple(k for k in self.added if k in gone)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def plan(old: Mapping[K, V], new: Mapping[K, V], same: Callable[[V, V], bool] | None = None) -> ReloadPlan[K]:
    """The plan from `old` to `new`. Without `same`, any difference is a change in place."""
    kept: list[K] = []
    added: list[K] = []
    changed: list[K] = []
    replaced: set[K] = set()
    for key, value in new.items():
        if key not in old:
            added.append(key)
        elif old[key] == value:
            kept.append(key)
        elif same is None or same(old[key], value):
            changed.append(key)
        else:
            added.append(key)
            replaced.add(key)
    removed = tuple(k for k in old if k not in new or k in replaced)
    return ReloadPlan(tuple(kept), tuple(added), removed, tuple(changed))


@dataclass(frozen=True)
class Step:
    """One concern switched to the new configuration. `name` says what, for the report
    ("static addresses, routes and rules"); `undo` puts the old configuration back (None:
    it cannot be, e.g. instances that released their VIPs)."""

    name: str
    apply: Callable[[], None]
    undo: Callable[[], None] | None = None


@dataclass(eq=False)
class ReloadFailed(Exception):
    """A reload that failed in step `failed`: `rolled_back` were undone; `switched` run the
    new configuration (empty when everything was rolled back); `not_applied` never ran."""

    failed: str
    error: BaseException
    switched: tuple[str, ...] = ()
    rolled_back: tuple[str, ...] = ()
    not_applied: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__init__(self.text())

    @property
    def partial(self) -> bool:
        """Part of the new configuration runs: the old one is not kept."""
        return bool(self.switched)

    def text(self) -> str:
        why = f"{self.failed}: {type(self.error).__name__}: {self.error}"
        if not self.partial:
            undone = f" (rolled back: {', '.join(self.rolled_back)})" if self.rolled_back else ""
            return f"{why}{undone}"
        parts = [why, "switched to the new configuration: " + ", ".join(self.switched)]
        if self.not_applied:
            parts.append("still on the previous configuration: " + ", ".join(self.not_applied))
        return "; ".join(parts)

    def log_line(self) -> str:
        """The child's log line: keepalived's 'keeping the running configuration' only when
        it is true."""
        if self.partial:
            return f"Reload failed part-way in {self.text()}"
        return f"Reload failed, keeping the running configuration: {self.text()}"


def apply_steps(steps: Sequence[Step]) -> None:
    """Run `steps` in order; on a failure roll back or report (the module docstring)."""
    done: list[Step] = []
    for i, step in enumerate(steps):
        try:
            step.apply()
        except Exception as e:
            later = tuple(s.name for s in steps[i + 1 :])
            if all(s.undo is not None for s in (*done, step)):
                raise _rolled_back(step, done, e, later) from e
            # the failing step may have done part of its work: it switched too, in part
            switched = tuple(s.name for s in (*done, step))
            raise ReloadFailed(step.name, e, switched=switched, not_applied=later) from e
        done.append(step)


def _rolled_back(failed: Step, done: list[Step], error: Exception, later: tuple[str, ...]) -> ReloadFailed:
    """Undo `failed` and `done`, newest first; a step whose undo raises stays switched."""
    rolled: list[str] = []
    stuck: list[str] = []
    for name, undo in [(s.name, s.undo) for s in (failed, *reversed(done)) if s.undo is not None]:
        try:
            undo()
        except Exception:
            log.exception("Cannot roll back %s", name)
            stuck.append(name)
        else:
            rolled.append(name)
    if stuck:
        return ReloadFailed(failed.name, error, switched=tuple(reversed(stuck)), not_applied=later)
    return ReloadFailed(failed.name, error, rolled_back=tuple(reversed(rolled)))
