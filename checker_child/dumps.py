"""The checker child's dumps: keepalived's check data layout (SIGUSR1), our statistics and JSON
(virtual and real server states, the IPVS table we programmed) and the STATUS view the parent's
control socket serves (pykeepalivedctl status, metrics).

Read-only: the workload's state in, text out. The parent writes the files (haparent/specs.py
names them; haparent/system.py writes them safely).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from checker_child.ipvs_sync import IpvsSync
from checker_child.latency import Latency
from checker_child.notify import Notifier
from checker_child.runner import Check, Tallies
from checker_child.scheduler import Scheduler
from checker_child.state import RsId, Servers, fmt_rs, fmt_vs
from checker_child.table import Table
from conf.lvs import NAT, RealServer, VirtualServer
from watchdog.protocol import DumpKind, Json
from watchdog.status import Conditions


class CheckerWorkload(Protocol):
    """What the dumps read of the checker's workload (checker_child.workload, which imports
    this module to answer dumps)."""

    @property
    def checks(self) -> list[Check]: ...
    @property
    def sched(self) -> Scheduler[Check]: ...
    @property
    def tallies(self) -> Tallies: ...
    @property
    def latency(self) -> Latency: ...

    servers: Servers
    conditions: Conditions
    ipvs: IpvsSync
    notifier: Notifier


def render(kind: DumpKind, w: CheckerWorkload) -> str:
    if kind is DumpKind.STATUS:
        return json.dumps(json_dump(w) | {"check_latency": w.latency.json()})
    if kind is DumpKind.JSON:
        return json.dumps(json_dump(w), indent=2) + "\n"
    if kind is DumpKind.STATS:
        return stats_text(w)
    return data_text(w)


def _checks_by_rs(w: CheckerWorkload) -> dict[RsId, list[Check]]:
    out: dict[RsId, list[Check]] = {}
    for c in w.checks:
        out.setdefault(c.rs, []).append(c)
    return out


def json_dump(w: CheckerWorkload) -> dict[str, Json]:
    snap = w.servers.snapshot()
    by_rs = _checks_by_rs(w)
    vss: list[Json] = []
    for name, vs in w.servers.virtual_servers():
        v: Any = snap[name]
        rss: list[Json] = []
        for rsc in vs.real_server:
            rid = RsId(name, str(rsc))
            r = v["real_servers"].get(rid.rs)
            if r is not None:
                rss.append(_rs_json(vs, rsc, r, by_rs.get(rid, [])))
        vss.append(_vs_json(name, vs, v, rss))
    return {
        "virtual_servers": vss,
        "ipvs": {
            "available": w.ipvs.available,
            "programmed": w.ipvs.status.programmed,
            "not_programmed_because": None if w.ipvs.status.programmed else w.ipvs.status.reason,
            "table": table_json(w.servers.table()),
            "retrying": w.ipvs.retrying(),
        },
        "degraded": [{"key": key, "text": text} for key, text in sorted(w.conditions.raised.items())],
        "scheduler": _sched_json(w),
    }


def _rs_json(vs: VirtualServer, rsc: RealServer, r: Any, checks: list[Check]) -> dict[str, Json]:
    return {
        "rs": fmt_rs(vs, rsc.address, rsc.port),
        "address": str(rsc.address),
        "port": rsc.port,
        "alive": r["alive"],
        "weight": r["weight"],
        "configured_weight": rsc.weight if "weight" in rsc.locations else vs.weight,
        "inhibit_on_failure": bool(rsc.inhibit_on_failure),
        "lvs_method": str(rsc.lvs_method or vs.lvs_method or NAT),
        "checkers": [_check_json(c) for c in sorted(checks, key=lambda c: c.index)],
    }


def _vs_json(name: str, vs: VirtualServer, v: Any, rss: list[Json]) -> dict[str, Json]:
    sorry = vs.sorry_server
    return {
        "vs": fmt_vs(vs),
        "name": name,
        "protocol": vs.protocol,
        "fwmark": vs.fwmark,
        "group": vs.group,
        "lvs_sched": vs.lvs_sched or "wlc",
        "lvs_method": str(vs.lvs_method or NAT),
        "persistence_timeout": vs.persistence_timeout or 0,
        "quorum": vs.quorum,
        "hysteresis": vs.hysteresis,
        "quorum_up": v["quorum_up"],
        "weight_sum": v["weight_sum"],
        "ha_suspend": vs.ha_suspend,
        "suspended": v["suspended"],
        "sorry_server": str(sorry) if sorry is not None else None,
        "sorry_server_inhibit": vs.sorry_server_inhibit,
        "sorry_server_active": v["sorry_server_active"],
        "alpha": vs.alpha,
        "omega": vs.omega,
        "real_servers": rss,
    }


def _check_json(c: Check) -> dict[str, Json]:
    a = c.attempts
    return {
        "type": c.type_name,
        "target": str(c.target),
        "is_up": a.is_up,
        "has_run": a.has_run,
        "retry": a.retry,
        "retry_it": a.retry_it,
        "delay_loop": a.delay_loop,
        "delay_before_retry": a.delay_before_retry,
        "runs": c.runs,
        "failures": c.failures,
        "last_result": c.last,
        "last_ok": c.last_ok,
        "last_at": c.last_at,
        "dynamic_weight": c.dyn_weight,
        "track_file": c.file_path,
    }


def _sched_json(w: CheckerWorkload) -> dict[str, Json]:
    s = w.sched
    lat = s.lateness
    return {
        "checkers": len(w.checks),
        "scheduled": len(s),
        "in_flight": s.inflight,
        "max_in_flight": s.max_inflight,
        "started": s.started,
        "deferred_bursts": s.deferred,
        "lateness_ms": {
            "p50": round(lat.percentile(50) * 1000, 3),
            "p99": round(lat.percentile(99) * 1000, 3),
            "max": round(lat.max * 1000, 3),
        },
    }


def data_text(w: CheckerWorkload) -> str:
    """keepalived's check data dump layout (SIGUSR1): the LVS topology, then each
    checker with its state."""
    snap = w.servers.snapshot()
    lines = ["------< LVS Topology >------"]
    ipvs = w.ipvs.status
    lines.append(f" IPVS = {'programmed' if ipvs.programmed else f'not programmed: {ipvs.reason}'}")
    lines.extend(f" Degraded = {text}" for _, text in sorted(w.conditions.raised.items()))
    for name, vs in w.servers.virtual_servers():
        v: Any = snap[name]
        lines.append(f" VS = {fmt_vs(vs)}")
        lines.append(f"   delay_loop = {vs.delay_loop}, lvs_sched = {vs.lvs_sched or 'wlc'}")
        if vs.persistence_timeout:
            lines.append(f"   persistence timeout = {vs.persistence_timeout}")
        lines.append(f"   protocol = {vs.protocol or 'none'}")
        lines.append(f"   alpha is {'ON' if vs.alpha else 'OFF'}, omega is {'ON' if vs.omega else 'OFF'}")
        lines.append(f"   quorum = {vs.quorum}, hysteresis = {vs.hysteresis}")
        lines.append(f"   quorum state = {'UP' if v['quorum_up'] else 'DOWN'}")
        lines.append(f"   lvs_method = {vs.lvs_method or NAT}")
        if vs.ha_suspend:
            lines.append(f"   ha_suspend = {'suspended' if v['suspended'] else 'active'}")
        if vs.sorry_server is not None:
            active = "active" if v["sorry_server_active"] else "inactive"
            lines.append(f"   sorry server = {vs.sorry_server} ({active})")
        for rsc in vs.real_server:
            r = v["real_servers"].get(str(rsc))
            if r is None:
                continue
            lines.append(f"   RS = {fmt_rs(vs, rsc.address, rsc.port)}")
            lines.append(f"     weight = {r['weight']}")
            lines.append(f"     alive = {'yes' if r['alive'] else 'no'}")
            if rsc.inhibit_on_failure:
                lines.append("     inhibit on failure")
    lines.append("------< Health checkers >------")
    for c in w.checks:
        a = c.attempts
        lines.append(f" {c.fmt_rs}")
        lines.append(f"   Keepalive method = {c.type_name}")
        if c.file_path is not None:
            lines.append(f"     Tracked file = {c.file_path}")
        else:
            lines.append(f"   Connection dest = {c.target}")
            lines.append(f"   Connection timeout = {c.target.timeout}")
        lines.append(f"   Alive = {'yes' if a.is_up else 'no'}")
        lines.append(f"   Has run = {'yes' if a.has_run else 'no'}")
        lines.append(f"   Delay loop = {a.delay_loop}, Retry = {a.retry}, Delay before retry = {a.delay_before_retry}")
        lines.append(f"   Retries so far = {a.retry_it}")
        if c.last:
            lines.append(f"   Last result = {c.last}")
    return "\n".join(lines) + "\n"


def stats_text(w: CheckerWorkload) -> str:
    t, s = w.tallies, w.sched
    lat = s.lateness
    lines = [
        "------< Health checker statistics >------",
        f" Checkers = {len(w.checks)}",
        f" Results = {t.results}, failed = {t.failures}",
        f" Verdicts up = {t.verdicts_up}, down = {t.verdicts_down}",
        f" Notify scripts run = {w.notifier.notifies}",
        f" IPVS errors = {w.ipvs.errors}, entries retrying = {len(w.ipvs.retries.failing)}",
        f" Checks started = {s.started}, in flight = {s.inflight} (max {s.max_inflight})",
        f" Start lateness ms: p50 = {lat.percentile(50) * 1000:.3f}, p99 = {lat.percentile(99) * 1000:.3f},"
        f" max = {lat.max * 1000:.3f}",
    ]
    return "\n".join(lines) + "\n"


def table_json(table: Table) -> list[Json]:
    out: list[Json] = []
    for key in sorted(table.services):
        svc = table.services[key]
        dests = table.destinations.get(key, {})
        out.append(
            {
                "service": str(key),
                "protocol": key.protocol,
                "scheduler": svc.scheduler,
                "flags": list(sorted(svc.flags)),
                "persistence_timeout": svc.persistence_timeout,
                "destinations": [
                    {
                        "address": str(d.key.address),
                        "port": d.key.port,
                        "weight": d.weight,
                        "method": d.method,
                    }
                    for _, d in sorted(dests.items())
                ],
            }
        )
    return out
