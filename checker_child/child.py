"""The checker child's entry point: the shared child runtime around the checker workload."""

from __future__ import annotations

from checker_child.workload import CheckerWorkload
from watchdog.runtime import ChildSetup, run_child


def main(setup: ChildSetup) -> int:
    # -I (--dont-release-ipvs): the IPVS table stays as it is when the child stops.
    return run_child(setup, CheckerWorkload(dont_release=setup.dont_release_ipvs))
