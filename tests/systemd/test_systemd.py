"""pykeepalived as a `Type=notify` service of a real systemd (252, Debian bookworm).

Everything here is what an operator sees through systemd: `systemctl start` returns only
once the daemon said READY=1, `systemctl reload` reloads (polled: on 252 `reload` returns as
soon as `kill -HUP` has exited), `systemctl status` shows our STATUS=, a SIGSTOPped parent
misses its WATCHDOG=1 and systemd restarts the service, a SIGSTOPped child is replaced by the
parent without systemd noticing, and `systemctl stop` leaves nothing behind.

The container (see harness.py) is booted once for the module; every test starts from the
service running, so each can be run alone. Run only these tests with `pytest -m systemd`;
tests/systemd/README.md says what they need and how long they take.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from conf import DEFAULT_CONFIG
from tests.systemd.harness import Container, build_wheels

pytestmark = [pytest.mark.systemd, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
UNIT_FILE = ROOT / "contrib/systemd/pykeepalived.service"
SHARE = "/run/pkt-share"  # where the container sees the share_dir fixture
VENV = "/opt/pykeepalived"

# The test shortens the watchdog so that a hung parent is caught in seconds; the daemon must
# follow WATCHDOG_USEC (ping at half of it), not assume the unit's value.
WATCHDOG_SEC = 6
RESTART_SEC = 1
DROP_IN = f"""\
# Written by tests/systemd: only the timers are shortened; everything else is the shipped unit.
[Service]
WatchdogSec={WATCHDOG_SEC}s
RestartSec={RESTART_SEC}s
"""
HEARTBEAT_TIMEOUT = 3.0  # pykeepalived's default --heartbeat-timeout

# A VRRP instance on a veth pair inside the container's own network namespace, and a
# virtual server: the parent then runs both children.
VRRP = """\
global_defs {
    router_id pkt-systemd
}
vrrp_instance VI_1 {
    state BACKUP
    interface vrrp0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""
CHECKER = """\
virtual_server 192.0.2.100 80 {
    delay_loop 6
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"""


class Target(Protocol):
    """The service under test: pykeepalived, or the stand-in that checks the harness itself."""

    unit: str

    def install(self, c: Container, share: Path) -> None: ...

    def configure(self, c: Container, *, checker: bool = True, broken: bool = False) -> None: ...

    def roles(self, *, checker: bool) -> set[str]: ...

    def children(self, c: Container) -> dict[str, list[int]]: ...


def _unit_exec_path(unit_text: str) -> str:
    """The program of the unit's ExecStart= (without systemd's -@+!: prefixes)."""
    for line in unit_text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ExecStart" and value.strip():
            return shlex.split(value)[0].lstrip("-@+!:")
    raise AssertionError(f"{UNIT_FILE} has no ExecStart=")


def _titled(c: Container, prefixes: dict[str, str]) -> dict[str, list[int]]:
    """Pids by role, from process titles; a stopped (state T) process still counts."""
    found: dict[str, list[int]] = {}
    for line in c.exec("ps", "-eo", "pid=,args=").stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        for role, prefix in prefixes.items():
            if args.startswith(prefix):
                found.setdefault(role, []).append(int(pid))
    return found


class PyKeepalived:
    unit = "pykeepalived.service"
    TITLES = {"vrrp": "pykeepalived: vrrp", "checker": "pykeepalived: checker"}

    def install(self, c: Container, share: Path) -> None:
        unit_text = UNIT_FILE.read_text()
        wheels = share / "wheels"
        started = time.monotonic()
        build_wheels(ROOT, wheels)
        # Offline, from the wheels built here: the container has no network of its own.
        c.exec("python3", "-m", "venv", VENV, timeout=120)
        c.exec(f"{VENV}/bin/pip", "install", "-q", "--disable-pip-version-check", "--no-index",
               "--find-links", f"{SHARE}/wheels", "pykeepalived", timeout=300)  # fmt: skip
        program = _unit_exec_path(unit_text)
        if program != f"{VENV}/bin/pykeepalived":
            c.sh(f"mkdir -p {shlex.quote(os.path.dirname(program))} && "
                 f"ln -sf {VENV}/bin/pykeepalived {shlex.quote(program)}")  # fmt: skip
        print(f"pykeepalived installed in the container in {time.monotonic() - started:.1f} s")
        c.write(f"/etc/systemd/system/{self.unit}", unit_text)
        c.write(f"/etc/systemd/system/{self.unit}.d/test.conf", DROP_IN)
        c.sh(
            "ip link add vrrp0 type veth peer name vrrp0-peer && ip link set vrrp0-peer up && ip link set vrrp0 up"
            " && ip addr add 192.0.2.1/24 dev vrrp0"
        )
        self.configure(c)
        c.exec("systemctl", "daemon-reload")

    def configure(self, c: Container, *, checker: bool = True, broken: bool = False) -> None:
        text = VRRP + (CHECKER if checker else "")
        if broken:
            # A vrrp_instance without virtual_router_id cannot run: the reload must be refused.
            text = text.replace("    virtual_router_id 51\n", "")
        c.write(DEFAULT_CONFIG, text)

    def roles(self, *, checker: bool) -> set[str]:
        return {"vrrp", "checker"} if checker else {"vrrp"}

    def children(self, c: Container) -> dict[str, list[int]]:
        return _titled(c, self.TITLES)


TARGETS: list[Target] = [PyKeepalived()]


# ---------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Unit:
    active: str
    sub: str
    result: str
    main_pid: int
    restarts: int
    status: str
    exec_status: str


def show(c: Container, t: Target) -> Unit:
    props = ("ActiveState", "SubState", "Result", "MainPID", "NRestarts", "StatusText", "ExecMainStatus")
    out = c.exec("systemctl", "show", t.unit, *(f"--property={p}" for p in props)).stdout
    v = dict(line.partition("=")[::2] for line in out.splitlines())
    return Unit(
        active=v["ActiveState"], sub=v["SubState"], result=v["Result"], main_pid=int(v["MainPID"] or 0),
        restarts=int(v["NRestarts"] or 0), status=v["StatusText"], exec_status=v["ExecMainStatus"],
    )  # fmt: skip


def journal_cursor(c: Container) -> str:
    out = c.exec("journalctl", "--no-pager", "-n", "1", "-o", "cat", "--show-cursor").stdout
    m = re.search(r"^-- cursor: (.+)$", out, re.M)
    assert m, f"journalctl printed no cursor: {out!r}"
    return m.group(1)


@dataclass(frozen=True)
class Log:
    """What was logged about the unit, in order, as (pid, message): systemd's lines are pid 1's."""

    entries: list[tuple[int, str]]

    @property
    def systemd(self) -> list[str]:
        return [m for p, m in self.entries if p == 1]

    @property
    def daemon(self) -> list[str]:
        return [m for p, m in self.entries if p != 1]

    def of(self, pid: int) -> list[str]:
        return [m for p, m in self.entries if p == pid]

    def __str__(self) -> str:
        return "\n".join(f"{p}: {m}" for p, m in self.entries)


def journal(c: Container, t: Target, cursor: str) -> Log:
    out = c.exec("journalctl", "--no-pager", "-o", "json", "-u", t.unit, f"--after-cursor={cursor}").stdout
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    # MESSAGE is a list of bytes when it is not UTF-8; nothing we look for is.
    return Log([(int(e.get("_PID", 0)), e["MESSAGE"]) for e in entries if isinstance(e.get("MESSAGE"), str)])


def expect_log(c: Container, t: Target, cursor: str, what: str, cond: Callable[[Log], bool]) -> Log:
    """journald takes the daemon's syslog lines asynchronously: give them a moment to arrive."""
    found: list[Log] = []

    def ok() -> bool:
        found[:] = [journal(c, t, cursor)]
        return cond(found[0])

    try:
        wait_for(what, ok, 5)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{found[0] if found else ''}") from None
    return found[0]


def has(lines: list[str], text: str) -> bool:
    return any(text in line for line in lines)


def wait_for(what: str, cond: Callable[[], bool], timeout: float, interval: float = 0.2) -> float:
    """Poll cond until true; return the seconds it took, or fail saying what did not happen."""
    start = time.monotonic()
    while True:
        if cond():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def alive(c: Container, pid: int) -> bool:
    return c.exec("kill", "-0", str(pid), check=False).returncode == 0


def one_each(c: Container, t: Target, *, checker: bool = True) -> dict[str, int]:
    kids = t.children(c)
    assert set(kids) == t.roles(checker=checker), f"children {kids}, expected one of each of {t.roles(checker=checker)}"
    assert all(len(p) == 1 for p in kids.values()), f"more than one child per role: {kids}"
    return {role: pids[0] for role, pids in kids.items()}


def diagnose(c: Container, t: Target) -> str:
    res = c.exec("journalctl", "--no-pager", "-o", "short-monotonic", "-n", "80", "-u", t.unit, check=False)
    return f"\n--- journal of {t.unit} ---\n{res.stdout}{res.stderr}"


def ensure_active(c: Container, t: Target) -> Unit:
    """Each test starts from the service running on the full configuration."""
    u = show(c, t)
    if u.active != "active" or set(t.children(c)) != t.roles(checker=True):
        t.configure(c)
        c.exec("systemctl", "reset-failed", t.unit, check=False)
        c.exec("systemctl", "restart", t.unit, timeout=60)
        u = show(c, t)
    assert u.active == "active", f"{t.unit} is {u.active}/{u.sub}" + diagnose(c, t)
    return u


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=TARGETS, ids=lambda t: t.unit.removesuffix(".service"))
def target(request: pytest.FixtureRequest, container: Container, share_dir: Path) -> Iterator[Target]:
    t: Target = request.param
    t.install(container, share_dir)
    yield t
    container.exec("systemctl", "stop", t.unit, check=False, timeout=60)


