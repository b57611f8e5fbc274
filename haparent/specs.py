"""The children the parent can run: one spec per role, and which ones a config needs."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from checker_child import child as checker_child
from conf.model import Config
from vrrp_child import child as vrrp_child
from watchdog.protocol import DumpKind
from watchdog.runtime import ChildSetup

if TYPE_CHECKING:
    from haparent.cli import Options


class Role(enum.StrEnum):
    VRRP = "vrrp"
    CHECKER = "checker"


@dataclass(frozen=True)
class ChildSpec:
    role: Role
    name: str  # keepalived's words in the logs: "Starting VRRP child process, pid=N"
    title: str  # process title in ps; `pgrep -f 'pykeepalived: vrrp'` finds the child
    comm: str  # /proc/PID/comm, at most 15 bytes
    ident: str  # syslog ident (keepalived: Keepalived_vrrp, Keepalived_healthcheckers)
    section: str  # the config section that makes the child needed
    needed: Callable[[Config], bool]
    pidfile: Callable[[Options], str]
    entry: Callable[[ChildSetup], int]
    dumps: Mapping[DumpKind, str]  # which dump signals it answers, and the file name in $TMPDIR


VRRP = ChildSpec(
    role=Role.VRRP,
    name="VRRP child",
    title="pykeepalived: vrrp",
    comm="pyka_vrrp",
    ident="pykeepalived_vrrp",
    section="vrrp_instance",
    needed=lambda config: config.has_vrrp,
    pidfile=lambda opts: opts.vrrp_pid_file,
    entry=vrrp_child.main,
    # As keepalived: SIGUSR2 and SIGJSON go to the VRRP child only.
    dumps=MappingProxyType(
        {DumpKind.DATA: "pykeepalived.data", DumpKind.STATS: "pykeepalived.stats", DumpKind.JSON: "pykeepalived.json"}
    ),
)

CHECKER = ChildSpec(
    role=Role.CHECKER,
    name="Healthcheck child",
    title="pykeepalived: checker",
    comm="pyka_checker",
    ident="pykeepalived_healthcheckers",
    section="virtual_server",
    needed=lambda config: config.has_checker,
    pidfile=lambda opts: opts.checkers_pid_file,
    entry=checker_child.main,
    dumps=MappingProxyType({DumpKind.DATA: "pykeepalived_check.data"}),
)

# keepalived starts the checker before the VRRP child (start_keepalived).
SPECS: tuple[ChildSpec, ...] = (CHECKER, VRRP)

PARENT_IDENT = "pykeepalived"
PARENT_COMM = "pykeepalived"
PARENT_DATA_DUMP = "pykeepalived_parent.data"


def wanted(config: Config, opts: Options) -> tuple[ChildSpec, ...]:
    """The children to run: those whose section the config has (all with --all), limited
    by -P/--vrrp and -C/--check (both given: both, as keepalived)."""
    restricted = {s.role for s in SPECS if (s is VRRP and opts.vrrp_only) or (s is CHECKER and opts.check_only)}
    allowed = restricted or {s.role for s in SPECS}
    return tuple(s for s in SPECS if s.role in allowed and (opts.run_all or s.needed(config)))
