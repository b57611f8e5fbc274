"""vrrp_track_process: is a quorum of matching processes running?

keepalived.conf(5), "VRRP track processes", and keepalived's core/track_process.c (read for
behaviour) give the rules followed here:

Matching (`matches`, pure):
- without parameters, `param_match` or `full_command`, the process name is compared exactly
  with the kernel's comm (/proc/PID/stat, at most 15 characters): not a regular expression,
  `ssh` does not match `sshd`;
- parameters after the name, `param_match` or `full_command` compare the name with argv[0]
  of /proc/PID/cmdline instead (so a path is matched as a path) and, with parameters or
  param_match, the rest of the command line: all parameters exactly (parameters given, no
  param_match), the first N exactly and more allowed (`partial`), or the last configured one
  as a prefix (`initial`); param_match partial|initial without parameters accepts any;
- zombies and threads never count.

Quorum (`Quorum`, pure): up while quorum <= count <= quorum_max. A change of that verdict is
reported at once, unless it came from a fork of a matching process (`fork_delay`) or from a
process exit (`terminate_delay`): then it is reported when the delay expires, if it still
holds; a change back before the delay expires cancels it, so a restarting daemon (exit, then
exec of the new one) does not bounce the instance. keepalived applies the delays the same way:
to the event that changes the verdict (fork or exit), not to the direction of the change.

Event source (`ProcessWatcher`): the kernel's proc connector (NETLINK_CONNECTOR, CN_IDX_PROC)
reports fork, exec, comm change and exit; the processes named in one batch of events are
re-read from /proc, so the cost per event is one small read, not a scan. Only a full scan at
start, on reload and after lost events (ENOBUFS, rescanned after 1 s as keepalived does). The
connector only answers in the initial network namespace and to root; elsewhere the watcher
polls /proc every second and says so once.

/proc is read directly rather than with psutil: psutil's name() completes a 15-character comm
from the command line, which would match names keepalived does not, and its cmdline() splits
a rewritten command line on spaces where keepalived stops at the first NUL.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pyroute2.netlink.connector.cn_proc import (
    CN_IDX_PROC,
    CN_VAL_PROC,
    PROC_CN_MCAST_IGNORE,
    PROC_CN_MCAST_LISTEN,
    PROC_EVENT_COMM,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
)

from conf.trackers import TrackProcess

log = logging.getLogger("pykeepalived_vrrp")

NETLINK_CONNECTOR = 11
NLMSG_DONE = 3
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
PROC_EVENT = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
PID_PAIR = struct.Struct("=ii")  # pid, tgid: how every event starts (a fork: the parent's, then the child's)
_EVENT_AT = NLMSG_HDR.size + CN_MSG.size
_DATA_AT = _EVENT_AT + PROC_EVENT.size
POLL_INTERVAL = 1.0
RESCAN_AFTER_LOSS = 1.0
COMM_LEN = 15  # TASK_COMM_LEN - 1


@dataclass(frozen=True)
class ProcInfo:
    """What matching needs of one process. `cmdline` is () when it was not read."""

    pid: int
    ppid: int
    comm: str
    cmdline: tuple[str, ...] = ()


def uses_cmdline(spec: TrackProcess) -> bool:
    """keepalived sets full_command itself when parameters or param_match are given."""
    return spec.full_command or len(spec.process) > 1 or spec.param_match is not None


def matches(proc: ProcInfo, spec: TrackProcess) -> bool:
    if not spec.process:
        return False
    name, params = spec.process[0], spec.process[1:]
    if not uses_cmdline(spec):
        return proc.comm == name
    if not proc.cmdline or proc.cmdline[0] != name:
        return False
    args = proc.cmdline[1:]
    if spec.param_match is None:
        # Parameters given: all of them, exactly. Only full_command: the name alone.
        return args == params if params else True
    if spec.param_match == "exact":
        return args == params  # bare `param_match`: exactly these parameters (none: no parameters)
    if not params:
        return True
    n = len(params)
    if len(args) < n:
        return False
    if spec.param_match == "partial":
        return args[:n] == params
    return args[: n - 1] == params[: n - 1] and args[n - 1].startswith(params[n - 1])  # initial


def quorum_range(spec: TrackProcess) -> tuple[int, float]:
    """(quorum, quorum_max); keepalived: `quorum_max 0` means quorum 0, i.e. up only while
    no matching process runs."""
    if spec.quorum_max == 0:
        return 0, 0
    return spec.quorum, float("inf") if spec.quorum_max is None else spec.quorum_max


def in_quorum(spec: TrackProcess, count: int) -> bool:
    lo, hi = quorum_range(spec)
    return lo <= count <= hi


Cause = Literal["fork", "exit", "other"]


class Quorum:
    """The reported up/down of one vrrp_track_process, with fork_delay/terminate_delay.

    `update` and `expire` take the current time and return the new state when it changes
    (else None); `deadline` is when `expire` must be called (None: no timer)."""

    def __init__(self, spec: TrackProcess, count: int) -> None:
        self.spec = spec
        self.count = count
        self.up = in_quorum(spec, count)
        self.deadline: float | None = None

    def update(self, count: int, cause: Cause, now: float) -> bool | None:
        before, self.count = in_quorum(self.spec, self.count), count
        after = in_quorum(self.spec, count)
        if before == after:
            return None  # the verdict did not change: a pending delay keeps running
        if self.deadline is not None:
            # Back to what was reported before the delay expired: no bounce.
            self.deadline = None
            return self._set(after)
        delay = {"fork": self.spec.effective_fork_delay, "exit": self.spec.effective_terminate_delay}.get(cause, 0.0)
        if delay > 0:
            self.deadline = now + delay
            return None
        return self._set(after)

    def expire(self, now: float) -> bool | None:
        if self.deadline is None or now < self.deadline:
            return None
        self.deadline = None
        return self._set(in_quorum(self.spec, self.count))

    def _set(self, up: bool) -> bool | None:
        if up == self.up:
            return None
        self.up = up
        return up


@dataclass(frozen=True)
class Change:
    old: int
    new: int
    cause: Cause


class ProcessTable:
    """Which processes match which vrrp_track_process: pure, fed with ProcInfo."""

    def __init__(self, specs: Mapping[str, TrackProcess]) -> None:
        self.specs = dict(specs)
        self.members: dict[str, set[int]] = {name: set() for name in specs}
        self.cmdline = any(uses_cmdline(s) for s in specs.values())

    def count(self, name: str) -> int:
        return len(self.members[name])

    def rebuild(self, procs: Iterable[ProcInfo]) -> dict[str, Change]:
        """A full scan: `procs` is every live process; one missing has exited."""
        infos: dict[int, ProcInfo | None] = {p.pid: p for p in procs}
        for pids in self.members.values():
            for pid in pids:
                infos.setdefault(pid, None)
        return self.update(infos)

    def update(self, infos: Mapping[int, ProcInfo | None]) -> dict[str, Change]:
        """Re-match the processes in `infos` (None: gone); returns the counts that changed."""
        out: dict[str, Change] = {}
        for name, spec in self.specs.items():
            old = self.members[name]
            new = set(old)
            added: list[ProcInfo] = []
            exited = False
            for pid, info in infos.items():
                if info is not None and matches(info, spec):
                    if pid not in old:
                        new.add(pid)
                        added.append(info)
                elif pid in old:
                    new.discard(pid)
                    exited |= info is None
            # A child of a matching process, also of one that started in this same batch.
            forked = any(info.ppid in old or info.ppid in new for info in added)
            if len(new) != len(old):
                grew = len(new) > len(old)
                cause: Cause = "fork" if grew and forked else "exit" if not grew and exited else "other"
                out[name] = Change(len(old), len(new), cause)
            self.members[name] = new
        return out


def read_proc(pid: int, cmdline: bool) -> ProcInfo | None:
    """/proc/PID as keepalived reads it; None for a process that is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(512)
    except OSError:
        return None
    open_at, close_at = stat.find(b"("), stat.rfind(b")")
    if open_at < 0 or close_at < open_at:
        return None
    fields = stat[close_at + 2 :].split()
    if len(fields) < 2 or fields[0] in (b"Z", b"X"):
        return None
    comm = os.fsdecode(stat[open_at + 1 : close_at])
    args: tuple[str, ...] = ()
    if cmdline:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            return None
        parts = raw.split(b"\0")
        if raw.endswith(b"\0"):
            parts.pop()
        args = tuple(os.fsdecode(p) for p in parts)
    return ProcInfo(pid, int(fields[1]), comm, args)


