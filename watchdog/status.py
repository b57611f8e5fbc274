"""Typed reports of what a child cannot do, shared by the children (which report them)
and the parent's STATUS= summaries (which read them back).

A child's `report({...})` maps names to values: VRRP instances, sync groups
("group:NAME"), virtual and real servers ("VS -> RS"), built and read back with
`watchdog.statekeys`. Conditions about the child itself
travel in the same mapping under keys that start with `!`: keepalived.conf treats a word
starting with `!` as a comment, so no configured name can clash with them.

- `degraded(key, text)`: something that should work does not (an instance without its
  socket, a notify FIFO that cannot be created, a VMAC that cannot be made); cleared with
  `cleared(key)` when it works again. STATUS= shows every one until then.
- `ipvs_report(IpvsStatus(...))`: whether the checker programs the IPVS table, and why not.

`Conditions` is the child side: it reports each change once and remembers what is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from watchdog.protocol import Json

CONDITION_PREFIX = "!"
_DEGRADED = CONDITION_PREFIX + "degraded:"
IPVS_KEY = CONDITION_PREFIX + "ipvs"


def is_condition(key: str) -> bool:
    """A key that is not a configured name (instance, group, server)."""
    return key.startswith(CONDITION_PREFIX)


@dataclass(frozen=True)
class Degraded:
    key: str  # stable identity, e.g. "fifo:/run/x", "socket:VI_1"
    text: str  # for people: "notify FIFO /run/x: Permission denied"


def degraded(key: str, text: str) -> dict[str, Json]:
    return {_DEGRADED + key: {"degraded": text}}


def cleared(key: str) -> dict[str, Json]:
    return {_DEGRADED + key: None}


def degraded_of(reports: Mapping[str, Json]) -> list[Degraded]:
    """The raised conditions in a child's merged reports, by key."""
    out: list[Degraded] = []
    for key, value in reports.items():
        if key.startswith(_DEGRADED) and isinstance(value, dict) and isinstance(value.get("degraded"), str):
            out.append(Degraded(key[len(_DEGRADED) :], str(value["degraded"])))
    return sorted(out, key=lambda d: d.key)


@dataclass(frozen=True)
class IpvsStatus:
    programmed: bool
    reason: str = ""  # why not, e.g. "no IPVS in the kernel"


NO_IPVS_IN_KERNEL = IpvsStatus(False, "no IPVS in the kernel")


def ipvs_report(status: IpvsStatus) -> dict[str, Json]:
    return {IPVS_KEY: {"programmed": status.programmed, "reason": status.reason}}


def ipvs_of(reports: Mapping[str, Json]) -> IpvsStatus | None:
    value = reports.get(IPVS_KEY)
    if not isinstance(value, dict):
        return None
    return IpvsStatus(bool(value.get("programmed")), str(value.get("reason") or ""))


def summary_tail(reports: Mapping[str, Json]) -> list[str]:
    """The parts STATUS= adds after a child's counts: `IPVS not programmed: WHY` and
    `degraded: A, B`."""
    parts: list[str] = []
    ipvs = ipvs_of(reports)
    if ipvs is not None and not ipvs.programmed:
        parts.append(f"IPVS not programmed: {ipvs.reason}" if ipvs.reason else "IPVS not programmed")
    raised = degraded_of(reports)
    if raised:
        parts.append("degraded: " + ", ".join(d.text for d in raised))
    return parts


Report = Callable[[Mapping[str, Json]], None]


class Conditions:
    """The degraded conditions one child has raised: each change is reported once."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._raised: dict[str, str] = {}

    @property
    def raised(self) -> Mapping[str, str]:
        return dict(self._raised)

    def set(self, key: str, text: str) -> None:
        if self._raised.get(key) != text:
            self._raised[key] = text
            self._report(degraded(key, text))

    def clear(self, key: str) -> None:
        if self._raised.pop(key, None) is not None:
            self._report(cleared(key))

    def replace(self, prefix: str, current: Mapping[str, str]) -> None:
        """Make the conditions whose key starts with `prefix` exactly `current` (a set of
        FIFOs reopened on reload: the failures of now, none of before)."""
        for key in [k for k in self._raised if k.startswith(prefix) and k not in current]:
            self.clear(key)
        for key, text in current.items():
            self.set(key, text)
