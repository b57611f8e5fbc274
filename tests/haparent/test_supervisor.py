"""The supervision logic against a fake OS (no fork): startup, reload, respawn, hang
detection, stop, dumps and systemd notifications, pass by pass of the loop."""

from __future__ import annotations

import dataclasses
import signal
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest

import conf
from conf import LoadResult
from conf.diagnostics import Diagnostics
from conf.model import Config
from haparent.child import Phase
from haparent.notify import Notifier
from haparent.options import Options
from haparent.respawn import RespawnPolicy
from haparent.specs import Role
from haparent.supervisor import LOAD_TIMEOUT, SIGJSON, Supervisor
from haparent.system import ChildMain, Spawned, T
from tests.haparent.daemon_util import CHECKER_ONLY as CHECKER_ONLY_TEXT
from tests.haparent.daemon_util import CONFIG
from vrrp_child.liveness import Held, hold_time, vrrp_heartbeat
from watchdog.heartbeat import HeartbeatSettings
from watchdog.protocol import (
    Direction,
    Dump,
    DumpKind,
    Heartbeat,
    Message,
    Ready,
    Reload,
    Reloaded,
    Resume,
    State,
    Stop,
    decode,
    encode,
)


def parsed(text: str) -> Config:
    """A real model from real text (the supervisor only asks which sections exist)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "keepalived.conf"
        path.write_text(text)
        result = conf.load(str(path), config_id="node1", interfaces=frozenset({"eth0"}))
    assert result.ok and result.config is not None
    return result.config


BOTH = parsed(CONFIG)
VRRP_ONLY = parsed(CONFIG[: CONFIG.index("virtual_server")])
CHECKER_ONLY = parsed(CHECKER_ONLY_TEXT)
assert (BOTH.has_vrrp, BOTH.has_checker, VRRP_ONLY.has_checker, CHECKER_ONLY.has_vrrp) == (True, True, False, False)


class FakeSystem:
    def __init__(self) -> None:
        self.now = 1000.0
        self.next_pid = 100
        self.pending: dict[int, bytes] = {}  # read fd -> what the child wrote
        self.sent: dict[int, list[Message]] = {}  # write fd -> what the parent wrote
        self.dead: list[tuple[int, int]] = []
        self.kills: list[tuple[int, int]] = []
        self.closed: list[int] = []
        self.files: dict[str, str] = {}
        self.full: set[int] = set()
        self.deferred = False
        self.unfinished: list[Callable[[], None]] = []
        self.trims = 0  # heap trims asked for (watchdog.heaptrim)

    def monotonic(self) -> float:
        return self.now

    def spawn(self, child_main: ChildMain, close_in_child: Iterable[int]) -> Spawned:
        pid = self.next_pid
        self.next_pid += 1
        self.sent[pid * 10 + 1] = []
        return Spawned(pid, pid * 10, pid * 10 + 1)

    def kill(self, pid: int, sig: int) -> None:
        self.kills.append((pid, sig))
        if sig == signal.SIGKILL:
            self.dead.append((pid, signal.SIGKILL))  # a wait status for "killed by SIGKILL"

    def reap(self) -> list[tuple[int, int]]:
        dead, self.dead = self.dead, []
        return dead

    def wait(self, fds: Sequence[int], timeout: float) -> list[int]:
        return [fd for fd in fds if fd in self.pending]

    def read(self, fd: int) -> bytes | None:
        return self.pending.pop(fd, None)

    def readable(self, fd: int) -> bool:
        return fd in self.pending

    def background(self, work: Callable[[], T]) -> Future[T]:
        """At once, or (deferred) when the test calls `finish`: the real one runs `work` in a
        thread and wakes the loop when done."""
        future: Future[T] = Future()
        if self.deferred:
            self.unfinished.append(lambda: future.set_result(work()))
        else:
            future.set_result(work())
        return future

    def finish(self) -> None:
        for done in self.unfinished:
            done()
        self.unfinished.clear()

    def write(self, fd: int, data: bytes) -> bool:
        if fd in self.full:
            return False
        self.sent[fd].append(decode(data, Direction.DOWN))
        return True

    def close(self, fd: int) -> None:
        self.closed.append(fd)

    def write_file(self, path: str, text: str) -> None:
        self.files[path] = text

    def trim_heap(self) -> None:
        self.trims += 1


class RecordingNotifier(Notifier):
    def __init__(self) -> None:
        super().__init__(env={})
        self.messages: list[str] = []

    def send(self, *fields: str) -> None:
        self.messages.append("\n".join(fields))

    def kinds(self) -> list[str]:
        """The notifications that matter for ordering, without STATUS-only updates."""
        out = []
        for m in self.messages:
            first = m.split("\n", 1)[0]
            if not first.startswith("STATUS="):
                out.append(first.split("=", 1)[0])
        return out


class Pids:
    fd: int | None = None

    def __init__(self) -> None:
        self.pid: int | None = None
        self.writes: list[int | None] = []

    def write(self, pid: int | None) -> None:
        self.pid = pid
        self.writes.append(pid)


class Harness:
    def __init__(self, config: Config = BOTH, opts: Options | None = None, policy: RespawnPolicy | None = None):
        self.sys = FakeSystem()
        self.notifier = RecordingNotifier()
        self.pids = {Role.VRRP: Pids(), Role.CHECKER: Pids()}
        self.next_load: LoadResult = LoadResult(config, Diagnostics())
        self.loads = 0
        self.sup = Supervisor(
            opts or Options(config_file="/k.conf"),
            config,
            system=self.sys,
            notifier=self.notifier,
            loader=self.load,
            pidfiles=self.pids,
            heartbeat=HeartbeatSettings(1.0, 3.0),
            policy=policy or RespawnPolicy(),
            tmpdir="/dumps",
        )

    def load(self, path: str) -> LoadResult:
        self.loads += 1
        return self.next_load

    def pid(self, role: Role) -> int:
        pid = self.sup.children[role].pid
        assert pid is not None
        return pid

    def say(self, role: Role, *msgs: Message) -> None:
        """The child writes to its pipe; one pass of the loop reads it."""
        self.sys.pending[self.pid(role) * 10] = b"".join(encode(m) for m in msgs)
        self.sup.step()

    def beat(self, role: Role, at: float | None = None) -> None:
        """A heartbeat the child wrote at `at` (now by default) on the shared monotonic clock."""
        self.say(role, Heartbeat(1, self.sys.now if at is None else at))

    def sent(self, role: Role) -> list[Message]:
        return self.sys.sent[self.pid(role) * 10 + 1]

    def signal(self, sig: int) -> None:
        self.sup.signal_received(sig)
        self.sup.step()

    def advance(self, seconds: float) -> None:
        self.sys.now += seconds
        self.sup.step()

    def all_ready(self) -> None:
        for role in (Role.CHECKER, Role.VRRP):
            if self.sup.children[role].pid is not None:
                self.say(role, Ready())


def test_startup_spawns_checker_then_vrrp_and_is_ready_only_when_both_are() -> None:
    h = Harness()
    h.sup.start()
    assert [h.pid(Role.CHECKER), h.pid(Role.VRRP)] == [100, 101]
    assert h.pids[Role.CHECKER].pid == 100 and h.pids[Role.VRRP].pid == 101
    assert h.sent(Role.VRRP) == [Resume(data={})]  # resume is always the first message
    h.say(Role.VRRP, Ready())
    assert "READY" not in h.notifier.kinds() and h.sys.trims == 0
    h.say(Role.CHECKER, Ready())
    assert h.notifier.kinds() == ["READY"]
    assert h.sys.trims == 1  # the start's garbage goes back to the kernel once both run
    assert "MAINPID=" in h.notifier.messages[-1]
    assert h.sup.children[Role.VRRP].phase is Phase.RUNNING


def test_only_the_needed_children_start() -> None:
    h = Harness(VRRP_ONLY)
    h.sup.start()
    assert h.sup.children[Role.CHECKER].pid is None and h.sup.children[Role.VRRP].pid is not None
    h = Harness(BOTH, Options(check_only=True))
    h.sup.start()
    assert h.sup.children[Role.VRRP].pid is None and h.sup.children[Role.CHECKER].pid is not None


def test_no_configuration_is_ready_at_once() -> None:
    h = Harness(Config())
    h.sup.start()
    assert h.notifier.kinds() == ["READY"]
    assert "no child process" in h.sup.status_text()


def test_reload_sends_reloading_then_ready_after_every_child_answers() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    h.signal(signal.SIGHUP)
    assert h.notifier.kinds() == ["READY", "RELOADING"]
    assert "MONOTONIC_USEC=" in next(m for m in h.notifier.messages if m.startswith("RELOADING"))
    assert h.sent(Role.VRRP)[-1] == Reload("/k.conf") and h.sent(Role.CHECKER)[-1] == Reload("/k.conf")
    h.say(Role.VRRP, Reloaded(True))
    assert h.notifier.kinds()[-1] == "RELOADING" and h.sys.trims == 1
    h.say(Role.CHECKER, Reloaded(True))
    assert h.notifier.kinds() == ["READY", "RELOADING", "READY"]
    assert h.sys.trims == 2  # and the reload's


def test_a_hup_during_a_reload_is_queued_not_nested_nor_lost() -> None:
    h = Harness()
    h.sup.start()
    h.signal(signal.SIGHUP)  # during startup: queued too
    assert h.loads == 0
    h.all_ready()
    assert h.loads == 1 and h.notifier.kinds() == ["READY", "RELOADING"]
    h.signal(signal.SIGHUP)
    h.signal(signal.SIGHUP)  # several while busy: one more reload
    assert h.loads == 1
    h.say(Role.VRRP, Reloaded(True))
    h.say(Role.CHECKER, Reloaded(True))
    assert h.loads == 2 and h.notifier.kinds() == ["READY", "RELOADING", "READY", "RELOADING"]
    h.say(Role.VRRP, Reloaded(True))
    h.say(Role.CHECKER, Reloaded(True))
    assert h.loads == 2 and h.notifier.kinds()[-1] == "READY"


def test_an_invalid_config_keeps_the_old_one_and_status_says_why() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    diags = Diagnostics()
    diags.error("unknown keyword 'vrrp_instanc'", None)
    h.next_load = LoadResult(Config(), diags)
    h.signal(signal.SIGHUP)
    assert "RELOADING" not in h.notifier.kinds()
    assert h.sup.config is BOTH
    assert not any(isinstance(m, Reload) for m in h.sent(Role.VRRP))
    status = h.notifier.messages[-1]
    assert status.startswith("STATUS=Running") and "last reload failed: error: unknown keyword" in status
    # A later good reload clears the error.
    h.next_load = LoadResult(BOTH, Diagnostics())
    h.signal(signal.SIGHUP)
    h.say(Role.VRRP, Reloaded(True))
    h.say(Role.CHECKER, Reloaded(True))
    assert "failed" not in h.sup.status_text()


def test_a_child_refusing_the_reload_is_reported() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    h.signal(signal.SIGHUP)
    h.say(Role.VRRP, Reloaded(False, "k.conf:9: error: boom"))
    h.say(Role.CHECKER, Reloaded(True))
    assert h.notifier.kinds()[-1] == "READY"
    assert "last reload failed: VRRP child: k.conf:9: error: boom" in h.sup.status_text()


def test_reload_starts_and_stops_children_as_sections_come_and_go() -> None:
    h = Harness(VRRP_ONLY)
    h.sup.start()
    h.all_ready()
    vrrp = h.pid(Role.VRRP)
    h.next_load = LoadResult(CHECKER_ONLY, Diagnostics())
    h.signal(signal.SIGHUP)
    assert h.sys.sent[vrrp * 10 + 1][-1] == Stop()
    checker = h.pid(Role.CHECKER)
    assert h.notifier.kinds()[-1] == "RELOADING"
    h.say(Role.CHECKER, Ready())  # the new child's ready completes the reload
    assert h.notifier.kinds()[-1] == "READY"
    h.sys.dead.append((vrrp, 0))
    h.sup.step()
    assert h.sup.children[Role.VRRP].phase is Phase.STOPPED and h.sup.children[Role.VRRP].pid is None
    h.advance(120)  # never respawned
    assert h.sup.children[Role.VRRP].pid is None and h.pid(Role.CHECKER) == checker
    assert h.pids[Role.VRRP].pid is None


def test_respawn_backoff_is_applied_to_quick_deaths() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    first = h.pid(Role.VRRP)
    h.sys.dead.append((first, signal.SIGKILL))
    h.sup.step()
    second = h.pid(Role.VRRP)  # first quick death: at once
    assert second != first and h.pids[Role.VRRP].pid == second
    h.sys.dead.append((second, signal.SIGKILL))
    h.sup.step()
    assert h.sup.children[Role.VRRP].phase is Phase.BACKOFF
    h.advance(0.9)
    assert h.sup.children[Role.VRRP].pid is None
    h.advance(0.2)  # 1 s later
    third = h.pid(Role.VRRP)
    h.say(Role.VRRP, Ready())
    h.advance(61)  # a long run forgets the backoff
    h.sys.dead.append((third, 0))
    h.beat(Role.CHECKER)
    assert h.pid(Role.VRRP) not in (first, second, third)


def test_the_successor_gets_the_last_state() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    h.say(Role.VRRP, State(data={"VI_1": {"state": "MASTER", "priority": 100}, "VI_2": {"state": "BACKUP"}}))
    h.say(Role.VRRP, State(data={"VI_2": None, "VI_3": {"state": "BACKUP"}}))
    assert "vrrp running pid 101 (1 BACKUP, 1 MASTER)" in h.sup.status_text()
    h.sys.dead.append((h.pid(Role.VRRP), signal.SIGKILL))
    h.sup.step()
    assert h.sent(Role.VRRP) == [
        Resume(data={"VI_1": {"state": "MASTER", "priority": 100}, "VI_3": {"state": "BACKUP"}})
    ]


def test_permanent_exit_stops_the_daemon_with_that_status_and_errno() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    h.sys.dead.append((h.pid(Role.VRRP), 2 << 8))
    h.sup.step()
    assert h.notifier.kinds()[-2:] == ["ERRNO", "STOPPING"]
    assert next(m for m in h.notifier.messages if m.startswith("ERRNO=")).startswith("ERRNO=22\n")  # EINVAL
    assert h.sup.children[Role.VRRP].pid is None
    assert h.sent(Role.CHECKER)[-1] == Stop()
    h.sys.dead.append((h.pid(Role.CHECKER), 0))
    h.sup.step()
    assert h.sup.exit_code == 2


def test_dont_respawn_stops_the_daemon() -> None:
    h = Harness(policy=RespawnPolicy(respawn=False))
    h.sup.start()
    h.all_ready()
    h.sys.dead.append((h.pid(Role.CHECKER), signal.SIGKILL))
    h.sup.step()
    assert h.sup.stopping and h.sup.children[Role.CHECKER].pid is None
    h.sys.dead.append((h.pid(Role.VRRP), 0))
    h.sup.step()
    assert h.sup.exit_code == 0


def test_a_silent_child_is_killed_after_the_timeout_and_respawned() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    vrrp = h.pid(Role.VRRP)
    for _ in range(5):  # the checker keeps talking; the VRRP child does not
        h.sys.now += 0.7
        h.beat(Role.CHECKER)
    assert (vrrp, signal.SIGKILL) in h.sys.kills
    h.sup.step()  # the reap (SIGCHLD wakes the loop)
    assert h.pid(Role.VRRP) != vrrp
    assert not any(pid == h.pid(Role.CHECKER) for pid, _ in h.sys.kills)


def test_the_loop_wakes_for_the_heartbeat_deadline() -> None:
    h = Harness()
    h.sup.start()
    # No child message: the loop must still wake by the heartbeat timeout (3 s here) to
    # notice a hung child, well before the 10 s safety net.
    assert 0 < h.sup.next_timeout() <= h.sup.heartbeat.timeout


def test_stop_asks_then_kills_stragglers_after_child_wait_time() -> None:
    h = Harness(dataclasses.replace(BOTH, child_wait_time=2))
    h.sup.start()
    h.all_ready()
    h.signal(signal.SIGTERM)
    assert h.notifier.kinds()[-1] == "STOPPING"
    assert h.sent(Role.VRRP)[-1] == Stop() and h.sent(Role.CHECKER)[-1] == Stop()
    h.sys.dead.append((h.pid(Role.CHECKER), 0))  # the checker obeys
    h.advance(1.9)
    assert h.sys.kills == [] and h.sup.exit_code is None
    h.advance(0.2)
    assert h.sys.kills == [(101, signal.SIGKILL)]
    h.sup.step()  # the reap
    assert h.sup.exit_code == 0
    h.signal(signal.SIGHUP)  # nothing happens after a stop
    assert h.loads == 0


def test_sigint_stops_too() -> None:
    h = Harness()
    h.sup.start()
    h.signal(signal.SIGINT)
    assert h.sup.stopping


def test_dumps_go_where_keepalived_puts_them() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    h.signal(signal.SIGUSR1)
    assert "Pid = " in h.sys.files[str(Path("/dumps/keepalived_parent.data"))]
    assert h.sent(Role.VRRP)[-1] == Dump("/dumps/keepalived.data", DumpKind.DATA)
    assert h.sent(Role.CHECKER)[-1] == Dump("/dumps/keepalived_check.data", DumpKind.DATA)
    h.signal(signal.SIGUSR2)
    h.signal(SIGJSON)
    assert h.sent(Role.VRRP)[-2:] == [
        Dump("/dumps/keepalived.stats", DumpKind.STATS),
        Dump("/dumps/keepalived.json", DumpKind.JSON),
    ]
    # ours: the checker writes its own stats and JSON (keepalived's checker has none)
    assert h.sent(Role.CHECKER)[-2:] == [
        Dump("/dumps/keepalived_check.stats", DumpKind.STATS),
        Dump("/dumps/keepalived_check.json", DumpKind.JSON),
    ]


def test_data_use_instance_puts_namespace_and_instance_in_the_dump_names() -> None:
    # keepalived's open_dump_file: keepalived.NS_INSTANCE.data (only the .data files)
    top = "global_defs {\n    data_use_instance\n}\ninstance one\n"
    h = Harness(parsed(top + CONFIG), Options(config_file="/k.conf", namespace="blue"))
    h.sup.start()
    h.all_ready()
    h.signal(signal.SIGUSR1)
    assert "Pid = " in h.sys.files[str(Path("/dumps/keepalived_parent.blue_one.data"))]
    assert h.sent(Role.VRRP)[-1] == Dump("/dumps/keepalived.blue_one.data", DumpKind.DATA)
    assert h.sent(Role.CHECKER)[-1] == Dump("/dumps/keepalived_check.blue_one.data", DumpKind.DATA)


def test_watchdog_pings_at_half_the_interval() -> None:
    h = Harness()
    h.notifier.watchdog_interval = 5.0
    h.sup.start()
    h.sup.step()
    h.advance(4.0)
    h.advance(1.5)
    assert h.notifier.messages.count("WATCHDOG=1") == 2


def test_garbage_from_a_child_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    h.sup.start()
    h.sys.pending[h.pid(Role.VRRP) * 10] = b'{"t":"nope"}\nnot json\n' + encode(Ready())
    h.sup.step()
    assert h.sup.children[Role.VRRP].phase is Phase.RUNNING
    assert "unknown message type 'nope'" in caplog.text


def test_a_child_that_does_not_read_does_not_block_the_parent() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    h.sys.full.add(h.pid(Role.VRRP) * 10 + 1)
    h.signal(signal.SIGUSR1)  # the write fails; the loop goes on
    assert h.sent(Role.CHECKER)[-1] == Dump("/dumps/keepalived_check.data", DumpKind.DATA)


def test_status_counts_instances_and_real_servers_not_groups() -> None:
    h = Harness()
    h.sup.start()
    h.all_ready()
    h.say(
        Role.VRRP,
        State(data={"VI_1": {"state": "MASTER"}, "VI_2": {"state": "MASTER"}, "group:G1": {"state": "MASTER"}}),
    )
    h.say(
        Role.CHECKER,
        State(
            data={
                "10.0.0.1:80/TCP": {"state": "QUORUM_DOWN"},
                "10.0.0.1:80/TCP -> 10.0.1.1:80": {"state": "UP", "weight": 1},
                "10.0.0.1:80/TCP -> 10.0.1.2:80": {"state": "DOWN", "weight": 1},
            }
        ),
    )
    text = h.sup.status_text()
    assert "vrrp running pid 101 (2 MASTER)" in text
    assert "(1/2 real servers up, 1 virtual servers below quorum)" in text


# ---------------------------------------------------------------------------------------------
# The hold rule (vrrp_child.liveness): never keep VIPs that nobody advertises


class Released:
    """Stands in for the VRRP spec's release (netlink): records what the parent released."""

    def __init__(self, h: Harness) -> None:
        self.calls: list[tuple[float, list[str]]] = []
        child = h.sup.children[Role.VRRP]
        child.spec = dataclasses.replace(child.spec, release=self.release)
        self.h = h

    def release(self, held: Held) -> list[str]:
        self.calls.append((self.h.sys.now, held.names()))
        return []


