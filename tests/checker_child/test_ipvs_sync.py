"""IPVS bookkeeping against a fake kernel table that refuses what it is told to: this
machine's kernel has no IPVS module, so the real one cannot be exercised here (the
kernel test in test_ipvs.py skips). The fake answers as the kernel does: EEXIST for an
add of what exists, ESRCH for what is missing, and any errno a test asks for."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from checker_child import dumps
from checker_child.ipvs import Refused
from checker_child.ipvs_sync import RETRY_CONDITION, Answer, Applied, IpvsSync, RetryBook, answer
from checker_child.table import Destination, DestKey, Diff, Service, ServiceKey, Table, apply_diff, entries
from checker_child.workload import CheckerWorkload
from conf import load
from labkit.listeners import Listener
from watchdog.protocol import DumpKind, Json
from watchdog.status import Conditions, degraded_of

SKEY = ServiceKey(4, "TCP", IPv4Address("10.0.0.1"), 80)
SVC = Service(SKEY, "rr")
D1 = Destination(DestKey(IPv4Address("192.168.1.2"), 80), 1)
D2 = Destination(DestKey(IPv4Address("192.168.1.3"), 80), 1)
WANT = Table({SKEY: SVC}, {SKEY: {D1.key: D1, D2.key: D2}})


class FakeKernel:
    """An IPVS table in memory. `refuse(entry)` returns the errno to refuse an entry with
    (None: the kernel's own rules decide)."""

    def __init__(self, refuse: Callable[[Diff], int | None] = lambda entry: None) -> None:
        self.table = Table()
        self.refuse = refuse
        self.commands: list[Diff] = []

    def _own_rules(self, entry: Diff) -> int | None:
        t = self.table
        if entry.add_services:
            return errno.EEXIST if entry.add_services[0].key in t.services else None
        if entry.edit_services or entry.remove_services:
            key = entry.edit_services[0].key if entry.edit_services else entry.remove_services[0]
            return None if key in t.services else errno.ESRCH
        skey, dkey = (
            next((s, d.key) for s, d in (*entry.add_destinations, *entry.edit_destinations))
            if (entry.add_destinations or entry.edit_destinations)
            else entry.remove_destinations[0]
        )
        if skey not in t.services:
            return errno.ESRCH
        present = dkey in t.destinations.get(skey, {})
        if entry.add_destinations:
            return errno.EEXIST if present else None
        return None if present else errno.ENOENT

    def apply(self, change: Diff) -> list[Refused]:
        out: list[Refused] = []
        for _, entry in entries(change):
            self.commands.append(entry)
            code = self.refuse(entry)
            if code is None:
                code = self._own_rules(entry)
            if code is None:
                self.table = apply_diff(self.table, entry)
            else:
                out.append(Refused("cmd", code, os.strerror(code)))
        return out

    def flush(self) -> None:
        self.table = Table()

    def remove(self, keys: Iterable[ServiceKey]) -> None:
        self.apply(Diff(remove_services=tuple(keys)))

    def close(self) -> None:
        pass


def refuse_times(n: int, code: int, which: Destination) -> Callable[[Diff], int | None]:
    """Refuse the add of `which` n times, then let it through."""
    left = [n]

    def refuse(entry: Diff) -> int | None:
        if entry.add_destinations and entry.add_destinations[0][1] == which and left[0] > 0:
            left[0] -= 1
            return code
        return None

    return refuse


# ---------------------------------------------------------------- pure parts


def test_answer_reads_the_kernels_reply() -> None:
    add = Diff(add_destinations=((SKEY, D1),))
    edit = Diff(edit_destinations=((SKEY, D1),))
    rm = Diff(remove_destinations=((SKEY, D1.key),))

    def r(code: int) -> Refused:
        return Refused("x", code, os.strerror(code))

    assert answer(add, None) is Answer.ACCEPTED
    assert answer(add, r(errno.EEXIST)) is Answer.ACCEPTED  # already there
    assert answer(add, r(errno.ENOMEM)) is Answer.REFUSED
    assert answer(add, r(errno.ESRCH)) is Answer.REFUSED  # its service is missing
    assert answer(rm, r(errno.ENOENT)) is Answer.ACCEPTED  # already gone
    assert answer(rm, r(errno.EBUSY)) is Answer.REFUSED
    assert answer(edit, r(errno.ENOENT)) is Answer.GONE
    assert answer(edit, r(errno.EINVAL)) is Answer.REFUSED
    assert answer(Diff(add_services=(SVC,)), Refused("x", None, "socket closed")) is Answer.REFUSED


def test_retry_book_backs_off_and_says_what_is_news() -> None:
    book = RetryBook(first=1.0, cap=4.0)
    r1, r2 = Refused("x", errno.ENOMEM, "no memory"), Refused("x", errno.EBUSY, "busy")
    assert book.refused(SKEY, r1, 100.0) is True  # first: log it
    assert book.held(SKEY, 100.5) and not book.held(SKEY, 101.0)
    assert book.refused(SKEY, r1, 101.0) is False  # same reason: not again
    assert book.failing[SKEY].next_at == 103.0
    assert book.refused(SKEY, r2, 103.0) is True  # a new reason
    assert book.failing[SKEY].next_at == 107.0
    book.refused(SKEY, r2, 107.0)
    assert book.failing[SKEY].next_at == 111.0  # capped
    assert book.next_at() == 111.0
    book.keep_only(set())
    assert book.failing == {} and book.next_at() is None


def test_applied_changes_in_place_and_forgets() -> None:
    a = Applied()
    a.accept(Diff(add_services=(SVC,), add_destinations=((SKEY, D1),)))
    a.accept(Diff(add_destinations=((ServiceKey(4, fwmark=1), D2),)))  # no such service: not recorded
    assert a.table() == Table({SKEY: SVC}, {SKEY: {D1.key: D1}})
    a.forget((SKEY, D1.key))
    assert a.table() == Table({SKEY: SVC}, {SKEY: {}})
    a.forget(SKEY)
    assert a.table() == Table({}, {})


# ---------------------------------------------------------------- IpvsSync on a loop


def start(kernel: FakeKernel, wanted: Callable[[], Table], state: dict[str, Json]) -> IpvsSync:
    loop = asyncio.get_running_loop()
    sync = IpvsSync(loop, Conditions(state.update), wanted, opener=lambda: kernel)
    sync.retries = RetryBook(first=0.05, cap=0.2)
    sync.open(_config())
    return sync


def _config() -> Any:
    class Gdefs:
        lvs_flush = False

    class Conf:
        global_defs = Gdefs()

    return Conf()


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_refused_entry_is_not_recorded_and_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    kernel = FakeKernel(refuse_times(3, errno.ENOMEM, D2))
    state: dict[str, Json] = {}

    async def main() -> None:
        sync = start(kernel, lambda: WANT, state)
        with caplog.at_level(logging.INFO, logger="pykeepalived_healthcheckers"):
            sync.sync()
            # the kernel took the service and D1, refused D2: only those are recorded
            assert sync.applied.table() == Table({SKEY: SVC}, {SKEY: {D1.key: D1}})
            assert kernel.table == sync.applied.table()
            assert [d.key for d in degraded_of(state)] == [RETRY_CONDITION]
            assert "IPVS refused 1 table entries" in degraded_of(state)[0].text
            retrying: Any = sync.retrying()
            assert retrying[0]["error"] == os.strerror(errno.ENOMEM) and retrying[0]["tries"] == 1
            sync.sync()  # a verdict's pass before the backoff is over: D2 waits its turn
            assert sum(1 for c in kernel.commands if c.add_destinations and c.add_destinations[0][1] == D2) == 1
            await until(lambda: kernel.table == WANT)
        assert sync.applied.table() == WANT
        assert sync.errors == 3
        assert degraded_of(state) == []  # cleared
        sync.release(None, dont_release=False)
        assert kernel.table == Table({}, {})

    asyncio.run(main())
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 1, "a refusal is logged once, not at every retry"
    assert failed[0].levelno == logging.ERROR
    assert any("succeeded after 4 tries" in r.getMessage() for r in caplog.records)


def test_existing_entries_count_as_accepted_and_vanished_ones_are_added_again() -> None:
    kernel = FakeKernel()
    kernel.table = Table({SKEY: SVC}, {SKEY: {D1.key: D1}})  # left by an earlier run
    wanted = [WANT]
    state: dict[str, Json] = {}

    async def main() -> None:
        sync = start(kernel, lambda: wanted[0], state)
        sync.sync()
        assert sync.applied.table() == WANT and kernel.table == WANT
        assert sync.retries.failing == {}
        # someone removes D1 behind our back (ipvsadm -d); a weight change then finds it gone
        kernel.table = Table({SKEY: SVC}, {SKEY: {D2.key: D2}})
        heavier = Destination(D1.key, 5)
        wanted[0] = Table({SKEY: SVC}, {SKEY: {D1.key: heavier, D2.key: D2}})
        sync.sync()  # edit refused ENOENT: recorded as absent
        assert D1.key not in sync.applied.destinations[SKEY]
        sync.sync()  # the next pass adds it
        assert kernel.table == wanted[0] == sync.applied.table()

    asyncio.run(main())


def test_a_table_that_no_longer_wants_the_entry_stops_retrying() -> None:
    kernel = FakeKernel(refuse_times(100, errno.ENOMEM, D2))
    wanted = [WANT]
    state: dict[str, Json] = {}

    async def main() -> None:
        sync = start(kernel, lambda: wanted[0], state)
        sync.sync()
        assert len(sync.retries.failing) == 1
        wanted[0] = Table({SKEY: SVC}, {SKEY: {D1.key: D1}})  # D2's real server removed
        sync.sync()
        assert sync.retries.failing == {} and degraded_of(state) == []

    asyncio.run(main())


# ---------------------------------------------------------------- through the workload


def test_workload_programs_what_the_kernel_accepts(tmp_path: Path) -> None:
    srv = Listener()

    async def main() -> None:
        await srv.start()
        kernel = FakeKernel(refuse_times(2, errno.ENOMEM, Destination(DestKey(IPv4Address("127.0.0.1"), srv.port))))
        path = tmp_path / "keepalived.conf"
        path.write_text(
            f"virtual_server 127.0.0.10 80 {{\n    protocol TCP\n    delay_loop 0.2\n"
            f"    real_server 127.0.0.1 {srv.port} {{\n        TCP_CHECK {{ connect_timeout 1 }}\n    }}\n}}\n"
        )
        result = load(str(path))
        assert result.config is not None
        wl = CheckerWorkload(ipvs=kernel)
        await wl.start(result.config, lambda changes: None)
        try:
            doc: Any = dumps.json_dump(wl)
            assert doc["ipvs"]["programmed"] is True
            assert len(doc["ipvs"]["retrying"]) == 1  # the destination, refused once so far
            assert "IPVS errors = 1, entries retrying = 1" in await wl.dump(DumpKind.STATS)
            assert kernel.table.destinations.get(next(iter(kernel.table.services)), {}) == {}
            await until(lambda: kernel.table == wl.servers.table(), timeout=10)  # backoff 1 s, then 2 s
            assert dumps.json_dump(wl)["ipvs"]["retrying"] == []  # type: ignore[index,call-overload]
        finally:
            await wl.stop()
            await srv.stop()
        assert kernel.table == Table({}, {})  # released: what the kernel accepted, removed

    asyncio.run(main())
