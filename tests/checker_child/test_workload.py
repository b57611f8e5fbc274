"""The checker workload on the real loop, against real servers on loopback: real-server
and quorum transitions through notify scripts writing to files, the FIFO lines, the
JSON dump (table, weights, sorry server), reports to the parent, reload."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from checker_child import dumps
from checker_child.checks import ping
from checker_child.reports import rs_key
from checker_child.runner import file_check_verdict
from checker_child.workload import CheckerWorkload
from conf import load
from conf.model import Config
from conf.trackers import Weight
from labkit.lab import Lab
from labkit.listeners import Listener
from tests.lab.conftest import lab2, lab_tools, make_lab  # noqa: F401 (fixtures)
from watchdog.fifo import Fifos
from watchdog.protocol import DumpKind, Json
from watchdog.reload import ReloadFailed

FAST = "delay_loop 0.2\n    retry 1\n    delay_before_retry 0.1\n    warmup 0\n    connect_timeout 1"


def load_text(tmp_path: Path, text: str, name: str = "keepalived.conf") -> Config:
    path = tmp_path / name
    path.write_text(text)
    result = load(str(path))
    assert result.ok and result.config is not None, [d.render(test_mode=True) for d in result.diagnostics.items]
    return result.config


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(stat.S_IRWXU)
    return path


def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A notify script appending its arguments, one call a line, to a file."""
    out = tmp_path / "calls.txt"
    return script(tmp_path, "notify.sh", f'echo "$*" >> {out}'), out


def calls(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


async def until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.02)