def resume(h: Harness) -> None:
    """A successor resumes the instance as MASTER and says ready."""
    h.say(Role.VRRP, State(data={"VI_1": {"state": "MASTER", "priority": 100}}), Ready())


def master_harness(policy: RespawnPolicy | None = None) -> tuple[Harness, Released]:
    h = Harness(VRRP_ONLY, policy=policy)
    released = Released(h)
    h.sup.start()
    h.all_ready()
    h.say(Role.VRRP, State(data={"VI_1": {"state": "MASTER", "priority": 100}}))
    return h, released


HOLD = hold_time(VRRP_ONLY.vrrp_instance["VI_1"])  # advert_int 1, v2: 1.9 s


def test_the_vrrp_heartbeat_follows_the_advert_interval() -> None:
    h = Harness(VRRP_ONLY)
    h.sup.start()
    child = h.sup.children[Role.VRRP]
    assert child.heartbeat == vrrp_heartbeat(HeartbeatSettings(1.0, 3.0), VRRP_ONLY)
    assert child.heartbeat is not None and child.heartbeat.timeout == pytest.approx(HOLD)
    assert child.heartbeat.interval == pytest.approx(HOLD / 4)


def test_a_quick_respawn_that_resumes_in_time_keeps_the_vips() -> None:
    h, released = master_harness()
    first = h.pid(Role.VRRP)
    h.sys.dead.append((first, signal.SIGKILL))
    h.advance(0.1)
    assert h.pid(Role.VRRP) != first  # the first quick death respawns at once
    assert h.sent(Role.VRRP)[0] == Resume(data={"VI_1": {"state": "MASTER", "priority": 100}})
    resume(h)
    for _ in range(10):
        h.sys.now += HOLD / 4
        h.beat(Role.VRRP)
    assert released.calls == [] and not h.sys.kills


