"""Heartbeats: the settings (data) and the parent's monitor (pure: times in, verdict out).

A child sends a heartbeat from its event loop every `interval`; a loop that is blocked
stops sending, and after `timeout` without any message the parent declares it hung.
keepalived has no hang detection at all (its 1.x watchdog was removed in 1.1.9)."""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_INTERVAL = 1.0
DEFAULT_TIMEOUT = 3.0


@dataclass(frozen=True)
class HeartbeatSettings:
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"heartbeat interval must be positive, not {self.interval}")
        # At least one full interval of slack, or a healthy child under load looks hung.
        if not self.timeout > self.interval:
            raise ValueError(
                f"heartbeat timeout ({self.timeout} s) must be longer than the interval ({self.interval} s)"
            )


@dataclass
class HeartbeatMonitor:
    """When the parent last heard from one child, on the parent's monotonic clock.

    The parent feeds it the time each heartbeat was written (the child's CLOCK_MONOTONIC),
    and its `ready` and `reloaded` answers: each proves the child's loop runs."""

    timeout: float
    last_seen: float

    def seen(self, now: float) -> None:
        self.last_seen = max(self.last_seen, now)

    def silence(self, now: float) -> float:
        return max(0.0, now - self.last_seen)

    def hung(self, now: float) -> bool:
        return now - self.last_seen > self.timeout

    def deadline(self) -> float:
        """The time after which the child counts as hung if nothing arrives."""
        return self.last_seen + self.timeout


def beat_plan(interval: float, probe: float) -> tuple[float, int]:
    """One loop timer for a child's heartbeats and its lateness probe (watchdog.sched): the
    timer's period, at most `probe`, and every how many of its ticks a heartbeat goes, so that
    heartbeats come exactly every `interval` (never later) and the probe at least every `probe`.
    Each timer wakeup of an idle child costs more CPU than the work it does, so the two share one."""
    ticks = max(1, math.ceil(interval / probe - 1e-9))
    return interval / ticks, ticks
