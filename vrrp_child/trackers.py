"""The trackers hub of the VRRP child: runs the vrrp_scripts that instances and sync
groups track, holds the state of tracked interfaces, files and processes, and tells the
workload when any of it changed (it then recomputes the verdicts of tracking.py).

vrrp_script (keepalived.conf(5) "VRRP script(s)"): each runs every `interval` seconds,
for at most `timeout` seconds (default: `interval`), then it is terminated (SIGTERM, then
SIGKILL: watchdog.scripts) and counts as failed. One run of a script at a time: a run
that overruns its interval makes the runs it overlapped be skipped, as keepalived skips
them ("Track script X is already running, expect idle - skipping run"). keepalived starts
every script at once at startup; here the first runs of the scripts a configuration
starts are spread over up to a second, so a hundred scripts do not fork in one burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import logging
import os
import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from conf.trackers import TrackFile, TrackProcess, TrackRef, VrrpScript
from conf.values import Script
from conf.vrrp import VrrpInstance, VrrpSyncGroup
from vrrp_child.linkwatch import link_up
from vrrp_child.static_track import static_track_refs
from vrrp_child.tracking import ScriptCounter, ScriptState, TrackStatus, script_step
from watchdog.protocol import Json
from watchdog.scripts import Outcome, ScriptResult, ScriptRunner

if TYPE_CHECKING:
    from conf.model import Config

log = logging.getLogger("pykeepalived_vrrp")

STAGGER = 1.0  # seconds over which the first runs of newly started scripts are spread
_SIOCGIFFLAGS = 0x8913
_MISSING = (Outcome.NOT_FOUND, Outcome.NOT_EXECUTABLE)


def interface_up(ifname: str) -> bool:
    """IFF_UP and IFF_RUNNING of `ifname` in this network namespace (SIOCGIFFLAGS: one
    ioctl, never waits); False when it does not exist."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("16sh14x", ifname.encode()[:15], 0)
            flags: int = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
    except OSError:
        return False
    return link_up(flags & 0xFFFF)


def _which(name: str) -> str | None:
    """The program's path on $PATH. shutil is imported here, with vrrp_scripts only: it would
    otherwise stay in every VRRP child's memory (with tempfile and random, 0.4 MB)."""
    import shutil  # noqa: PLC0415

    return shutil.which(name)


def _command_text(script: Script) -> str:
    """Each word in single quotes, the program as the path it resolves to (symlinks too)."""
    argv = list(script.argv)
    if argv:
        argv[0] = os.path.realpath(_which(argv[0]) or argv[0])
    return " ".join(f"'{a}'" for a in argv)


def _script_of(conf: VrrpScript) -> Script:
    """The command with the vrrp_script's `user [group]` (else the runner's script_user)."""
    assert conf.script is not None  # the parser removes vrrp_scripts without one
    if conf.user is None:
        return conf.script
    return replace(conf.script, user=conf.user[0], group=conf.user[1] if len(conf.user) > 1 else None)


def _run_key(conf: VrrpScript) -> tuple[object, ...]:
    """What a reload must change for a script to start over (weights do not: they are the
    trackers', read by the verdicts)."""
    return (_script_of(conf), conf.interval, conf.effective_timeout, conf.rise, conf.fall)


def _file_signature(argv0: str) -> tuple[int, int, int, int] | None:
    """Identity of the script's file, to notice when a missing/broken script is fixed."""
    path = argv0 if "/" in argv0 else _which(argv0) or argv0
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_mode)


def _failure_words(result: ScriptResult) -> str:
    """keepalived's log for a script that failed: "VRRP_Script(x) failed (exited with
    status 1)", "... failed (due to signal 9)", "... timed_out"."""
    if result.outcome is Outcome.TIMED_OUT:
        return "timed_out"
    if result.outcome is Outcome.EXITED:
        return f"failed (exited with status {result.status})"
    if result.outcome is Outcome.SIGNALLED:
        return f"failed (due to signal {result.signal})"
    return f"failed ({result.describe()})"


