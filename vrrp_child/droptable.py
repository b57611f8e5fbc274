"""The drop tables of no-accept mode (vrrp_child.firewall): their entries, the JSON commands
that build and change them (pure), libnftables, and what one child's tables hold.

Library: libnftables' JSON API through Debian's python3-nftables (the `nftables` module,
ctypes over libnftables.so.1, which the `nftables` package already installs), rather than
pyroute2's nftables support. pyroute2 0.9 offers tables, chains and sets but rules only as
raw netlink expressions (payload offsets, registers, lookups by hand) and sets only with raw
key types and element bytes: the concatenated `ipv6_addr . iface_index` key and the typed
sets nft shows would have to be encoded by hand and kept right. libnftables takes the same
objects nft prints (`nft -j list ruleset`), checks them, and sends each command list as one
netlink transaction, so a table is built or changed atomically. The module is not on PyPI
(only unofficial copies are), so it comes from Debian (Makefile APT_PACKAGES) and is loaded
from the system's dist-packages when the virtualenv cannot import it. Without it the child
logs an error and reports the firewall as degraded (STATUS=); the instances still run.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from conf.addresses import IpAddressEntry
from conf.vrrp import VrrpInstance
from vrrp_child.firewall import FirewallError, Settings, needs_drop

log = logging.getLogger("pykeepalived_vrrp")

FAMILIES = ("ip", "ip6")
SYSTEM_MODULE = Path("/usr/lib/python3/dist-packages/nftables/__init__.py")  # Debian's python3-nftables
LL_BY_INDEX = "vips_link_local"
LL_BY_NAME = "vips_link_local_name"

# libnftables' JSON objects: nested dicts, lists, strings, numbers, None.
JsonObj = dict[str, object]


@dataclass(frozen=True, order=True)
class Element:
    """One entry of a set: `family` ip/ip6, `set` vips or a link-local set, `iface` the index
    (vips_link_local) or name (vips_link_local_name) of a link-local VIP's interface."""

    family: str
    set: str
    address: str
    iface: int | str | None = None

    def json(self) -> object:
        if self.iface is None:
            return self.address
        return {"concat": [self.address, self.iface]}


def elements(
    conf: VrrpInstance, items: Iterable[tuple[IpAddressEntry, str]], settings: Settings, ifindex: IfIndex
) -> list[Element]:
    """The set entries for one MASTER instance's VIPs (nft_update_ipv4/ipv6_address)."""
    out: list[Element] = []
    for entry, ifname in items:
        ip = entry.ip
        if ip.version == 4:
            out.append(Element("ip", "vips", str(ip)))
        elif not ip.is_link_local:
            out.append(Element("ip6", "vips", str(ip)))
        elif (
            not settings.ifindex
            and conf.dont_track_primary
            and (entry.dev is None or entry.dev == conf.interface or entry.no_track)
        ):
            out.append(Element("ip6", LL_BY_NAME, str(ip), ifname))
        else:
            index = ifindex(ifname)
            if index is None:
                log.error("(%s) no interface %s for the firewall entry of %s", conf.name, ifname, ip)
                continue
            out.append(Element("ip6", LL_BY_INDEX, str(ip), index))
    return out


class IfIndex(Protocol):
    def __call__(self, ifname: str) -> int | None: ...


def if_index(ifname: str) -> int | None:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


# ---- the table, as JSON commands (pure) ----------------------------------------------------


def _rule(s: Settings, family: str, chain: str, match: JsonObj, verdict: JsonObj) -> JsonObj:
    expr: list[object] = [{"match": match}]
    if s.counters:
        expr.append({"counter": None})
    expr.append(verdict)
    return {"add": {"rule": {"family": family, "table": s.table, "chain": chain, "expr": expr}}}


def _in_set(left: object, set_name: str) -> JsonObj:
    return {"op": "==", "left": left, "right": f"@{set_name}"}


def _addr(family: str, field_name: str) -> JsonObj:
    return {"payload": {"protocol": family, "field": field_name}}


def _base_chain(s: Settings, family: str, name: str, hook: str) -> JsonObj:
    chain: JsonObj = {"family": family, "table": s.table, "name": name}
    chain.update(type="filter", hook=hook, prio=s.priority, policy="accept")
    return {"add": {"chain": chain}}


