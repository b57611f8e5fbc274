"""Runs the real child runtime in its own process for tests/watchdog/test_runtime.py:
`python -m tests.watchdog.child_host WORKLOAD READ_FD WRITE_FD CONFIG INTERVAL TIMEOUT`."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

import conf
from conf.model import Config
from tests.watchdog.empty import EmptyWorkload
from tests.watchdog.heap import heap_with_holes
from watchdog.heartbeat import HeartbeatSettings
from watchdog.protocol import DumpKind, Json
from watchdog.reload import Step, apply_steps
from watchdog.runtime import EXIT_MISSING_PERMISSION, ChildSetup, PermanentError, Report, Workload, run_child
from watchdog.status import degraded


class Reporting(EmptyWorkload):
    """Reports what it resumed from and each config it is given, so the test can see them."""

    async def resume(self, state: Mapping[str, Json]) -> None:
        self.resumed = dict(state)

    async def start(self, config: Config, report: Report) -> None:
        self.report = report
        report({"resumed": getattr(self, "resumed", None), "instances": len(config.virtual_server)})

    async def reload(self, config: Config) -> None:
        self.report({"instances": len(config.virtual_server)})


class NoPermission(EmptyWorkload):
    async def start(self, config: Config, report: Report) -> None:
        raise PermanentError("cannot open a raw socket: Operation not permitted", EXIT_MISSING_PERMISSION)


class StillDegraded(EmptyWorkload):
    """Raises one of the conditions its predecessor had reported ("b"), not the other."""

    async def start(self, config: Config, report: Report) -> None:
        report(degraded("b", "still broken"))


class HalfReload(EmptyWorkload):
    """A reload that fails after a step that cannot be undone (watchdog.reload)."""

    async def reload(self, config: Config) -> None:
        steps = [Step("routes", lambda: None), Step("trackers", _broken, lambda: None)]
        apply_steps(steps)


def _broken() -> None:
    raise OSError("trackers broke")


class BlockingDump(EmptyWorkload):
    async def dump(self, kind: DumpKind) -> str:
        time.sleep(1.5)  # blocks the loop on purpose: heartbeats must stop meanwhile
        return "slow\n"


class LeavesHoles(EmptyWorkload):
    """Its start and each reload free 35 MB of C heap between objects it keeps: the runtime
    must give those pages back (watchdog.heaptrim); test_heaptrim reads the child's heap."""

    async def start(self, config: Config, report: Report) -> None:
        self.kept = heap_with_holes()

    async def reload(self, config: Config) -> None:
        self.kept += heap_with_holes()


WORKLOADS: dict[str, type[Workload]] = {
    "reporting": Reporting,
    "no-permission": NoPermission,
    "blocking": BlockingDump,
    "still-degraded": StillDegraded,
    "half-reload": HalfReload,
    "leaves-holes": LeavesHoles,
}


def main(argv: list[str]) -> int:
    name, read_fd, write_fd, path, interval, timeout = argv
    result = conf.load(path, config_id="node1")
    assert result.config is not None
    setup = ChildSetup(
        role="checker",
        name="Healthcheck child",
        config=result.config,
        config_file=path,
        config_id="node1",
        all_config=False,
        heartbeat=HeartbeatSettings(float(interval), float(timeout)),
        read_fd=int(read_fd),
        write_fd=int(write_fd),
        version="test",
    )
    return run_child(setup, WORKLOADS[name]())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