def scan(cmdline: bool) -> list[ProcInfo]:
    out: list[ProcInfo] = []
    with os.scandir("/proc") as it:
        for entry in it:
            if entry.name.isdigit():
                info = read_proc(int(entry.name), cmdline)
                if info is not None:
                    out.append(info)
    return out


def parse_events(data: bytes) -> list[tuple[int, int, int]]:
    """(what, pid, parent pid) of the process events in one datagram, threads left out (the
    kernel reports a thread as a pid that is not its tgid). For a fork the pid is the child's."""
    out: list[tuple[int, int, int]] = []
    at = 0
    while at + _DATA_AT <= len(data):
        length, mtype, _, _, _ = NLMSG_HDR.unpack_from(data, at)
        if length < NLMSG_HDR.size or at + length > len(data):
            break
        if mtype == NLMSG_DONE and length >= _DATA_AT + PID_PAIR.size:
            idx, val, _, ack, _, _ = CN_MSG.unpack_from(data, at + NLMSG_HDR.size)
            if idx == CN_IDX_PROC and val == CN_VAL_PROC and not ack:
                what = PROC_EVENT.unpack_from(data, at + _EVENT_AT)[0]
                a, b = PID_PAIR.unpack_from(data, at + _DATA_AT)
                if what == PROC_EVENT_FORK and length >= _DATA_AT + 2 * PID_PAIR.size:
                    c, d = PID_PAIR.unpack_from(data, at + _DATA_AT + PID_PAIR.size)
                    if c == d:
                        out.append((what, d, b))
                elif what in (PROC_EVENT_EXEC, PROC_EVENT_COMM, PROC_EVENT_EXIT) and a == b:
                    out.append((what, b, 0))
        at += (length + 3) & ~3
    return out


