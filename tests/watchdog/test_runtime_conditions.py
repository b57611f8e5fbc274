"""A restarted child clears the degraded conditions its predecessor reported and it does
not (watchdog.status): STATUS= must not show a degradation that went away with the child."""

from __future__ import annotations

from tests.watchdog.test_runtime import spawn  # noqa: F401 (fixture)
from watchdog.protocol import Ready, Resume, State
from watchdog.status import cleared, degraded


def test_stale_conditions_are_cleared_before_ready(spawn) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    child = spawn("still-degraded")
    child.send(Resume(data={**degraded("a", "gone now"), **degraded("b", "still broken"), "VI_1": {"state": "MASTER"}}))
    assert child.read_until(State) == State(data=degraded("b", "still broken"))
    assert child.read_until(State) == State(data=cleared("a"))  # "b" re-raised, the instance is not a condition
    child.read_until(Ready)
