"""haparent.system.RealSystem.spawn: what the parent holds is frozen before the fork (issue 15),
so neither process's garbage collections write to it and the pages stay shared."""

from __future__ import annotations

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
