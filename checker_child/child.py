"""The checker child's entry point: the shared child runtime around the checker workload."""

from __future__ import annotations

from watchdog.empty import EmptyWorkload
from watchdog.runtime import ChildSetup, run_child


def main(setup: ChildSetup) -> int:
    # The checker workload (virtual servers, checks, IPVS) comes with the checker issue; until
    # then the child runs the full runtime (pipes, heartbeats, reload, dumps) with nothing in it.
    return run_child(setup, EmptyWorkload())
