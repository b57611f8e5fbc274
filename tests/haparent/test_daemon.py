"""The daemon for real: real processes, real signals, a real NOTIFY_SOCKET listener.
Timing bounds are generous; measured numbers are printed (pytest -s) for the record."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

from labkit.lab import wait_for
from tests.haparent.daemon_util import CHECKER_ONLY, Daemon, alive

MakeDaemon = Callable[..., Daemon]


def children_of(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return {int(p) for p in f.read().split()}
    except FileNotFoundError:
        return set()


def title(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
        return f.read().strip()


def running(d: Daemon) -> tuple[int, int, int]:
    d.wait_ready()
    pids = (d.pid("parent"), d.pid("vrrp"), d.pid("checker"))
    assert all(pids), (pids, d.log_text())
    return pids  # type: ignore[return-value]


def test_notify_sequence_titles_pidfiles_and_clean_stop(daemon: MakeDaemon) -> None:
    d = daemon(env={"WATCHDOG_USEC": "400000"}).start()
    parent, vrrp, checker = running(d)
    assert parent == d.proc.pid  # type: ignore[union-attr]
    assert children_of(parent) == {vrrp, checker}
    assert title(parent).startswith("pykeepalived: parent") and comm(parent) == "pykeepalived"
    assert title(vrrp) == "pykeepalived: vrrp" and comm(vrrp) == "pyka_vrrp"
    assert title(checker) == "pykeepalived: checker" and comm(checker) == "pyka_checker"
    ready = next(m for m in d.notify.drain() if "READY" in m)
    assert ready["MAINPID"] == str(parent) and ready["STATUS"].startswith("Running")

    d.signal(signal.SIGHUP)
    d.notify.wait_kinds(["READY", "RELOADING", "READY"])
    print("reload:", d.log_text().split("Reload complete", 1)[1].split("\n", 1)[0].strip())
    assert "MONOTONIC_USEC" in next(m for m in d.notify.drain() if "RELOADING" in m)
    assert (d.pid("vrrp"), d.pid("checker")) == (vrrp, checker)  # a reload is not a restart

    wait_for("WATCHDOG=1 pings", lambda: sum("WATCHDOG" in m for m in d.notify.drain()) >= 3 or None, 3)

    d.signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 0  # type: ignore[union-attr]
    assert d.notify.kinds() == ["READY", "RELOADING", "READY", "STOPPING"]
    assert not alive(vrrp) and not alive(checker)
    assert not any(p.exists() for p in d.pidfiles.values())
    log = d.log_text()
    for line in (
        "Starting VRRP child process, pid=",
        "Starting Healthcheck child process, pid=",
        "Startup complete",
        "Reload complete",
        "Stopping",
        "Stopped pykeepalived",
    ):
        assert line in log
    assert "Keepalived_vrrp[" in log and "Keepalived_healthcheckers[" in log  # each under its own name


def test_sigkill_of_each_child_respawns_it_with_an_updated_pidfile(daemon: MakeDaemon) -> None:
    d = daemon().start()
    running(d)
    for role, name in (("vrrp", "VRRP"), ("checker", "Healthcheck")):
        old = d.pid(role)
        assert old is not None
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)

        def respawned(role: str = role, old: int = old) -> int | None:
            pid = d.pid(role)
            return pid if pid not in (None, old) else None

        new = wait_for(f"a new {role} pid", respawned, 2.0)
        print(f"{role}: respawned {(time.monotonic() - t0) * 1000:.0f} ms after SIGKILL")

        # the fresh child sets its title first thing, but a loaded machine may not have run it yet
        def titled(new: int = new, role: str = role) -> bool | None:
            return title(new) == f"pykeepalived: {role}" or None

        wait_for(f"the {role} title", titled, 2.0)
        assert alive(new)
        assert f"{name} child process({old}) died: Respawning" in d.log_text()


def test_a_stopped_child_is_replaced_within_the_heartbeat_timeout(daemon: MakeDaemon) -> None:
    d = daemon().start()
    _, vrrp, checker = running(d)
    t0 = time.monotonic()
    os.kill(vrrp, signal.SIGSTOP)
    new = wait_for("a new VRRP child", lambda: (p := d.pid("vrrp")) != vrrp and p, 1.0 + 1.0)
    print(f"hung child replaced {(time.monotonic() - t0) * 1000:.0f} ms after SIGSTOP (timeout 1 s)")
    wait_for("the stopped child reaped", lambda: not alive(vrrp), 1.0)
    assert alive(new) and d.pid("checker") == checker
    assert f"VRRP child process({vrrp}) hung: no heartbeat" in d.log_text()


def test_children_leave_when_the_parent_is_killed(daemon: MakeDaemon) -> None:
    d = daemon().start()
    parent, vrrp, checker = running(d)
    t0 = time.monotonic()
    os.kill(parent, signal.SIGKILL)
    wait_for("children gone", lambda: not alive(vrrp) and not alive(checker), 3.0)
    print(f"children gone {(time.monotonic() - t0) * 1000:.0f} ms after the parent's SIGKILL")


def test_bad_config_on_hup_keeps_the_old_one_and_says_why(daemon: MakeDaemon) -> None:
    d = daemon().start()
    parent, vrrp, checker = running(d)
    good = d.config.read_text()
    d.config.write_text(f"include {d.config}\n" + good)  # an include cycle: an error
    d.signal(signal.SIGHUP)
    wait_for("STATUS with the reason", lambda: "last reload failed" in d.notify.last_status() or None, 5)
    status = d.notify.last_status()
    assert status.startswith("Running") and "include cycle" in status and f"{d.config}:1" in status
    assert "RELOADING" not in d.notify.kinds()
    assert (d.pid("parent"), d.pid("vrrp"), d.pid("checker")) == (parent, vrrp, checker)
    assert alive(vrrp) and alive(checker)
    # Fixed, with the vrrp_instance gone: the reload stops the VRRP child and keeps the checker.
    d.config.write_text(CHECKER_ONLY)
    d.signal(signal.SIGHUP)
    d.notify.wait_kinds(["READY", "RELOADING", "READY"])
    wait_for("the VRRP child stopped", lambda: not alive(vrrp), 3)
    assert d.pid("vrrp") is None and d.pid("checker") == checker
    assert "last reload failed" not in d.notify.last_status()
    # And back: the VRRP child starts again.
    d.config.write_text(good)
    d.signal(signal.SIGHUP)
    d.notify.wait_kinds(["READY", "RELOADING", "READY", "RELOADING", "READY"])
    assert d.pid("vrrp") not in (None, vrrp)


def test_respawn_backoff_after_quick_deaths(daemon: MakeDaemon) -> None:
    d = daemon().start()
    _, first, _ = running(d)
    os.kill(first, signal.SIGKILL)
    second = wait_for("first respawn (at once)", lambda: (p := d.pid("vrrp")) != first and p, 1.0)
    t0 = time.monotonic()
    os.kill(second, signal.SIGKILL)
    wait_for("second respawn", lambda: (p := d.pid("vrrp")) not in (first, second, None) and p, 3.0)
    delay = time.monotonic() - t0
    print(f"second quick death respawned after {delay:.2f} s (policy: 1 s)")
    assert 0.9 < delay < 2.0
    assert "Restart of VRRP child process delayed 1 seconds to limit respawn rate" in d.log_text()


def test_a_second_daemon_on_the_same_pidfile_is_refused(daemon: MakeDaemon) -> None:
    d = daemon().start()
    parent, _, _ = running(d)
    second = subprocess.run(d.command("-n"), env=d.env, capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert "daemon is already running" in second.stderr
    assert d.pid("parent") == parent and alive(parent)


def test_dont_respawn_stops_the_daemon_when_a_child_dies(daemon: MakeDaemon) -> None:
    d = daemon(args=("-R",)).start()
    _, vrrp, checker = running(d)
    os.kill(vrrp, signal.SIGKILL)
    assert d.proc.wait(timeout=10) == 0  # type: ignore[union-attr]
    assert not alive(checker)
    assert f"VRRP child process({vrrp}) died: Exiting" in d.log_text()
    assert d.notify.kinds() == ["READY", "STOPPING"]


def test_dumps_on_usr1_usr2_and_json(daemon: MakeDaemon) -> None:
    d = daemon().start()
    parent, vrrp, checker = running(d)
    d.signal(signal.SIGUSR1)
    d.signal(signal.SIGUSR2)
    d.signal(signal.SIGRTMIN + 2)
    names = (
        "keepalived_parent.data",
        "keepalived.data",
        "keepalived_check.data",
        "keepalived.stats",
        "keepalived.json",
    )
    wait_for("the dump files", lambda: all((d.dir / n).exists() for n in names) or None, 5)
    assert f"Pid = {parent}" in (d.dir / "keepalived_parent.data").read_text()
    assert f"Pid = {vrrp}" in (d.dir / "keepalived.data").read_text()
    assert f"Pid = {checker}" in (d.dir / "keepalived_check.data").read_text()
    assert (d.dir / "keepalived.json").read_text() == "[]\n"


def test_daemonizes_without_n(daemon: MakeDaemon) -> None:
    d = daemon()
    d.start(foreground=False)
    assert d.proc.wait(timeout=10) == 0  # type: ignore[union-attr]  # the launcher returns at once
    parent = wait_for("the daemon's pidfile", lambda: d.pid("parent"), 5)
    assert parent != d.proc.pid and alive(parent)  # type: ignore[union-attr]
    assert os.getsid(parent) not in (os.getsid(0), d.proc.pid)  # type: ignore[union-attr]  # detached
    wait_for("both children", lambda: d.pid("vrrp") and d.pid("checker"), 5)
    d.wait_ready(15)  # started (the detached daemon talks to NOTIFY_SOCKET too): this test is about detaching
    children = [d.pid("vrrp"), d.pid("checker")]
    os.kill(parent, signal.SIGTERM)
    try:
        wait_for("the daemon gone", lambda: not alive(parent) and not d.pidfiles["parent"].exists(), 15)
    except AssertionError as e:
        left = {pid: alive(pid) for pid in (parent, *children) if pid is not None}
        raise AssertionError(f"{e}; alive: {left}; notify: {d.notify.kinds()}") from None


def test_a_bad_config_starts_nothing(daemon: MakeDaemon) -> None:
    d = daemon()
    d.config.write_text(f"include {d.config}\n")
    r = subprocess.run(d.command("-n"), env=d.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "include cycle" in r.stderr
    assert not d.pidfiles["parent"].exists()


def test_a_slow_reload_does_not_kill_healthy_children(daemon: MakeDaemon) -> None:
    """The parent reads a reload's configuration in a thread: a file that takes seconds to
    parse (it made the parent SIGKILL both healthy children before) leaves them running."""
    d = daemon().start()
    parent, vrrp, checker = running(d)
    # 90,000 excluded addresses on an instance whose interface does not exist (it never
    # holds them): seconds of parsing for the parent and for each child.
    addresses = "".join(f"        198.18.{i >> 8}.{i & 255}/32\n" for i in range(90_000))
    big = (
        "vrrp_instance VI_BIG {\n    interface pk-none0\n    virtual_router_id 77\n    priority 100\n"
        "    virtual_ipaddress {\n        192.0.2.77/24\n    }\n"
        f"    virtual_ipaddress_excluded {{\n{addresses}    }}\n}}\n"
    )
    d.config.write_text(d.config.read_text() + big)
    started = time.monotonic()
    d.signal(signal.SIGHUP)
    d.notify.wait_kinds(["READY", "RELOADING", "READY"], timeout=60)
    took = time.monotonic() - started
    print(f"\nreload of {len(big) >> 20} MB / 90,000 addresses: {took:.1f} s, heartbeat timeout 1 s")
    assert (d.pid("parent"), d.pid("vrrp"), d.pid("checker")) == (parent, vrrp, checker)
    assert "hung" not in d.log_text()
