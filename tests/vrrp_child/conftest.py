"""The namespace tests here run on `Lab.pair()` of labkit/lab.py: node 1 on va (192.0.2.1/24,
2001:db8::1/64, fe80::1/64), node 2 on vb (.2, ::2, fe80::2), both on the lab's switch. `pair` is a
fresh one per test, torn down after it, pass or fail (the tails of its daemons' logs are printed when
the test failed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.lab import Lab

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    failed_before = request.session.testsfailed
    with Lab.pair(workdir=tmp_path / "lab") as lab:
        try:
            yield lab
        finally:
            if request.session.testsfailed > failed_before:
                print(f"\n===== logs of {lab.tag} (kept in {lab.workdir})\n{lab.logs()}")
