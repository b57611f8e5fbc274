"""Heartbeat settings and the parent's monitor: pure, on a given clock."""

from __future__ import annotations

import pytest

from watchdog.heartbeat import HeartbeatMonitor, HeartbeatSettings, beat_plan


def test_defaults_are_the_documented_ones() -> None:
    assert HeartbeatSettings() == HeartbeatSettings(interval=1.0, timeout=3.0)


@pytest.mark.parametrize(("interval", "timeout"), [(0, 3), (-1, 3), (1, 1), (2, 1)])
def test_settings_are_validated(interval: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        HeartbeatSettings(interval, timeout)


def test_monitor_declares_hung_only_after_the_timeout() -> None:
    m = HeartbeatMonitor(timeout=3.0, last_seen=100.0)
    assert not m.hung(103.0)  # exactly the timeout: not yet
    assert m.hung(103.01)
    assert m.deadline() == 103.0
    m.seen(102.0)
    assert not m.hung(104.5) and m.silence(104.5) == pytest.approx(2.5)


def test_monitor_ignores_time_going_backwards() -> None:
    m = HeartbeatMonitor(timeout=3.0, last_seen=100.0)
    m.seen(99.0)  # a late-processed message must not make the child look older
    assert m.last_seen == 100.0 and m.silence(99.0) == 0.0


@pytest.mark.parametrize(
    ("interval", "period", "every"),
    [(1.0, 0.25, 4), (0.5, 0.25, 2), (0.4775, 0.23875, 2), (0.6, 0.2, 3), (0.25, 0.25, 1), (0.1, 0.1, 1)],
)
def test_one_timer_beats_exactly_at_the_interval_and_probes_every_quarter_second(
    interval: float, period: float, every: int
) -> None:
    got_period, got_every = beat_plan(interval, 0.25)
    assert got_period == pytest.approx(period) and got_every == every
    assert got_period <= 0.25 and got_period * got_every == pytest.approx(interval)
