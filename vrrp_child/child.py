"""The VRRP child's entry point: the shared child runtime around the VRRP workload."""

from __future__ import annotations

import logging

from vrrp_child.workload import VrrpWorkload
from watchdog.runtime import ChildSetup, run_child


def main(setup: ChildSetup) -> int:
    detail = logging.getLogger().isEnabledFor(logging.DEBUG)
    lean_log_records()
    return run_child(setup, VrrpWorkload(detail=detail, dont_release=setup.dont_release_vrrp))


def lean_log_records() -> None:
    """Records without what no line of ours shows (haparent.logs formats the time, the pid
    and the message): the caller's frame, looked up by walking the stack on every call, and
    the thread and process names. A takeover with -D logs about ten lines per instance;
    these were a third of the cost of making each record (the logging module's own
    "Optimization" switches)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
