"""Work that waits for a burst of protocol timers to end: the repeats of a takeover's
gratuitous ARPs and unsolicited NAs (`garp_master_repeat`), then the held log lines.

A stopping master's 250 priority 0 adverts make 250 takeovers fall due within tens of
milliseconds (vrrp_child.ticks runs them in 5 ms slices, each slice's VIPs and first GARPs
going out before the next slice). Each VIP's first GARP / NA is what moves the traffic; its
`garp_master_repeat - 1` repeats only make up for a frame lost on the way, and sending them
back to back with the first held up the VIPs of every later instance of the burst. So a
takeover sends its first round at once and hands the rest here: the jobs run in the order they
came, one at a time, only while no timer is due (`due`), and give way again as soon as one is:
the end of that wakeup's timers calls `wake()` (vrrp_child.workload._timers_done). Once the
queue is empty, `then` runs (the log lines' write-out, which gives way the same way).

A job is cancelled when its instance leaves MASTER first (Instance._leave_master): a repeat
never goes out for a VIP no longer held.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from watchdog.coalesce import OncePerPass


class Job:
    """One waiting callback; cancel() before it ran keeps it from running."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn: Callable[[], None] | None = fn

    def cancel(self) -> None:
        self.fn = None


class AfterBurst:
    """Jobs run in order once no protocol timer is due (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, due: Callable[[], bool], then: Callable[[], None]) -> None:
        self.due = due
        self.then = then
        self.jobs: deque[Job] = deque()
        self._pass = OncePerPass(loop, self._run)

    def add(self, fn: Callable[[], None]) -> Job:
        job = Job(fn)
        self.jobs.append(job)
        self.wake()
        return job

    def wake(self) -> None:
        """Run the jobs, then `then`, at the next loop pass (once, however often called)."""
        self._pass.soon()

    def _run(self) -> None:
        jobs, due = self.jobs, self.due
        while jobs:
            if due():
                return  # the end of those timers wakes this again
            job = jobs.popleft()
            fn, job.fn = job.fn, None
            if fn is not None:
                fn()
        self.then()
