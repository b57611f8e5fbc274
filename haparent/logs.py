"""Logging as keepalived does it: syslog by default (-S facility, -G none), the console
too with -l, more detail with -D; each process under its own name (keepalived:
Keepalived, Keepalived_vrrp, Keepalived_healthcheckers)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from typing import TYPE_CHECKING

import setproctitle

if TYPE_CHECKING:
    from haparent.cli import Options

SYSLOG_SOCKET = "/dev/log"

_FACILITIES = {
    "user": logging.handlers.SysLogHandler.LOG_USER,
    "daemon": logging.handlers.SysLogHandler.LOG_DAEMON,
    **{f"local{n}": logging.handlers.SysLogHandler.LOG_LOCAL0 + n for n in range(8)},
    # keepalived -S 0..7 means LOG_LOCAL0..7.
    **{str(n): logging.handlers.SysLogHandler.LOG_LOCAL0 + n for n in range(8)},
}


def facility(name: str) -> int:
    return _FACILITIES[name]


def setup_logging(opts: Options, ident: str) -> None:
    """(Re)configure the root logger for this process; called again in each child."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if opts.log_detail else logging.INFO)
    if not opts.no_syslog:
        try:
            syslog = logging.handlers.SysLogHandler(address=SYSLOG_SOCKET, facility=facility(opts.log_facility))
        except OSError:
            # No syslog daemon (a container): say so once, on the console if we have one.
            if opts.log_console:
                sys.stderr.write(f"{ident}: no syslog at {SYSLOG_SOCKET}; logging to the console only\n")
        else:
            syslog.setFormatter(logging.Formatter(f"{ident}[%(process)d]: %(message)s"))
            root.addHandler(syslog)
    if opts.log_console:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(f"%(asctime)s {ident}[%(process)d]: %(message)s"))
        root.addHandler(console)
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    # asyncio's own debug lines ("Using selector") say nothing to an operator, even with -D.
    logging.getLogger("asyncio").setLevel(logging.INFO)


def set_titles(title: str, comm: str) -> None:
    """`ps -ef` shows `title`; /proc/PID/comm (ps -e, top, pgrep without -f) shows `comm`."""
    setproctitle.setproctitle(title)
    # setproctitle also truncates the title into comm; set the short name explicitly.
    setproctitle.setthreadtitle(comm[:15])
