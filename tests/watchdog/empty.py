"""A workload that holds nothing, for the tests of the child runtime (watchdog/runtime.py) that
need a child without VRRP or checkers. It starts, reloads, dumps and stops."""

from __future__ import annotations

from collections.abc import Mapping

from conf.model import Config
from watchdog.protocol import DumpKind, Json
from watchdog.runtime import Report


class EmptyWorkload:
    async def resume(self, state: Mapping[str, Json]) -> None:
        return None

    async def start(self, config: Config, report: Report) -> None:
        return None

    async def reload(self, config: Config) -> None:
        return None

    async def dump(self, kind: DumpKind) -> str:
        # keepalived's JSON dump is an array of instances: here, none.
        return "[]\n" if kind is DumpKind.JSON else " No workload in this process\n"

    async def stop(self) -> None:
        return None