def _set(s: Settings, family: str, name: str, key: object, **extra: object) -> JsonObj:
    return {"add": {"set": {"family": family, "table": s.table, "name": name, "type": key, **extra}}}


def table_commands(s: Settings, family: str) -> list[JsonObj]:
    """The table of one family with its chains, sets and rules (nft_setup_ipv4/6 and _vips),
    in keepalived's order (the chain `out` first)."""
    drop: JsonObj = {"drop": None}
    cmds: list[JsonObj] = [
        {"add": {"table": {"family": family, "name": s.table}}},
        _base_chain(s, family, "out", "output"),
        _base_chain(s, family, "in", "input"),
    ]
    if family == "ip":
        cmds.append(_set(s, family, "vips", "ipv4_addr"))
        cmds.append(_rule(s, family, "in", _in_set(_addr("ip", "daddr"), "vips"), drop))
        cmds.append(_rule(s, family, "out", _in_set(_addr("ip", "saddr"), "vips"), drop))
        return cmds
    for name in ("in_link_local", "out_link_local"):
        cmds.append({"add": {"chain": {"family": family, "table": s.table, "name": name}}})
    cmds.append(_set(s, family, "vips", "ipv6_addr"))
    nd = ["nd-neighbor-solicit", "nd-neighbor-advert"]
    cmds.append(_set(s, family, "neighbor-discovery", "icmpv6_type", flags=["constant"], elem=nd))
    link_local = {"prefix": {"addr": "fe80::", "len": 10}}
    for chain, where in (("in", "daddr"), ("out", "saddr")):
        # neighbour discovery to and from a VIP must pass, or the VIP is unreachable for good
        icmp = _in_set(_addr("icmpv6", "type"), "neighbor-discovery")
        cmds.append(_rule(s, family, chain, icmp, {"accept": None}))
        goto: JsonObj = {"goto": {"target": f"{chain}_link_local"}}
        cmds.append(_rule(s, family, chain, {"op": "==", "left": _addr("ip6", where), "right": link_local}, goto))
        cmds.append(_rule(s, family, chain, _in_set(_addr("ip6", where), "vips"), drop))
    return cmds


def link_local_commands(s: Settings, set_name: str) -> list[JsonObj]:
    """The set of link-local VIPs with their interface and its two rules (setup_link_local_checks)."""
    by_name = set_name == LL_BY_NAME
    cmds = [_set(s, "ip6", set_name, ["ipv6_addr", "ifname" if by_name else "iface_index"])]
    for chain, where, meta in (("in_link_local", "daddr", "iif"), ("out_link_local", "saddr", "oif")):
        key = {"meta": {"key": f"{meta}name" if by_name else meta}}
        match = _in_set({"concat": [_addr("ip6", where), key]}, set_name)
        cmds.append(_rule(s, "ip6", chain, match, {"drop": None}))
    return cmds


def element_commands(s: Settings, op: str, elems: Iterable[Element]) -> list[JsonObj]:
    """One add/delete per set, every element of that set in it."""
    by_set: dict[tuple[str, str], list[object]] = {}
    for e in sorted(elems):
        by_set.setdefault((e.family, e.set), []).append(e.json())
    return [
        {op: {"element": {"family": family, "table": s.table, "name": name, "elem": elem}}}
        for (family, name), elem in by_set.items()
    ]


def delete_commands(table: str, families: Iterable[str] = FAMILIES) -> list[JsonObj]:
    """Delete the tables whether they exist or not: `add table` is a no-op on an existing one,
    so the pair never fails (nft 1.0.6 has no `destroy`)."""
    cmds: list[JsonObj] = []
    for family in families:
        cmds.append({"add": {"table": {"family": family, "name": table}}})
        cmds.append({"delete": {"table": {"family": family, "name": table}}})
    return cmds


# ---- libnftables (the edge) -----------------------------------------------------------------


class Backend(Protocol):
    def run(self, commands: Sequence[JsonObj]) -> None: ...


class _Nftables(Protocol):
    """The part of python3-nftables' Nftables used here."""

    def json_cmd(self, json_root: JsonObj) -> tuple[int, object, str]: ...


