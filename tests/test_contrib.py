"""The bundled configurations (`make demo`, the README's examples) stay valid for us and for
keepalived 2.2.7 itself: `-t` exits 0, for each config-id the demo uses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "contrib" / "examples"
CASES = [("keepalived.conf", None), ("demo.conf", "node1"), ("demo.conf", "node2")]


def check(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("name", "config_id"), CASES)
def test_pykeepalived_accepts_the_examples(name: str, config_id: str | None) -> None:
    argv = [sys.executable, "-m", "haparent.cli", "-t", "-f", str(EXAMPLES / name)]
    r = check(argv + (["-i", config_id] if config_id else []))
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
@pytest.mark.parametrize(("name", "config_id"), CASES)
def test_keepalived_accepts_the_examples(name: str, config_id: str | None) -> None:
    argv = ["keepalived", "-t", "-l", "-f", str(EXAMPLES / name)]
    r = check(argv + (["-i", config_id] if config_id else []))
    assert r.returncode == 0, r.stdout + r.stderr