@pytest.fixture
def c(container: Container, target: Target, request: pytest.FixtureRequest) -> Iterator[Container]:
    """The container, with the unit's recent journal attached to any failure."""
    yield container
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(diagnose(container, target))


# ---------------------------------------------------------------- the tests


def test_start_returns_after_ready(c: Container, target: Target) -> None:
    t = target
    c.exec("systemctl", "stop", t.unit, timeout=60)
    t.configure(c)
    cursor = journal_cursor(c)
    began = time.monotonic()
    c.exec("systemctl", "start", t.unit, timeout=60)
    took = time.monotonic() - began
    u = show(c, t)
    # A Type=notify unit only becomes active on READY=1: seen right as `start` returns, that
    # proves `start` waited for it, and READY waits for every child to say `ready`.
    assert (u.active, u.sub) == ("active", "running"), f"after start: {u}" + diagnose(c, t)
    kids = one_each(c, t)
    # STATUS= tells the operator which children run, with their pids.
    for role, pid in kids.items():
        assert role in u.status and str(pid) in u.status, f"STATUS= does not show the {role} child {pid}: {u.status!r}"
    expect_log(c, t, cursor, "the daemon to log its start-up", lambda log: has(log.daemon, "Startup complete"))
    print(f"systemctl start took {took:.2f} s")


