"""The parent's views of itself: systemd's STATUS= line, the parent's data dump and the control
socket's status answer. Pure: the supervisor's state in (read through `ParentState`), text out."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Protocol

from haparent.child import Child, Phase
from haparent.options import Options
from haparent.queries import PendingQuery
from haparent.specs import Role
from watchdog.heartbeat import HeartbeatSettings
from watchdog.protocol import Json
from watchdog.version import VERSION

STATUS_MAX = 400  # systemctl status shows one line; keep STATUS= readable


class ParentState(Protocol):
    """What the views read of the supervisor (haparent.supervisor.Supervisor)."""

    opts: Options
    children: dict[Role, Child]
    heartbeat: HeartbeatSettings
    stopping: bool
    starting: bool
    reloading: bool
    stop_reason: str | None
    last_reload_error: str | None
    reloads: int
    loaded_at: float


def names(roles: Iterable[Role]) -> list[Json]:
    return [r.value for r in sorted(roles)]


def status_line(p: ParentState) -> str:
    """systemd's STATUS= (`systemctl status`): the phase, each child, why it stops or failed to reload."""
    if p.stopping:
        words = ["Stopping"]
    elif p.starting:
        words = ["Starting"]
    elif p.reloading:
        words = ["Reloading"]
    else:
        words = ["Running"]
    parts = [" ".join(words)]
    for child in p.children.values():
        if child.phase is Phase.STOPPED:
            continue
        text = f"{child.spec.role.value} {child.phase.value}"
        if child.pid is not None:
            text += f" pid {child.pid}"
        summary = child.spec.summary(child.last_state)
        if summary:
            text += f" ({summary})"
        parts.append(text)
    if p.stop_reason is not None:
        parts.append(p.stop_reason)  # why it stops stays visible to the end
    elif len(parts) == 1 and not p.stopping:
        parts.append("no child process (no configuration to run)")
    if p.last_reload_error:
        parts.append(f"last reload failed: {p.last_reload_error}")
    return "; ".join(parts)[:STATUS_MAX]


def parent_data(p: ParentState, now: float) -> str:
    """The parent's SIGUSR1 dump (keepalived_parent.data)."""
    lines = [
        "------< pykeepalived parent process >------",
        f" Version = {VERSION}",
        f" Pid = {os.getpid()}",
        f" Config file = {p.opts.config_file}",
        f" Status = {status_line(p)}",
        f" Reloads = {p.reloads}",
        f" Heartbeat interval = {p.heartbeat.interval} s, timeout = {p.heartbeat.timeout} s",
    ]
    for child in p.children.values():
        lines.append(f" {child.spec.name} process:")
        lines.append(f"   State = {child.phase.value}")
        if child.pid is not None:
            lines.append(f"   Pid = {child.pid}, running for {now - child.started_at:.1f} s")
        if child.monitor is not None:
            lines.append(f"   Last heard from = {child.monitor.silence(now):.1f} s ago")
        lines.append(f"   Quick deaths in a row = {child.quick_deaths}")
        lines.append(f"   Last state = {child.last_state}")
    return "\n".join(lines) + "\n"


def status_answer(p: ParentState, query: PendingQuery, now: float) -> dict[str, Json]:
    """`pykeepalivedctl status` and /metrics: the parent's view with each child's answer."""
    children: list[Json] = []
    for child in p.children.values():
        children.append(
            {
                "role": child.spec.role.value,
                "phase": child.phase.value,
                "pid": child.pid,
                "uptime": round(now - child.started_at, 3) if child.pid is not None else None,
                "restarts": child.restarts,
                "last_exit": child.last_exit,
                "heartbeat_age": round(child.monitor.silence(now), 3) if child.monitor is not None else None,
                "heartbeat_timeout": child.heartbeat.timeout if child.heartbeat is not None else None,
                "reported": dict(child.last_state),
            }
        )
    details: dict[str, Json] = {}
    for role, text in query.answers.items():
        try:
            details[role.value] = json.loads(text) if text else None
        except ValueError:
            details[role.value] = None
    vrrp = details.get(Role.VRRP.value)
    vrrp = vrrp if isinstance(vrrp, dict) else {}
    return {
        "ok": True,
        "version": VERSION,
        "pid": os.getpid(),
        "status": status_line(p),
        "config_file": p.opts.config_file,
        "config_age": round(now - p.loaded_at, 3),
        "reloads": p.reloads,
        "last_reload_error": p.last_reload_error,
        "children": children,
        "vrrp": vrrp.get("instances", []),
        "vrrp_scripts": vrrp.get("scripts", {}),
        "vrrp_trackers": vrrp.get("trackers", {}),
        "vrrp_receive_drops": vrrp.get("receive_drops", 0),
        "checker": details.get(Role.CHECKER.value),
        "missing": names(query.waiting),
    }
