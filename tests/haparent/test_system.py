"""haparent.system.RealSystem.spawn: what the parent holds is frozen before the fork (issue 15),
so neither process's garbage collections write to it and the pages stay shared."""

from __future__ import annotations

import dataclasses
import gc
import os

from haparent.system import RealSystem


def test_spawn_freezes_the_parents_objects_and_the_child_runs() -> None:
    system = RealSystem()
    kept = [object() for _ in range(100)]
    gc.unfreeze()
    spawned = system.spawn(lambda read_fd, write_fd: 7 if os.write(write_fd, b"ok\n") == 3 else 1, ())
    try:
        assert gc.get_freeze_count() > len(kept)
        _, status = os.waitpid(spawned.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7
        assert os.read(spawned.read_fd, 16) == b"ok\n"
    finally:
        gc.unfreeze()
        os.close(spawned.read_fd)
        os.close(spawned.write_fd)


def test_a_child_forked_during_a_reload_collects_cycles() -> None:
    """The parent reads a reload's configuration in a thread with the cycle collector paused
    (conf.loader); a child forked meanwhile must not keep it paused for life."""
    from haparent.child import child_entry
    from haparent.options import Options
    from haparent.specs import VRRP
    from tests.haparent.test_supervisor import BOTH
    from watchdog.heartbeat import HeartbeatSettings

    spec = dataclasses.replace(VRRP, module="tests.haparent.gc_child")  # exits 0 when collecting
    main = child_entry(spec, BOTH, Options(), HeartbeatSettings(1.0, 3.0), lambda spec: None)
    gc.disable()
    try:
        assert main(-1, -1) == 0
    finally:
        gc.enable()
