"""global_defs process_name, vrrp_process_name, checker_process_name and process_names: the name
each process gives itself, as keepalived 2.2.7 does (lib/utils.c set_process_name): prctl
PR_SET_NAME, that is /proc/PID/comm (what `ps -e`, `top` and `pgrep` without -f show), never the
command line (`ps -ef` keeps `pykeepalived: vrrp`). Applied at start and again after each
reload; a name a reload removes gives the process its usual name back (keepalived's:
"keepalived"; ours: pykeepalived, pyka_vrrp, pyka_checker)."""

from __future__ import annotations

import logging
from pathlib import Path

import setproctitle

from conf.global_defs import GlobalDefs

log = logging.getLogger(__name__)


def current() -> str:
    try:
        return Path("/proc/self/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


class ProcessName:
    """One process's name; `role` is a key of GlobalDefs.names() (parent, vrrp, checker).
    Made once the process has its usual name (haparent.logs.set_titles), which it keeps as the
    name to go back to."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.usual = current()
        self.applied: str | None = None

    def apply(self, gdefs: GlobalDefs) -> None:
        name = gdefs.names().get(self.role) or self.usual
        if name == self.applied or not name:
            return
        try:
            # the calling thread's comm: the main thread's is the process's (/proc/PID/comm)
            setproctitle.setthreadtitle(name)
        except Exception:  # keepalived's words; the daemon goes on under its old name
            log.info("Failed to set process name '%s'", name)
            return
        self.applied = name