def test_status_shows_our_status(c: Container, target: Target) -> None:
    t = target
    u = ensure_active(c, t)
    out = c.exec("systemctl", "status", "--no-pager", "--lines=0", t.unit, check=False).stdout
    assert f'Status: "{u.status}"' in out, out
    assert f"Main PID: {u.main_pid}" in out, out


def reload_to(c: Container, t: Target, *, checker: bool) -> None:
    """Reload onto a config with or without the checker section; wait until the daemon is done."""
    before = show(c, t)
    cursor = journal_cursor(c)
    t.configure(c, checker=checker)
    began = time.monotonic()
    c.exec("systemctl", "reload", t.unit, timeout=60)
    returned = time.monotonic() - began

    def reloaded() -> bool:
        # On 252 `reload` returns once `kill -HUP` exits: the daemon may not even have begun.
        return (
            show(c, t).active == "active"
            and has(journal(c, t, cursor).daemon, "Reload complete")
            and set(t.children(c)) == t.roles(checker=checker)
        )

    took = wait_for(f"reload to a config {'with' if checker else 'without'} a checker", reloaded, 20)
    print(f"systemctl reload returned after {returned:.2f} s, the reload was done {took:.2f} s later")
    u = show(c, t)
    assert (u.main_pid, u.restarts) == (before.main_pid, before.restarts), f"restarted instead: {u}"
    log = journal(c, t, cursor)
    assert has(log.systemd, "Reloading") and has(log.systemd, "Reloaded"), log  # systemd's own job lines


def test_reload_reloads(c: Container, target: Target) -> None:
    t = target
    ensure_active(c, t)
    kids = one_each(c, t)
    reload_to(c, t, checker=False)
    reload_to(c, t, checker=True)
    # The child that was configured all along kept running through both reloads.
    survivors = {r: p for r, p in one_each(c, t).items() if r in t.roles(checker=False)}
    assert survivors == {r: kids[r] for r in t.roles(checker=False)}


def test_bad_config_reload_keeps_running(c: Container, target: Target) -> None:
    t = target
    before = ensure_active(c, t)
    kids = one_each(c, t)
    t.configure(c, broken=True)
    try:
        c.exec("systemctl", "reload", t.unit, timeout=60)
        wait_for("STATUS= to report the rejected reload", lambda: show(c, t).status != before.status, 20)
        u = show(c, t)
        assert u.active == "active" and u.main_pid == before.main_pid, u
        assert "fail" in u.status.lower() and "keepalived.conf" in u.status, f"STATUS= does not say why: {u.status!r}"
        assert one_each(c, t) == kids, "children changed on a rejected reload"
        status = c.exec("systemctl", "status", "--no-pager", "--lines=0", t.unit, check=False).stdout
        assert u.status in status
        print(f"STATUS after a bad reload: {u.status}")
    finally:
        t.configure(c)