def test_a_child_dead_in_its_backoff_loses_the_vips_before_the_peers_take_over() -> None:
    h, released = master_harness()
    # Quick deaths respawn at once, then after 1 s, then after 2 s: longer than the hold.
    for wait in (0.1, 1.1):
        h.sys.dead.append((h.pid(Role.VRRP), signal.SIGKILL))
        h.sup.step()  # the reap
        h.advance(wait)
        resume(h)
    h.sys.dead.append((h.pid(Role.VRRP), signal.SIGKILL))
    h.sup.step()
    child = h.sup.children[Role.VRRP]
    assert child.phase is Phase.BACKOFF and child.respawn_at is not None
    deadline = child.heard_at + HOLD
    assert child.respawn_at > deadline
    assert h.sup.next_timeout() <= deadline - h.sys.now  # the loop wakes for it
    h.sys.now = deadline - 0.01
    h.sup.step()
    assert released.calls == []
    h.sys.now = deadline
    h.sup.step()
    assert released.calls == [(deadline, ["VI_1"])]
    assert "vrrp backoff (1 RELEASED)" in h.sup.status_text()
    h.advance(2.0)  # the successor is told: it starts the instance as BACKUP, not MASTER
    assert h.sent(Role.VRRP)[0] == Resume(data={"VI_1": {"state": "RELEASED", "priority": 100}})


