"""The keys of a child's state reports, built and read back by the same helpers on both
sides of the pipe: the children write them, the parent reads them (STATUS= summaries,
pykeepalivedctl, the hold rule) and hands them back to a respawned child in `resume`.

The text of a key is its wire form, unchanged since the first version:

- a vrrp_instance or a virtual_server: its configured name;
- a vrrp_sync_group: `group:NAME`;
- a real server: `VS -> RS` (a virtual server's name never holds ` -> `: it is its address
  and port, `fwmark N` or `group NAME`);
- a condition about the child itself: a key starting with `!` (`watchdog.status`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from watchdog.status import is_condition

GROUP_PREFIX = "group:"
REAL_SERVER_SEPARATOR = " -> "


class KeyKind(enum.Enum):
    NAME = "name"  # a vrrp_instance (VRRP child) or a virtual_server (checker child)
    GROUP = "group"  # a vrrp_sync_group
    REAL_SERVER = "real_server"  # a real_server of a virtual_server
    CONDITION = "condition"  # watchdog.status: what the child cannot do


@dataclass(frozen=True)
class StateKey:
    kind: KeyKind
    name: str  # the instance, group or virtual server; a condition's whole key
    real_server: str = ""  # REAL_SERVER only

    @property
    def text(self) -> str:
        if self.kind is KeyKind.GROUP:
            return GROUP_PREFIX + self.name
        if self.kind is KeyKind.REAL_SERVER:
            return self.name + REAL_SERVER_SEPARATOR + self.real_server
        return self.name


def group_key(name: str) -> str:
    """A vrrp_sync_group's key."""
    return StateKey(KeyKind.GROUP, name).text


def real_server_key(virtual_server: str, real_server: str) -> str:
    """A real server's key: its virtual server's name and its own."""
    return StateKey(KeyKind.REAL_SERVER, virtual_server, real_server).text


def kind_of(text: str) -> KeyKind:
    """What a report's key names: parse_key's kind without building the key (the parent's
    STATUS= summary asks it of every instance's key at each message from the VRRP child; a
    frozen StateKey per key made that 0.3 ms per message with 250 instances)."""
    if is_condition(text):
        return KeyKind.CONDITION
    if REAL_SERVER_SEPARATOR in text:
        return KeyKind.REAL_SERVER
    if text.startswith(GROUP_PREFIX):
        return KeyKind.GROUP
    return KeyKind.NAME


def parse_key(text: str) -> StateKey:
    """The typed key behind a report's key."""
    kind = kind_of(text)
    if kind is KeyKind.REAL_SERVER:
        vs, _, rs = text.partition(REAL_SERVER_SEPARATOR)
        return StateKey(kind, vs, rs)
    if kind is KeyKind.GROUP:
        return StateKey(kind, text[len(GROUP_PREFIX) :])
    return StateKey(kind, text)
