"""Fixtures for the tests under a real systemd: the cached root filesystem and one booted container."""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.systemd.harness import Container, rootfs


@pytest.fixture(scope="session")
def systemd_rootfs() -> Path:
    if os.geteuid() != 0:
        pytest.skip("booting a systemd container needs root (CI runs as root)")
    return rootfs()


@pytest.fixture(scope="session")
def share_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host directory the container sees read-only at /run/pkt-share (wheels, the stand-in)."""
    return tmp_path_factory.mktemp("systemd-share")


@pytest.fixture(scope="module")
def container(systemd_rootfs: Path, share_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    workdir = tmp_path_factory.mktemp("systemd-container")
    started = time.monotonic()
    with Container(systemd_rootfs, workdir, binds=[(share_dir, "/run/pkt-share")]) as c:
        print(f"container booted in {time.monotonic() - started:.1f} s")
        yield c


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Lets a fixture see whether its test failed (and then print the unit's journal).
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep
