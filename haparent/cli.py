"""The `pykeepalived` command line: keepalived 2.2's options with the same meanings
(keepalived(8)), plus `--print-config`.

The options are parsed into one frozen `Options` value that the rest of the program
reads; nothing else looks at sys.argv.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from conf import DEFAULT_CONFIG, load
from conf.dump import dumps
from conf.loader import default_config_id
from haparent import banner, namespace, start
from haparent.control import DEFAULT_PATH as DEFAULT_CONTROL_SOCKET
from haparent.options import Options
from watchdog.heartbeat import DEFAULT_INTERVAL, DEFAULT_TIMEOUT
from watchdog.version import KEEPALIVED_COMPAT, VERSION

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

# keepalived's exit code for bad command-line usage.
EXIT_USAGE = 1

GENHASH_OPTIONS = ("-T", "--genhash")
# Options whose value is the next word (getopt: `-f -T` names a file "-T", not genhash mode).
_TAKES_VALUE = frozenset(
    {
        *("-f", "--use-file", "-S", "--log-facility", "-u", "--umask", "-p", "--pid", "-r", "--vrrp_pid"),
        *("-c", "--checkers_pid", "-b", "--bfd_pid", "-i", "--config-id", "--signum", "-s", "--namespace"),
        *("-A", "--snmp-agent-socket", "--heartbeat-interval", "--heartbeat-timeout"),
        *("--control-socket", "--metrics-address"),
    }
)

# --signum names (keepalived lib/signals.c get_signum): what each signal asks for.
SIGNUMS: dict[str, int] = {
    "STOP": signal.SIGTERM,
    "RELOAD": signal.SIGHUP,
    "DATA": signal.SIGUSR1,
    "STATS": signal.SIGUSR2,
    "STATS_CLEAR": signal.SIGRTMAX - 1,
    "JSON": signal.SIGRTMIN + 2,
}

FACILITIES = [str(n) for n in range(8)] + [f"local{n}" for n in range(8)] + ["user", "daemon"]


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size() gives it ($COLUMNS, else stdout's
    terminal, else 80)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    try:
        return (os.get_terminal_size(stdout.fileno()).columns if stdout is not None else 0) or 80
    except (ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    """argparse's own, given the width it would compute (less its 2 columns of margin):
    argparse would import shutil for it, and with it bz2, lzma and fnmatch (0.2 MB held for
    good by the daemon and its children)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)


class _Parser(argparse.ArgumentParser):
    """keepalived's command line: its help layout, on stderr as keepalived prints it."""

    def format_help(self) -> str:
        return "\n".join([f"Usage: {self.prog} [OPTION...]", *map(_help_line, self._actions)]) + "\n"

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        super().print_help(file or sys.stderr)

    def error(self, message: str) -> None:  # type: ignore[override]
        # keepalived: "Unknown option" and exit 1; never argparse's exit 2 with a traceback-like dump.
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _help_line(action: argparse.Action) -> str:
    """`  -f, --use-file=FILE          Use the specified ...`: keepalived's (argp's) columns."""
    shorts = [o for o in action.option_strings if not o.startswith("--")]
    longs = [o for o in action.option_strings if o.startswith("--")]
    name = (f"{shorts[0]}, " if shorts else "    ") + (longs[0] if longs else "")
    if action.nargs != 0:
        metavar = str(action.metavar or action.dest.upper())
        sep = "=" if longs else " "
        name += f"[{sep}{metavar}]" if action.nargs == "?" else f"{sep}{metavar}"
    text = (action.help or "").replace("%%", "%")
    text = text[:1].upper() + text[1:]
    left = f"  {name}"
    first = f"{left:<31}" if len(left) < 30 else f"{left}\n{'':31}"
    return first + "\n".join(textwrap.wrap(text, 79 - 31, break_on_hyphens=False)).replace("\n", "\n" + " " * 32)


