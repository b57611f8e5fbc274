"""Root-owned files are written safely (keepalived's CVE-2018-19044/19045/19046 class): the
real daemon, its dumps into a $TMPDIR full of planted symlinks pointing at root-only
victims, and pidfiles (-p/-r/-c) that are symlinks. Victims stay untouched; dumps are
regular files of mode 0600; a symlinked pidfile is refused with a clear message."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from haparent.pidfile import PidFile
from labkit.lab import wait_for
from tests.haparent.daemon_util import Daemon

MakeDaemon = Callable[..., Daemon]

DUMPS = {
    "parent": ["keepalived_parent.data"],
    "vrrp": ["keepalived.data", "keepalived.stats", "keepalived.json"],
    "checker": ["keepalived_check.data", "keepalived_check.stats", "keepalived_check.json"],
}
ALL_DUMPS = [name for names in DUMPS.values() for name in names]


@pytest.fixture
def secret(tmp_path: Path) -> Iterator[Path]:
    """A directory of root-only victim files."""
    d = tmp_path / "secret"
    d.mkdir(mode=0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def plant(link: Path, secret: Path) -> Path:
    """A symlink at `link` to a fresh root-only victim file; returns the victim."""
    v = secret / f"victim-{link.name}"
    v.write_text(f"precious {link.name}\n")
    v.chmod(0o600)
    link.symlink_to(v)
    return v


def assert_untouched(victims: list[Path]) -> None:
    for v in victims:
        assert v.read_text() == f"precious {v.name.removeprefix('victim-')}\n", v
        assert stat.S_IMODE(v.stat().st_mode) == 0o600


def regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def test_dumps_never_follow_planted_symlinks(daemon: MakeDaemon, secret: Path) -> None:
    d = daemon().start()  # TMPDIR is the daemon's work directory
    d.wait_ready()
    pids = {which: d.pid(which) for which in DUMPS}
    assert all(pids.values()), (pids, d.log_text())
    victims: list[Path] = []
    for which, names in DUMPS.items():
        for name in names:
            victims.append(plant(d.dir / name, secret))
            # The name the old code predicted (NAME.PID.tmp): planted, and never used.
            victims.append(plant(d.dir / f"{name}.{pids[which]}.tmp", secret))
    d.signal(signal.SIGUSR1)
    d.signal(signal.SIGUSR2)
    d.signal(signal.SIGRTMIN + 2)
    wait_for("the dumps", lambda: all(regular(d.dir / n) for n in ALL_DUMPS) or None, 10)
    assert_untouched(victims)
    for name in ALL_DUMPS:
        st = os.lstat(d.dir / name)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, name
        assert st.st_uid == os.getuid()
    assert f"Pid = {pids['vrrp']}" in (d.dir / "keepalived.data").read_text()
    leftovers = [p.name for p in d.dir.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]
    assert leftovers == []
    d.signal(signal.SIGTERM)
    assert d.proc is not None and d.proc.wait(timeout=15) == 0
    assert_untouched(victims)


def test_dumps_into_a_sticky_world_writable_tmpdir(daemon: MakeDaemon, secret: Path) -> None:
    d = daemon()
    shared = d.dir / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    d.env["TMPDIR"] = str(shared)
    d.start()
    d.wait_ready()
    link = shared / "keepalived_parent.data"
    victim = plant(link, secret)
    os.lchown(link, 65534, 65534)  # planted by another user
    d.signal(signal.SIGUSR1)
    data = ["keepalived_parent.data", "keepalived.data", "keepalived_check.data"]
    wait_for("the data dumps", lambda: all(regular(shared / n) for n in data) or None, 10)
    assert_untouched([victim])
    assert stat.S_IMODE(os.lstat(link).st_mode) == 0o600


@pytest.mark.parametrize("which", ["parent", "vrrp", "checker"])
def test_a_symlinked_pidfile_is_refused(daemon: MakeDaemon, secret: Path, which: str) -> None:
    d = daemon()
    victim = plant(d.pidfiles[which], secret)
    with open(d.log, "ab") as log:
        code = subprocess.run(
            d.command("-n"), stdout=log, stderr=subprocess.STDOUT, env=d.env, cwd=d.dir, timeout=30
        ).returncode
    assert code == 1
    text = d.log_text()
    assert f"cannot open pidfile {d.pidfiles[which]}: it is a symbolic link: refusing" in text, text
    assert "Traceback" not in text
    assert_untouched([victim])
    assert d.pidfiles[which].is_symlink()  # left as it was


def test_pidfile_acquire_refuses_symlinks_and_non_regular_files(tmp_path: Path, secret: Path) -> None:
    link = tmp_path / "p.pid"
    victim = plant(link, secret)
    with pytest.raises(OSError) as e:
        PidFile(str(link)).acquire()
    assert e.value.errno == errno.ELOOP and e.value.strerror == "it is a symbolic link: refusing"
    assert e.value.filename == str(link)
    assert_untouched([victim])

    fifo = tmp_path / "f.pid"
    os.mkfifo(fifo)
    with pytest.raises(OSError) as e:
        PidFile(str(fifo)).acquire()
    assert e.value.strerror == "it is not a regular file: refusing"

    ok = PidFile(str(tmp_path / "ok.pid"))
    ok.acquire()
    ok.write(123)
    assert (tmp_path / "ok.pid").read_text() == "123\n"
    ok.release()
