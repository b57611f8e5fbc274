"""/metrics in the Prometheus text format (--metrics-address), served by the official
prometheus-client from a thread of the parent.

The names and labels are those of mehdy/keepalived-exporter, so its Grafana dashboard and
existing alerts work unchanged; ours carry the `pykeepalived_` prefix. The numbers come from
the same status the control socket gives (haparent.supervisor: the parent's view and each
child's live JSON dump): a scrape asks the parent's loop for a fresh one (at most one a
second) and waits for it a bounded time, so neither a slow child nor a flood of scrapes can
hold the loop, and the loop never waits for a scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from watchdog.protocol import Json

MAX_AGE = 1.0  # s: a status this fresh is served as is
REFRESH_WAIT = 2.0  # s a scrape waits for a fresh one (then it serves the last one)

# keepalived_vrrp_state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT (the exporter's numbering)
VRRP_STATES: Mapping[str, int] = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}
# the exporter's counter -> keepalived's stats name (our JSON dump's "stats")
VRRP_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("advertisements_received", "advert_rcvd", "Advertisements received"),
    ("advertisements_sent", "advert_sent", "Advertisements sent"),
    ("become_master", "become_master", "Became master"),
    ("release_master", "release_master", "Released master"),
    ("packet_length_errors", "packet_len_err", "Packet length errors"),
    ("advertisements_interval_errors", "advert_interval_err", "Advertisement interval errors"),
    ("ip_ttl_errors", "ip_ttl_err", "TTL errors"),
    ("invalid_type_received", "invalid_type_rcvd", "Invalid type errors"),
    ("address_list_errors", "addr_list_err", "Address list errors"),
    ("authentication_invalid", "invalid_authtype", "Authentication invalid"),
    ("authentication_mismatch", "authtype_mismatch", "Authentication mismatch"),
    ("authentication_failure", "auth_failure", "Authentication failure"),
    ("priority_zero_received", "pri_zero_rcvd", "Priority zero received"),
    ("priority_zero_sent", "pri_zero_sent", "Priority zero sent"),
    ("gratuitous_arp_delay", "garp_delay", "Gratuitous ARP delay"),
)
SCRIPT_STATES: Mapping[str, int] = {"idle": 0, "running": 1, "requested termination": 2, "forcing termination": 3}
INSTANCE_LABELS = ("iname", "intf", "vrid")


def parse_address(text: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[IPV6]:PORT` -> (host, port); PORT alone listens everywhere,
    as the exporters do."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "0.0.0.0"
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port {number} out of range")
    return host, number


def _d(value: Json) -> Mapping[str, Json]:
    return value if isinstance(value, dict) else {}


def _l(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


def _n(value: Json) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def families(status: Mapping[str, Json]) -> list[Metric]:
    """Every metric family of one status answer (pure)."""
    up = GaugeMetricFamily("keepalived_up", "Whether pykeepalived answered with a running VRRP or checker child")
    running = [_d(c) for c in _l(status.get("children")) if _d(c).get("phase") == "running"]
    up.add_metric([], 1.0 if status.get("ok") and running else 0.0)
    out: list[Metric] = [up, *_vrrp(status), *_scripts(status), *_children(status), *_checker(status)]
    reloads = CounterMetricFamily("pykeepalived_reloads", "Configuration reloads done")
    reloads.add_metric([], _n(status.get("reloads")))
    reload_ok = GaugeMetricFamily("pykeepalived_last_reload_ok", "1 unless the last reload failed")
    reload_ok.add_metric([], 0.0 if status.get("last_reload_error") else 1.0)
    drops = CounterMetricFamily(
        "pykeepalived_vrrp_receive_drops", "Adverts the kernel dropped for a full VRRP receive buffer (SO_RXQ_OVFL)"
    )
    drops.add_metric([], _n(status.get("vrrp_receive_drops")))
    return [*out, reloads, reload_ok, drops]


def _vrrp(status: Mapping[str, Json]) -> list[Metric]:
    state = GaugeMetricFamily(
        "keepalived_vrrp_state",
        "State of the VRRP instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT",
        labels=[*INSTANCE_LABELS, "ip_address"],
    )
    counters = {
        key: CounterMetricFamily(f"keepalived_{name}", text, labels=list(INSTANCE_LABELS))
        for name, key, text in VRRP_COUNTERS
    }
    effective = GaugeMetricFamily(
        "pykeepalived_effective_priority", "Priority with trackers", labels=list(INSTANCE_LABELS)
    )
    base = GaugeMetricFamily("pykeepalived_base_priority", "Configured priority", labels=list(INSTANCE_LABELS))
    other = CounterMetricFamily(
        "pykeepalived_other_errors",
        "Adverts dropped for a reason keepalived has no counter for (version, checksum, VRID)",
        labels=list(INSTANCE_LABELS),
    )
    since = GaugeMetricFamily(
        "pykeepalived_last_transition_timestamp_seconds",
        "When the instance last changed state (Unix time)",
        labels=list(INSTANCE_LABELS),
    )
    for inst in map(_d, _l(status.get("vrrp"))):
        data, stats = _d(inst.get("data")), _d(inst.get("stats"))
        labels = [str(data.get("iname")), str(data.get("ifp_ifname")), str(data.get("vrid"))]
        number = float(VRRP_STATES.get(str(data.get("state_name")), 0))
        for vip in _l(data.get("vips")):
            # keepalived's "ADDR/PREFIX dev IF scope ...": the address, as keepalived-exporter's label
            state.add_metric([*labels, str(vip).split(" ", 1)[0]], number)
        for key, family in counters.items():
            family.add_metric(labels, _n(stats.get(key)))
        effective.add_metric(labels, _n(data.get("effective_priority")))
        base.add_metric(labels, _n(data.get("base_priority")))
        since.add_metric(labels, _n(data.get("last_transition")))
        other.add_metric(labels, _n(stats.get("other_err")))
    return [state, *counters.values(), other, effective, base, since]


def _scripts(status: Mapping[str, Json]) -> list[Metric]:
    good = GaugeMetricFamily("keepalived_script_status", "vrrp_script status: 1 GOOD, 0 BAD", labels=["name"])
    state = GaugeMetricFamily(
        "keepalived_script_state",
        "vrrp_script state: 0 idle, 1 running, 2 requested termination, 3 forcing termination",
        labels=["name"],
    )
    for name, script in _d(status.get("vrrp_scripts")).items():
        s = _d(script)
        good.add_metric([name], 1.0 if s.get("status") == "GOOD" else 0.0)
        state.add_metric([name], float(SCRIPT_STATES.get(str(s.get("state")), 0)))
    return [good, state]


def _children(status: Mapping[str, Json]) -> list[Metric]:
    restarts = CounterMetricFamily("pykeepalived_child_restarts", "Respawns of the child", labels=["role"])
    running = GaugeMetricFamily("pykeepalived_child_running", "1 while the child runs", labels=["role"])
    age = GaugeMetricFamily(
        "pykeepalived_child_heartbeat_age_seconds", "Time since the child's last heartbeat", labels=["role"]
    )
    for child in map(_d, _l(status.get("children"))):
        role = [str(child.get("role"))]
        restarts.add_metric(role, _n(child.get("restarts")))
        running.add_metric(role, 1.0 if child.get("phase") == "running" else 0.0)
        if child.get("heartbeat_age") is not None:
            age.add_metric(role, _n(child.get("heartbeat_age")))
    return [restarts, running, age]


def _checker(status: Mapping[str, Json]) -> list[Metric]:
    up = GaugeMetricFamily(
        "pykeepalived_real_server_up", "1 while the real server passes its checks", labels=["vs", "rs"]
    )
    weight = GaugeMetricFamily("pykeepalived_real_server_weight", "Weight in the IPVS table", labels=["vs", "rs"])
    quorum = GaugeMetricFamily("pykeepalived_virtual_server_quorum_up", "1 while the quorum is met", labels=["vs"])
    ipvs = GaugeMetricFamily("pykeepalived_ipvs_programmed", "1 when the kernel's IPVS table is programmed")
    checker = _d(status.get("checker"))
    for vs in map(_d, _l(checker.get("virtual_servers"))):
        name = str(vs.get("vs"))
        quorum.add_metric([name], 0.0 if vs.get("quorum_up") is False else 1.0)
        for rs in map(_d, _l(vs.get("real_servers"))):
            up.add_metric([name, str(rs.get("rs"))], 1.0 if rs.get("alive") else 0.0)
            weight.add_metric([name, str(rs.get("rs"))], _n(rs.get("weight")))
    latency = HistogramMetricFamily(
        "pykeepalived_check_duration_seconds", "How long checks took, per checker type", labels=["checker"]
    )
    for kind, histogram in _d(checker.get("check_latency")).items():
        h = _d(histogram)
        buckets = [(str(le), _n(n)) for le, n in (b for b in map(_l, _l(h.get("buckets"))) if len(b) == 2)]
        if buckets:
            latency.add_metric([kind], buckets, _n(h.get("sum")))
    out: list[Metric] = [up, weight, quorum, latency]
    if checker:
        ipvs.add_metric([], 1.0 if _d(checker.get("ipvs")).get("programmed", True) else 0.0)
        out.append(ipvs)
    return out


class MetricsServer(Collector):
    """prometheus-client's HTTP server and a collector over the latest status. `want` tells
    the parent's loop that a scrape needs a fresh status; `update` hands it over."""

    def __init__(self, host: str, port: int, wake: Callable[[], None]) -> None:
        self.wake = wake
        self.want = threading.Event()
        self.fresh = threading.Event()
        self.latest: Mapping[str, Json] = {}
        self.latest_at = 0.0
        self.lock = threading.Lock()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        self.server: WSGIServer
        self.server, self.thread = start_http_server(port, host, registry=registry)

    def fileno(self) -> int:
        return self.server.socket.fileno()

    def collect(self) -> Iterator[Metric]:  # in the HTTP thread
        with self.lock:
            stale = time.monotonic() - self.latest_at > MAX_AGE
        if stale:
            self.fresh.clear()
            self.want.set()
            self.wake()
            self.fresh.wait(REFRESH_WAIT)
        with self.lock:
            latest = self.latest
        yield from families(latest)

    def update(self, status: dict[str, Json]) -> None:  # in the parent's loop
        with self.lock:
            self.latest, self.latest_at = status, time.monotonic()
        self.fresh.set()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
