"""watchdog.safefile.write_atomic: symlinks planted at the final name or at a temporary
name a predictable scheme would use are never followed; the temporary name is random and
created O_EXCL|O_NOFOLLOW, mode 0600; nothing is left behind on failure."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from conf.global_defs import GlobalDefs, NotifyFifo
from watchdog import safefile
from watchdog.fifo import Fifos
from watchdog.safefile import write_atomic

NOBODY = 65534


def victim(tmp_path: Path, name: str = "victim") -> Path:
    """A root-only file somewhere else that an attacker would like root to overwrite."""
    d = tmp_path / "secret"
    d.mkdir(exist_ok=True)
    v = d / name
    v.write_text("precious\n")
    v.chmod(0o600)
    return v


def assert_private_regular(path: Path, text: str) -> None:
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert path.read_text() == text


def test_a_symlink_at_the_final_name_is_replaced_not_followed(tmp_path: Path) -> None:
    v = victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dump = out / "pykeepalived.data"
    dump.symlink_to(v)
    write_atomic(str(dump), "the dump\n")
    assert v.read_text() == "precious\n" and stat.S_IMODE(v.stat().st_mode) == 0o600
    assert_private_regular(dump, "the dump\n")
    assert sorted(p.name for p in out.iterdir()) == ["pykeepalived.data"]  # no temporary left


def test_the_old_predictable_temporary_name_is_not_used(tmp_path: Path) -> None:
    v = victim(tmp_path)
    dump = tmp_path / "pykeepalived.data"
    planted = tmp_path / f"pykeepalived.data.{os.getpid()}.tmp"
    planted.symlink_to(v)
    write_atomic(str(dump), "the dump\n")
    assert v.read_text() == "precious\n"
    assert os.path.islink(planted)  # untouched, and not renamed into place either
    assert_private_regular(dump, "the dump\n")


def test_temporary_names_are_random_and_created_exclusively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kw: Any) -> int:
        opened.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *args, **kw)

    monkeypatch.setattr(os, "open", spy)
    dump = str(tmp_path / "pykeepalived.json")
    write_atomic(dump, "[]\n")
    write_atomic(dump, "[]\n")
    monkeypatch.undo()
    temps = [(p, f, m) for p, f, m in opened if os.path.dirname(p) == str(tmp_path)]
    assert len(temps) == 2 and temps[0][0] != temps[1][0]
    for path, flags, mode in temps:
        want = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        assert flags & want == want and mode == 0o600
        assert path != dump and str(os.getpid()) not in os.path.basename(path)
    assert_private_regular(Path(dump), "[]\n")


def test_a_sticky_world_writable_directory_works_as_before(tmp_path: Path) -> None:
    v = victim(tmp_path)
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    dump = shared / "pykeepalived.stats"
    dump.symlink_to(v)
    os.lchown(dump, NOBODY, NOBODY)  # planted by another user, as in /tmp
    write_atomic(str(dump), b"stats\n")
    assert v.read_text() == "precious\n"
    assert_private_regular(dump, "stats\n")
    assert os.stat(dump).st_uid == os.getuid()


def test_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(str(tmp_path / "f"), "x", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o644


def test_a_failed_write_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()  # rename onto a directory fails
    with pytest.raises(OSError):
        write_atomic(str(tmp_path / "busy"), "x")
    assert [p.name for p in tmp_path.iterdir()] == ["busy"]
    assert safefile.FILE_MODE == 0o600


def test_a_symlink_at_a_notify_fifo_path_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # watchdog.fifo reviewed the same way: a symlink to a root-only file, or even to a FIFO,
    # is neither written to nor chowned nor removed.
    v = victim(tmp_path)
    real_fifo = tmp_path / "elsewhere.fifo"
    os.mkfifo(real_fifo, 0o600)
    for target in (v, real_fifo):
        link = tmp_path / f"notify-{target.name}"
        link.symlink_to(target)
        fifos = Fifos.for_vrrp(GlobalDefs(notify_fifo=NotifyFifo(str(link), user="nobody")), None)
        assert not fifos
        fifos.send("INSTANCE x")
        assert os.path.islink(link)
    assert v.read_text() == "precious\n" and os.stat(v).st_uid == os.getuid()
    assert os.stat(real_fifo).st_uid == os.getuid()
    assert "is not a FIFO" in caplog.text


def test_a_created_notify_fifo_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new.fifo"
    old = os.umask(0)
    try:
        fifos = Fifos.for_vrrp(GlobalDefs(notify_fifo=NotifyFifo(str(path))), None)
    finally:
        os.umask(old)
    st = os.lstat(path)
    assert fifos and stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    asyncio.run(fifos.close())
    assert not path.exists()
