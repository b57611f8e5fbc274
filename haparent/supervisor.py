"""The parent's supervision loop (gunicorn's arbiter is the model).

One pass of the loop: wait for a child's message, a signal or the next deadline; read
what the children said; dispatch each recorded signal to its `handle_<name>` method; reap
the dead; kill the hung; converge the children to what the config wants; finish a stop.
Signal handlers only record; everything happens here, and every OS call goes through
`self.system` (see haparent.system), so all of this runs against a fake in the unit tests.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import resource
import signal
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from conf import LoadResult
from conf.model import Config
from haparent import banner, startstop
from haparent.control import Client, ControlServer, Request
from haparent.metrics import MetricsServer
from haparent.notify import Notifier
from haparent.options import Options
from haparent.respawn import Decision, Exit, RespawnPolicy, decide
from haparent.specs import PARENT_DATA_DUMP, SPECS, ChildSpec, Role, dump_name, wanted
from haparent.system import ChildMain, System
from vrrp_child.liveness import RELEASED, Held
from watchdog.heartbeat import HeartbeatMonitor, HeartbeatSettings
from watchdog.payload import pack, unpack
from watchdog.protocol import (
    Answer,
    Bye,
    Direction,
    Dump,
    DumpKind,
    Heartbeat,
    Hello,
    Json,
    LineReader,
    Message,
    ProtocolError,
    Query,
    Ready,
    Reload,
    Reloaded,
    Resume,
    State,
    Stop,
    decode_stream,
    encode,
)
from watchdog.runtime import ChildSetup
from watchdog.version import VERSION

log = logging.getLogger("pykeepalived")

SIGJSON = signal.SIGRTMIN + 2  # keepalived's SIGJSON
DEFAULT_CHILD_WAIT_TIME = 5.0  # global_defs child_wait_time default (keepalived.conf(5))
LOAD_TIMEOUT = 120.0  # a configuration that takes longer to read is given up (the old one stays)
QUERY_TIMEOUT = 2.0  # s a control request waits for the children's answers
OUTPUT_RETRY = 0.05  # s between tries to send an answer a client's socket did not take yet
MAX_WAIT = 10.0  # a safety net: signals (wakeup pipe), child messages and deadlines wake the loop sooner
STATUS_MAX = 400  # systemctl status shows one line; keep STATUS= readable


class Phase(enum.Enum):
    """A child's lifecycle, as supervisor names it; each transition goes through `_set_phase`."""

    STOPPED = "stopped"  # not running and not wanted yet
    STARTING = "starting"  # forked, has not said ready
    RUNNING = "running"
    BACKOFF = "backoff"  # dead, waiting for its respawn time
    STOPPING = "stopping"  # asked to stop, not reaped yet


class PidWriter(Protocol):
    # The locked file: each child keeps it open (and so the lock held) for as long as it
    # lives, so no new daemon starts beside a child of an old one.
    fd: int | None

    def write(self, pid: int | None) -> None: ...


@dataclass
class Child:
    spec: ChildSpec
    phase: Phase = Phase.STOPPED
    pid: int | None = None
    read_fd: int | None = None
    write_fd: int | None = None
    reader: LineReader = field(default_factory=LineReader)
    started_at: float = 0.0
    monitor: HeartbeatMonitor | None = None
    quick_deaths: int = 0
    respawn_at: float | None = None
    kill_at: float | None = None  # when a child asked to stop gets SIGKILL
    killed: bool = False  # SIGKILL sent; waiting for the reap
    awaiting: type[Message] | None = None  # Ready or Reloaded: what READY=1 waits for
    last_state: dict[str, Json] = field(default_factory=dict)
    heartbeat: HeartbeatSettings | None = None  # this child's, for the current configuration
    # When it last proved that it works for what it holds (a heartbeat's own time while
    # running or stopping, or once this process itself reported holding something; its
    # `ready`): survives the child, for the hold rule.
    heard_at: float = 0.0
    restarts: int = 0  # respawns so far (pykeepalivedctl status)
    last_exit: str | None = None  # how its predecessor ended
    claimed: bool = False  # this process reported holding something (became/resumed MASTER)
    # The configuration this child runs: the one it was started with, then the one its last
    # successful `reloaded` confirmed. What it holds, and how long that may outlive it, are
    # looked up here, never in a reload the child has not taken yet.
    config: Config | None = None
    released: Held = field(default_factory=Held)  # what the parent released for it (again at its reap)


Reply = Callable[[dict[str, Json]], None]


@dataclass
class PendingQuery:
    """A control request (or a metrics refresh) waiting for the children's answers."""

    reply: Reply
    kind: DumpKind  # STATUS: the parent's view with the children's; else a plain dump
    deadline: float
    waiting: set[Role] = field(default_factory=set)
    answers: dict[Role, str | None] = field(default_factory=dict)


Loader = Callable[[str], LoadResult]
BecomeChild = Callable[[ChildSpec], None]


