"""A notify FIFO that cannot be opened is remembered with why (the child reports it degraded)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conf.global_defs import NotifyFifo
from watchdog.fifo import Fifos


def test_failed_fifos_are_kept_with_their_reason(tmp_path: Path) -> None:
    async def run() -> None:
        missing = str(tmp_path / "no-such-dir" / "fifo")
        not_fifo = tmp_path / "plain"
        not_fifo.write_text("")
        good = str(tmp_path / "good")
        specs = [(NotifyFifo(missing), None), (NotifyFifo(str(not_fifo)), None), (NotifyFifo(good), None)]
        fifos = Fifos(specs, None)  # type: ignore[arg-type]
        try:
            assert fifos.paths == [good]
            assert fifos.failed == {missing: "No such file or directory", str(not_fifo): "exists and is not a FIFO"}
        finally:
            await fifos.close()

    asyncio.run(run())