def _umask(text: str) -> int:
    try:
        value = int(text, 0) if text.lower().startswith("0x") else int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid umask '{text}' (numeric, e.g. 022)") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"umask '{text}' out of range")
    return value


def _facility(text: str) -> str:
    if text not in FACILITIES:
        raise argparse.ArgumentTypeError(f"invalid log facility '{text}' (0-7, local0-7, user or daemon)")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration '{text}' (seconds)") from None
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"duration '{text}' out of range (0-3600 s)")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pykeepalived",
        description=f"pykeepalived {VERSION}: keepalived {KEEPALIVED_COMPAT} compatible VRRP and health-checking "
        "daemon.",
        allow_abbrev=False,
        formatter_class=_Formatter,
    )
    a = p.add_argument
    a(
        "-f",
        "--use-file",
        dest="config_file",
        metavar="FILE",
        default=DEFAULT_CONFIG,
        help=f"use the specified configuration file (default '{DEFAULT_CONFIG}')",
    )
    a("-P", "--vrrp", dest="vrrp_only", action="store_true", help="only run the VRRP subsystem")
    a("-C", "--check", dest="check_only", action="store_true", help="only run the health-checker subsystem")
    a("-B", "--no_bfd", dest="no_bfd", action="store_true", help="don't run the BFD subsystem (pykeepalived has none)")
    a("--all", dest="run_all", action="store_true", help="run all child processes, even without configuration")
    a("-l", "--log-console", action="store_true", help="log messages to the local console too")
    a("-D", "--log-detail", action="count", default=0, help="detailed log messages (twice for more)")
    a(
        "-S",
        "--log-facility",
        type=_facility,
        default="daemon",
        metavar="FACILITY",
        help="syslog facility: 0-7 (LOG_LOCAL0-7), local0-7, user or daemon (default)",
    )
    a("-G", "--no-syslog", action="store_true", help="don't log via syslog")
    a("-u", "--umask", type=_umask, metavar="MASK", help="umask for file creation (numeric)")
    a("-X", "--release-vips", action="store_true", help="drop VIPs on a transition caused by a signal")
    a("-V", "--dont-release-vrrp", action="store_true", help="don't remove VRRP VIPs and routes on daemon stop")
    a("-I", "--dont-release-ipvs", action="store_true", help="don't remove the IPVS topology on daemon stop")
    a("-R", "--dont-respawn", action="store_true", help="don't respawn child processes (a dead child stops the daemon)")
    a("-n", "--dont-fork", action="store_true", help="don't fork the daemon process (stay in the foreground)")
    a("-d", "--dump-conf", action="store_true", help="dump the configuration data to the log at start-up")
    a(
        "-p",
        "--pid",
        dest="pid_file",
        metavar="FILE",
        default=Options.pid_file,
        help=f"pidfile for the parent process (default {Options.pid_file})",
    )
    a(
        "-r",
        "--vrrp_pid",
        dest="vrrp_pid_file",
        metavar="FILE",
        default=Options.vrrp_pid_file,
        help=f"pidfile for the VRRP child (default {Options.vrrp_pid_file})",
    )
    a(
        "-c",
        "--checkers_pid",
        dest="checkers_pid_file",
        metavar="FILE",
        default=Options.checkers_pid_file,
        help=f"pidfile for the checker child (default {Options.checkers_pid_file})",
    )
    a(
        "-b",
        "--bfd_pid",
        dest="bfd_pid_file",
        metavar="FILE",
        default=Options.bfd_pid_file,
        help="pidfile for the BFD child (accepted for compatibility; there is no BFD child)",
    )
    a(
        "-s",
        "--namespace",
        metavar="NAME",
        default=None,
        help="run in network namespace NAME (/run/netns/NAME; overrides the config's net_namespace)",
    )
    a("-x", "--snmp", action="store_true", help="enable the SNMP subsystem (accepted; SNMP is not implemented)")
    a(
        "-A",
        "--snmp-agent-socket",
        metavar="FILE",
        default=None,
        help="socket of the SNMP master agent (accepted; SNMP is not implemented)",
    )
    a("-m", "--core-dump", action="store_true", help="raise RLIMIT_CORE so that a crash leaves a core dump")
    a(
        "-M",
        "--core-dump-pattern",
        nargs="?",
        const="",
        default=None,
        metavar="PATTERN",
        help="as -m, and set /proc/sys/kernel/core_pattern to PATTERN (default 'core') until the daemon stops",
    )
    a(
        "-T",
        "--genhash",
        action="store_true",
        help="genhash mode: the rest of the command line is pygenhash's (pygenhash --help); must come first",
    )
    a("-a", "--address-monitoring", action="store_true", help="log all address additions/deletions seen via netlink")
    a("-e", "--all-config", action="store_true", help="error if any configuration file is missing (as includea)")
    a(
        "-i",
        "--config-id",
        metavar="ID",
        default=None,
        help="skip '@' lines that don't match ID and '@^' lines that do (default: the host name's first label)",
    )
    a("--signum", metavar="SIGFUNC", help=f"print the signal number for {', '.join(SIGNUMS)} and exit")
    a(
        "-t",
        "--config-test",
        nargs="?",
        const="",
        default=None,
        metavar="LOG_FILE",
        help="check the configuration and exit: 0 valid, 4 cannot run, 5 errors, 6 script security; "
        "messages go to stderr, or to LOG_FILE",
    )
    a(
        "--print-config",
        action="store_true",
        help="validate, then print the whole normalized configuration as JSON on stdout (exit status as -t)",
    )
    a(
        "--heartbeat-interval",
        type=_seconds,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"how often each child sends a heartbeat to the parent (default {DEFAULT_INTERVAL:g})",
    )
    a(
        "--heartbeat-timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"a child silent this long is hung: killed and respawned (default {DEFAULT_TIMEOUT:g})",
    )
    a(
        "--control-socket",
        default=DEFAULT_CONTROL_SOCKET,
        metavar="PATH",
        help=f"the socket pykeepalivedctl talks to, root only (default {DEFAULT_CONTROL_SOCKET}; '' for none)",
    )
    a(
        "--metrics-address",
        type=_metrics_address,
        default=None,
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics on /metrics there (off by default; PORT alone: every address)",
    )
    a("-v", "--version", action="store_true", help="display the version and exit")
    return p


