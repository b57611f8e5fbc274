"""A child entry for tests/haparent/test_system.py: exits 0 when the cycle collector runs."""

from __future__ import annotations

import gc

from watchdog.runtime import ChildSetup


def main(setup: ChildSetup) -> int:
    return 0 if gc.isenabled() else 1
