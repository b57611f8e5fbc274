"""The VRRP child's entry point: the shared child runtime around the VRRP workload."""

from __future__ import annotations

import logging

from vrrp_child.logbuffer import lean_log_records
from vrrp_child.workload import VrrpWorkload
from watchdog.runtime import ChildSetup, run_child


def main(setup: ChildSetup) -> int:
    detail = logging.getLogger().isEnabledFor(logging.DEBUG)
    lean_log_records()
    return run_child(setup, VrrpWorkload(detail=detail, dont_release=setup.dont_release_vrrp))