def open_connector() -> socket.socket:
    """A NETLINK_CONNECTOR socket subscribed to process events; OSError when unavailable
    (ECONNREFUSED outside the initial network namespace, EPERM without CAP_NET_ADMIN)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK, NETLINK_CONNECTOR)
    try:
        sock.bind((0, CN_IDX_PROC))
        _send_control(sock, PROC_CN_MCAST_LISTEN)
    except OSError:
        sock.close()
        raise
    return sock


def _send_control(sock: socket.socket, op: int) -> None:
    payload = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) + struct.pack("=I", op)
    sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), NLMSG_DONE, 0, 0, 0) + payload)


class ProcessWatcher:
    """Calls `changed(name, up)` when a vrrp_track_process gains or loses its quorum."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[str, bool], None]) -> None:
        self.loop = loop
        self.changed = changed
        self.table = ProcessTable({})
        self.quorums: dict[str, Quorum] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.sock: socket.socket | None = None
        self._poll: asyncio.TimerHandle | None = None
        self._rescan: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def polling(self) -> bool:
        return self.sock is None

    def configure(self, processes: Mapping[str, TrackProcess]) -> dict[str, bool]:
        """Track these processes (a reload passes the new set): unchanged ones keep their state
        and pending delays. Returns name -> up now."""
        old_quorums = self.quorums
        self.table = ProcessTable(processes)
        for name, spec in processes.items():
            if len(spec.process[0]) > COMM_LEN and not uses_cmdline(spec):
                log.warning(
                    "vrrp_track_process %s: process name '%s' is longer than the %d characters of a "
                    "process name and can never match; use full_command",
                    name,
                    spec.process[0],
                    COMM_LEN,
                )
        if processes:
            self._start_events()
            self.table.rebuild(scan(self.table.cmdline))
        self.quorums = {}
        for name, spec in processes.items():
            q = old_quorums.get(name)
            count = self.table.count(name)
            if q is not None and q.spec == spec:
                self.quorums[name] = q
                self._report(name, q.update(count, "other", self.loop.time()), notify=False)
            else:
                self.quorums[name] = Quorum(spec, count)
        for name in set(self.timers) - set(self.quorums):
            self.timers.pop(name).cancel()
        for name in self.quorums:
            self._sync_timer(name)
        if not processes:
            self._stop_events()
        return {name: q.up for name, q in self.quorums.items()}

    def close(self) -> None:
        self._closed = True
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self._stop_events()

    # ---- event sources

    def _start_events(self) -> None:
        if self.sock is not None or self._poll is not None or self._closed:
            return
        try:
            self.sock = open_connector()
        except OSError as e:
            log.warning(
                "track_process: process events unavailable (%s); polling /proc every %gs",
                e.strerror,
                POLL_INTERVAL,
            )
            self._poll = self.loop.call_later(POLL_INTERVAL, self._poll_tick)
            return
        self.loop.add_reader(self.sock.fileno(), self._readable)

    def _stop_events(self) -> None:
        for handle in (self._poll, self._rescan):
            if handle is not None:
                handle.cancel()
        self._poll = self._rescan = None
        if self.sock is not None:
            self.loop.remove_reader(self.sock.fileno())
            with contextlib.suppress(OSError):
                _send_control(self.sock, PROC_CN_MCAST_IGNORE)  # the kernel counts listeners
            self.sock.close()
            self.sock = None

    def _poll_tick(self) -> None:
        self._poll = self.loop.call_later(POLL_INTERVAL, self._poll_tick)
        self._apply(self.table.rebuild(scan(self.table.cmdline)))

    def _full_rescan(self) -> None:
        self._rescan = None
        self._apply(self.table.rebuild(scan(self.table.cmdline)))

    def _readable(self) -> None:
        assert self.sock is not None
        touched: dict[int, bool] = {}  # pid -> exited (its last event in the batch was an exit)
        lost = False
        while True:
            try:
                data, (sender, _) = self.sock.recvfrom(65536)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    log.info("process monitor netlink recv error %d - %s", e.errno, e.strerror)
                    break
                lost = True
                continue
            if sender != 0:
                continue  # only the kernel speaks on this group
            for what, pid, _ in parse_events(data):
                touched[pid] = what == PROC_EVENT_EXIT
        if touched:
            infos = {pid: None if gone else read_proc(pid, self.table.cmdline) for pid, gone in touched.items()}
            self._apply(self.table.update(infos))
        if lost:
            self._lost_events()

    def _lost_events(self) -> None:
        """ENOBUFS: events were dropped. Let things settle, then scan everything (keepalived
        waits one second too), with a bigger receive buffer."""
        assert self.sock is not None
        size = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)  # the kernel doubles it
            log.info(
                "Setting global_def process_monitor_rcv_bufs to %u - recommend updating configuration file",
                self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            )
        if self._rescan is not None:
            self._rescan.cancel()
        self._rescan = self.loop.call_later(RESCAN_AFTER_LOSS, self._full_rescan)

    # ---- quorum reporting

    def _apply(self, changes: Mapping[str, Change]) -> None:
        now = self.loop.time()
        for name, change in changes.items():
            q = self.quorums.get(name)
            if q is None:
                continue
            log.debug("Process %s, number of current processes changed from %u to %u", name, change.old, change.new)
            self._report(name, q.update(change.new, change.cause, now))
            self._sync_timer(name)

    def _sync_timer(self, name: str) -> None:
        q = self.quorums[name]
        timer = self.timers.get(name)
        if timer is not None and (q.deadline is None or timer.when() != q.deadline):
            timer.cancel()
            del self.timers[name]
        if q.deadline is not None and name not in self.timers:
            self.timers[name] = self.loop.call_at(q.deadline, self._expire, name)

    def _expire(self, name: str) -> None:
        self.timers.pop(name, None)
        q = self.quorums.get(name)
        if q is not None and q.deadline is not None:
            # asyncio may run a timer up to its clock resolution early.
            self._report(name, q.expire(max(self.loop.time(), q.deadline)))
            self._sync_timer(name)

    def _report(self, name: str, up: bool | None, notify: bool = True) -> None:
        if up is None:
            return
        log.debug("Track process %s quorum %s", name, "gained" if up else "lost")
        if notify:
            self.changed(name, up)