def test_a_successor_too_slow_to_resume_is_killed_and_the_vips_released() -> None:
    h, released = master_harness()
    first = h.pid(Role.VRRP)
    h.sys.dead.append((first, signal.SIGKILL))
    h.advance(0.1)
    second = h.pid(Role.VRRP)
    h.beat(Role.VRRP)  # alive, but it has not resumed the instance (no ready, no MASTER)
    h.sys.now += HOLD
    h.sup.step()
    assert (second, signal.SIGKILL) in h.sys.kills
    assert [names for _, names in released.calls] == [["VI_1"]]


def test_a_hung_child_is_killed_and_its_vips_released_at_once() -> None:
    h, released = master_harness()
    vrrp = h.pid(Role.VRRP)
    h.sys.now += HOLD + 0.01
    h.sup.step()
    assert (vrrp, signal.SIGKILL) in h.sys.kills
    assert [names for _, names in released.calls] == [["VI_1"]]


def test_old_heartbeats_read_late_still_count() -> None:
    """A parent that was busy (SIGSTOPped, swapping) reads heartbeats written meanwhile: the time
    the child wrote them counts, not the time the parent read them."""
    h, released = master_harness()
    vrrp = h.pid(Role.VRRP)
    start = h.sys.now
    h.sys.now += 5.0  # the parent did not run for 5 s; the child beat all along
    h.sys.pending[vrrp * 10] = b"".join(encode(Heartbeat(n, start + n * 0.4)) for n in range(1, 13))
    h.sup.step()
    assert (vrrp, signal.SIGKILL) not in h.sys.kills and released.calls == []