def _metrics_address(text: str) -> tuple[str, int]:
    from haparent.metrics import parse_address  # noqa: PLC0415 (prometheus-client: only with the option)

    try:
        return parse_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"'{text}' is not [HOST:]PORT ({e})") from None


def parse_args(argv: Sequence[str]) -> tuple[Options, argparse.Namespace]:
    parser = build_parser()
    ns = parser.parse_args(list(argv))
    if not ns.heartbeat_timeout > ns.heartbeat_interval:
        parser.error("--heartbeat-timeout must be longer than --heartbeat-interval")
    opts = Options(
        config_file=ns.config_file,
        vrrp_only=ns.vrrp_only,
        check_only=ns.check_only,
        no_bfd=ns.no_bfd,
        run_all=ns.run_all,
        log_console=ns.log_console,
        log_detail=ns.log_detail,
        log_facility=ns.log_facility,
        no_syslog=ns.no_syslog,
        umask=ns.umask,
        release_vips=ns.release_vips,
        dont_release_vrrp=ns.dont_release_vrrp,
        dont_release_ipvs=ns.dont_release_ipvs,
        dont_respawn=ns.dont_respawn or ns.config_test is not None,  # -t implies -R, as keepalived
        dont_fork=ns.dont_fork,
        dump_conf=ns.dump_conf,
        pid_file=ns.pid_file,
        vrrp_pid_file=ns.vrrp_pid_file,
        checkers_pid_file=ns.checkers_pid_file,
        bfd_pid_file=ns.bfd_pid_file,
        address_monitoring=ns.address_monitoring,
        all_config=ns.all_config,
        config_id=ns.config_id if ns.config_id is not None else default_config_id(),
        config_test=ns.config_test is not None,
        config_test_log=ns.config_test or None,
        print_config=ns.print_config,
        heartbeat_interval=ns.heartbeat_interval,
        heartbeat_timeout=ns.heartbeat_timeout,
        control_socket=ns.control_socket,
        metrics_address=ns.metrics_address,
        namespace=ns.namespace,
        snmp=ns.snmp,
        snmp_agent_socket=ns.snmp_agent_socket,
        core_dump=ns.core_dump or ns.core_dump_pattern is not None,
        core_dump_pattern=(ns.core_dump_pattern or "core") if ns.core_dump_pattern is not None else None,
    )
    return opts, ns


