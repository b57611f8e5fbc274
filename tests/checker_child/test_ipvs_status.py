"""What the checker says about IPVS: not programmed (and why) without it in the kernel, a
permanent error (exit 4) when the kernel has it but refuses us."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from checker_child import dumps
from checker_child import ipvs as ipvs_mod
from checker_child.workload import CheckerWorkload
from conf import load
from watchdog.protocol import Json
from watchdog.runtime import EXIT_MISSING_PERMISSION, PermanentError
from watchdog.status import IPVS_KEY, NO_IPVS_IN_KERNEL, degraded_of, ipvs_of

CONF = """
virtual_server 127.0.0.1 8081 {
    delay_loop 60
    protocol TCP
    real_server 127.0.0.1 8082 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


class _NetlinkError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code, "refused")
        self.code = code


class _RefusingIpvs:
    """pyroute2's IPVS socket as the kernel answers a process without CAP_NET_ADMIN."""

    closed = False

    def service(self, cmd: str, *args: Any) -> Any:
        raise _NetlinkError(errno.EPERM)

    def close(self) -> None:
        _RefusingIpvs.closed = True


def test_ipvs_refused_for_permission_is_its_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ipvs_mod, "kernel_has_ipvs", lambda: True)
    monkeypatch.setattr(ipvs_mod, "IPVS", _RefusingIpvs)
    with pytest.raises(ipvs_mod.IpvsNoPermission, match="Operation not permitted"):
        ipvs_mod.Ipvs()
    assert _RefusingIpvs.closed


def config(tmp_path: Path, text: str = CONF) -> Any:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    result = load(str(path))
    assert result.config is not None
    return result.config


def test_checker_without_permission_stops_before_it_starts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ipvs_mod, "kernel_has_ipvs", lambda: True)
    monkeypatch.setattr(ipvs_mod, "IPVS", _RefusingIpvs)
    wl = CheckerWorkload()

    async def run() -> None:
        with pytest.raises(PermanentError) as raised:
            await wl.start(config(tmp_path), lambda changes: None)
        assert raised.value.exit_code == EXIT_MISSING_PERMISSION
        assert "CAP_NET_ADMIN" in str(raised.value)
        await wl.stop()  # nothing was held: stop has nothing to do and must not fail

    asyncio.run(run())


def test_no_ipvs_in_the_kernel_is_reported_and_dumped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ipvs_mod, "kernel_has_ipvs", lambda: False)
    text = f"global_defs {{\n    lvs_notify_fifo {tmp_path}/missing/fifo\n}}\n" + CONF
    state: dict[str, Json] = {}

    def report(changes: Mapping[str, Json]) -> None:
        state.update(changes)

    wl = CheckerWorkload()

    async def run() -> None:
        await wl.start(config(tmp_path, text), report)
        try:
            assert ipvs_of(state) == NO_IPVS_IN_KERNEL
            assert [d.text for d in degraded_of(state)] == [
                f"notify FIFO {tmp_path}/missing/fifo: No such file or directory"
            ]
            doc: Any = dumps.json_dump(wl)
            assert doc["ipvs"]["programmed"] is False
            assert doc["ipvs"]["not_programmed_because"] == "no IPVS in the kernel"
            assert doc["degraded"][0]["key"] == f"fifo:{tmp_path}/missing/fifo"
            assert " IPVS = not programmed: no IPVS in the kernel" in dumps.data_text(wl)
        finally:
            await wl.stop()

    asyncio.run(run())
    assert IPVS_KEY in state
