"""The order of a burst of timers in the VRRP child (vrrp_child.workload with vrrp_child.ticks,
vrrp_child.afterburst and vrrp_child.logbuffer): the parent hears of a slice's new masters (one
merged state report) before the netlink batch puts their VIPs on the interfaces, so that a child
killed in between leaves no VIP the parent does not know to release; each VIP's first GARP follows
its slice's batch, its repeats wait until no timer is due; the log lines are written after them,
in order, and wait while more timers are due."""

from __future__ import annotations

import io
import ipaddress
import logging
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conf import load
from tests.vrrp_child import test_ticks as ticks_test
from tests.vrrp_child.test_batching import FakeRtnl
from vrrp_child import fsm, packet
from vrrp_child.afterburst import AfterBurst
from vrrp_child.batching import NetlinkBatch
from vrrp_child.firewall import ChildFirewall
from vrrp_child.instance import Instance
from vrrp_child.ticks import RUN_BUDGET, Ticks
from vrrp_child.workload import VrrpWorkload
from watchdog.protocol import Json
from watchdog.status import Conditions


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
    w.after = AfterBurst(loop, w.ticks.due, w._write_logs)  # type: ignore[arg-type]

    def report(changes: Mapping[str, Json]) -> None:
        events.append(f"report {','.join(changes)}")

    w._send_report = report
    w._report = w._report_in_order
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


# ---- a takeover burst of real instances: the netlink batch per slice, the GARPs ---------------

GROUP = ipaddress.IPv4Address("224.0.0.18")
PEER = ipaddress.IPv4Address("192.0.2.200")
ADVERT_COST = 0.0012  # s of loop time per advert sent: five takeovers per 5 ms slice


def burst_config(tmp_path: Path, count: int) -> list[Any]:
    """`count` instances on eth0, VRID i + 1, VIP 198.51.100.(i + 1); VI_0 has a second VIP."""
    blocks = [
        f"""
        vrrp_instance VI_{i} {{
            interface eth0
            virtual_router_id {i + 1}
            priority 100
            advert_int 1
            garp_master_delay 0
            virtual_ipaddress {{
                198.51.100.{i + 1}/32
                {"203.0.113.1/32" if i == 0 else ""}
            }}
        }}"""
        for i in range(count)
    ]
    path = tmp_path / "k.conf"
    path.write_text(textwrap.dedent("".join(blocks)))
    result = load(str(path), config_id="x", interfaces=frozenset({"eth0"}))
    assert result.config is not None
    return list(result.config.vrrp_instance.values())


@dataclass
class CostlySocket:
    """An advert's send takes loop time, so that a burst of takeovers fills several slices."""

    loop: Loop
    unicast: bool = False
    family: int = 4
    group: ipaddress.IPv4Address = GROUP
    ifname: str = "eth0"

    def send(self, payload: bytes, dst: object) -> bool:
        self.loop.now += ADVERT_COST
        return True


class Recorder(FakeRtnl):
    """The kernel's side of the netlink batch (addresses as `ip/32`), and the GARP/NA sender
    (vrrp_child.paced), one event list for both."""

    def __init__(self, events: list[tuple[str, list[str]]]) -> None:
        super().__init__()
        self.calls = events

    def send(self, ifname: str, frames: list[bytes]) -> None:
        self.calls.append(("frames", [f"{ipaddress.IPv4Address(f[28:32])}/32" for f in frames]))  # the ARP's sender


class Quiet:
    """The notifier and the sync groups: nothing configured for them here."""

    def state_changed(self, inst: Instance) -> None:
        pass

    def entered(self, inst: Instance, old: fsm.State) -> None:
        pass


def test_a_takeover_burst_sends_each_vips_first_garp_in_its_slice_and_the_repeats_after_it(
    tmp_path: Path, console: tuple[logging.Logger, io.StringIO]
) -> None:
    """garp_master_repeat 5: each VIP's first gratuitous ARP follows the netlink batch of its
    slice, before the next slice runs; the other four rounds go once no timer is due, each
    instance's round after round; five frames per VIP in all. An instance that a better master
    took back within the burst gets no repeats, and its VIP is removed."""
    loop = Loop()
    w = _workload(loop, [])
    events: list[tuple[str, list[str]]] = []
    w._send_report = lambda changes: events.append(("report", list(changes)))
    rec = Recorder(events)
    w.batch = NetlinkBatch(loop, rec, ChildFirewall(Conditions(lambda *_: None)), w.instances)  # type: ignore[arg-type]
    w.paced = rec  # type: ignore[assignment]
    w.notifier = w.sync = Quiet()  # type: ignore[assignment]
    instances = [
        Instance(
            conf=conf,
            socket=CostlySocket(loop),  # type: ignore[arg-type]
            local_ip=ipaddress.IPv4Address("192.0.2.2"),
            ifname="eth0",
            mac="02:00:00:00:00:02",
            edges=w,
            ticks=w.ticks,
        )
        for conf in burst_config(tmp_path, 15)
    ]
    for inst in instances:
        w.instances[inst.name] = inst
        inst.start()
    events.clear()
    # the master stops: its priority 0 adverts, then (Skew_Time later) the takeovers, due together
    for inst in instances:
        inst.on_advert(packet.Advert(2, inst.vrid, 0, inst.expect.addresses, 100), PEER)
    back = instances[1]  # a better master comes back while the burst runs
    better = packet.Advert(2, back.vrid, 200, back.expect.addresses, 100)
    deadline = fsm.next_deadline(back.machine)
    assert deadline is not None
    w.ticks.call_at(deadline, lambda: back.on_advert(better, PEER))
    loop.run(until=loop.now + 1.0)

    assert all(i.state is fsm.State.MASTER for i in instances if i is not back) and back.state is fsm.State.BACKUP
    slices = [at for at, (kind, _) in enumerate(events) if kind == "add"]
    assert len(slices) == 3  # 15 takeovers at five per slice
    names = [[f"VI_{i}" for i in range(first, first + 5)] for first in (0, 5, 10)]
    for at, masters in zip(slices, names, strict=True):
        # the parent hears of the slice's new masters before their VIPs go on the interface
        assert events[at - 1] == ("report", masters)
        # ... and each VIP's first GARP follows at once
        added = events[at][1]
        sent: list[str] = []
        for kind, ips in events[at + 1 :]:
            if kind != "frames" or len(sent) >= len(added):
                break
            sent += ips
        assert sent == added
    # the master that went back: reported, then its VIP removed
    removed = events.index(("remove", ["198.51.100.2/32"]))
    assert events[removed - 1] == ("report", ["VI_1"]) and removed > max(slices)
    repeats = [ips for _, ips in events[removed + 1 :]]
    assert all(kind == "frames" for kind, _ in events[removed + 1 :])
    firsts = Counter(ip for kind, ips in events[:removed] if kind == "frames" for ip in ips)
    assert set(firsts.values()) == {1} and len(firsts) == 16  # one frame per VIP within the burst
    assert repeats[0] == ["198.51.100.1/32", "203.0.113.1/32"] * 4  # round after round, as keepalived sends them
    total = firsts + Counter(ip for ips in repeats for ip in ips)
    assert total.pop("198.51.100.2/32") == 1  # no repeats once it left MASTER
    assert set(total.values()) == {5} and len(total) == 15  # garp_master_repeat 5 for every VIP held
    assert not w.logs.holding and not w.after.jobs
