"""What to do when a child exits: the respawn policy as data, applied by one function.

keepalived's rules (lib/scheduler.c report_child_status and calc_restart_delay, 2.2):
- exit codes FATAL (1), CONFIG (2) and MISSING_PERMISSION (4) are permanent: restarting
  will not help, so the whole daemon stops with that status and tells systemd ERRNO=;
- with -R (--dont-respawn) any death stops the daemon;
- a child that ran more than 60 s is restarted at once and its backoff is forgotten;
- otherwise successive quick deaths are delayed 0, 1, 2, 4 ... 60 s (the first quick death
  restarts at once, as keepalived's does; the delays then double up to a minute).
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Permanent:
    name: str  # keepalived's word in "exited with permanent error %s"
    errno: int  # what systemd is told (ERRNO=)


PERMANENT_EXITS: Mapping[int, Permanent] = MappingProxyType(
    {
        1: Permanent("FATAL", errno.EINVAL),
        2: Permanent("CONFIG", errno.EINVAL),
        4: Permanent("missing permission", errno.EPERM),
    }
)


@dataclass(frozen=True)
class RespawnPolicy:
    respawn: bool = True  # False with -R: a dead child stops the daemon
    stable_after: float = 60.0  # seconds of running after which a death is not "quick"
    delays: tuple[float, ...] = (0, 1, 2, 4, 8, 16, 32, 60)  # the last one repeats
    permanent: Mapping[int, Permanent] = field(default_factory=lambda: PERMANENT_EXITS)


@dataclass(frozen=True)
class Exit:
    """How a process ended, from a waitpid status."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_status(cls, status: int) -> Exit:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))

    def __str__(self) -> str:
        if self.signal is not None:
            try:
                return f"killed by {signal.Signals(self.signal).name}"
            except ValueError:
                return f"killed by signal {self.signal}"
        return f"exit status {self.code}"


@dataclass(frozen=True)
class Decision:
    respawn: bool
    delay: float = 0.0
    quick_deaths: int = 0  # the child's history after this death, for the next decision
    daemon_exit: int = 0  # when not respawning: the daemon's exit status
    errno: int | None = None  # when not respawning: ERRNO= for systemd
    permanent: str | None = None  # the permanent error's name, for the log


def decide(policy: RespawnPolicy, ended: Exit, ran_for: float, quick_deaths: int) -> Decision:
    """The one place that turns a child's death into respawn-or-stop and a delay."""
    if ended.code is not None and ended.code in policy.permanent:
        perm = policy.permanent[ended.code]
        return Decision(False, daemon_exit=ended.code, errno=perm.errno, permanent=perm.name)
    if not policy.respawn:
        return Decision(False)
    if ran_for > policy.stable_after:
        return Decision(True, 0.0, 0)
    delay = policy.delays[min(quick_deaths, len(policy.delays) - 1)]
    return Decision(True, float(delay), quick_deaths + 1)
