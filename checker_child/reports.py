"""The checker's `state` reports to the parent: each real server (watchdog.statekeys: UP/DOWN
and its weight) and virtual server (quorum, sorry server, ha_suspend, weight sum), sent
when they change (the parent merges them: STATUS=, the control socket, /metrics)."""

from __future__ import annotations

from collections.abc import Mapping

from checker_child.state import Event, QuorumDown, QuorumUp, RsDown, RsId, RsUp, RsWeight, Servers, SorryIn, SorryOut
from watchdog.protocol import Json
from watchdog.statekeys import real_server_key
from watchdog.status import Report


def rs_key(rs: RsId) -> str:
    """The name a real server's state is reported under."""
    return real_server_key(rs.vs, rs.rs)


def rs_value(view: Mapping[str, Json]) -> dict[str, Json]:
    return {"state": "UP" if view["alive"] else "DOWN", "weight": view["weight"]}


def vs_value(view: Mapping[str, Json]) -> dict[str, Json]:
    return {
        "state": "QUORUM_UP" if view["quorum_up"] else "QUORUM_DOWN",
        "sorry_server": view["sorry_server_active"],
        "suspended": view["suspended"],
        "weight_sum": view["weight_sum"],
    }


class Reporter:
    """What changed since the last report, sent in one `state` message."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self._reported: set[str] = set()
        self._dirty_rs: set[RsId] = set()
        self._dirty_vs: set[str] = set()

    def mark(self, e: Event) -> None:
        if isinstance(e, (RsUp, RsDown, RsWeight)):
            self._dirty_rs.add(e.rs)
        elif isinstance(e, (QuorumUp, QuorumDown, SorryIn, SorryOut)):
            self._dirty_vs.add(e.vs)

    def mark_vs(self, name: str) -> None:
        self._dirty_vs.add(name)

    def changes(self, servers: Servers) -> None:
        """Only what changed, looked up one by one: a mass failure reports n servers in n
        steps, not n snapshots of the whole table."""
        if not self._dirty_rs and not self._dirty_vs:
            return
        changes: dict[str, Json] = {}
        for rs in self._dirty_rs:
            rs_view = servers.rs_view(rs)
            if rs_view is not None:
                changes[rs_key(rs)] = rs_value(rs_view)
        for name in self._dirty_vs:
            vs_view = servers.vs_view(name)
            if vs_view is not None:
                changes[name] = vs_value(vs_view)
        self._dirty_rs, self._dirty_vs = set(), set()
        if changes:
            self._reported.update(changes)
            self.report(changes)

    def everything(self, servers: Servers, prune: bool = False) -> None:
        """Every server's state; with `prune`, null for what a reload removed."""
        changes: dict[str, Json] = {}
        for name, v in servers.snapshot().items():
            assert isinstance(v, dict)
            changes[name] = vs_value(v)
            real_servers = v["real_servers"]
            assert isinstance(real_servers, dict)
            for rs, rs_view in real_servers.items():
                assert isinstance(rs_view, dict)
                changes[rs_key(RsId(name, rs))] = rs_value(rs_view)
        if prune:
            for key in self._reported - set(changes):
                changes[key] = None
        self._reported = {k for k, v in changes.items() if v is not None}
        self._dirty_rs, self._dirty_vs = set(), set()
        self.report(changes)
