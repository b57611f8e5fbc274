"""The order of a burst of timers in the VRRP child (vrrp_child.workload with vrrp_child.ticks and
vrrp_child.logbuffer): the parent hears of a slice's new masters (one merged state report) before
the netlink batch puts their VIPs on the interfaces, so that a child killed in between leaves no
VIP the parent does not know to release; the log lines are written after the batch and its GARPs,
in order, and wait while more timers are due."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from tests.vrrp_child import test_ticks as ticks_test
from vrrp_child.ticks import RUN_BUDGET, Ticks
from vrrp_child.workload import VrrpWorkload
from watchdog.protocol import Json


@dataclass
class Loop(ticks_test.Loop):
    """asyncio's order: the ready callbacks of a pass, then the timers that have come due."""

    ready: list[Callable[[], None]] = field(default_factory=list)

    def call_soon(self, fn: Callable[[], None], /) -> None:
        self.ready.append(fn)

    def run(self, until: float) -> None:
        while True:
            due = sorted((h for h in self.handles if not h.cancelled and h.when <= self.now), key=lambda h: h.when)
            for h in due:
                self.handles.remove(h)
            batch, self.ready = self.ready + [h.fn for h in due], []
            if not batch:
                live = self.armed()
                if not live or min(live) > until:
                    return
                self.now = max(self.now, min(live))
                continue
            for fn in batch:
                fn()


@pytest.fixture
def console() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    root = logging.getLogger()
    saved = root.handlers, root.level
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    yield root, out
    root.handlers, root.level = saved


def _workload(loop: Loop, events: list[str]) -> VrrpWorkload:
    w = VrrpWorkload()
    w.loop = loop  # type: ignore[assignment]
    w.ticks = Ticks(loop)
    w.ticks.starting = w.logs.hold
    w.ticks.finished = w._timers_done

    def report(changes: Mapping[str, Json]) -> None:
        events.append(f"report {','.join(changes)}")

    w._send_report = report
    return w


def test_a_burst_reports_before_the_batch_and_writes_its_lines_after_it(
    console: tuple[logging.Logger, io.StringIO],
) -> None:
    _, out = console
    loop = Loop()
    events: list[str] = []
    w = _workload(loop, events)
    log = logging.getLogger("pykeepalived_vrrp")
    flush_queued: list[bool] = []

    def flush() -> None:
        flush_queued.clear()
        events.append(f"flush after {out.getvalue().count('Entering')} lines")
        log.info("GARPs")

    def takeover(name: str) -> Callable[[], None]:
        def run() -> None:
            log.info("(%s) Entering MASTER STATE", name)
            w._report_in_order({name: {"state": "MASTER"}})
            if not flush_queued:  # the netlink batch, once per loop pass (OncePerPass)
                flush_queued.append(True)
                loop.call_soon(flush)
            loop.now += RUN_BUDGET / 3  # three per slice

        return run

    for i in range(5):
        w.ticks.call_at(11.0, takeover(f"VI_{i}"))
    loop.run(until=12.0)
    # each slice: its reports as one, then its batch; the lines only once no timer was due
    # any more, in the order of the calls
    assert events == [
        "report VI_0,VI_1,VI_2",
        "flush after 0 lines",
        "report VI_3,VI_4",
        "flush after 0 lines",
    ]
    assert out.getvalue().splitlines() == [
        "(VI_0) Entering MASTER STATE",
        "(VI_1) Entering MASTER STATE",
        "(VI_2) Entering MASTER STATE",
        "GARPs",
        "(VI_3) Entering MASTER STATE",
        "(VI_4) Entering MASTER STATE",
        "GARPs",
    ]
    assert not w.logs.holding
    log.info("after the burst")  # written at once again
    assert out.getvalue().endswith("after the burst\n")
    w._report_in_order({"VI_9": None})
    assert events[-1] == "report VI_9"


def test_a_quiet_wakeup_writes_nothing_late(console: tuple[logging.Logger, io.StringIO]) -> None:
    _, out = console
    loop = Loop()
    events: list[str] = []
    w = _workload(loop, events)
    w.ticks.call_at(11.0, lambda: events.append("advert"))  # a steady master: no line, no report
    loop.run(until=12.0)
    assert events == ["advert"] and not w.logs.holding and not loop.ready and out.getvalue() == ""


def test_merged_reports_are_what_the_reports_in_order_do() -> None:
    from vrrp_child.workload import merged_reports

    reports: list[Mapping[str, Json]] = [
        {"VI_1": {"state": "MASTER"}, "VI_2": {"state": "BACKUP"}},
        {"VI_1": {"state": "BACKUP"}, "VI_3": None},
        {"VI_3": {"state": "FAULT"}},
    ]
    applied: dict[str, Json] = {}
    for changes in reports:  # as haparent.supervisor's merge_state applies them
        applied.update(changes)
    assert (
        merged_reports(reports)
        == applied
        == {
            "VI_1": {"state": "BACKUP"},
            "VI_2": {"state": "BACKUP"},
            "VI_3": {"state": "FAULT"},
        }
    )
