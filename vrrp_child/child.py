"""The VRRP child's entry point: the shared child runtime around the VRRP workload."""

from __future__ import annotations

from watchdog.empty import EmptyWorkload
from watchdog.runtime import ChildSetup, run_child


def main(setup: ChildSetup) -> int:
    # The VRRP workload (instances, sync groups, adverts) comes with the VRRP issue; until
    # then the child runs the full runtime (pipes, heartbeats, reload, dumps) with nothing in it.
    return run_child(setup, EmptyWorkload())
