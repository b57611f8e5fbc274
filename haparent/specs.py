"""The children the parent can run: one spec per role, and which ones a config needs."""

from __future__ import annotations

import enum
import importlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from conf.model import Config
from haparent.options import Options
from vrrp_child import liveness, release
from vrrp_child.liveness import Held
from watchdog.heartbeat import HeartbeatSettings
from watchdog.protocol import DumpKind, Json
from watchdog.runtime import ChildSetup
from watchdog.statekeys import KeyKind, kind_of
from watchdog.status import is_condition, summary_tail


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
    # The module whose main(ChildSetup) runs the child. Imported by `entry()` when the parent
    # first starts that child, before the fork, so that a respawn does not wait for imports
    # and the pages stay shared; a parent that never runs a child never imports its code.
    module: str
    dumps: Mapping[DumpKind, str]  # which dump signals it answers, and the file name in $TMPDIR
    # what systemd's STATUS= says about the child's last reported states
    summary: Callable[[Mapping[str, Json]], str]
    # Its heartbeat, from the operator's settings and the configuration (the VRRP child's is
    # bounded by its advert intervals: vrrp_child.liveness).
    heartbeat: Callable[[HeartbeatSettings, Config], HeartbeatSettings] = lambda base, config: base
    # What must not outlive the child's adverts: the instances it last reported MASTER ...
    held: Callable[[Config, Mapping[str, Json]], Held] = lambda config, states: Held()
    # ... how long they may stay once the child was last heard (None: nothing held) ...
    hold: Callable[[Held], float | None] = lambda held: None
    # ... and releasing them (the parent does it when the child cannot; the error lines).
    release: Callable[[Held], list[str]] = lambda held: []

    def entry(self) -> Callable[[ChildSetup], int]:
        main: Callable[[ChildSetup], int] = importlib.import_module(self.module).main
        return main


def _states(reports: Mapping[str, Json], keep: Callable[[str], bool]) -> Counter[str]:
    return Counter(
        str(v["state"])
        for k, v in reports.items()
        if not is_condition(k) and keep(k) and isinstance(v, dict) and "state" in v
    )


def _joined(counts: str, reports: Mapping[str, Json]) -> str:
    """The counts, then what the child cannot do (watchdog.status), `; `-separated."""
    return "; ".join(part for part in (counts, *summary_tail(reports)) if part)


def vrrp_summary(reports: Mapping[str, Json]) -> str:
    """Instances by state, e.g. `2 MASTER, 1 BACKUP` (sync groups report as "group:NAME"),
    then degraded conditions: `1 MASTER; degraded: notify FIFO /run/x: Permission denied`."""
    counts = _states(reports, lambda key: kind_of(key) is not KeyKind.GROUP)
    return _joined(", ".join(f"{n} {s}" for s, n in sorted(counts.items())), reports)


def checker_summary(reports: Mapping[str, Json]) -> str:
    """E.g. `9/10 real servers up; IPVS not programmed: no IPVS in the kernel`: real servers
    report as "VS -> RS", virtual servers by name; then the IPVS and degraded conditions."""
    real = _states(reports, lambda key: kind_of(key) is KeyKind.REAL_SERVER)
    below = _states(reports, lambda key: kind_of(key) is not KeyKind.REAL_SERVER)["QUORUM_DOWN"]
    counts = ""
    if real or below:
        counts = f"{real['UP']}/{real.total()} real servers up"
        counts += f", {below} virtual servers below quorum" if below else ""
    return _joined(counts, reports)


VRRP = ChildSpec(
    role=Role.VRRP,
    name="VRRP child",
    title="pykeepalived: vrrp",
    comm="pyka_vrrp",
    ident="Keepalived_vrrp",  # keepalived's: rsyslog filters and `journalctl -t` keep working
    section="vrrp_instance",
    needed=lambda config: config.has_vrrp,
    pidfile=lambda opts: opts.vrrp_pid_file,
    module="vrrp_child.child",
    # As keepalived: SIGUSR2 and SIGJSON go to the VRRP child only.
    dumps=MappingProxyType(
        {DumpKind.DATA: "keepalived.data", DumpKind.STATS: "keepalived.stats", DumpKind.JSON: "keepalived.json"}
    ),
    summary=vrrp_summary,
    heartbeat=liveness.vrrp_heartbeat,
    held=liveness.masters,
    hold=liveness.shortest_hold,
    release=release.release,
)

CHECKER = ChildSpec(
    role=Role.CHECKER,
    name="Healthcheck child",
    title="pykeepalived: checker",
    comm="pyka_checker",
    ident="Keepalived_healthcheckers",
    section="virtual_server",
    needed=lambda config: config.has_checker,
    pidfile=lambda opts: opts.checkers_pid_file,
    module="checker_child.child",
    # keepalived's checker answers SIGUSR1 only; its stats and JSON (virtual and real server
    # states) are ours, written next to the VRRP child's files under their own names.
    dumps=MappingProxyType(
        {
            DumpKind.DATA: "keepalived_check.data",
            DumpKind.STATS: "keepalived_check.stats",
            DumpKind.JSON: "keepalived_check.json",
        }
    ),
    summary=checker_summary,
)

# keepalived starts the checker before the VRRP child (start_keepalived).
SPECS: tuple[ChildSpec, ...] = (CHECKER, VRRP)

PARENT_IDENT = "Keepalived"
PARENT_COMM = "pykeepalived"
PARENT_DATA_DUMP = "keepalived_parent.data"


def dump_name(name: str, config: Config, namespace: str | None) -> str:
    """A dump file's name: keepalived.data, or with global_defs data_use_instance and a
    namespace or instance, keepalived.NS_INSTANCE.data (keepalived's open_dump_file)."""
    instance = config.instance
    if not config.global_defs.data_use_instance or not (namespace or instance):
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{'_'.join(p for p in (namespace, instance) if p)}{dot}{ext}"


def wanted(config: Config, opts: Options) -> tuple[ChildSpec, ...]:
    """The children to run: those whose section the config has (all with --all), limited
    by -P/--vrrp and -C/--check (both given: both, as keepalived)."""
    restricted = {s.role for s in SPECS if (s is VRRP and opts.vrrp_only) or (s is CHECKER and opts.check_only)}
    allowed = restricted or {s.role for s in SPECS}
    return tuple(s for s in SPECS if s.role in allowed and (opts.run_all or s.needed(config)))
