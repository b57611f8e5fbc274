"""No accept mode enforced with nftables, as keepalived 2.2.7 (Debian's build) does it.

RFC 5798 section 6.4.3 (and RFC 3768's rule for a non-owner): a master that is not in accept
mode must not accept packets sent to its virtual addresses. keepalived does it with one
nftables table per family, `ip keepalived` and `ip6 keepalived` (global_defs `nftables
[TABLENAME]`, chain priority `nftables_priority`, default -1), whose set `vips` holds the
VIPs of every MASTER instance without accept mode (and not the address owner):

    table ip keepalived
      set vips { type ipv4_addr }
      chain out { type filter hook output priority -1; policy accept; ip saddr @vips drop }
      chain in  { type filter hook input priority -1; policy accept; ip daddr @vips drop }
    table ip6 keepalived
      set vips { type ipv6_addr }
      set neighbor-discovery { type icmpv6_type; flags constant; nd-neighbor-solicit, nd-neighbor-advert }
      chain out { icmpv6 type @neighbor-discovery accept; ip6 saddr fe80::/10 goto out_link_local;
                  ip6 saddr @vips drop }
      chain in  { the same with daddr, goto in_link_local }
      set vips_link_local { type ipv6_addr . iface_index }         link-local VIPs, with their interface
      chain in_link_local  { ip6 daddr . iif @vips_link_local drop }
      chain out_link_local { ip6 saddr . oif @vips_link_local drop }

(keepalived's vrrp_nftables.c; captured from keepalived 2.2.7 in the lab, see
tests/lab/test_firewall.py). A link-local VIP of an instance with `dont_track_primary`, on
the instance's interface or `no_track`, goes by interface name instead (set
`vips_link_local_name`, `iifname`/`oifname`) unless `nftables_ifindex`; `nftables_counters`
puts a counter in every rule. A VIP goes into the set before it is put on the interface and
leaves it after it is removed, as in keepalived's vrrp_state_become_master/leave_master.

Two differences, both so that no table outlives what it protects: the tables are deleted when
their last VIP leaves them (keepalived keeps them, empty, until it exits), so a table exists
only while some non-accept instance is MASTER, which is what the parent releases for a dead
or hung VRRP child (vrrp_child.release calls `release_tables`); and a starting child deletes
tables of its name left by a SIGKILLed predecessor before it adds anything (keepalived does
that too, at its first table set-up).

The tables themselves (their entries, the JSON commands, libnftables) are in
vrrp_child/droptable.py, imported only when a configuration needs a table: most have accept
mode everywhere and never load it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conf.model import Config
from conf.vrrp import VrrpInstance
from watchdog.status import Conditions

if TYPE_CHECKING:
    from vrrp_child.droptable import Backend, Element, Firewall, Holder

log = logging.getLogger("pykeepalived_vrrp")

DEFAULT_TABLE = "keepalived"  # keepalived's DEFAULT_NFTABLES_TABLE
PRIO_OWNER = 255


class FirewallError(Exception):
    """libnftables refused a command, or cannot be loaded."""


@dataclass(frozen=True)
class Settings:
    """global_defs nftables, nftables_priority, nftables_counters, nftables_ifindex."""

    table: str = DEFAULT_TABLE
    priority: int = -1
    counters: bool = False
    ifindex: bool = False

    @classmethod
    def of(cls, config: Config) -> Settings | None:
        """None when nothing needs a firewall: keepalived uses nftables when `nftables` is given,
        or (without a firewall configured) as soon as one instance has no accept mode."""
        g = config.global_defs
        if g.nftables is None and not any(needs_drop(i) for i in config.vrrp_instance.values()):
            return None
        return cls(g.nftables or DEFAULT_TABLE, g.nftables_priority, g.nftables_counters, g.nftables_ifindex)


def needs_drop(conf: VrrpInstance) -> bool:
    """keepalived vrrp_handle_accept_mode: neither accept mode nor the address owner."""
    return not conf.accept and conf.priority != PRIO_OWNER


# ---- the child's firewall ---------------------------------------------------------------------


CONDITION = "firewall"


class ChildFirewall:
    """The workload's edge: the firewall of the running configuration, or none. A failure is
    logged and raised as a degraded condition (STATUS=), never an exception in the loop: the
    instances go on without the drop rules, as keepalived goes on when nftables fails."""

    def __init__(self, conditions: Conditions, backend: Backend | None = None) -> None:
        self.conditions = conditions
        self.backend = backend
        self.fw: Firewall | None = None

    def configure(self, config: Config) -> None:
        """At start and at each reload: a changed table name, priority, ... rebuilds the tables
        (the next flush puts the entries back)."""
        settings = Settings.of(config)
        if self.fw is not None and self.fw.settings == settings:
            return
        self.close()
        if settings is None:
            return
        from vrrp_child import droptable  # noqa: PLC0415 (a table is needed: see the module's docstring)

        try:
            if self.backend is None:
                self.backend = droptable.LibNftables()
            fw = droptable.Firewall(settings, self.backend)
            fw.start()
        except FirewallError as e:
            self._failed(f"cannot set up the {settings.table} nftables table: {e}")
            return
        self.fw = fw

    def before(self, holders: Iterable[Holder]) -> set[Element]:
        if self.fw is None:
            return set()
        wanted = self.fw.wanted(holders)
        try:
            self.fw.add(wanted)
        except FirewallError as e:
            self._failed(f"cannot add the VIPs to the {self.fw.settings.table} nftables table: {e}")
        else:
            self.conditions.clear(CONDITION)
        return wanted

    def after(self, wanted: set[Element]) -> None:
        if self.fw is None:
            return
        try:
            self.fw.retain(wanted)
        except FirewallError as e:
            self._failed(f"cannot remove VIPs from the {self.fw.settings.table} nftables table: {e}")

    def close(self) -> None:
        fw, self.fw = self.fw, None
        if fw is None:
            return
        try:
            fw.close()
        except FirewallError as e:
            log.error("cannot delete the %s nftables tables: %s", fw.settings.table, e)
        self.conditions.clear(CONDITION)

    def _failed(self, text: str) -> None:
        if self.conditions.raised.get(CONDITION) != text:  # once per distinct failure
            log.error("%s", text)
        self.conditions.set(CONDITION, text)


def release_tables(table: str, backend: Backend | None = None) -> list[str]:
    """The parent's part for a dead or hung child: delete its tables; the error lines."""
    from vrrp_child import droptable  # noqa: PLC0415 (only when a dead child held a table)

    try:
        (backend or droptable.LibNftables()).run(droptable.delete_commands(table))
    except FirewallError as e:
        return [f"cannot remove the {table} nftables tables: {e}"]
    return []


def table_of(config: Config, instances: Iterable[VrrpInstance]) -> str | None:
    """The drop table these MASTER instances of `config` may have filled (the parent's
    release removes it with their VIPs); None when none of them drops."""
    settings = Settings.of(config)
    if settings is None or not any(needs_drop(i) for i in instances):
        return None
    return settings.table
