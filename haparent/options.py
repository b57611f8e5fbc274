"""The daemon's options: what the command line (haparent/cli.py) resolves to, and what the parent,
its children's specs, the logging and the namespace code read. Its own module so that those do
not import the command-line module (which imports them: a cycle for the type checker)."""

from __future__ import annotations

from dataclasses import dataclass

from conf import DEFAULT_CONFIG
from haparent.control import DEFAULT_PATH as DEFAULT_CONTROL_SOCKET
from watchdog.heartbeat import DEFAULT_INTERVAL, DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Options:
    config_file: str = DEFAULT_CONFIG
    vrrp_only: bool = False
    check_only: bool = False
    no_bfd: bool = False
    run_all: bool = False
    log_console: bool = False
    log_detail: int = 0
    log_facility: str = "daemon"
    no_syslog: bool = False
    umask: int | None = None
    release_vips: bool = False
    dont_release_vrrp: bool = False
    dont_release_ipvs: bool = False
    dont_respawn: bool = False
    dont_fork: bool = False
    dump_conf: bool = False
    # keepalived's pidfiles (tools such as keepalived-exporter signal the pid they name)
    pid_file: str = "/run/keepalived.pid"
    vrrp_pid_file: str = "/run/vrrp.pid"
    checkers_pid_file: str = "/run/checkers.pid"
    bfd_pid_file: str = "/run/bfd.pid"
    address_monitoring: bool = False
    all_config: bool = False
    config_id: str = ""
    config_test: bool = False
    config_test_log: str | None = None
    print_config: bool = False
    heartbeat_interval: float = DEFAULT_INTERVAL
    heartbeat_timeout: float = DEFAULT_TIMEOUT
    control_socket: str = DEFAULT_CONTROL_SOCKET  # ours: pykeepalivedctl's way in ("" for none)
    metrics_address: tuple[str, int] | None = None  # ours: serve /metrics for Prometheus there
    namespace: str | None = None  # -s: overrides the config's net_namespace
    snmp: bool = False  # -x: accepted, SNMP is not implemented
    snmp_agent_socket: str | None = None  # -A: likewise
    core_dump: bool = False  # -m (also set by -M)
    core_dump_pattern: str | None = None  # -M[PATTERN]: "core" when PATTERN is empty
    # What the daemon runs as once net_namespace/instance are known (haparent.start):
    # the syslog idents get _NAMESPACE_INSTANCE appended, as keepalived's (Keepalived_vrrp_NS_INST).
    ident_suffix: str = ""

    def notes(self) -> list[str]:
        """Options accepted for keepalived compatibility that do nothing here: said once at
        start-up (and by -t), never silently ignored."""
        out = []
        if self.snmp:
            out.append("-x/--snmp: SNMP is not implemented by pykeepalived; ignored")
        if self.snmp_agent_socket is not None:
            out.append("-A/--snmp-agent-socket: SNMP is not implemented by pykeepalived; ignored")
        return out