def hang_child(c: Container, t: Target, role: str, old: int) -> None:
    """SIGSTOP one child; the parent must replace it while systemd sees nothing happen."""
    before = show(c, t)
    cursor = journal_cursor(c)
    c.exec("kill", "-STOP", str(old))
    states: set[str] = set()

    def replaced() -> bool:
        states.add(show(c, t).active)
        pids = t.children(c).get(role, [])
        return bool(pids) and old not in pids and not alive(c, old)

    took = wait_for(f"the SIGSTOPped {role} child {old} to be replaced", replaced, HEARTBEAT_TIMEOUT + 5)
    print(f"hung {role} child replaced after {took:.2f} s")
    assert took <= HEARTBEAT_TIMEOUT + 3, f"took {took:.1f} s"
    u = show(c, t)
    assert states == {"active"}, f"systemd saw the service {states}"
    assert (u.main_pid, u.restarts) == (before.main_pid, before.restarts), u
    log = journal(c, t, cursor)
    assert not log.systemd, f"systemd had something to say about a child: {log}"


def test_hung_child_is_replaced_without_systemd_noticing(c: Container, target: Target) -> None:
    t = target
    ensure_active(c, t)
    for role, old in sorted(one_each(c, t).items()):
        hang_child(c, t, role, old)
        one_each(c, t)


def main_started(c: Container, t: Target) -> float:
    """When the main process was started, on CLOCK_MONOTONIC: the container shares the host's."""
    out = c.exec("systemctl", "show", t.unit, "--property=ExecMainStartTimestampMonotonic").stdout
    return int(out.strip().partition("=")[2]) / 1e6


def test_hung_parent_trips_the_watchdog(c: Container, target: Target) -> None:
    t = target
    before = ensure_active(c, t)
    # First the parent must be seen feeding the watchdog: alive and unrestarted for longer
    # than WatchdogSec (otherwise the restart below could be a watchdog that never was fed).
    fed_until = main_started(c, t) + 1.5 * WATCHDOG_SEC
    time.sleep(max(0.0, fed_until - time.monotonic()))
    u = show(c, t)
    assert (u.active, u.main_pid, u.restarts) == ("active", before.main_pid, before.restarts), (
        f"not kept alive by WATCHDOG=1 for {1.5 * WATCHDOG_SEC} s: {u}" + diagnose(c, t)
    )
    old_kids = one_each(c, t)
    cursor = journal_cursor(c)
    c.exec("kill", "-STOP", str(before.main_pid))

    def restarted() -> bool:
        u = show(c, t)
        return u.restarts == before.restarts + 1 and u.active == "active" and u.main_pid not in (0, before.main_pid)

    took = wait_for("systemd to restart the service after the watchdog", restarted, WATCHDOG_SEC + RESTART_SEC + 30)
    print(f"restarted {took:.1f} s after SIGSTOP of the parent (WatchdogSec={WATCHDOG_SEC})")
    log = journal(c, t, cursor)
    assert has(log.systemd, f"Watchdog timeout (limit {WATCHDOG_SEC}s)!"), log
    # The last WATCHDOG=1 came at most WatchdogSec/2 before the SIGSTOP: no restart before then.
    assert took >= WATCHDOG_SEC / 2 - 0.5
    assert not alive(c, before.main_pid)
    # The old children saw their pipe close and went away; the new parent runs its own.
    wait_for("the old children to exit", lambda: not any(alive(c, p) for p in old_kids.values()), 10)
    new_kids = one_each(c, t)
    assert not set(new_kids.values()) & set(old_kids.values())


def test_stop_is_clean(c: Container, target: Target) -> None:
    t = target
    u = ensure_active(c, t)
    kids = one_each(c, t)
    cursor = journal_cursor(c)
    began = time.monotonic()
    c.exec("systemctl", "stop", t.unit, timeout=90)
    took = time.monotonic() - began
    after = show(c, t)
    assert (after.active, after.result, after.exec_status) == ("inactive", "success", "0"), after
    assert not alive(c, u.main_pid)
    assert not any(alive(c, p) for p in kids.values()), "children left running"
    assert not t.children(c)
    log = expect_log(c, t, cursor, "the daemon to log its stop", lambda log: has(log.of(u.main_pid), "Stopped"))
    # The parent stopped and reaped each child before it exited (KillMode=process: systemd
    # would not wait for them), so it reports every child by pid, keepalived's "process(PID)".
    parent = log.of(u.main_pid)
    for role, pid in kids.items():
        assert has(parent, f"process({pid})"), f"the parent did not report the end of its {role} child {pid}: {log}"
    assert has(log.systemd, "Deactivated successfully"), log
    for bad in ("Killing process", "timed out", "SIGKILL", "left-over", "Failed with result"):
        assert not has(log.systemd, bad), log
    print(f"systemctl stop took {took:.2f} s")