def config_test(opts: Options) -> int:
    """`-t` and `--print-config`: report every diagnostic, return keepalived's -t status."""
    lines = [f"note: {note}" for note in opts.notes()]
    if opts.namespace and namespace.exists(opts.namespace):
        # check the interfaces the configuration names where -s would run the daemon
        namespace.enter(opts.namespace)
    result = load(opts.config_file, config_id=opts.config_id, all_config=opts.all_config)
    netns = opts.namespace or (result.config.net_namespace if result.config else None)
    if netns and not namespace.exists(netns):
        # keepalived -t says nothing and exits 0; the daemon would stop at start-up.
        lines.append(
            f"warning: network namespace {netns} does not exist ({namespace.NETNS_DIR}/{netns}): "
            "the daemon would not start"
        )
    lines += [d.render(test_mode=True) for d in result.diagnostics.items]
    out = sys.stderr
    log = None
    try:
        if opts.config_test_log:
            try:
                log = open(opts.config_test_log, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
                out = log
            except OSError as e:
                sys.stderr.write(f"pykeepalived: cannot open '{opts.config_test_log}': {e.strerror}\n")
        for line in lines:
            out.write(line + "\n")
    finally:
        if log is not None:
            log.close()
    if opts.print_config and result.config is not None:
        sys.stdout.write(dumps(result.config) + "\n")
    return result.diagnostics.exit_code()


def genhash_index(argv: Sequence[str]) -> int | None:
    """Where -T/--genhash is in argv (not as another option's value), or None."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return None
        if word in GENHASH_OPTIONS:
            return i
        i += 2 if word in _TAKES_VALUE else 1
    return None


def genhash(argv: Sequence[str], index: int) -> int:
    """keepalived -T: everything after -T is genhash's command line; options before it are
    ignored with keepalived's warning."""
    if index > 0:
        sys.stderr.write(f"Warning -- `{argv[index]}` not used as first option, previous options ignored\n")
    try:
        # Imported here: the parent never needs the checker's code (genhash and its probes).
        pygenhash = importlib.import_module("checker_child.genhash")
        return int(pygenhash.main(list(argv[index + 1 :])))
    except SystemExit as e:  # argparse's --help and usage errors
        return e.code if isinstance(e.code, int) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    index = genhash_index(args)
    if index is not None:
        return genhash(args, index)
    try:
        opts, ns = parse_args(args)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    if ns.version:
        # on stderr, as keepalived: keepalived-exporter reads the version from there
        sys.stderr.write(banner.version_text(distro=banner.distro_name()))
        return 0
    if ns.signum is not None:
        number = SIGNUMS.get(ns.signum)
        if number is None:
            sys.stderr.write(f"Unknown sigfunc {ns.signum}\n")
            return 1
        sys.stdout.write(f"{int(number)}\n")
        return 0
    if opts.config_test or opts.print_config:
        return config_test(opts)
    return run_daemon(opts)


def run_daemon(opts: Options) -> int:
    """Validate the configuration, then run the daemon (haparent.start)."""
    return start.run(opts)


if __name__ == "__main__":
    raise SystemExit(main())
