from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.haparent.daemon_util import CONFIG, Daemon, short_tmpdir


@pytest.fixture
def daemon() -> Iterator[Callable[..., Daemon]]:
    """Make daemons; every one is killed (with all its processes) after the test, pass or fail."""
    made: list[Daemon] = []

    def make(config: str = CONFIG, args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Daemon:
        d = Daemon(short_tmpdir(), config, args, env)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)