class Run:
    def __init__(self, wl: CheckerWorkload, reports: list[Mapping[str, Json]]) -> None:
        self.wl = wl
        self.reports = reports

    async def dump(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(await self.wl.dump(DumpKind.JSON))
        return doc

    def state(self) -> dict[str, Json]:
        merged: dict[str, Json] = {}
        for r in self.reports:
            for k, v in r.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
        return merged

    def rs(self, vs_index: int = 0, rs_index: int = 0) -> dict[str, Any]:
        doc = json.loads(json.dumps(dumps.json_dump(self.wl)))
        rs: dict[str, Any] = doc["virtual_servers"][vs_index]["real_servers"][rs_index]
        return rs

    def vs(self, vs_index: int = 0) -> dict[str, Any]:
        vs: dict[str, Any] = json.loads(json.dumps(dumps.json_dump(self.wl)))["virtual_servers"][vs_index]
        return vs

    def table(self) -> list[dict[str, Any]]:
        table: list[dict[str, Any]] = json.loads(json.dumps(dumps.json_dump(self.wl)))["ipvs"]["table"]
        return table


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[Run]:
    """The workload started on `config` (its reports collected), stopped at the end."""
    wl = CheckerWorkload()
    reports: list[Mapping[str, Json]] = []
    await wl.start(config, reports.append)
    try:
        yield Run(wl, reports)
    finally:
        await wl.stop()


def run(config: Config, body: Callable[[Run], Awaitable[None]]) -> None:
    async def main() -> None:
        async with running(config) as r:
            await body(r)

    asyncio.run(main())


def test_tcp_down_and_up_runs_notify_scripts_and_writes_fifo(tmp_path: Path) -> None:
    notify, out = recorder(tmp_path)
    fifo = tmp_path / "lvs.fifo"

    async def body(r: Run) -> None:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            await until(lambda: r.rs()["checkers"][0]["has_run"], what="first check")
            assert r.rs()["alive"] is True
            await srv.stop()
            await until(lambda: "DOWN rs1" in calls(out), what="notify_down")
            assert r.rs()["alive"] is False
            key = next(k for k in r.state() if "->" in k)
            assert r.state()[key] == {"state": "DOWN", "weight": 1}
            await srv.start()
            await until(lambda: calls(out)[-1:] == ["UP rs1"], what="notify_up")
            assert r.rs()["alive"] is True
            await asyncio.sleep(0.1)
            lines = os.read(fd, 65536).decode().splitlines()
        finally:
            os.close(fd)
        rs, vs = f"[127.0.0.1]:tcp:{srv.port}", "[127.0.0.10]:tcp:80"
        assert f"RS {rs} {vs} DOWN" in lines
        assert lines.index(f"RS {rs} {vs} DOWN") < lines.index(f"RS {rs} {vs} UP")

    srv = Listener()

    async def main() -> None:
        await srv.start()
        text = f"""
global_defs {{
    lvs_notify_fifo {fifo}
}}
virtual_server 127.0.0.10 80 {{
    protocol TCP
    {FAST}
    real_server 127.0.0.1 {srv.port} {{
        notify_up "{notify} UP rs1"
        notify_down "{notify} DOWN rs1"
        TCP_CHECK {{ }}
    }}
}}
"""
        config = load_text(tmp_path, text)
        try:
            async with running(config) as r:
                await body(r)
        finally:
            await srv.stop()

    asyncio.run(main())


def test_retries_before_down_verdict(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """retry 2, delay_before_retry 0.3: the verdict comes two retries after the first
    failure, not before."""
    caplog.set_level("INFO")

    async def main() -> None:
        srv = await Listener().start()
        port = srv.port
        config = load_text(
            tmp_path,
            f"""
virtual_server 127.0.0.10 80 {{
    protocol TCP
    delay_loop 0.2
    retry 2
    delay_before_retry 0.3
    warmup 0
    real_server 127.0.0.1 {port} {{
        TCP_CHECK {{ connect_timeout 1 }}
    }}
}}
""",
        )
        async with running(config) as r:
            wl = r.wl
            await until(lambda: wl.checks[0].attempts.has_run)
            await srv.stop()
            t0 = time.monotonic()
            await until(lambda: not wl.checks[0].attempts.is_up, what="down verdict")
            took = time.monotonic() - t0
            assert 0.55 <= took <= 2.5, took  # >= 2 x delay_before_retry after the first failure
            assert wl.checks[0].failures == 3

    asyncio.run(main())
    text = caplog.text
    assert "failed after 2 retries." in text
    assert "Removing service [127.0.0.1]:tcp:" in text and "from VS [127.0.0.10]:tcp:80" in text


def test_quorum_scripts_and_reports(tmp_path: Path) -> None:
    notify, out = recorder(tmp_path)

    async def main() -> None:
        a, b = await Listener().start(), await Listener().start()
        config = load_text(
            tmp_path,
            f"""
virtual_server 127.0.0.10 80 {{
    protocol TCP
    {FAST}
    quorum 2
    quorum_up "{notify} QUORUM_UP"
    quorum_down "{notify} QUORUM_DOWN"
    real_server 127.0.0.1 {a.port} {{
        TCP_CHECK {{ }}
    }}
    real_server 127.0.0.1 {b.port} {{
        TCP_CHECK {{ }}
    }}
}}
""",
        )
        try:
            async with running(config) as r:
                await until(lambda: "QUORUM_UP" in calls(out), what="quorum up at start")
                await b.stop()
                await until(lambda: "QUORUM_DOWN" in calls(out), what="quorum down")
                vs = r.vs()
                assert vs["quorum_up"] is False and vs["weight_sum"] == 1
                assert any(
                    v == {"state": "QUORUM_DOWN", "sorry_server": False, "suspended": False, "weight_sum": 1}
                    for v in r.state().values()
                )
                await b.start()
                await until(lambda: calls(out)[-1:] == ["QUORUM_UP"], what="quorum up again")
                assert r.vs()["quorum_up"] is True
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(main())
    assert calls(out) == ["QUORUM_UP", "QUORUM_DOWN", "QUORUM_UP"]


def test_sorry_server_in_and_out_of_the_table(tmp_path: Path) -> None:
    async def main() -> None:
        srv = await Listener().start()
        config = load_text(
            tmp_path,
            f"""
virtual_server 127.0.0.10 80 {{
    protocol TCP
    {FAST}
    sorry_server 127.0.0.99 8080
    real_server 127.0.0.1 {srv.port} {{
        TCP_CHECK {{ }}
    }}
}}
""",
        )
        wl = CheckerWorkload()
        await wl.start(config, lambda c: None)
        r = Run(wl, [])

        def dests() -> list[tuple[str, int, int]]:
            return [(d["address"], d["port"], d["weight"]) for d in r.table()[0]["destinations"]]

        try:
            await until(lambda: wl.checks[0].attempts.has_run)
            assert dests() == [("127.0.0.1", srv.port, 1)]
            await srv.stop()
            await until(lambda: r.vs()["sorry_server_active"], what="sorry server in")
            assert dests() == [("127.0.0.99", 8080, 1)]
            await srv.start()
            await until(lambda: not r.vs()["sorry_server_active"], what="sorry server out")
            assert dests() == [("127.0.0.1", srv.port, 1)]
        finally:
            await wl.stop()
            await srv.stop()

    asyncio.run(main())


def test_inhibit_on_failure_keeps_weight_zero(tmp_path: Path) -> None:
    async def main() -> None:
        srv = await Listener().start()
        config = load_text(
            tmp_path,
            f"""
virtual_server 127.0.0.10 80 {{
    protocol TCP
    {FAST}
    real_server 127.0.0.1 {srv.port} {{
        weight 5
        inhibit_on_failure
        TCP_CHECK {{ }}
    }}
}}
""",
        )
        try:
            async with running(config) as r:
                wl = r.wl
                await until(lambda: wl.checks[0].attempts.has_run)
                assert r.table()[0]["destinations"][0]["weight"] == 5
                await srv.stop()
                await until(lambda: not r.rs()["alive"], what="down")
                assert [d["weight"] for d in r.table()[0]["destinations"]] == [0]  # kept, inhibited
        finally:
            await srv.stop()

    asyncio.run(main())


def test_misc_dynamic_weight(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("0")
    check = script(tmp_path, "check.sh", f"exit $(cat {status})")
    config = load_text(
        tmp_path,
        f"""
virtual_server 127.0.0.10 80 {{
    protocol TCP
    {FAST}
    real_server 127.0.0.1 80 {{
        weight 7
        MISC_CHECK {{
            misc_path "{check}"
            misc_timeout 5
            misc_dynamic
        }}
    }}
}}
""",
    )

    async def body(r: Run) -> None:
        await until(lambda: r.wl.checks[0].runs >= 1)
        assert r.rs()["weight"] == 7
        status.write_text("12")  # misc_dynamic: weight = status - 2
        await until(lambda: r.rs()["weight"] == 10, what="weight 10")
        assert r.table()[0]["destinations"][0]["weight"] == 10
        status.write_text("0")  # back to the configured weight
        await until(lambda: r.rs()["weight"] == 7, what="weight back to 7")
        status.write_text("1")  # the one failing status
        await until(lambda: not r.rs()["alive"], what="down")

    run(config, body)


def test_file_check(tmp_path: Path) -> None:
    tracked = tmp_path / "tracked"
    tracked.write_text("0\n")
    notify, out = recorder(tmp_path)
    config = load_text(
        tmp_path,
        f"""
track_file tf {{
    file {tracked}
    weight 0
}}
virtual_server 127.0.0.10 80 {{
    protocol TCP
    {FAST}
    real_server 127.0.0.1 80 {{
        notify_down "{notify} DOWN"
        notify_up "{notify} UP"
        FILE_CHECK {{
            track_file tf
        }}
    }}
}}
""",
    )

    async def body(r: Run) -> None:
        assert r.rs()["alive"] is True
        tracked.write_text("1\n")
        await until(lambda: "DOWN" in calls(out), what="file check down")
        assert r.rs()["alive"] is False
        tracked.write_text("0\n")
        await until(lambda: calls(out)[-1:] == ["UP"], what="file check up")

    run(config, body)


def test_file_check_verdicts() -> None:
    assert file_check_verdict(0, Weight(0), False) == (True, None)
    assert file_check_verdict(3, Weight(0), False) == (False, None)
    assert file_check_verdict(0, Weight(0, reverse=True), False) == (False, None)
    assert file_check_verdict(4, Weight(5), True) == (True, 20)
    assert file_check_verdict(4, Weight(5, reverse=True), True) == (True, -20)
    assert file_check_verdict(4, Weight(5), False) == (True, None)
    assert file_check_verdict(-(2**40), Weight(1), True) == (False, None)


def test_reload_keeps_state_and_adds_a_real_server(tmp_path: Path) -> None:
    async def main() -> None:
        a, b = await Listener().start(), await Listener().start()

        def text(*ports: int) -> str:
            servers = "".join(f"    real_server 127.0.0.1 {p} {{\n        TCP_CHECK {{ }}\n    }}\n" for p in ports)
            return f"virtual_server 127.0.0.10 80 {{\n    protocol TCP\n    {FAST}\n{servers}}}\n"

        try:
            async with running(load_text(tmp_path, text(a.port))) as r:
                wl = r.wl
                await until(lambda: wl.checks[0].runs >= 2)
                first = wl.checks[0]
                await wl.reload(load_text(tmp_path, text(a.port, b.port)))
                assert wl.checks[0] is first  # same checker, same timer and counters
                assert len(wl.checks) == 2
                await until(lambda: wl.checks[1].runs >= 1, what="new checker ran")
                assert [d["port"] for d in r.table()[0]["destinations"]] == sorted([a.port, b.port])
                assert len([k for k in r.state() if "->" in k]) == 2
                await wl.reload(load_text(tmp_path, text(b.port)))
                assert first.gone and len(wl.checks) == 1
                assert [d["port"] for d in r.table()[0]["destinations"]] == [b.port]
                assert len([k for k in r.state() if "->" in k]) == 1  # the removed one is reported gone
                assert rs_key(wl.checks[0].rs) in r.state()
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(main())


def test_a_reload_that_fails_says_what_switched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure before the servers migrate rolls the notify settings back (the running
    configuration is kept); a failure after it is reported as a partial switch."""

    async def main() -> None:
        srv = await Listener().start()
        fifo_a, fifo_b = tmp_path / "a.fifo", tmp_path / "b.fifo"

        def text(fifo: Path, *ports: int) -> str:
            servers = "".join(f"    real_server 127.0.0.1 {p} {{\n        TCP_CHECK {{ }}\n    }}\n" for p in ports)
            return (
                f"global_defs {{\n    lvs_notify_fifo {fifo}\n}}\n"
                f"virtual_server 127.0.0.10 80 {{\n    protocol TCP\n    {FAST}\n{servers}}}\n"
            )

        try:
            async with running(load_text(tmp_path, text(fifo_a, srv.port))) as r:
                wl = r.wl
                assert wl.runner is not None
                before = wl.notifier.config

                def broken(*args: object) -> Any:
                    raise RuntimeError("broken")

                with monkeypatch.context() as m:
                    m.setattr(Fifos, "for_lvs", broken)
                    with pytest.raises(ReloadFailed) as failed:
                        await wl.reload(load_text(tmp_path, text(fifo_b, srv.port, srv.port + 1)))
                assert not failed.value.partial
                assert failed.value.rolled_back == ("notify FIFOs and SMTP alerts",)
                assert wl.notifier.config is before and wl.config is not None and len(wl.checks) == 1
                with monkeypatch.context() as m:
                    m.setattr(wl.runner, "load", broken)
                    with pytest.raises(ReloadFailed) as failed:
                        await wl.reload(load_text(tmp_path, text(fifo_b, srv.port, srv.port + 1)))
                assert failed.value.partial
                assert failed.value.switched == ("notify FIFOs and SMTP alerts", "real and virtual servers", "checkers")
                assert failed.value.not_applied == ("ha_suspend",)
        finally:
            await srv.stop()

    asyncio.run(main())


def test_stop_runs_omega_scripts(tmp_path: Path) -> None:
    notify, out = recorder(tmp_path)

    async def main() -> None:
        srv = await Listener().start()
        config = load_text(
            tmp_path,
            f"""
virtual_server 127.0.0.10 80 {{
    protocol TCP
    {FAST}
    omega
    quorum_down "{notify} QUORUM_DOWN"
    real_server 127.0.0.1 {srv.port} {{
        notify_down "{notify} RS_DOWN"
        TCP_CHECK {{ }}
    }}
}}
""",
        )
        wl = CheckerWorkload()
        await wl.start(config, lambda c: None)
        await until(lambda: wl.checks[0].runs >= 1)
        await wl.stop()
        await srv.stop()

    asyncio.run(main())
    assert sorted(calls(out)) == ["QUORUM_DOWN", "RS_DOWN"]


def test_dumps_have_the_servers(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        f"""
virtual_server 127.0.0.10 80 {{
    protocol TCP
    {FAST}
    real_server 127.0.0.1 1 {{
        TCP_CHECK {{ }}
    }}
}}
""",
    )

    async def body(r: Run) -> None:
        await until(lambda: r.wl.checks[0].runs >= 1)
        data = await r.wl.dump(DumpKind.DATA)
        assert "------< Health checkers >------" in data
        assert " [127.0.0.1]:tcp:1" in data and "Keepalive method = TCP_CHECK" in data
        stats = await r.wl.dump(DumpKind.STATS)
        assert "Checks started =" in stats
        doc = await r.dump()
        assert doc["virtual_servers"][0]["vs"] == "[127.0.0.10]:tcp:80"
        assert doc["virtual_servers"][0]["real_servers"][0]["checkers"][0]["type"] == "TCP_CHECK"
        assert doc["ipvs"]["table"][0]["service"] == "127.0.0.10:80"

    run(config, body)


def test_ha_suspend_follows_the_address(lab2: Lab, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    """ha_suspend: no service and no checks while the virtual server's address is not on
    the host; both start when it is added, and stop when it goes (in a lab namespace)."""
    node = lab2.node(1)
    config = load_text(
        tmp_path,
        f"""
virtual_server 192.0.2.77 80 {{
    protocol TCP
    {FAST}
    ha_suspend
    real_server 127.0.0.1 9 {{
        TCP_CHECK {{ }}
    }}
}}
""",
    )

    async def main() -> None:
        async with running(config) as r:
            wl = r.wl
            await asyncio.sleep(0.5)
            assert r.vs()["suspended"] is True and r.table() == []
            assert wl.checks[0].runs == 0
            await asyncio.to_thread(node.add_address, "192.0.2.77/32")
            await until(lambda: not r.vs()["suspended"], what="activated")
            assert r.table()[0]["service"] == "192.0.2.77:80"
            await until(lambda: wl.checks[0].runs >= 1, what="checks resumed")
            await asyncio.to_thread(node.del_address, "192.0.2.77/32")
            await until(lambda: r.vs()["suspended"], what="suspended again")
            assert r.table() == []

    with node.inside():
        asyncio.run(main())


def test_stop_puts_ping_group_range_back(lab2: Lab, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    """PING_CHECK widens ping_group_range for its ping sockets (a fresh namespace starts
    with "1 0"); the checker's stop puts the namespace's value back, as keepalived's exit."""
    node = lab2.node(1)
    config = load_text(
        tmp_path,
        f"""
virtual_server 127.0.0.1 80 {{
    protocol TCP
    {FAST}
    real_server 127.0.0.1 80 {{
        PING_CHECK {{ }}
    }}
}}
""",
    )

    async def main() -> tuple[int, int] | None:
        async with running(config) as r:
            wl = r.wl
            await until(lambda: wl.checks[0].runs >= 1, what="a ping")
            return ping.read_group_range()

    with node.inside():
        before = ping.read_group_range()
        during = asyncio.run(main())
        after = ping.read_group_range()
    assert before == (1, 0) and during is not None and during[0] == 0
    assert after == before
