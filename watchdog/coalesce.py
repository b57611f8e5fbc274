"""A call coalesced to once per loop pass: however many times `soon()` is called during a
pass, the function runs once, right after it (`loop.call_soon`), and sees everything the
pass asked for. The VRRP child's netlink batch and sync group events use it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class OncePerPass:
    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
        self.loop = loop
        self.fn = fn
        self.pending = False

    def soon(self) -> None:
        if not self.pending:
            self.pending = True
            self.loop.call_soon(self.run)

    def run(self) -> None:
        """Run now (also when called directly: the scheduled call then finds nothing to do
        beyond what came since)."""
        self.pending = False
        self.fn()
