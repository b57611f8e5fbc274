"""`pip install .` into a fresh venv gives a working `pykeepalived` command."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_into_a_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("pykeepalived-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("haparent", "watchdog", "conf", "vrrp_child", "checker_child"):
        assert f"{package}/__init__.py" in names
    assert not any(n.startswith("tests/") for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    requires = zipfile.ZipFile(wheel).read(metadata).decode()
    for dep in ("pyroute2", "psutil", "sdnotify", "python-daemon", "setproctitle"):
        assert f"Requires-Dist: {dep}" in requires

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # With its dependencies, from the package index, as a user installs it.
    subprocess.run([venv / "bin" / "pip", "install", "-q", str(wheel)], check=True, timeout=600, cwd=tmp_path)
    r = subprocess.run(
        [venv / "bin" / "pykeepalived", "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert r.returncode == 0 and "pykeepalived v" in r.stderr  # keepalived prints -v on stderr
    r = subprocess.run(
        [venv / "bin" / "pykeepalived", "-t", "-f", str(ROOT / "contrib/examples/keepalived.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode in (0, 6), r.stderr  # 6: the example's script may not be installed securely here
