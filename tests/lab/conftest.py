"""Lab fixtures: `lab2` and `lab3` (two and three nodes), `make_lab` for other sizes.

Tests in other directories use them with `from tests.lab.conftest import lab2, lab3, lab_tools, make_lab`
in their own conftest.py. Every lab is torn down after its test, pass, fail or Ctrl-C; when the test
failed, the tails of the daemons' logs are printed (pytest shows them under "Captured stdout teardown").
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from labkit.lab import Lab, cleanup_stale, ensure_tools


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def lab_tools() -> Iterator[None]:
    """Root, the tools (installed with apt-get when missing), and no leftovers of a killed run."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root for network namespaces (CI runs as root)")
    ensure_tools("ip", "keepalived", "tcpdump", "tshark")
    cleanup_stale()
    # SIGTERM (a CI timeout, `kill`) would end pytest without running any finalizer; as a KeyboardInterrupt
    # it tears the labs down like Ctrl-C does. Only SIGKILL is left to cleanup_stale() of the next run.
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def make_lab(lab_tools: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[int], Lab]]:
    labs: list[Lab] = []
    # The call phase's report is counted before fixtures are torn down: a rise means this test failed.
    failed_before = request.session.testsfailed

    def make(n: int = 2) -> Lab:
        lab = Lab(n, workdir=tmp_path / f"lab{len(labs) + 1}")
        labs.append(lab)
        return lab.open()

    try:
        yield make
    finally:
        failed = request.session.testsfailed > failed_before
        errors: list[Exception] = []
        for lab in labs:
            if failed:
                print(f"\n===== logs of {lab.tag} (kept in {lab.workdir})\n{lab.logs()}")
            try:
                lab.close()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def lab2(make_lab: Callable[[int], Lab]) -> Lab:
    return make_lab(2)


@pytest.fixture
def lab3(make_lab: Callable[[int], Lab]) -> Lab:
    return make_lab(3)