def _load_module() -> object:
    try:
        return importlib.import_module("nftables")
    except ImportError:
        pass
    # The virtualenv does not see Debian's dist-packages; load just this module from there.
    spec = importlib.util.spec_from_file_location("nftables", SYSTEM_MODULE)
    if spec is None or spec.loader is None or not SYSTEM_MODULE.exists():
        raise FirewallError("python3-nftables is not installed (apt-get install python3-nftables)")
    module = importlib.util.module_from_spec(spec)
    sys.modules["nftables"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a broken install: say what, never crash the child
        del sys.modules["nftables"]
        raise FirewallError(f"cannot load python3-nftables: {e}") from e
    return module


class LibNftables:
    """libnftables through python3-nftables: each run() is one netlink transaction."""

    def __init__(self) -> None:
        module = _load_module()
        try:
            self.nft: _Nftables = getattr(module, "Nftables")()  # noqa: B009 (the module is untyped)
        except OSError as e:  # libnftables.so.1 missing
            raise FirewallError(f"cannot load libnftables: {e}") from e

    def run(self, commands: Sequence[JsonObj]) -> None:
        if not commands:
            return
        rc, _, error = self.nft.json_cmd({"nftables": list(commands)})
        if rc != 0:
            raise FirewallError(" ".join(error.split()) or f"libnftables error {rc}")


# ---- one child's tables ---------------------------------------------------------------------


class Holder(Protocol):
    """What the firewall needs of an instance (vrrp_child.instance.Instance)."""

    @property
    def conf(self) -> VrrpInstance: ...

    @property
    def vips_set(self) -> bool: ...

    def vip_items(self) -> list[tuple[IpAddressEntry, str]]: ...


@dataclass
class Firewall:
    """The VRRP child's nftables tables: what is in them, and the commands that change them."""

    settings: Settings
    backend: Backend
    ifindex: IfIndex = if_index
    present: dict[str, set[str]] = field(default_factory=dict)  # family -> link-local sets made
    entries: set[Element] = field(default_factory=set)

    def wanted(self, holders: Iterable[Holder]) -> set[Element]:
        """The entries for every instance whose VIPs are set and that has no accept mode."""
        out: set[Element] = set()
        for h in holders:
            if h.vips_set and needs_drop(h.conf):
                out.update(elements(h.conf, h.vip_items(), self.settings, self.ifindex))
        return out

    def start(self) -> None:
        """Remove the tables a predecessor left (a SIGKILLed child cannot delete them)."""
        self.backend.run(delete_commands(self.settings.table))

    def add(self, wanted: set[Element]) -> None:
        """Before the VIPs go on: the missing entries, with their tables when new."""
        new = wanted - self.entries
        if not new:
            return
        cmds: list[JsonObj] = []
        for family in sorted({e.family for e in new}):
            if family not in self.present:
                log.info("Setting up %s %s nftables table", family, self.settings.table)
                cmds += table_commands(self.settings, family)
            for name in sorted({e.set for e in new if e.family == family and e.set != "vips"}):
                if name not in self.present.get(family, set()):
                    cmds += link_local_commands(self.settings, name)
        cmds += element_commands(self.settings, "add", new)
        self.backend.run(cmds)
        for e in new:
            self.present.setdefault(e.family, set()).add(e.set)
        self.entries |= new

    def retain(self, wanted: set[Element]) -> None:
        """After the VIPs are gone: drop the other entries; a table left empty goes too."""
        gone = self.entries - wanted
        if not gone:
            return
        keep = self.entries & wanted
        empty = [f for f in self.present if not any(e.family == f for e in keep)]
        cmds = element_commands(self.settings, "delete", (e for e in gone if e.family not in empty))
        cmds += [{"delete": {"table": {"family": f, "name": self.settings.table}}} for f in empty]
        self.backend.run(cmds)
        for f in empty:
            del self.present[f]
        self.entries = keep

    def close(self) -> None:
        """At stop: every table of ours goes (keepalived nft_end)."""
        if self.present:
            self.backend.run([{"delete": {"table": {"family": f, "name": self.settings.table}}} for f in self.present])
        self.present.clear()
        self.entries.clear()
