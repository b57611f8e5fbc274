"""The runtime every child shares: one asyncio loop, the pipes to the parent, heartbeats,
and the lifecycle (resume, start, reload, dump, stop) around a `Workload`.

The VRRP and checker children differ only in their workload. The runtime talks to the
parent; the workload does the job and reports state changes through `report`.

Lifecycle, as the parent sees it on the pipe:
    hello -> (resume arrives: always the parent's first message) -> ready -> heartbeats,
    state ... ; reload -> reloaded; dump -> (file written); stop or EOF -> bye, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from conf import load
from conf.model import Config
from watchdog import heaptrim
from watchdog.heartbeat import HeartbeatSettings, beat_plan
from watchdog.payload import pack, state_lines, unpack
from watchdog.procname import ProcessName
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
    Stop,
    decode_stream,
    encode,
)
from watchdog.reload import ReloadFailed
from watchdog.safefile import write_atomic
from watchdog.sched import LATENESS_PROBE, ProcessScheduling, plan_for
from watchdog.status import is_condition

log = logging.getLogger(__name__)

# Exit codes a child may end with (keepalived's enum exit_code). The parent's respawn
# policy decides what each one means.
# What each child's dump is called in keepalived's "Printing ... for process(PID) on signal".
PRINTING: dict[tuple[str, DumpKind], str] = {
    ("vrrp", DumpKind.DATA): "VRRP data",
    ("vrrp", DumpKind.STATS): "VRRP stats",
    ("vrrp", DumpKind.JSON): "VRRP as json",
    ("checker", DumpKind.DATA): "checker data",
    ("checker", DumpKind.STATS): "checker stats",
    ("checker", DumpKind.JSON): "checker as json",
}

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2
EXIT_MISSING_PERMISSION = 4
EXIT_PROGRAM_ERROR = 70

# Heartbeats are the only messages worth dropping when the parent does not read (it is
# stopped or busy): a backlog of them says nothing new.
MAX_BACKLOG = 64

Report = Callable[[Mapping[str, Json]], None]


class PermanentError(Exception):
    """Raised by a workload when restarting cannot help (a missing permission, a config
    the child cannot use); the child exits with `exit_code` and the parent stops."""

    def __init__(self, message: str, exit_code: int = EXIT_FATAL) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Workload(Protocol):
    """What a child does. Every method runs on the child's loop and must not block it."""

    async def resume(self, state: Mapping[str, Json]) -> None:
        """The predecessor's last reported state, before `start` (empty on a first start)."""

    async def start(self, config: Config, report: Report) -> None:
        """Start working on `config`; call `report({name: value})` on every change."""

    async def reload(self, config: Config) -> None:
        """Switch to a new, validated configuration; raise to refuse it (the old one stays),
        or raise watchdog.reload.ReloadFailed to say what was rolled back or switched."""

    async def dump(self, kind: DumpKind) -> str:
        """The content of a dump file: text for DATA and STATS, a JSON document for JSON and
        STATUS (the JSON dump and what else a status view needs)."""

    async def stop(self) -> None:
        """Release what the workload holds (VIPs, IPVS entries) and return."""


@dataclass(frozen=True)
class ChildSetup:
    """What a child inherits from the parent at fork."""

    role: str
    name: str  # for logs and dumps: "VRRP child"
    config: Config
    config_file: str
    config_id: str
    all_config: bool
    heartbeat: HeartbeatSettings  # the operator's (--heartbeat-interval/--heartbeat-timeout)
    read_fd: int  # parent -> child
    write_fd: int  # child -> parent
    version: str = ""
    dont_release_vrrp: bool = False  # -V: keep VIPs and routes on stop
    dont_release_ipvs: bool = False  # -I: keep the IPVS table on stop
    release_vips: bool = False  # -X
    # This child's heartbeat for a configuration (the parent's spec computes the same one).
    heartbeat_for: Callable[[HeartbeatSettings, Config], HeartbeatSettings] = lambda base, config: base


