"""watchdog.fifo: the line formats (keepalived 2.2.7's, as measured with its vrrp_notify_fifo),
then real FIFOs: creation and removal, one open for a shared path, a full FIFO that drops
instead of blocking, and the FIFO script started with the path and stopped at close."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import stat
import time
from pathlib import Path

import pytest

from conf.global_defs import GlobalDefs, NotifyFifo
from conf.values import Script
from watchdog.fifo import Fifos, fmt_vs, group_line, instance_line, rs_line, trio, vs_line
from watchdog.scripts import ScriptRunner


def test_vrrp_lines_are_keepalived_s() -> None:
    # Captured from keepalived 2.2.7 (vrrp_notify_fifo with a sync group G1 of VI_1).
    assert instance_line("VI_1", "MASTER", 150) == 'INSTANCE "VI_1" MASTER 150'
    assert group_line("G1", "BACKUP") == 'GROUP "G1" BACKUP 0'


def test_checker_lines() -> None:
    vs = fmt_vs(ipaddress.ip_address("10.0.0.1"), "TCP", 80)
    rs = trio(ipaddress.ip_address("192.168.1.1"), "TCP", 8080)
    assert vs_line(vs, True) == "VS [10.0.0.1]:tcp:80 UP"
    assert rs_line(rs, vs, False) == "RS [192.168.1.1]:tcp:8080 [10.0.0.1]:tcp:80 DOWN"
    assert fmt_vs(fwmark=5) == "FWM 5"
    assert fmt_vs(group="web", port=443) == "[web]:443"
    assert fmt_vs(ipaddress.ip_address("2001:db8::1"), "UDP", 53) == "[2001:db8::1]:udp:53"


def read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_created_written_and_removed(tmp_path: Path) -> None:
    path = str(tmp_path / "vrrp.fifo")
    gdefs = GlobalDefs(notify_fifo=NotifyFifo(path), vrrp_notify_fifo=NotifyFifo(path))

    async def main() -> bytes:
        fifos = Fifos.for_vrrp(gdefs, None)
        assert fifos.paths == [path]  # the same path opens once
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_ISFIFO(os.stat(path).st_mode)
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        fifos.send(instance_line("VI_1", "MASTER", 100))
        fifos.send(group_line("G1", "MASTER") + "\n")
        data = read_all(reader)
        os.close(reader)
        await fifos.close()
        return data

    assert asyncio.run(main()) == b'INSTANCE "VI_1" MASTER 100\nGROUP "G1" MASTER 0\n'
    assert not os.path.exists(path)


def test_existing_fifo_is_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "lvs.fifo")
    os.mkfifo(path, 0o644)

    async def main() -> None:
        fifos = Fifos.for_lvs(GlobalDefs(lvs_notify_fifo=NotifyFifo(path)), None)
        fifos.send(vs_line("FWM 1", True))
        await fifos.close()

    asyncio.run(main())
    assert stat.S_ISFIFO(os.stat(path).st_mode) and stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_not_a_fifo_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "plain"
    path.write_text("")
    fifos = Fifos.for_vrrp(GlobalDefs(notify_fifo=NotifyFifo(str(path))), None)
    assert not fifos and "is not a FIFO" in caplog.text
    fifos.send("INSTANCE x")  # nothing to write to, nothing raised


def test_full_fifo_drops_without_blocking(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = str(tmp_path / "full.fifo")

    async def main() -> tuple[float, int, bytes]:
        fifos = Fifos.for_vrrp(GlobalDefs(vrrp_notify_fifo=NotifyFifo(path)), None)
        line = instance_line("VI_" + "x" * 60, "BACKUP", 100)
        start = time.monotonic()
        for _ in range(5000):  # ~400 kB into a 64 kB pipe nobody reads
            fifos.send(line)
        took = time.monotonic() - start
        dropped = fifos.dropped
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        data = read_all(reader)
        os.close(reader)
        await fifos.close()
        return took, dropped, data

    took, dropped, data = asyncio.run(main())
    assert took < 1.0
    assert dropped > 0
    lines = data.split(b"\n")[:-1]
    assert len(lines) + dropped == 5000
    assert all(line.startswith(b'INSTANCE "VI_x') and line.endswith(b" BACKUP 100") for line in lines)  # none torn
    assert caplog.text.count("is full") == 1  # once per burst


def test_fifo_script_gets_the_path_and_is_stopped(tmp_path: Path) -> None:
    path = str(tmp_path / "s.fifo")
    out = tmp_path / "out"
    pidfile = tmp_path / "pid"
    script = tmp_path / "reader.sh"
    script.write_text(f'#!/bin/sh\necho $$ > {pidfile}\necho "$1" > {out}.arg\nexec cat "$1" > {out}\n')
    script.chmod(0o755)
    gdefs = GlobalDefs(vrrp_notify_fifo=NotifyFifo(path), vrrp_notify_fifo_script=Script((str(script),)))

    async def main() -> int:
        runner = ScriptRunner(["root"])
        fifos = Fifos.for_vrrp(gdefs, runner)
        for _ in range(200):
            if out.exists() and pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.01)
        fifos.send(instance_line("VI_1", "FAULT", 0))
        for _ in range(200):
            if out.read_text():
                break
            await asyncio.sleep(0.01)
        pid = int(pidfile.read_text())
        await fifos.close()
        await runner.stop()
        return pid

    pid = asyncio.run(main())
    assert Path(f"{out}.arg").read_text().strip() == path
    assert out.read_text() == 'INSTANCE "VI_1" FAULT 0\n'
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not os.path.exists(path)