class Supervisor:
    SIGNALS: Mapping[int, str] = {
        signal.SIGHUP: "hup",
        signal.SIGTERM: "term",
        signal.SIGINT: "int",
        signal.SIGUSR1: "usr1",
        signal.SIGUSR2: "usr2",
        SIGJSON: "json",
        signal.SIGCHLD: "chld",
    }

    def __init__(
        self,
        opts: Options,
        config: Config,
        *,
        system: System,
        notifier: Notifier,
        loader: Loader,
        pidfiles: Mapping[Role, PidWriter],
        heartbeat: HeartbeatSettings,
        policy: RespawnPolicy,
        become_child: BecomeChild = lambda spec: None,
        tmpdir: str = "/tmp",
        fds_to_close: Iterable[int] = (),
        control: ControlServer | None = None,
        metrics: MetricsServer | None = None,
        rename: Callable[[Config], None] = lambda config: None,
    ) -> None:
        self.opts = opts
        self.config = config
        self.system = system
        self.notifier = notifier
        self.loader = loader
        self.pidfiles = pidfiles
        self.heartbeat = heartbeat
        self.policy = policy
        self.become_child = become_child
        self.tmpdir = tmpdir
        self.fds_to_close = tuple(fds_to_close)
        self.control = control
        self.metrics = metrics
        self.rename = rename  # process_name: the parent's comm follows the configuration
        self.queries: dict[int, PendingQuery] = {}  # control requests waiting for the children
        self.next_query = 1
        self.reload_waiters: list[Client] = []  # `pykeepalivedctl reload`: answered when it ends
        self.loaded_at = 0.0  # when the running configuration was read
        self.last_diagnostics: list[str] = []  # the last reload's, for `pykeepalivedctl reload`
        self.children = {spec.role: Child(spec) for spec in SPECS}
        self.signals: deque[int] = deque()
        self.starting = True  # until every child said ready once: then "Startup complete"
        self.reloading = False
        self.loading: Future[LoadResult] | None = None  # a reload's configuration being read
        self.load_started = 0.0
        self.reload_queued = False
        self.reload_started = 0.0
        self.reloads = 0
        self.last_reload_error: str | None = None
        self.stopping = False
        self.stop_deadline = 0.0
        self.stop_reason: str | None = None  # a permanent error that stops the daemon
        self.exit_status = 0  # what the daemon will exit with once its children are gone
        self.exit_code: int | None = None
        self.last_status = ""
        self.next_watchdog = 0.0
        # global_defs startup_script, running in a thread: no child starts before it ends
        self.startup_script: Future[None] | None = None

    # signals: handlers only record --------------------------------------------------------

    def signal_received(self, signum: int) -> None:
        self.signals.append(signum)

    def handle_hup(self) -> None:
        if self.stopping:
            return
        if self.busy:
            # keepalived queues a reload that arrives while children still load.
            if not self.reload_queued:
                log.info("Reload requested while %s: queued", "starting" if self.starting else "reloading")
            self.reload_queued = True
            return
        self.start_reload()

    def handle_term(self) -> None:
        self.begin_stop(0)

    handle_int = handle_term

    def handle_usr1(self) -> None:
        self.dump(DumpKind.DATA)

    def handle_usr2(self) -> None:
        self.dump(DumpKind.STATS)

    def handle_json(self) -> None:
        self.dump(DumpKind.JSON)

    def handle_chld(self) -> None:
        self.reap()

    # the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        self.start()
        while self.exit_code is None:
            self.step()
        # Every child is gone (keepalived's stop_keepalived): nothing is left to supervise.
        gdefs = self.config.global_defs
        startstop.run_quietly(startstop.shutdown(gdefs), gdefs, detail=bool(self.opts.log_detail))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        log.info("%s", banner.stopped(usage.ru_utime, usage.ru_stime))
        log.info("Stopped pykeepalived v%s", VERSION)
        return self.exit_code

    def start(self) -> None:
        now = self.system.monotonic()
        self.next_watchdog = self.loaded_at = now
        if not self.wanted_roles():
            log.warning("Warning - pykeepalived has no configuration to run")
        gdefs = self.config.global_defs
        script = startstop.startup(gdefs)
        if script is not None:
            # keepalived runs it from its loop and starts the children once it has ended
            detail = bool(self.opts.log_detail)
            self.startup_script = self.system.background(lambda: startstop.run_quietly(script, gdefs, detail=detail))
        self.converge()
        self.check_settled()
        self.update_status()

    def step(self) -> None:
        control_fds = self.control.fds() if self.control is not None else []
        for fd in self.system.wait([*self.pipe_fds(), *control_fds], self.next_timeout()):
            if self.control is not None and self.control.owns(fd):
                for client, request in self.control.readable(fd):
                    self.on_request(client, request)
            else:
                self.read_child(fd)
        while self.signals:
            getattr(self, "handle_" + self.SIGNALS[self.signals.popleft()])()
        self.finish_load()
        self.reap()
        self.check_children()
        self.check_holds()
        self.converge()
        self.check_stop()
        self.serve_control()
        self.ping_watchdog()

    def next_timeout(self) -> float:
        now = self.system.monotonic()
        deadlines = [now + MAX_WAIT]
        for child in self.children.values():
            if child.monitor is not None and child.pid is not None and not self.stopping:
                deadlines.append(child.monitor.deadline())
            deadlines.extend(t for t in (child.respawn_at, child.kill_at) if t is not None)
            hold = self.hold_deadline(child)
            if hold is not None:
                deadlines.append(hold)
        if self.loading is not None:
            deadlines.append(self.load_started + LOAD_TIMEOUT)
        if self.control is not None:
            deadlines.extend(q.deadline for q in self.queries.values())
            client_deadline = self.control.next_deadline()
            if client_deadline is not None:
                deadlines.append(client_deadline)
            if self.control.pending_output():
                deadlines.append(now + OUTPUT_RETRY)
        if self.notifier.watchdog_interval is not None:
            deadlines.append(self.next_watchdog)
        return max(0.0, min(deadlines) - now)

    def pipe_fds(self) -> list[int]:
        return [c.read_fd for c in self.children.values() if c.read_fd is not None]

    # children: start, talk, reap ---------------------------------------------------------

    def wanted_roles(self) -> set[Role]:
        return {spec.role for spec in wanted(self.config, self.opts)}

    def _set_phase(self, child: Child, phase: Phase) -> None:
        log.debug("%s process: %s -> %s", child.spec.name, child.phase.value, phase.value)
        child.phase = phase

    def converge(self) -> None:
        """Start what the config wants and is not running; stop what it no longer wants."""
        if self.stopping or self.startup_pending():
            return
        now = self.system.monotonic()
        want = self.wanted_roles()
        for child in self.children.values():
            if child.spec.role not in want:
                if child.phase in (Phase.STARTING, Phase.RUNNING):
                    log.info("%s process(%s) no longer needed: stopping it", child.spec.name, child.pid)
                    self.stop_child(child, now)
                elif child.phase is Phase.BACKOFF:
                    child.respawn_at = None
                    self._set_phase(child, Phase.STOPPED)
            elif child.phase is Phase.STOPPED or (
                child.phase is Phase.BACKOFF and child.respawn_at is not None and child.respawn_at <= now
            ):
                self.spawn(child)

    def spawn(self, child: Child) -> None:
        spec = child.spec
        close = [fd for c in self.children.values() for fd in (c.read_fd, c.write_fd) if fd is not None]
        own_lock = self.pidfiles[spec.role].fd
        close += [fd for fd in self.fds_to_close if fd != own_lock]
        if self.control is not None:
            close += self.control.fds()  # the listening socket and its clients are the parent's
        if self.metrics is not None:
            close.append(self.metrics.fileno())
        child.config = self.config
        child.heartbeat = spec.heartbeat(self.heartbeat, self.config)
        spawned = self.system.spawn(self._child_main(spec), close)
        now = self.system.monotonic()
        child.pid, child.read_fd, child.write_fd = spawned.pid, spawned.read_fd, spawned.write_fd
        child.reader = LineReader()
        child.started_at = now
        # The operator's timeout until it runs (a large configuration may keep a starting loop
        # busy); its own, shorter one once it is ready or holds something.
        child.monitor = HeartbeatMonitor(self.heartbeat.timeout, now)
        child.respawn_at = child.kill_at = None
        child.killed = False
        child.claimed = False
        child.awaiting = Ready
        self._set_phase(child, Phase.STARTING)
        self.pidfiles[spec.role].write(spawned.pid)
        log.info("Starting %s process, pid=%d", spec.name, spawned.pid)
        # Always the first message: the predecessor's last state (empty on a first start).
        try:
            _, line = pack(Resume, dict(child.last_state), self.tmpdir)
        except OSError as e:
            log.error("Cannot hand the previous state to %s process: %s", spec.name, e)
            _, line = pack(Resume, {}, self.tmpdir)
        self.send_line(child, line)
        self.update_status()

    def _child_main(self, spec: ChildSpec) -> ChildMain:
        def child_main(read_fd: int, write_fd: int) -> int:
            self.become_child(spec)
            setup = ChildSetup(
                role=spec.role.value,
                name=spec.name,
                config=self.config,
                config_file=self.opts.config_file,
                config_id=self.opts.config_id,
                all_config=self.opts.all_config,
                heartbeat=self.heartbeat,
                heartbeat_for=spec.heartbeat,
                read_fd=read_fd,
                write_fd=write_fd,
                version=VERSION,
                dont_release_vrrp=self.opts.dont_release_vrrp,
                dont_release_ipvs=self.opts.dont_release_ipvs,
                release_vips=self.opts.release_vips,
            )
            return spec.entry(setup)

        return child_main

    def send(self, child: Child, msg: Message) -> None:
        self.send_line(child, encode(msg))

    def send_line(self, child: Child, line: bytes) -> None:
        if child.write_fd is None:
            return
        if not self.system.write(child.write_fd, line):
            # Its pipe is full or gone: it is not reading, and the heartbeat check or the
            # reap will deal with it.
            log.warning("%s process(%s) is not reading its pipe; message dropped", child.spec.name, child.pid)

    def stop_child(self, child: Child, now: float) -> None:
        self.send(child, Stop())
        child.kill_at = now + self.child_wait_time()
        child.awaiting = None
        self._set_phase(child, Phase.STOPPING)

    def read_child(self, fd: int) -> None:
        child = next((c for c in self.children.values() if c.read_fd == fd), None)
        if child is None:
            return
        data = self.system.read(fd)
        if data is None:
            return
        if not data:  # EOF: the child is gone or going; the reap does the rest
            self.system.close(fd)
            child.read_fd = None
            return
        messages, errors = decode_stream(child.reader, data, Direction.UP)
        for error in errors:
            log.error("Bad message from %s process(%s) ignored: %s", child.spec.name, child.pid, error)
        for msg in messages:
            self.on_message(child, msg)

    def drain(self, child: Child) -> None:
        """Read what the child wrote while the parent was busy, before judging it."""
        for _ in range(64):  # a bounded amount per pass: a flooding child cannot hold the loop
            if child.read_fd is None or not self.system.readable(child.read_fd):
                return
            self.read_child(child.read_fd)

    def on_message(self, child: Child, msg: Message) -> None:
        if isinstance(msg, Heartbeat):
            # Alive when the child wrote it, on the shared CLOCK_MONOTONIC: a parent that was
            # busy (a reload of a huge file, a stop signal) reads old heartbeats that still
            # prove the child was fine then.
            now = self.system.monotonic()
            at = min(msg.time, now)
            if child.monitor is not None:
                child.monitor.seen(at)
            if child.claimed or child.phase in (Phase.RUNNING, Phase.STOPPING):
                child.heard_at = max(child.heard_at, at)
            return
        if isinstance(msg, Hello):
            if msg.pid != child.pid:
                log.error("%s process(%s) says it is pid %d", child.spec.name, child.pid, msg.pid)
        elif isinstance(msg, Ready):
            if child.phase is Phase.STARTING:
                self._set_phase(child, Phase.RUNNING)
                child.heard_at = self.system.monotonic()  # its instances run (resumed MASTERs advertise)
                self.tighten(child)
                if child.monitor is not None:
                    child.monitor.seen(child.heard_at)
            if child.awaiting is Ready:
                child.awaiting = None
        elif isinstance(msg, Reloaded):
            now = self.system.monotonic()  # its loop answered: as good as a heartbeat
            if child.monitor is not None:
                child.monitor.seen(now)
            if child.phase in (Phase.RUNNING, Phase.STOPPING):
                child.heard_at = max(child.heard_at, now)
            if msg.ok:
                # it runs the new configuration now, and beats for it (its advert intervals)
                child.config = self.config
                child.heartbeat = child.spec.heartbeat(self.heartbeat, self.config)
                if child.phase is Phase.RUNNING or child.claimed:
                    self.tighten(child)
            else:
                self.last_reload_error = f"{child.spec.name}: {msg.error}"
                log.error("%s process(%s) could not reload: %s", child.spec.name, child.pid, msg.error)
            if child.awaiting is Reloaded:
                child.awaiting = None
        elif isinstance(msg, State):
            changes = self.merge_state(child, msg)
            if child.spec.held(self.child_config(child), changes):
                # it reports holding these now (became or resumed MASTER): it advertises them,
                # and from now on its heartbeats prove it does, even while it is still starting
                child.heard_at = self.system.monotonic()
                child.claimed = True
                self.tighten(child)
        elif isinstance(msg, Answer):
            self.on_answer(child, msg)
        elif isinstance(msg, Bye):
            log.debug("%s process(%s) says bye: %s", child.spec.name, child.pid, msg.reason)
        self.check_settled()
        self.update_status()

    def merge_state(self, child: Child, msg: State) -> dict[str, Json]:
        try:
            changes = unpack(msg)
        except ProtocolError as e:
            log.error("%s", e)
            return {}
        for key, value in changes.items():
            if value is None:
                child.last_state.pop(key, None)
            else:
                child.last_state[key] = value
        return changes

    def reap(self) -> None:
        if self.startup_pending():
            # No child runs yet, and waitpid(-1) would take the script's exit status from the
            # thread that waits for it.
            return
        for pid, status in self.system.reap():
            child = next((c for c in self.children.values() if c.pid == pid), None)
            if child is not None:
                self.child_ended(child, Exit.from_status(status))

    def child_ended(self, child: Child, ended: Exit) -> None:
        now = self.system.monotonic()
        pid, ran_for, phase = child.pid, now - child.started_at, child.phase
        for fd in (child.read_fd, child.write_fd):
            if fd is not None:
                self.system.close(fd)
        child.pid = child.read_fd = child.write_fd = None
        child.monitor = None
        child.kill_at = None
        child.awaiting = None  # a successor, if any, is awaited afresh
        self.pidfiles[child.spec.role].write(None)
        child.last_exit = str(ended)
        self.forget_child_in_queries(child.spec.role)
        if child.released:
            # Released while it was still alive (hung, or killed as too slow): a netlink request
            # it had under way may have landed after ours. Now that it is gone, once more.
            for line in self.call_release(child, child.released):
                log.error("%s", line)
            child.released = Held()
        if self.stopping or phase is Phase.STOPPING:
            log.info("%s process(%s) stopped (%s)", child.spec.name, pid, ended)
            self._set_phase(child, Phase.STOPPED)
            # One that was killed, or died, before it could release what it held.
            if not self.opts.dont_release_vrrp:
                self.release_held(child, "stopped without releasing")
        else:
            self.apply(child, pid, decide(self.policy, ended, ran_for, child.quick_deaths), ended, now)
        self.check_settled()
        self.update_status()

    def apply(self, child: Child, pid: int | None, d: Decision, ended: Exit, now: float) -> None:
        name = child.spec.name
        if not d.respawn:
            self._set_phase(child, Phase.STOPPED)
            if d.permanent is not None:
                self.stop_reason = f"{name} exited with permanent error {d.permanent}"
                log.error("%s process(%s) exited with permanent error %s. Terminating", name, pid, d.permanent)
                if d.errno is not None:
                    self.notifier.errno(d.errno, f"{name} exited with permanent error {d.permanent}")
            else:
                log.warning("%s process(%s) died: Exiting", name, pid)
            self.begin_stop(d.daemon_exit)
            return
        log.warning("%s process(%s) died: Respawning", name, pid)
        log.info("%s process(%s) ended (%s) after %.1f s", name, pid, ended, now - child.started_at)
        if d.delay > 0:
            log.warning("Restart of %s process delayed %g seconds to limit respawn rate", name, d.delay)
        child.quick_deaths = d.quick_deaths
        child.restarts += 1
        child.respawn_at = now + d.delay
        self._set_phase(child, Phase.BACKOFF)

    def check_children(self) -> None:
        """Hung children (no message for the heartbeat timeout) and children that ignored
        `stop` get SIGKILL; the reap then respawns or forgets them."""
        now = self.system.monotonic()
        for child in self.children.values():
            if child.pid is None or child.killed:
                continue
            if child.kill_at is not None and now >= child.kill_at:
                log.warning("%s process(%s) failed to die - forcing termination", child.spec.name, child.pid)
                self.kill(child)
            elif not self.stopping and child.monitor is not None and child.monitor.hung(now):
                self.drain(child)  # what it wrote while we were busy counts
                if not child.monitor.hung(now):
                    continue
                log.error(
                    "%s process(%s) hung: no heartbeat for %.2f s - killing it",
                    child.spec.name,
                    child.pid,
                    child.monitor.silence(now),
                )
                self.kill(child)
                # Its hang timeout is within the peers' Master_Down_Interval: they take over
                # soon, so what it held goes now, successor or not (vrrp_child.liveness).
                self.release_held(child, "hung")

    # the hold rule: never keep what is not advertised (vrrp_child.liveness) ---------------

    def hold_deadline(self, child: Child) -> float | None:
        """When what the child last reported holding must be gone, unless it is heard again."""
        held = child.spec.held(self.child_config(child), child.last_state)
        hold = child.spec.hold(held) if held else None
        return None if hold is None else child.heard_at + hold

    def check_holds(self) -> None:
        """A dead child in its respawn backoff, or a successor that did not resume in time:
        release before the peers' timers fire. A successor still starting then is killed
        first, so that no two generations act on the same instances."""
        now = self.system.monotonic()
        for child in self.children.values():
            deadline = self.hold_deadline(child)
            if deadline is None or now < deadline:
                continue
            self.drain(child)  # its `ready` or MASTER report may be waiting unread
            deadline = self.hold_deadline(child)
            if deadline is None or now < deadline:
                continue
            if child.pid is not None and not child.killed:
                log.error(
                    "%s process(%s) did not take over in time (%.2f s without adverts) - killing it",
                    child.spec.name,
                    child.pid,
                    now - child.heard_at,
                )
                self.kill(child)
            self.release_held(child, f"{child.spec.name} process not running")

    def release_held(self, child: Child, why: str) -> None:
        held = child.spec.held(self.child_config(child), child.last_state)
        if not held:
            return
        for name in held.names():
            log.warning("(%s) %s: removing VIPs (peers take over)", name, why)
        for line in self.call_release(child, held):
            log.error("%s", line)
        for name in held.names():
            state = child.last_state.get(name)
            child.last_state[name] = {**(state if isinstance(state, dict) else {}), "state": RELEASED}
        child.released = held
        self.update_status()

    def call_release(self, child: Child, held: Held) -> list[str]:
        try:
            return child.spec.release(held)
        except Exception as e:  # never let the parent's loop die of it; say it loudly
            return [f"cannot release {', '.join(held.names())}: {type(e).__name__}: {e}"]

    def child_config(self, child: Child) -> Config:
        return child.config if child.config is not None else self.config

    def tighten(self, child: Child) -> None:
        """From now on the child is judged by its own heartbeat timeout (the VRRP child's is
        bounded by its advert intervals: vrrp_child.liveness)."""
        if child.monitor is not None and child.heartbeat is not None:
            child.monitor.timeout = child.heartbeat.timeout

    def kill(self, child: Child) -> None:
        if child.pid is not None:
            self.system.kill(child.pid, signal.SIGKILL)
            child.killed = True

    # the control socket (pykeepalivedctl) -------------------------------------------------

    def on_request(self, client: Client, request: Request | str) -> None:
        assert self.control is not None
        if isinstance(request, str):
            self.control.answer(client, {"ok": False, "error": request})
        elif request.cmd == "status":
            self.ask_children(self.replier(client), DumpKind.STATUS)
        elif request.cmd == "dump":
            kinds = {k.value: k for k in (DumpKind.DATA, DumpKind.STATS, DumpKind.JSON)}
            kind = kinds.get(str(request.args.get("what")))
            if kind is None:
                self.control.answer(client, {"ok": False, "error": "dump needs what: data, stats or json"})
                return
            # keepalived's SIGUSR2 and SIGJSON reach only the VRRP child; "child" picks another
            role = str(request.args.get("child") or Role.VRRP.value)
            if kind is not DumpKind.DATA and role not in {r.value for r in Role}:
                self.control.answer(client, {"ok": False, "error": f"no child '{role[:40]}'"})
                return
            self.ask_children(self.replier(client), kind, only=None if kind is DumpKind.DATA else Role(role))
        elif request.cmd == "reload":
            if self.stopping:
                self.control.answer(client, {"ok": False, "error": "the daemon is stopping"})
                return
            self.reload_waiters.append(client)
            self.handle_hup()
        else:
            self.control.answer(client, {"ok": False, "error": f"unknown command '{request.cmd[:40]}'"})

    def replier(self, client: Client) -> Reply:
        def reply(answer: dict[str, Json]) -> None:
            if self.control is not None:
                self.control.answer(client, answer)

        return reply

    def ask_children(self, reply: Reply, kind: DumpKind, *, only: Role | None = None) -> None:
        """Query each running child that answers `kind`; `reply` gets the answer when all
        have answered or QUERY_TIMEOUT has passed (a hung child does not hold the client)."""
        qid, self.next_query = self.next_query, self.next_query + 1
        query = PendingQuery(reply, kind, self.system.monotonic() + QUERY_TIMEOUT)
        for child in self.children.values():
            if only not in (None, child.spec.role):
                continue
            answers = kind is DumpKind.STATUS or kind in child.spec.dumps
            if child.phase in (Phase.STARTING, Phase.RUNNING) and answers:
                query.waiting.add(child.spec.role)
                self.send(child, Query(qid, kind))
        self.queries[qid] = query
        self.finish_queries()

    def on_answer(self, child: Child, msg: Answer) -> None:
        try:
            data = unpack(msg)
        except ProtocolError as e:
            log.error("%s", e)
            return
        qid = data.get("id")
        query = self.queries.get(qid) if isinstance(qid, int) else None
        if query is None or child.spec.role not in query.waiting:
            return  # a late answer to a query already answered
        query.waiting.discard(child.spec.role)
        text = data.get("text")
        query.answers[child.spec.role] = text if isinstance(text, str) else None
        self.finish_queries()

    def forget_child_in_queries(self, role: Role) -> None:
        for query in self.queries.values():
            query.waiting.discard(role)

    def finish_queries(self) -> None:
        now = self.system.monotonic()
        for qid, query in list(self.queries.items()):
            if query.waiting and now < query.deadline:
                continue
            del self.queries[qid]
            if query.kind is DumpKind.STATUS:
                answer = self.status_answer(query)
            else:
                texts = [self.data_dump()] if query.kind is DumpKind.DATA else []
                texts += [t for t in query.answers.values() if t]
                answer = {"ok": True, "text": "".join(texts), "missing": _names(query.waiting)}
            query.reply(answer)

    def status_answer(self, query: PendingQuery) -> dict[str, Json]:
        now = self.system.monotonic()
        children: list[Json] = []
        for child in self.children.values():
            children.append(
                {
                    "role": child.spec.role.value,
                    "phase": child.phase.value,
                    "pid": child.pid,
                    "uptime": round(now - child.started_at, 3) if child.pid is not None else None,
                    "restarts": child.restarts,
                    "last_exit": child.last_exit,
                    "heartbeat_age": round(child.monitor.silence(now), 3) if child.monitor is not None else None,
                    "heartbeat_timeout": child.heartbeat.timeout if child.heartbeat is not None else None,
                    "reported": dict(child.last_state),
                }
            )
        details: dict[str, Json] = {}
        for role, text in query.answers.items():
            try:
                details[role.value] = json.loads(text) if text else None
            except ValueError:
                details[role.value] = None
        vrrp = details.get(Role.VRRP.value)
        vrrp = vrrp if isinstance(vrrp, dict) else {}
        return {
            "ok": True,
            "version": VERSION,
            "pid": os.getpid(),
            "status": self.status_text(),
            "config_file": self.opts.config_file,
            "config_age": round(now - self.loaded_at, 3),
            "reloads": self.reloads,
            "last_reload_error": self.last_reload_error,
            "children": children,
            "vrrp": vrrp.get("instances", []),
            "vrrp_scripts": vrrp.get("scripts", {}),
            "vrrp_trackers": vrrp.get("trackers", {}),
            "checker": details.get(Role.CHECKER.value),
            "missing": _names(query.waiting),
        }

    def answer_reload(self, took: float) -> None:
        waiters, self.reload_waiters = self.reload_waiters, []
        if self.control is None:
            return
        for client in waiters:
            ok = self.last_reload_error is None
            diagnostics: list[Json] = list(self.last_diagnostics)
            answer: dict[str, Json] = {"ok": ok, "error": self.last_reload_error, "seconds": round(took, 3)}
            self.control.answer(client, answer | {"diagnostics": diagnostics})

    def serve_control(self) -> None:
        if self.metrics is not None and self.metrics.want.is_set():
            self.metrics.want.clear()  # a scrape waits for a fresh status (haparent.metrics)
            self.ask_children(self.metrics.update, DumpKind.STATUS)
        self.finish_queries()
        if self.control is None:
            return
        self.control.flush()
        for client in self.control.expire():
            if client in self.reload_waiters:
                self.reload_waiters.remove(client)

    # startup and reload ------------------------------------------------------------------

    def startup_pending(self) -> bool:
        """Whether the startup script still runs (the thread wakes the loop when it ends)."""
        if self.startup_script is not None and self.startup_script.done():
            self.startup_script = None
        return self.startup_script is not None

    @property
    def busy(self) -> bool:
        return self.starting or self.reloading or self.loading is not None

    def check_settled(self) -> None:
        """READY=1 once every child has answered: keepalived's "Startup complete" and
        "Reload complete"; then start a reload that was queued meanwhile."""
        if not self.busy or self.stopping or self.loading is not None or self.startup_pending():
            return
        if any(c.awaiting is not None for c in self.children.values()):
            return
        if self.starting:
            self.starting = False
            log.info("Startup complete")
        else:
            self.reloading = False
            self.reloads += 1
            took = self.system.monotonic() - self.reload_started
            if self.last_reload_error:
                # a child kept its running configuration: say so, not "complete"
                log.error("Reload finished with errors (%.3f s): %s", took, self.last_reload_error)
            else:
                log.info("Reload complete (%.3f s)", took)
            self.answer_reload(took)
        self.notifier.ready(self.status_text())
        self.last_status = self.status_text()
        if self.reload_queued:
            self.reload_queued = False
            self.start_reload()

    def start_reload(self) -> None:
        """Read the configuration off the loop (a large file takes seconds): heartbeats,
        signals, respawns and the hold rule go on meanwhile; `finish_load` takes the result."""
        log.info("Reloading pykeepalived v%s", VERSION)
        self.last_diagnostics = []
        self.reload_started = self.load_started = self.system.monotonic()
        path = self.opts.config_file
        self.loading = self.system.background(lambda: self.loader(path))
        self.finish_load()

    def finish_load(self) -> None:
        if self.loading is None:
            return
        if not self.loading.done():
            if self.system.monotonic() - self.load_started > LOAD_TIMEOUT:
                self.loading = None  # the reader thread is left to finish on its own
                self.load_failed(f"reading {self.opts.config_file} took more than {LOAD_TIMEOUT:g} s")
            return
        future, self.loading = self.loading, None
        if self.stopping:
            return
        try:
            result = future.result()
        except Exception as e:  # the loader reports problems as diagnostics; this is a bug
            self.load_failed(f"cannot read {self.opts.config_file}: {type(e).__name__}: {e}")
            return
        for line in banner.configuration(self.opts.config_file, result.files, bool(self.opts.log_detail)):
            log.info("%s", line)
        errors = log_diagnostics(result)
        self.last_diagnostics = [d.render(test_mode=False) for d in result.diagnostics.items]
        if not result.ok or result.config is None:
            first = errors[0] if errors else f"cannot read {self.opts.config_file}"
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            self.load_failed(f"{first}{more}")
            return
        self.apply_reload(result.config)

    def load_failed(self, error: str) -> None:
        self.last_reload_error = error
        log.error("Reload failed: %s; still running the previous configuration", error)
        self.update_status()
        self.answer_reload(self.system.monotonic() - self.reload_started)
        if self.reload_queued:
            self.reload_queued = False
            self.start_reload()

    def apply_reload(self, config: Config) -> None:
        self.last_reload_error = None
        self.config = config
        self.rename(config)
        self.loaded_at = self.system.monotonic()
        self.reloading = True
        self.notifier.reloading(self.status_text())
        want = self.wanted_roles()
        for child in self.children.values():
            if child.spec.role in want and child.phase in (Phase.STARTING, Phase.RUNNING):
                self.send(child, Reload(self.opts.config_file))
                child.awaiting = Reloaded
        # A section that appeared starts its child (awaited as Ready); one that vanished stops it.
        self.converge()
        self.check_settled()
        self.update_status()

    # stop --------------------------------------------------------------------------------

    def child_wait_time(self) -> float:
        # child_wait_time (keepalived.conf(5)): a top-level keyword in keepalived; looked up
        # leniently so that the model's placement of it can move without breaking the stop.
        for holder in (self.config, getattr(self.config, "global_defs", None)):
            value = getattr(holder, "child_wait_time", None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        return DEFAULT_CHILD_WAIT_TIME

    def begin_stop(self, code: int) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.exit_status = code
        log.info("Stopping")
        self.notifier.stopping(self.status_text())
        now = self.system.monotonic()
        self.stop_deadline = now + self.child_wait_time()
        for child in self.children.values():
            if child.pid is not None:
                if child.phase is not Phase.STOPPING:
                    self.send(child, Stop())
                    self._set_phase(child, Phase.STOPPING)
                child.kill_at = self.stop_deadline
            else:
                child.respawn_at = None
                self._set_phase(child, Phase.STOPPED)
                # dead, waiting for its respawn: nobody else would remove its VIPs
                if not self.opts.dont_release_vrrp:
                    self.release_held(child, "stopping")

    def check_stop(self) -> None:
        if self.stopping and all(c.pid is None for c in self.children.values()):
            self.exit_code = self.exit_status
            if self.control is not None:
                self.control.shutdown()
                self.control = None
            if self.metrics is not None:
                self.metrics.shutdown()
                self.metrics = None

    # watchdog, status, dumps -------------------------------------------------------------

    def ping_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        now = self.system.monotonic()
        if interval is not None and now >= self.next_watchdog:
            self.notifier.watchdog()
            self.next_watchdog = now + interval

    def status_text(self) -> str:
        if self.stopping:
            words = ["Stopping"]
        elif self.starting:
            words = ["Starting"]
        elif self.reloading:
            words = ["Reloading"]
        else:
            words = ["Running"]
        parts = [" ".join(words)]
        for child in self.children.values():
            if child.phase is Phase.STOPPED:
                continue
            text = f"{child.spec.role.value} {child.phase.value}"
            if child.pid is not None:
                text += f" pid {child.pid}"
            summary = child.spec.summary(child.last_state)
            if summary:
                text += f" ({summary})"
            parts.append(text)
        if self.stop_reason is not None:
            parts.append(self.stop_reason)  # why it stops stays visible to the end
        elif len(parts) == 1 and not self.stopping:
            parts.append("no child process (no configuration to run)")
        if self.last_reload_error:
            parts.append(f"last reload failed: {self.last_reload_error}")
        return "; ".join(parts)[:STATUS_MAX]

    def update_status(self) -> None:
        text = self.status_text()
        if text != self.last_status:
            self.last_status = text
            self.notifier.status(text)

    def dump(self, kind: DumpKind) -> None:
        """keepalived: SIGUSR1 -> every process writes its .data; SIGUSR2 and SIGJSON -> the
        VRRP child writes .stats / .json (and, ours, the checker its keepalived_check.stats /
        .json). Files go to $TMPDIR (default /tmp)."""
        if kind is DumpKind.DATA:
            log.info("Printing parent data for process(%d) on signal", os.getpid())
            path = os.path.join(self.tmpdir, dump_name(PARENT_DATA_DUMP, self.config, self.opts.namespace))
            try:
                self.system.write_file(path, self.data_dump())
            except OSError as e:
                log.error("Cannot write the dump %s: %s", path, e.strerror)
        for child in self.children.values():
            name = child.spec.dumps.get(kind)
            if name is not None and child.phase in (Phase.STARTING, Phase.RUNNING):
                self.send(
                    child, Dump(os.path.join(self.tmpdir, dump_name(name, self.config, self.opts.namespace)), kind)
                )

    def data_dump(self) -> str:
        now = self.system.monotonic()
        lines = [
            "------< pykeepalived parent process >------",
            f" Version = {VERSION}",
            f" Pid = {os.getpid()}",
            f" Config file = {self.opts.config_file}",
            f" Status = {self.status_text()}",
            f" Reloads = {self.reloads}",
            f" Heartbeat interval = {self.heartbeat.interval} s, timeout = {self.heartbeat.timeout} s",
        ]
        for child in self.children.values():
            lines.append(f" {child.spec.name} process:")
            lines.append(f"   State = {child.phase.value}")
            if child.pid is not None:
                lines.append(f"   Pid = {child.pid}, running for {now - child.started_at:.1f} s")
            if child.monitor is not None:
                lines.append(f"   Last heard from = {child.monitor.silence(now):.1f} s ago")
            lines.append(f"   Quick deaths in a row = {child.quick_deaths}")
            lines.append(f"   Last state = {child.last_state}")
        return "\n".join(lines) + "\n"


def _names(roles: Iterable[Role]) -> list[Json]:
    return [r.value for r in sorted(roles)]


def log_diagnostics(result: LoadResult) -> list[str]:
    """Log a config's diagnostics as the daemon does (RESETs as warnings); return the errors."""
    errors: list[str] = []
    for d in result.diagnostics.items:
        text = d.render(test_mode=False)
        label = d.label(test_mode=False)
        if label == "error":
            errors.append(text)
            log.error("%s", text)
        elif label == "warning":
            log.warning("%s", text)
        else:
            log.info("%s", text)
    return errors