@dataclass
class _Outbox:
    """Non-blocking writes of whole lines to the parent's pipe.

    Each line is at most PIPE_BUF, so a write either takes all of it or fails with EAGAIN:
    a line is never split. Lines wait here while the pipe is full. The lines of one state
    report go in one write (one wakeup of the parent, which reads them together); the only
    writer is the loop, so they cannot interleave with another's, and what a nearly full pipe
    did not take waits here like a line."""

    fd: int
    loop: asyncio.AbstractEventLoop
    on_broken: Callable[[], None]
    pending: deque[tuple[bytes, bool]] = field(default_factory=deque)  # (line, droppable)
    watching: bool = False

    def send(self, line: bytes, *, droppable: bool = False) -> None:
        if droppable and len(self.pending) >= MAX_BACKLOG:
            return
        self.pending.append((line, droppable))
        self.flush()

    def flush(self) -> None:
        while self.pending:
            line, droppable = self.pending[0]
            try:
                written = os.write(self.fd, line)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.EBADF):
                    self.pending.clear()
                    self.on_broken()
                    break
                raise
            if written < len(line):  # several lines, and the pipe had room for a part only
                self.pending[0] = (line[written:], droppable)
                continue
            self.pending.popleft()
        if self.pending and not self.watching:
            self.loop.add_writer(self.fd, self.flush)
            self.watching = True
        elif not self.pending and self.watching:
            self.loop.remove_writer(self.fd)
            self.watching = False