def test_a_heartbeat_written_long_ago_does_not_hide_a_hang() -> None:
    h, released = master_harness()
    vrrp = h.pid(Role.VRRP)
    start = h.sys.now
    h.sys.now += 5.0
    h.sys.pending[vrrp * 10] = encode(Heartbeat(1, start + 0.4))  # then it hung
    h.sup.step()
    assert (vrrp, signal.SIGKILL) in h.sys.kills and released.calls


def test_sigterm_while_the_child_waits_for_its_respawn_releases_the_vips() -> None:
    h, released = master_harness()
    h.sys.dead.append((h.pid(Role.VRRP), signal.SIGKILL))
    h.advance(0.05)
    resume(h)
    h.sys.dead.append((h.pid(Role.VRRP), signal.SIGKILL))
    h.advance(0.05)
    assert h.sup.children[Role.VRRP].phase is Phase.BACKOFF and released.calls == []
    h.signal(signal.SIGTERM)
    assert [names for _, names in released.calls] == [["VI_1"]]
    assert h.sup.exit_code == 0


def test_dont_release_vrrp_keeps_the_vips_at_stop() -> None:
    h = Harness(VRRP_ONLY, opts=Options(config_file="/k.conf", dont_release_vrrp=True))
    released = Released(h)
    h.sup.start()
    h.all_ready()
    h.say(Role.VRRP, State(data={"VI_1": {"state": "MASTER", "priority": 100}}))
    h.sys.dead.append((h.pid(Role.VRRP), signal.SIGKILL))
    h.sup.step()
    h.sys.dead.append((h.pid(Role.VRRP), signal.SIGKILL))
    h.sup.step()
    h.signal(signal.SIGTERM)
    assert released.calls == []


