"""Starting the daemon: validate, lock the pidfiles, daemonize (unless -n), then hand over
to the supervisor. Also what a freshly forked child does before its runtime starts."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from conf import LoadResult, load
from conf.dump import dumps
from conf.model import Config
from haparent import banner, configlog, namespace
from haparent.control import ControlServer, InUse
from haparent.logs import set_titles, setup_logging
from haparent.notify import Notifier
from haparent.options import Options
from haparent.pidfile import AlreadyRunning, PidFile, read_pid
from haparent.respawn import RespawnPolicy
from haparent.specs import PARENT_COMM, PARENT_IDENT, SPECS, ChildSpec, Role
from haparent.supervisor import SIGJSON, Supervisor
from haparent.system import RealSystem
from watchdog.heartbeat import HeartbeatSettings
from watchdog.payload import spill_dir
from watchdog.procname import ProcessName
from watchdog.sched import startup_notice
from watchdog.version import KEEPALIVED_COMPAT, VERSION

if TYPE_CHECKING:  # prometheus-client and its HTTP server load only with --metrics-address
    from haparent.metrics import MetricsServer

log = logging.getLogger("pykeepalived")

# keepalived's exit codes (enum exit_code).
EXIT_FATAL = 1
EXIT_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: try again later (a child of an earlier daemon still runs)
EXIT_CONFIG = 2
OLD_CHILD_WAIT = 5.0  # s: how long a new daemon waits for an orphaned child of an old one
CORE_PATTERN = "/proc/sys/kernel/core_pattern"  # -M writes it, and restores it on exit


class OldChildRunning(AlreadyRunning):
    """A child of an earlier daemon still holds its pidfile (its parent died: SIGKILL, the
    OOM killer): two generations must never act on the same instances."""

    def __init__(self, spec: ChildSpec, path: str, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else f"the holder of {path}"
        super().__init__(path)
        self.args = (
            f"the {spec.name} process of an earlier pykeepalived ({who}) is still running; "
            f"it stops by itself once it runs again (a stopped one: kill -CONT or kill -9 it)",
        )


def lock_pidfiles(opts: Options, wait: float = OLD_CHILD_WAIT) -> tuple[PidFile, dict[Role, PidFile]]:
    """Lock every pidfile before anything starts (keepalived_running): one held lock means
    another daemon runs with these files. Each child keeps its own pidfile's lock for as long
    as it lives, so a child whose parent died also holds its file: wait `wait` seconds for it
    to notice and stop (it does within a second or two), then refuse, naming it."""
    main = PidFile(opts.pid_file)
    children = {spec.role: PidFile(spec.pidfile(opts)) for spec in SPECS}
    taken: list[PidFile] = []
    try:
        main.acquire()
        taken.append(main)
        for spec in SPECS:
            _acquire_child(spec, children[spec.role], wait)
            taken.append(children[spec.role])
    except BaseException:
        for pidfile in taken:
            if pidfile.fd is not None:  # unlocked, not removed: the file is the other daemon's
                os.close(pidfile.fd)
        raise
    return main, children


def _acquire_child(spec: ChildSpec, pidfile: PidFile, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            pidfile.acquire()
            return
        except AlreadyRunning:
            if time.monotonic() >= deadline:
                raise OldChildRunning(spec, pidfile.path, read_pid(pidfile.path)) from None
        time.sleep(0.1)


def daemonize(opts: Options, keep: list[int]) -> None:
    """python-daemon: fork, setsid, chdir /, standard fds to /dev/null; the pidfile locks
    (flock: shared with the forked process) are kept open. Imported here: with -n it is never
    needed."""
    import daemon  # noqa: PLC0415

    context = daemon.DaemonContext(
        working_directory="/",
        umask=opts.umask if opts.umask is not None else _current_umask(),
        files_preserve=keep,
        signal_map={},  # our own handlers are installed afterwards
        prevent_core=False,
    )
    context.open()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def become_child(opts: Options, spec: ChildSpec) -> None:
    """In a freshly forked child, before its runtime: its own signals, name and logs."""
    signal.set_wakeup_fd(-1)
    # The parent decides: reload, dumps and stop reach a child over its pipe. A terminal's
    # Ctrl-C (SIGINT to the whole process group) must not kill the children behind the
    # parent's back; a direct SIGTERM still stops a child cleanly (the runtime handles it).
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, SIGJSON):
        signal.signal(sig, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    # Only the parent talks to systemd (keepalived's systemd_unset_notify); scripts the
    # child runs must not inherit the socket either.
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        os.environ.pop(name, None)
    set_titles(spec.title, spec.comm)
    setup_logging(opts, spec.ident + opts.ident_suffix)


def enable_core_dumps(opts: Options) -> str | None:
    """-m: RLIMIT_CORE soft and hard to unlimited (keepalived's set_core_dump_pattern /
    create_core_dump); -M also sets core_pattern. Returns the pattern to restore, if any."""
    if not opts.core_dump:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError) as e:
        sys.stderr.write(f"pykeepalived: cannot raise RLIMIT_CORE: {e}\n")
    if opts.core_dump_pattern is None:
        return None
    try:
        with open(CORE_PATTERN, encoding="utf-8") as f:
            original = f.read()
        with open(CORE_PATTERN, "w", encoding="utf-8") as f:
            f.write(opts.core_dump_pattern)
    except OSError as e:
        sys.stderr.write(f"pykeepalived: cannot set {CORE_PATTERN}: {e.strerror}\n")
        return None
    return original


def restore_core_pattern(original: str | None) -> None:
    if original is None:
        return
    with contextlib.suppress(OSError), open(CORE_PATTERN, "w", encoding="utf-8") as f:
        f.write(original)


def enter_namespace(name: str) -> bool:
    """setns into /run/netns/NAME; False (after saying why, in keepalived's words) when the
    namespace cannot be entered."""
    try:
        namespace.enter(name)
    except namespace.NamespaceError as e:
        sys.stderr.write(f"pykeepalived: {e}\n")
        sys.stderr.write(f"pykeepalived: Unable to set network namespace {name} - exiting\n")
        return False
    return True


def run(opts: Options) -> int:
    # -s is known before the configuration is read: enter first, so that the interfaces the
    # configuration names are checked where the daemon will run (net_namespace in the file
    # turns that check off instead: conf.model).
    if opts.namespace and not enter_namespace(opts.namespace):
        return EXIT_FATAL
    result = load(opts.config_file, config_id=opts.config_id, all_config=opts.all_config)
    config = result.config
    if not result.ok or config is None:
        return _refuse(result)
    if opts.umask is not None:
        os.umask(opts.umask)
    # keepalived setns()s before it checks its pidfiles: every child, socket and script
    # from here on is inside the namespace. A namespace that cannot be entered stops the
    # daemon (keepalived exits 0 there; we exit 1, so that nobody reads it as running).
    resolved = namespace.resolve(opts, config)
    if resolved.namespace and not opts.namespace and not enter_namespace(resolved.namespace):
        return EXIT_FATAL
    locked = _lock(resolved)
    if isinstance(locked, int):
        return locked
    return _run_locked(resolved, result, config, *locked)


def _refuse(result: LoadResult) -> int:
    """Nothing starts: say why where the user is looking (a valid config's warnings go to the
    log once logging is up); keepalived's -t code 4 when there is no config at all."""
    for d in result.diagnostics.items:
        if d.label(test_mode=False) != "note":
            sys.stderr.write(d.render(test_mode=False) + "\n")
    code = result.diagnostics.exit_code()
    return code if code == 4 else EXIT_CONFIG


def _lock(opts: Options) -> tuple[PidFile, dict[Role, PidFile]] | int:
    """The pidfiles, locked; or the exit status when another daemon (or its child) runs."""
    try:
        namespace.create_pid_directory(opts)
        return lock_pidfiles(opts)
    except OldChildRunning as e:
        # Temporary: the old child stops by itself once it runs (systemd's Restart= retries;
        # 1 is a permanent status there, RestartPreventExitStatus).
        sys.stderr.write(f"pykeepalived: {e}\n")
        return EXIT_TEMPFAIL
    except AlreadyRunning as e:
        sys.stderr.write(f"pykeepalived: {e}\n")
        return EXIT_FATAL
    except OSError as e:
        sys.stderr.write(f"pykeepalived: cannot open pidfile {e.filename}: {e.strerror}\n")
        return EXIT_FATAL


def _run_locked(
    opts: Options, result: LoadResult, config: Config, main_pidfile: PidFile, child_pidfiles: dict[Role, PidFile]
) -> int:
    heartbeat = HeartbeatSettings(opts.heartbeat_interval, opts.heartbeat_timeout)
    pidfiles = (main_pidfile, *child_pidfiles.values())
    core_pattern: str | None = None
    children_gone = False  # supervise() returns only once every child is reaped
    try:
        if not opts.dont_fork:
            daemonize(opts, [p.fd for p in pidfiles if p.fd is not None])
        core_pattern = enable_core_dumps(opts)
        setup_logging(opts, PARENT_IDENT + opts.ident_suffix)
        set_titles(" ".join(["pykeepalived: parent", *sys.argv[1:]]), PARENT_COMM)
        parent_name = ProcessName("parent")  # global_defs process_name (keepalived sets it at start)
        parent_name.apply(config.global_defs)
        main_pidfile.write(os.getpid())
        for pidfile in child_pidfiles.values():
            pidfile.write(None)
        _log_start(opts, result, config)
        code = supervise(opts, config, heartbeat, child_pidfiles, pidfiles, parent_name=parent_name)
        children_gone = True
        return code
    finally:
        for pidfile in pidfiles:
            with contextlib.suppress(OSError):
                if children_gone or pidfile is main_pidfile:
                    pidfile.release()
                else:
                    # The parent dies of a bug while children may live: their pidfiles (and the
                    # locks the children hold on them) stay, so no new daemon starts beside them.
                    pidfile.close()
        namespace.remove_pid_directory(opts)
        restore_core_pattern(core_pattern)


def _log_start(opts: Options, result: LoadResult, config: Config) -> None:
    """keepalived's start-up lines, then the configuration's diagnostics and notices."""
    log.info("Starting pykeepalived v%s (Keepalived v%s compatible)", VERSION, KEEPALIVED_COMPAT)
    for line in banner.start_lines(sys.argv):
        log.info("%s", line)
    _log_start_notes(opts, config)
    configlog.log_loaded(result, opts.config_file, bool(opts.log_detail))
    notice = startup_notice(config.global_defs)  # keepalived's, when no max_auto_priority
    if notice:
        log.info("%s", notice)
    if opts.dump_conf:
        for line in dumps(config).splitlines():
            log.info("%s", line)


def _log_start_notes(opts: Options, config: Config) -> None:
    """What keepalived logs about the namespace, and the options that do nothing here."""
    if opts.namespace and config.net_namespace and opts.namespace != config.net_namespace:
        log.info(
            "Overriding config net_namespace '%s' with command line namespace '%s'",
            config.net_namespace,
            opts.namespace,
        )
    if opts.ident_suffix:
        log.info("Changing syslog ident to %s%s", PARENT_IDENT, opts.ident_suffix)
    if opts.namespace:
        log.info("Running in network namespace %s (%s)", opts.namespace, namespace.NETNS_DIR)
    for note in opts.notes():
        log.info("note: %s", note)


def open_control(path: str, clock: Callable[[], float]) -> ControlServer | None:
    """The control socket, or None (disabled with '', or not possible: the daemon runs
    without it and says why)."""
    if not path:
        return None
    try:
        return ControlServer(path, clock)
    except InUse:
        log.warning("Control socket %s is in use by another daemon: running without one (--control-socket)", path)
    except OSError as e:
        log.error("Cannot open the control socket %s: %s: running without one", e.filename or path, e.strerror or e)
    return None


def open_metrics(address: tuple[str, int] | None, wake: Callable[[], None]) -> MetricsServer | None:
    if address is None:
        return None
    host, port = address
    from haparent.metrics import MetricsServer  # noqa: PLC0415 (prometheus-client: only when asked for)

    try:
        server = MetricsServer(host, port, wake)
    except OSError as e:
        log.error("Cannot serve metrics on %s:%d: %s: running without them", host, port, e.strerror or e)
        return None
    log.info("Serving Prometheus metrics on http://%s:%d/metrics", host, port)
    return server


def supervise(
    opts: Options,
    config: Config,
    heartbeat: HeartbeatSettings,
    child_pidfiles: dict[Role, PidFile],
    pidfiles: tuple[PidFile, ...],
    *,
    parent_name: ProcessName,
) -> int:
    system = RealSystem()
    notifier = Notifier()
    inherited = [p.fd for p in pidfiles if p.fd is not None] + list(system.own_fds())
    notify_fd = notifier.fileno()
    if notify_fd is not None:
        inherited.append(notify_fd)
    control = open_control(opts.control_socket, system.monotonic)
    if control is not None:
        inherited.append(control.sock.fileno())
    metrics = open_metrics(opts.metrics_address, system.wake)
    if metrics is not None:
        inherited.append(metrics.fileno())
    supervisor = Supervisor(
        opts,
        config,
        system=system,
        notifier=notifier,
        loader=lambda path: load(path, config_id=opts.config_id, all_config=opts.all_config),
        pidfiles=child_pidfiles,
        heartbeat=heartbeat,
        policy=RespawnPolicy(respawn=not opts.dont_respawn),
        become_child=lambda spec: become_child(opts, spec),
        tmpdir=spill_dir(),
        fds_to_close=inherited,
        control=control,
        metrics=metrics,
        rename=lambda new: parent_name.apply(new.global_defs),
    )
    system.install_signals(Supervisor.SIGNALS, supervisor.signal_received)
    return supervisor.run()