class ChildRuntime:
    def __init__(self, setup: ChildSetup, workload: Workload) -> None:
        self.setup = setup
        self.workload = workload
        self.config = setup.config
        self.heartbeat = setup.heartbeat_for(setup.heartbeat, setup.config)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.stopping = asyncio.Event()
        self._beat_timer: asyncio.TimerHandle | None = None
        self._period = LATENESS_PROBE
        self._next_beat = 0.0
        self.stop_reason = ""
        self.reader = LineReader()
        self.started = time.monotonic()
        self.reloads = 0
        self.seq = 0
        # Conditions (watchdog.status) the predecessor reported and we have not: cleared
        # once started, so that STATUS= does not show a degradation that went with it.
        self.stale_conditions: set[str] = set()
        self.sched = ProcessScheduling(setup.role)  # nice, SCHED_RR, mlockall, affinity
        self.comm = ProcessName(setup.role)  # vrrp_process_name, checker_process_name, process_names

    # pipe I/O -------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        self.outbox.send(encode(msg), droppable=isinstance(msg, Heartbeat))

    def report(self, changes: Mapping[str, Json]) -> None:
        if self.stale_conditions:
            self.stale_conditions.difference_update(changes)
        self.outbox.send(b"".join(state_lines(dict(changes))))

    def _on_readable(self) -> None:
        try:
            data = os.read(self.setup.read_fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            log.error("Cannot read the pipe from the parent: %s", e.strerror)
            data = b""
        if not data:
            # EOF: every copy of the write end is closed, so the parent is gone (even
            # after SIGKILL). Release what we hold and leave; nothing relies on its pid.
            self.loop.remove_reader(self.setup.read_fd)
            self.request_stop("parent gone")
            return
        messages, errors = decode_stream(self.reader, data, Direction.DOWN)
        for error in errors:
            log.error("Bad message from the parent ignored: %s", error)
        for msg in messages:
            self.inbox.put_nowait(msg)

    def request_stop(self, reason: str) -> None:
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()

    # lifecycle ------------------------------------------------------------------------

    def _start_beats(self) -> None:
        """Heartbeats from the loop, never a thread: a blocked loop must stop them. Their timer
        is also the lateness probe of watchdog.sched (watchdog.heartbeat.beat_plan): one plain
        loop timer, no task, since each wakeup of an idle child costs more than its work. A
        reload that shortens the interval beats at once and from then on at the new pace."""
        if self._beat_timer is not None:
            self._beat_timer.cancel()
        self._period, _ = beat_plan(self.heartbeat.interval, LATENESS_PROBE)
        self._next_beat = self.loop.time()
        self._tick(self.loop.time())

    def _tick(self, due: float) -> None:
        now = self.loop.time()
        self.sched.ran_late(now - due)
        # By the time, not by counting ticks: after a stall the overdue tick beats at once.
        if now + self._period / 2 >= self._next_beat:
            self.seq += 1
            self.send(Heartbeat(self.seq, now))
            self._next_beat = now + self.heartbeat.interval
        self._beat_timer = self.loop.call_at(now + self._period, self._tick, now + self._period)

    async def _first_message(self) -> Message | None:
        """The parent sends `resume` right after fork; wait for it a bounded time so a
        parent that does not (another version) only delays the start."""
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self.inbox.get(), self.setup.heartbeat.timeout)
        log.warning("No resume message from the parent; starting without previous state")
        return None

    async def _start(self) -> None:
        first = await self._first_message()
        if isinstance(first, Resume):
            await self._resume(first)
        elif first is not None:
            self.inbox.put_nowait(first)  # handled in order once started
        self.comm.apply(self.config.global_defs)  # keepalived: as soon as the child has read its config
        await self.workload.start(self.config, self.report)
        # After the start's work, as keepalived's start_vrrp/start_check do
        self.sched.apply(plan_for(self.config.global_defs, self.setup.role))
        if self.stale_conditions:
            self.report(dict.fromkeys(self.stale_conditions))
        self.send(Ready())
        heaptrim.trim()  # what the start freed (a netlink dump, the start's garbage)

    async def _resume(self, msg: Resume) -> None:
        try:
            state = unpack(msg)
        except ProtocolError as e:
            log.error("%s", e)
            return
        self.stale_conditions = {key for key in state if is_condition(key)}
        await self.workload.resume(state)

    async def _reload(self, msg: Reload) -> None:
        # keepalived reloads under standard scheduling, then applies the (new) settings
        self.sched.reset()
        try:
            await self._reload_config(msg)
        finally:
            self.sched.apply(plan_for(self.config.global_defs, self.setup.role))
            self.comm.apply(self.config.global_defs)
            heaptrim.trim()  # the parse's garbage, the old configuration's objects

    async def _reload_config(self, msg: Reload) -> None:
        # Parsed off the loop: a large configuration takes a while, and adverts and
        # heartbeats must go on meanwhile (the parser is pure, so a thread is safe).
        result = await asyncio.to_thread(
            load, msg.path, config_id=self.setup.config_id, all_config=self.setup.all_config
        )
        if not result.ok or result.config is None:
            items = result.diagnostics.items
            errors = [d.render(test_mode=False) for d in items if d.label(test_mode=False) == "error"]
            error = errors[0] if errors else f"cannot load {msg.path}"
            log.error("Reload failed, keeping the running configuration: %s", error)
            self.send(Reloaded(False, error))
            return
        try:
            await self.workload.reload(result.config)
        except PermanentError:
            raise
        except ReloadFailed as e:
            # rolled back, or part of the new configuration runs: the line says which
            log.error("%s", e.log_line())
            self.send(Reloaded(False, e.text()))
            return
        except Exception as e:
            log.exception("Reload failed, keeping the running configuration")
            self.send(Reloaded(False, f"{type(e).__name__}: {e}"))
            return
        self.config = result.config
        # the parent takes the new deadline when it reads `reloaded`
        self.heartbeat = self.setup.heartbeat_for(self.setup.heartbeat, result.config)
        self._start_beats()
        self.reloads += 1
        self.send(Reloaded(True))

    async def _dump_text(self, kind: DumpKind) -> str | None:
        try:
            body = await self.workload.dump(kind)
        except Exception:
            log.exception("Cannot produce the %s dump", kind.value)
            return None
        return self._data_header() + body if kind is DumpKind.DATA else body

    async def _answer(self, msg: Query) -> None:
        """The dump on the pipe instead of in a file (the control socket's status and dumps)."""
        body = await self._dump_text(msg.what)
        data: dict[str, Json] = {"id": msg.id, "text": body, "pid": os.getpid()}
        try:
            _, line = pack(Answer, data)
        except OSError as e:  # no room for the spill file: say so, the client is waiting
            _, line = pack(Answer, {"id": msg.id, "text": None, "error": f"cannot spill the answer: {e.strerror}"})
        self.outbox.send(line)

    async def _dump(self, msg: Dump) -> None:
        # keepalived's line (vrrp_daemon.c, check_daemon.c): a Dump comes from a signal only
        what = PRINTING.get((self.setup.role, msg.format))
        if what is not None:
            log.info("Printing %s for process(%d) on signal", what, os.getpid())
        body = await self._dump_text(msg.format)
        if body is None:
            return
        try:
            # A random temporary name (O_EXCL, 0600) renamed over the dump: a symlink planted
            # in $TMPDIR is never followed, and a reader never sees a half-written dump.
            write_atomic(msg.path, body)
        except OSError as e:
            log.error("Cannot write the dump %s: %s", msg.path, e.strerror)

    def _data_header(self) -> str:
        return (
            f"------< {self.setup.name} process >------\n"
            f" Pid = {os.getpid()}\n"
            f" Running for = {time.monotonic() - self.started:.1f} s\n"
            f" Config file = {self.setup.config_file}\n"
            f" Reloads = {self.reloads}\n"
        )

    async def _dispatch(self) -> None:
        """Messages one at a time, in order: a dump never interleaves with a reload."""
        while True:
            msg = await self.inbox.get()
            if isinstance(msg, Reload):
                await self._reload(msg)
            elif isinstance(msg, Query):
                await self._answer(msg)
            elif isinstance(msg, Dump):
                await self._dump(msg)
            elif isinstance(msg, Stop):
                self.request_stop("asked by the parent")
            elif isinstance(msg, Resume):
                await self._resume(msg)

    async def main(self) -> int:
        self.loop = asyncio.get_running_loop()
        os.set_blocking(self.setup.read_fd, False)
        os.set_blocking(self.setup.write_fd, False)
        self.outbox = _Outbox(self.setup.write_fd, self.loop, lambda: self.request_stop("parent gone"))
        self.loop.add_reader(self.setup.read_fd, self._on_readable)
        # The parent asks by pipe; a SIGTERM sent to the child directly (by an operator)
        # still ends it cleanly.
        self.loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        self.sched.attach(self.loop)
        self.send(Hello(os.getpid(), self.setup.role, self.setup.version))
        self._start_beats()
        code = EXIT_OK
        try:
            await self._start_then_serve()
        except PermanentError as e:
            log.error("%s", e)
            code = e.exit_code
        log.info("Stopping (%s)", self.stop_reason or "error")
        try:
            await self.workload.stop()
        finally:
            if self._beat_timer is not None:
                self._beat_timer.cancel()
            self.send(Bye(self.stop_reason))
            await self._drain()
        return code

    async def _start_then_serve(self) -> None:
        starting = asyncio.create_task(self._start())
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            return
        starting.result()  # re-raise a start failure
        dispatcher = asyncio.create_task(self._dispatch())
        await asyncio.wait({dispatcher, stop}, return_when=asyncio.FIRST_COMPLETED)
        if dispatcher.done():
            dispatcher.result()  # re-raise what ended it (a PermanentError from a workload)
        dispatcher.cancel()

    async def _drain(self, limit: float = 1.0) -> None:
        """Give `bye` a moment to reach a parent that is still reading."""
        deadline = self.loop.time() + limit
        while self.outbox.pending and self.loop.time() < deadline:
            await asyncio.sleep(0.02)


def run_child(setup: ChildSetup, workload: Workload) -> int:
    """Run one child to completion; the exit code for the parent's respawn policy."""
    try:
        return asyncio.run(ChildRuntime(setup, workload).main())
    except PermanentError as e:
        log.error("%s", e)
        return e.exit_code
    except Exception:
        log.exception("%s failed", setup.name)
        return EXIT_PROGRAM_ERROR