def test_a_reload_read_in_the_background_keeps_the_loop_serving() -> None:
    h = Harness()
    h.sys.deferred = True
    h.sup.start()
    h.all_ready()
    h.signal(signal.SIGHUP)
    assert h.sup.loading is not None and h.sup.busy
    for _ in range(10):  # 5 s of reading: the children beat and are heard
        h.sys.now += 0.5
        h.beat(Role.VRRP)
        h.beat(Role.CHECKER)
    assert not h.sys.kills
    h.sys.finish()
    h.sup.step()
    assert h.sent(Role.VRRP)[-1] == Reload("/k.conf")


def test_a_reload_that_never_finishes_reading_is_given_up() -> None:
    h = Harness()
    h.sys.deferred = True
    h.sup.start()
    h.all_ready()
    h.signal(signal.SIGHUP)
    h.signal(signal.SIGHUP)  # queued behind it
    h.sys.now += LOAD_TIMEOUT + 1
    h.sup.step()
    assert "took more than" in h.sup.status_text()
    assert h.sup.loading is not None  # the queued reload started


def test_a_child_that_claims_mastership_while_starting_is_judged_by_its_heartbeats() -> None:
    """A fresh child with many instances reports MASTER before it says ready: its own
    heartbeats count from then on, so a slow start is not mistaken for a failed resume."""
    h = Harness(VRRP_ONLY)
    released = Released(h)
    h.sup.start()
    h.say(Role.VRRP, State(data={"VI_1": {"state": "MASTER", "priority": 100}}))
    for _ in range(12):  # 3 s of starting, beating all along
        h.sys.now += HOLD / 4
        h.beat(Role.VRRP)
    assert not h.sys.kills and released.calls == []


