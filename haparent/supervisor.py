"""The parent's supervision loop (gunicorn's arbiter is the model).

One pass of the loop: wait for a child's message, a signal or the next deadline; read
what the children said; dispatch each recorded signal to its `handle_<name>` method; reap
the dead; kill the hung; converge the children to what the config wants; finish a stop.
Signal handlers only record; everything happens here, and every OS call goes through
`self.system` (see haparent.system), so all of this runs against a fake in the unit tests.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING

from conf import LoadResult
from conf.model import Config
from haparent import banner, configlog, startstop, views
from haparent.child import BecomeChild, Child, Phase, PidWriter, child_entry
from haparent.control import Client, ControlServer, Request
from haparent.notify import Notifier
from haparent.options import Options
from haparent.queries import Desk, Reply, dump_target
from haparent.respawn import Decision, Exit, RespawnPolicy, decide
from haparent.specs import PARENT_DATA_DUMP, SPECS, Role, dump_name, wanted
from haparent.system import System
from vrrp_child.liveness import RELEASED, Held
from watchdog.heartbeat import HeartbeatMonitor, HeartbeatSettings
from watchdog.payload import merged_states, pack, unpack
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
from watchdog.version import VERSION

if TYPE_CHECKING:  # prometheus-client and its HTTP server load only with --metrics-address
    from haparent.metrics import MetricsServer

log = logging.getLogger("pykeepalived")

SIGJSON = signal.SIGRTMIN + 2  # keepalived's SIGJSON
LOAD_TIMEOUT = 120.0  # a configuration that takes longer to read is given up (the old one stays)
QUERY_TIMEOUT = 2.0  # s a control request waits for the children's answers
MAX_WAIT = 10.0  # a safety net: signals (wakeup pipe), child messages and deadlines wake the loop sooner


Loader = Callable[[str], LoadResult]


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
        self.desk = Desk(control, metrics)
        self.rename = rename  # process_name: the parent's comm follows the configuration
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
        for fd in self.system.wait([*self.pipe_fds(), *self.desk.fds()], self.next_timeout()):
            requests = self.desk.readable(fd)
            if requests is None:
                self.read_child(fd)
            for client, request in requests or ():
                self.on_request(client, request)
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
        deadlines.extend(self.desk.deadlines(now))
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
        close += self.desk.parent_fds()  # the control socket, its clients, /metrics: the parent's
        child.config = self.config
        child.heartbeat = spec.heartbeat(self.heartbeat, self.config)
        spawned = self.system.spawn(child_entry(spec, self.config, self.opts, self.heartbeat, self.become_child), close)
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
        for msg in merged_states(messages):
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
        child.state_version += 1
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
        self.desk.queries.forget(child.spec.role)
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
        """When what the child last reported holding must be gone, unless it is heard again.
        The hold is worked out again only when its report or configuration changed: every loop
        pass asks (twice), and with 1,000 instances that was a few % of a core."""
        config = self.child_config(child)
        cache = child.hold_cache
        if cache is None or cache[0] is not config or cache[1] != child.state_version:
            held = child.spec.held(config, child.last_state)
            cache = child.hold_cache = (config, child.state_version, child.spec.hold(held) if held else None)
        hold = cache[2]
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
        child.state_version += 1
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
        reply = self.desk.reply_to(client)
        if isinstance(request, str):
            reply({"ok": False, "error": request})
        elif request.cmd == "status":
            self.ask_children(reply, DumpKind.STATUS)
        elif request.cmd == "dump":
            target = dump_target(request.args)
            if isinstance(target, str):
                reply({"ok": False, "error": target})
            else:
                self.ask_children(reply, *target)
        elif request.cmd == "reload":
            if self.stopping:
                reply({"ok": False, "error": "the daemon is stopping"})
                return
            self.desk.reload_waiters.append(client)
            self.handle_hup()
        else:
            reply({"ok": False, "error": f"unknown command '{request.cmd[:40]}'"})

    def ask_children(self, reply: Reply, kind: DumpKind, only: Role | None = None) -> None:
        """Query each running child that answers `kind`; `reply` gets the answer when all
        have answered or QUERY_TIMEOUT has passed (a hung child does not hold the client)."""
        asked = [
            child
            for child in self.children.values()
            if only in (None, child.spec.role)
            and (kind is DumpKind.STATUS or kind in child.spec.dumps)
            and child.phase in (Phase.STARTING, Phase.RUNNING)
        ]
        deadline = self.system.monotonic() + QUERY_TIMEOUT
        qid = self.desk.queries.open(reply, kind, deadline, {child.spec.role for child in asked})
        for child in asked:
            self.send(child, Query(qid, kind))
        self.finish_queries()

    def on_answer(self, child: Child, msg: Answer) -> None:
        try:
            data = unpack(msg)
        except ProtocolError as e:
            log.error("%s", e)
            return
        self.desk.queries.answered(child.spec.role, data)
        self.finish_queries()

    def finish_queries(self) -> None:
        now = self.system.monotonic()
        for query in self.desk.queries.due(now):
            if query.kind is DumpKind.STATUS:
                answer = views.status_answer(self, query, now)
            else:
                texts = [views.parent_data(self, now)] if query.kind is DumpKind.DATA else []
                texts += [t for t in query.answers.values() if t]
                answer = {"ok": True, "text": "".join(texts), "missing": views.names(query.waiting)}
            query.reply(answer)

    def answer_reload(self, took: float) -> None:
        self.desk.answer_reload(took, self.last_reload_error, self.last_diagnostics)

    def serve_control(self) -> None:
        if self.desk.scrape_wanted():
            self.ask_children(self.desk.metrics_update, DumpKind.STATUS)
        self.finish_queries()
        self.desk.flush()

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
        self.system.trim_heap()  # the start's or the reload's freed heap pages (watchdog.heaptrim)
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
        errors = configlog.log_loaded(result, self.opts.config_file, bool(self.opts.log_detail))
        self.last_diagnostics = [d.render(test_mode=False) for d in result.diagnostics.items]
        if not result.ok or result.config is None:
            self.load_failed(configlog.failure(errors, self.opts.config_file))
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
        """The top-level child_wait_time (keepalived.conf(5); its default lives in the model)."""
        return float(self.config.child_wait_time)

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
            self.desk.shutdown()

    # watchdog, status, dumps -------------------------------------------------------------

    def ping_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        now = self.system.monotonic()
        if interval is not None and now >= self.next_watchdog:
            self.notifier.watchdog()
            self.next_watchdog = now + interval

    def status_text(self) -> str:
        return views.status_line(self)

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
                self.system.write_file(path, views.parent_data(self, self.system.monotonic()))
            except OSError as e:
                log.error("Cannot write the dump %s: %s", path, e.strerror)
        for child in self.children.values():
            name = child.spec.dumps.get(kind)
            if name is not None and child.phase in (Phase.STARTING, Phase.RUNNING):
                self.send(
                    child, Dump(os.path.join(self.tmpdir, dump_name(name, self.config, self.opts.namespace)), kind)
                )
