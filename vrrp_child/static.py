"""static_ipaddress, static_routes and static_rules: set by the VRRP child, whatever the
instances' states (keepalived.conf(5), "Static routes/addresses/rules").

keepalived 2.2.7's lifecycle, measured in a namespace and followed here:
- start-up: first remove leftovers of a previous run (addresses, routes, rules; errors
  ignored), then add addresses, routes, rules, in that order (a static route's gateway
  may sit in a static address's subnet). An address that was already configured by hand
  is therefore removed and re-added: keepalived owns every address it is told about;
- stop: remove rules, routes, addresses (the reverse order), also an address that was
  there before keepalived started;
- reload: remove what the new configuration no longer has, then add the new
  configuration's entries (those still there answer EEXIST, which is not an error).
A static address without `dev` goes on global_defs default_interface; a static route gets
no device unless its line names one (vrrp_child.routing).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from conf.addresses import IpAddressEntry
from conf.model import Config
from conf.routes import RouteEntry
from conf.rules import RuleEntry
from vrrp_child.netlink import BatchResult as AddressResult
from vrrp_child.netlink import Rtnl

AddressItem = tuple[IpAddressEntry, str]


def address_items(config: Config) -> list[AddressItem]:
    """Each static address with the interface it goes on."""
    default = config.global_defs.default_interface
    return [(a, a.dev or default) for a in config.static_ipaddress]


def _address_errors(result: AddressResult, add: bool) -> list[str]:
    verb = "add" if add else "remove"
    return [
        f"Netlink: error: {os.strerror(f.errno)}({f.errno}), type={'RTM_NEWADDR(20)' if add else 'RTM_DELADDR(21)'}: "
        f"cannot {verb} static address {f.entry} on {f.ifname}"
        for f in result.failed
    ]


def _described(entries: Sequence[RouteEntry | RuleEntry]) -> list[str]:
    if not entries:
        return []
    from vrrp_child.routing import describe  # noqa: PLC0415 (routes or rules only)

    return [describe(e) for e in entries]


def _add(
    rtnl: Rtnl, addresses: Sequence[AddressItem], routes: Sequence[RouteEntry], rules: Sequence[RuleEntry]
) -> list[str]:
    errors = _address_errors(rtnl.add_addresses(addresses), add=True) if addresses else []
    if routes or rules:
        from vrrp_child.routing import Routing  # noqa: PLC0415 (routes or rules only)

        routing = Routing(rtnl)
        errors += routing.add_routes((r, None) for r in routes).errors() if routes else []
        errors += routing.add_rules(rules).errors() if rules else []
    return errors


def _remove(
    rtnl: Rtnl, addresses: Sequence[AddressItem], routes: Sequence[RouteEntry], rules: Sequence[RuleEntry]
) -> list[str]:
    errors: list[str] = []
    if routes or rules:
        from vrrp_child.routing import Routing  # noqa: PLC0415 (routes or rules only)

        routing = Routing(rtnl)
        errors += routing.remove_rules(rules).errors() if rules else []
        errors += routing.remove_routes((r, None) for r in routes).errors() if routes else []
    if addresses:
        errors += _address_errors(rtnl.remove_addresses(addresses), add=False)
    return errors


def apply_static(config: Config, rtnl: Rtnl) -> list[str]:
    """Start-up: clear leftovers, then add the static addresses, routes and rules. Returns
    log-ready error lines (nothing raises for an entry the kernel refuses)."""
    addresses = address_items(config)
    _remove(rtnl, addresses, config.static_routes, config.static_rules)
    return _add(rtnl, addresses, config.static_routes, config.static_rules)


def remove_static(config: Config, rtnl: Rtnl) -> list[str]:
    """Stop: remove rules, routes, addresses (keepalived's stop_vrrp order)."""
    return _remove(rtnl, address_items(config), config.static_routes, config.static_rules)


@dataclass(frozen=True)
class StaticDiff:
    """A reload's work: what went away (to remove) and the new configuration's entries (to
    add; the ones already in place are left as they are by the kernel)."""

    removed_addresses: tuple[AddressItem, ...] = ()
    removed_routes: tuple[RouteEntry, ...] = ()
    removed_rules: tuple[RuleEntry, ...] = ()
    addresses: tuple[AddressItem, ...] = ()
    routes: tuple[RouteEntry, ...] = ()
    rules: tuple[RuleEntry, ...] = ()
    added_addresses: tuple[AddressItem, ...] = ()
    added_routes: tuple[RouteEntry, ...] = ()
    added_rules: tuple[RuleEntry, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.removed_addresses
            or self.removed_routes
            or self.removed_rules
            or self.added_addresses
            or self.added_routes
            or self.added_rules
        )

    def describe(self) -> list[str]:
        """One line per change, for the reload log."""
        out = [f"Removing static address {a} from {dev}" for a, dev in self.removed_addresses]
        out += [f"Removing static {text}" for text in _described((*self.removed_routes, *self.removed_rules))]
        out += [f"Adding static address {a} to {dev}" for a, dev in self.added_addresses]
        out += [f"Adding static {text}" for text in _described((*self.added_routes, *self.added_rules))]
        return out

    def apply(self, rtnl: Rtnl) -> list[str]:
        errors = _remove(rtnl, self.removed_addresses, self.removed_routes, self.removed_rules)
        return errors + _add(rtnl, self.addresses, self.routes, self.rules)


def static_diff(old: Config, new: Config) -> StaticDiff:
    """Compare by value (locations do not count): an entry whose line changed is removed
    in its old form and added in its new one."""
    old_a, new_a = address_items(old), address_items(new)
    return StaticDiff(
        removed_addresses=tuple(x for x in old_a if x not in set(new_a)),
        removed_routes=tuple(r for r in old.static_routes if r not in set(new.static_routes)),
        removed_rules=tuple(r for r in old.static_rules if r not in set(new.static_rules)),
        addresses=tuple(new_a),
        routes=new.static_routes,
        rules=new.static_rules,
        added_addresses=tuple(x for x in new_a if x not in set(old_a)),
        added_routes=tuple(r for r in new.static_routes if r not in set(old.static_routes)),
        added_rules=tuple(r for r in new.static_rules if r not in set(old.static_rules)),
    )