VRRP_TEXT = CONFIG[: CONFIG.index("virtual_server")]
FAST = parsed(VRRP_TEXT.replace("advert_int 1", "advert_int 0.1\n    version 3"))
RENAMED = parsed(VRRP_TEXT.replace("VI_1", "VI_2"))


def test_down_timer_adverts_1_is_run_not_crashed() -> None:
    config = parsed(VRRP_TEXT.replace("advert_int 1", "advert_int 1\n    down_timer_adverts 1"))
    assert hold_time(config.vrrp_instance["VI_1"]) > 0
    h = Harness(config)
    h.sup.start()
    h.all_ready()
    assert h.sup.children[Role.VRRP].phase is Phase.RUNNING


def test_a_child_message_during_the_background_load_does_not_end_the_reload() -> None:
    h = Harness()
    h.sys.deferred = True
    h.sup.start()
    h.all_ready()
    kinds = len(h.notifier.kinds())
    h.signal(signal.SIGHUP)
    h.say(Role.VRRP, State(data={"VI_1": {"state": "BACKUP"}}))
    h.say(Role.CHECKER, Ready())
    assert h.notifier.kinds()[kinds:] == [] and h.sup.reloads == 0
    h.sys.finish()
    h.sup.step()
    assert h.notifier.kinds()[kinds:] == ["RELOADING"]
    h.say(Role.VRRP, Reloaded(True))
    h.say(Role.CHECKER, Reloaded(True))
    assert h.notifier.kinds()[kinds:] == ["RELOADING", "READY"] and h.sup.reloads == 1


