"""keepalived's own sample configs: every one parses; those keepalived 2.2.7 accepts
draw no error and no unknown keyword from us either. What keepalived accepts is asked
of keepalived itself, so this stays true to the reference."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import conf
from conf.diagnostics import Severity

SAMPLES = Path("/usr/share/doc/keepalived/samples")
CONFIGS = sorted(p for p in SAMPLES.glob("keepalived.conf.*") if p.is_file())
# keepalived -t lines that do not mean "rejected": interfaces that do not exist on this
# host, and its own warnings.
_HARMLESS = re.compile(r"doesn't exist|Non-existent interface|cannot track route|deprecated|Warning|WARNING")


@functools.cache
def keepalived_verdict(path: Path, config_id: str) -> tuple[int, tuple[str, ...]]:
    r = subprocess.run(
        ["keepalived", "-t", "-i", config_id, "-f", str(path)], capture_output=True, text=True, timeout=60
    )
    problems = tuple(sorted({line for line in r.stderr.splitlines() if line and not _HARMLESS.search(line)}))
    return r.returncode, problems


def test_samples_are_installed() -> None:
    assert shutil.which("keepalived"), "make installs Debian's keepalived: the reference"
    assert len(CONFIGS) >= 25


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name.removeprefix("keepalived.conf."))
@pytest.mark.parametrize("config_id", ["node1", "high"])
def test_sample(path: Path, config_id: str) -> None:
    result = conf.load(str(path), config_id=config_id, interfaces=frozenset({"eth0"}))
    assert result.config is not None
    rc, problems = keepalived_verdict(path, config_id)
    if rc == 0 and not problems:
        ours = [
            d.render(test_mode=True)
            for d in result.diagnostics.items
            if d.severity in (Severity.FATAL, Severity.ERROR, Severity.RESET, Severity.SECURITY)
            or "unknown keyword" in d.message
        ]
        assert ours == [], f"keepalived accepts {path.name}, we report: {ours}"
    else:
        # keepalived complains: so must we (the exit code under -t is non-zero).
        assert result.diagnostics.exit_code() != 0, f"keepalived says {problems}, we say nothing"