class ScriptLoop:
    """One vrrp_script: its loop task and its rise/fall state."""

    def __init__(self, hub: Trackers, conf: VrrpScript, delay: float) -> None:
        self.hub = hub
        self.conf = conf
        self.script = _script_of(conf)
        self.key = _run_key(conf)
        self.counter = ScriptCounter.initial(conf)
        self.last_status = 0  # keepalived logs "Script `x` now returning N" when it changes
        self.running = False
        self.broken = False  # it could not start: not found / not executable
        self.broken_file: tuple[int, int, int, int] | None = None  # its file then (None: missing)
        self.runs = 0
        # keepalived's cmd_str, resolved once as keepalived resolves it when it reads the
        # configuration: the data dump's `Command =` and the JSON's `track_script` (a status
        # query, every /metrics scrape, reads it)
        self.command_text = _command_text(self.script)
        self.task = hub.loop.create_task(self._loop(delay), name=f"vrrp_script {conf.name}")

    @property
    def name(self) -> str:
        return self.conf.name

    async def _loop(self, delay: float) -> None:
        loop = self.hub.loop
        await asyncio.sleep(delay)
        due = loop.time()
        while True:
            try:
                self.result(await self._run_once())
            except Exception:  # a bug must not stop the script's loop for good
                log.exception("VRRP_Script(%s): unexpected error", self.name)
            # Runs that an overrunning script overlapped are skipped: stay on the grid.
            due += self.conf.interval
            now = loop.time()
            if due < now:
                skipped = int((now - due) // self.conf.interval) + 1
                due += skipped * self.conf.interval
                for _ in range(min(skipped, 3)):
                    log.info("Track script %s is already running, expect idle - skipping run", self.name)
            await asyncio.sleep(due - now)

    async def _run_once(self) -> ScriptResult:
        if self.broken:
            if _file_signature(self.script.path) == self.broken_file:
                # Still missing / not executable: counted as failed, not reported again.
                return ScriptResult(self.script.argv, Outcome.NOT_FOUND, detail="still not runnable")
            self.broken = False
        self.running = True
        self.runs += 1
        try:
            result = await self.hub.runner.run(
                self.script, timeout=self.conf.effective_timeout, label=f"VRRP_Script({self.name})", quiet=True
            )
        finally:
            self.running = False
        if result.outcome in _MISSING:
            self.broken, self.broken_file = True, _file_signature(self.script.path)
            log.warning(
                "VRRP_Script(%s) cannot run '%s' (%s); counted as failed until it can",
                self.name,
                self.script.path,
                result.detail or result.outcome.value,
            )
        return result

    def result(self, result: ScriptResult) -> None:
        """Apply one result: rise/fall, keepalived's log lines, and tell the hub."""
        if result.outcome is Outcome.EXITED and result.status is not None and result.status != self.last_status:
            log.info("Script `%s` now returning %d", self.name, result.status)
            self.last_status = result.status
        old = self.counter
        self.counter = script_step(old, result.ok, self.conf)
        if self.counter.state is old.state:
            return
        if self.counter.state is ScriptState.GOOD:
            log.info("VRRP_Script(%s) succeeded", self.name)
        else:
            log.info("VRRP_Script(%s) %s", self.name, _failure_words(result))
        self.hub.script_changed(self.name, self.counter.state)

    def cancel(self) -> None:
        # Cancelling the run terminates the script (SIGTERM, SIGKILL after the grace).
        self.task.cancel()


class Trackers:
    """The hub. `changed()` is called once per loop pass after any status change."""

    def __init__(self, loop: asyncio.AbstractEventLoop, runner: ScriptRunner, changed: Callable[[], None]) -> None:
        self.loop = loop
        self.runner = runner
        self.changed = changed
        self.scripts: dict[str, ScriptLoop] = {}
        self._interfaces: dict[str, bool] = {}
        self._files: dict[str, int] = {}  # track_file name -> value
        self._file_conf: dict[str, TrackFile] = {}
        self._paths: dict[str, set[str]] = {}  # watched path -> track_file names
        self._processes: dict[str, bool] = {}
        self._process_conf: dict[str, TrackProcess] = {}
        self._file_watcher: Any = None
        self._process_watcher: Any = None
        self._config: Config | None = None
        self._status: TrackStatus | None = None
        self._pending = False
        self._unavailable: set[str] = set()
        self._configured = 0  # configure() calls: more than one is a reload

    # ---- configuration -------------------------------------------------------------------

    def configure(self, config: Config) -> None:
        """Start what the instances and sync groups track; on a reload keep what is
        unchanged (scripts keep running with their state), stop what is gone."""
        self._config = config
        self._configured += 1
        refs = list(self._refs(config))
        self._configure_scripts(config, {r.name for kind, r in refs if kind == "script"})
        self._configure_interfaces({r.name for kind, r in refs if kind == "interface"})
        self._configure_files(config, {r.name for kind, r in refs if kind == "file"})
        self._configure_processes(config, {r.name for kind, r in refs if kind == "process"})
        self._touch()

    @staticmethod
    def _refs(config: Config) -> Iterator[tuple[str, TrackRef]]:
        owners: list[VrrpInstance | VrrpSyncGroup] = [*config.vrrp_instance.values(), *config.vrrp_sync_group.values()]
        for owner in owners:
            for kind, refs in (
                ("interface", owner.track_interface),
                ("script", owner.track_script),
                ("file", owner.track_file),
                ("process", owner.track_process),
            ):
                for ref in refs:
                    yield kind, ref
        # static addresses/routes/rules with a track_group: their interfaces (weight 0)
        for refs in static_track_refs(config)[0].values():
            for ref in refs:
                yield "interface", ref

    def _configure_scripts(self, config: Config, names: set[str]) -> None:
        wanted = {n: s for n, s in config.vrrp_script.items() if n in names and s.script is not None}
        for name in list(self.scripts):
            running = self.scripts[name]
            if name not in wanted or _run_key(wanted[name]) != running.key:
                running.cancel()
                del self.scripts[name]
        for name, conf in wanted.items():
            if name in self.scripts:
                self.scripts[name].conf = conf  # same command and timing: keep its state
        new = [name for name in wanted if name not in self.scripts]
        for i, name in enumerate(new):
            conf = wanted[name]
            delay = i * min(float(conf.interval), STAGGER) / len(new)
            self.scripts[name] = ScriptLoop(self, conf, delay)

    def _configure_interfaces(self, names: set[str]) -> None:
        self._interfaces = {n: self._interfaces[n] if n in self._interfaces else interface_up(n) for n in names}

    def _configure_files(self, config: Config, names: set[str]) -> None:
        wanted = {n: f for n, f in config.track_file.items() if n in names and f.file}
        if not wanted and self._file_watcher is None:
            self._files, self._file_conf = {}, {}
            return
        watcher = self._watcher("file")
        paths: dict[str, set[str]] = {}
        for name, tf in wanted.items():
            assert tf.file is not None
            paths.setdefault(tf.file, set()).add(name)
        for path in set(self._paths) - set(paths):
            if watcher is not None:
                watcher.unwatch(path)
        values: dict[str, int] = {}
        for path, file_names in paths.items():
            if path in self._paths:
                value = next((self._files[n] for n in self._paths[path] if n in self._files), 0)
            else:
                value = self._watch_file(watcher, path, [wanted[n] for n in sorted(file_names)])
            for name in file_names:
                values[name] = value
        self._paths, self._files, self._file_conf = paths, values, wanted

    def _watch_file(self, watcher: Any, path: str, confs: list[TrackFile]) -> int:
        if watcher is None:
            return 0
        for tf in confs:
            if tf.init_file is not None:
                # on a reload keepalived leaves an existing file as it is (no overwrite)
                module = importlib.import_module("watchdog.trackfile")
                module.init_file(path, tf.init_file, reload=self._configured > 1)
                break
        value: int = watcher.watch(path)
        return value

    def _configure_processes(self, config: Config, names: set[str]) -> None:
        wanted = {n: p for n, p in config.vrrp_track_process.items() if n in names}
        if not wanted and self._process_watcher is None:
            self._processes, self._process_conf = {}, {}
            return
        watcher = self._watcher("process")
        states: dict[str, bool] = watcher.configure(wanted) if watcher is not None else {}
        self._processes = {n: bool(states.get(n, False)) for n in wanted}
        self._process_conf = wanted

    def _watcher(self, kind: str) -> Any:
        """The file / process watcher, created on first use. Imported by name then: they
        live in modules of their own (watchdog.trackfile, vrrp_child.track_process), only
        needed when a config tracks files or processes."""
        try:
            if kind == "file":
                if self._file_watcher is None:
                    module = importlib.import_module("watchdog.trackfile")
                    self._file_watcher = module.FileWatcher(self.loop, self._file_changed)
                return self._file_watcher
            if self._process_watcher is None:
                module = importlib.import_module("vrrp_child.track_process")
                self._process_watcher = module.ProcessWatcher(self.loop, self._process_changed)
            return self._process_watcher
        except ImportError as e:
            if kind not in self._unavailable:
                self._unavailable.add(kind)
                log.error("track_%s is not available (%s); tracked %ss count as down", kind, e, kind)
            return None

    # ---- events ---------------------------------------------------------------------------

    def set_interface(self, ifname: str, up: bool) -> None:
        """From the workload's link watcher."""
        if ifname in self._interfaces and self._interfaces[ifname] != up:
            self._interfaces[ifname] = up
            self._touch()

    def script_changed(self, name: str, state: ScriptState) -> None:
        if self.scripts.get(name) is not None:
            self._touch()

    def _file_changed(self, path: str, value: int) -> None:
        touched = False
        for name in self._paths.get(path, ()):
            if self._files.get(name) != value:
                self._files[name] = value
                touched = True
        if touched:
            self._touch()

    def _process_changed(self, name: str, up: bool) -> None:
        if name in self._processes and self._processes[name] != up:
            self._processes[name] = up
            self._touch()

    def _touch(self) -> None:
        """Coalesce: one changed() per loop pass, however many trackers moved."""
        self._status = None
        if not self._pending:
            self._pending = True
            self.loop.call_soon(self._fire)

    def _fire(self) -> None:
        self._pending = False
        self.changed()

    # ---- queries --------------------------------------------------------------------------

    def interfaces(self) -> set[str]:
        return set(self._interfaces)

    @property
    def status(self) -> TrackStatus:
        if self._status is None:
            self._status = TrackStatus(
                interfaces=dict(self._interfaces),
                scripts={n: s.counter.state for n, s in self.scripts.items()},
                files=dict(self._files),
                processes=dict(self._processes),
            )
        return self._status

    async def stop(self) -> None:
        """Stop the loops (their running scripts are terminated) and the watchers."""
        loops = list(self.scripts.values())
        self.scripts = {}
        self._status = None
        for s in loops:
            s.cancel()
        for s in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await s.task
        for watcher in (self._file_watcher, self._process_watcher):
            if watcher is not None:
                watcher.close()
        self._file_watcher = self._process_watcher = None

    # ---- SIGUSR1 data dump ----------------------------------------------------------------

    def dump(self) -> str:
        """keepalived 2.2.7's layout of the "VRRP Scripts" and "VRRP Track files" sections."""
        lines: list[str] = []
        if self.scripts:
            lines.append("------< VRRP Scripts >------")
            for name in sorted(self.scripts):
                lines.extend(self._dump_script(self.scripts[name]))
        if self._file_conf:
            lines.append("------< VRRP Track files >------")
            for name in sorted(self._file_conf):
                tf = self._file_conf[name]
                lines.append(f" Track file = {name}")
                lines.append(f"   File = {tf.file}")
                lines.append(f"   Status = {self._files.get(name, 0)}")
                lines.append(f"   Weight = {tf.weight.weight}{' reverse' if tf.weight.reverse else ''}")
                lines.append("   Tracking instances :")
                lines.extend(self._dump_trackers("file", name))
        if self._process_conf:
            lines.append("------< VRRP Track processes >------")
            for name in sorted(self._process_conf):
                tp = self._process_conf[name]
                lines.append(f" Track process = {name}")
                lines.append(f"   Process = {' '.join(tp.process)}")
                quorum_max = "unlimited" if tp.quorum_max is None else str(tp.quorum_max)
                lines.append(f"   Quorum = {tp.quorum}, Quorum max = {quorum_max}")
                lines.append(f"   Status = {'up' if self._processes.get(name) else 'down'}")
                lines.append(f"   Weight = {tp.weight.weight}{' reverse' if tp.weight.reverse else ''}")
                lines.append("   Tracking instances :")
                lines.extend(self._dump_trackers("process", name))
        return "".join(line + "\n" for line in lines)

    def _dump_script(self, s: ScriptLoop) -> list[str]:
        conf = s.conf
        who = self.runner.run_as(s.script)
        state = s.counter.state
        return [
            f" VRRP Script = {s.name}",
            f"   Command = {s.command_text}",
            f"   Interval = {conf.interval} sec",
            f"   Timeout = {conf.timeout or 0} sec",
            f"   Weight = {conf.weight.weight}{' reverse' if conf.weight.reverse else ''}",
            f"   Rise = {conf.rise}",
            f"   Fall = {conf.fall}",
            f"   Result = {s.counter.result}",
            "   Insecure = no",
            # keepalived 2.2.7 prints "unknown" once the script has a result
            f"   Init state = {'INIT' if state is ScriptState.INIT else 'unknown'}",
            f"   Status = {'GOOD' if state is ScriptState.GOOD else 'BAD'}",
            f"   Script uid:gid = {who.uid if who else '?'}:{who.gid if who else '?'}",
            "   VRRP instances :",
            "   Tracking instances :",
            *self._dump_trackers("script", s.name),
            f"   State = {'running' if s.running else 'idle'}",
        ]

    def script_states(self) -> dict[str, Json]:
        """Each vrrp_script's Status (GOOD/BAD) and State (idle/running), as the data dump says
        them (keepalived exporters read these)."""
        return {
            name: {
                "status": "GOOD" if s.counter.state is ScriptState.GOOD else "BAD",
                "state": "running" if s.running else "idle",
            }
            for name, s in sorted(self.scripts.items())
        }

    def other_states(self) -> dict[str, Json]:
        """track_interface (up), track_file (value) and vrrp_track_process (running) states."""
        return {
            "interfaces": dict(sorted(self._interfaces.items())),
            "files": dict(sorted(self._files.items())),
            "processes": dict(sorted(self._processes.items())),
        }

    def _dump_trackers(self, kind: str, name: str) -> list[str]:
        if self._config is None:
            return []
        out: list[str] = []
        member_refs: Mapping[str, tuple[TrackRef, ...]]
        for inst in self._config.vrrp_instance.values():
            member_refs = {"script": inst.track_script, "file": inst.track_file, "process": inst.track_process}
            out.extend(_tracker_line(inst.name, r) for r in member_refs[kind] if r.name == name)
        for group in self._config.vrrp_sync_group.values():
            member_refs = {"script": group.track_script, "file": group.track_file, "process": group.track_process}
            for r in member_refs[kind]:
                if r.name == name:
                    out.extend(_tracker_line(m, r) for m in group.group)
        return out


def _tracker_line(owner: str, ref: TrackRef) -> str:
    return f"     {owner}, weight {ref.weight or 0}{' reverse' if ref.reverse else ''}"