def test_a_reload_to_faster_adverts_waits_for_the_child_to_take_it() -> None:
    h, released = master_harness()
    vrrp = h.pid(Role.VRRP)
    h.next_load = LoadResult(FAST, Diagnostics())
    h.signal(signal.SIGHUP)
    h.sys.now += 0.4  # the child still beats at the old pace (0.48 s): no verdict on the new one yet
    h.sup.step()
    assert not h.sys.kills and released.calls == []
    h.say(Role.VRRP, Reloaded(True))
    assert h.sup.children[Role.VRRP].monitor.timeout == pytest.approx(hold_time(FAST.vrrp_instance["VI_1"]))  # type: ignore[union-attr]
    h.sys.now += 0.3  # and now it is judged by the new one
    h.sup.step()
    assert (vrrp, signal.SIGKILL) in h.sys.kills


def test_a_child_hung_before_taking_a_reload_is_released_by_the_configuration_it_ran() -> None:
    h, released = master_harness()
    h.next_load = LoadResult(RENAMED, Diagnostics())
    h.signal(signal.SIGHUP)  # VI_1 becomes VI_2, but the child hangs before it reloads
    h.sys.now += HOLD + 0.01
    h.sup.step()
    assert [names for _, names in released.calls] == [["VI_1"]]


def test_what_was_released_for_a_killed_child_is_released_again_at_its_reap() -> None:
    h, released = master_harness()
    vrrp = h.pid(Role.VRRP)
    h.sys.now += HOLD + 0.01
    h.sys.kill = lambda pid, sig: h.sys.kills.append((pid, sig))  # type: ignore[method-assign]
    h.sup.step()  # hung: killed and released, not reaped yet
    assert [names for _, names in released.calls] == [["VI_1"]]
    h.sys.dead.append((vrrp, signal.SIGKILL))
    h.sup.step()
    assert [names for _, names in released.calls] == [["VI_1"], ["VI_1"]]


def test_a_starting_vrrp_child_gets_the_operators_timeout() -> None:
    h = Harness(FAST)
    h.sup.start()
    vrrp = h.pid(Role.VRRP)
    h.sys.now += 1.0  # far beyond its own 0.18 s, within --heartbeat-timeout (3 s)
    h.sup.step()
    assert not h.sys.kills
    h.say(Role.VRRP, Ready())
    h.sys.now += 0.5
    h.sup.step()
    assert (vrrp, signal.SIGKILL) in h.sys.kills
