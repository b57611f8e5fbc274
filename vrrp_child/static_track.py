"""`track_group` on static addresses, routes and rules (keepalived.conf(5) "Static track
groups"): as keepalived 2.2.7's static_track_group_init, every instance of the group tracks
the entry's interface with weight 0, so it is in FAULT while that interface is down: the
address's interface (`dev`, else default_interface), the route's `dev`, the rule's `iif`.
A route or rule without one tracks nothing; an entry with `no_track` too (keepalived logs
"Static address has both track_group and no_track set - not tracking"). Instances the group
names that do not exist are skipped ("... doesn't exist - ignoring").

What happens to a deleted entry (it is put back) is vrrp_child.holdwatch's. Pure."""

from __future__ import annotations

from conf.model import Config
from conf.trackers import TrackRef


def static_track_refs(config: Config) -> tuple[dict[str, tuple[TrackRef, ...]], list[str]]:
    """instance name -> the interfaces it tracks (weight 0) through static entries, and
    keepalived's log lines for the entries that track nothing."""
    default = config.global_defs.default_interface
    tracked: list[tuple[str, str | None]] = []  # (track group, interface)
    notes: list[str] = []
    for kind, entries in (
        ("address", [(a.track_group, a.no_track, a.dev or default) for a in config.static_ipaddress]),
        ("route", [(r.track_group, r.no_track, r.dev) for r in config.static_routes]),
        ("rule", [(r.track_group, r.no_track, r.iif) for r in config.static_rules]),
    ):
        for group, no_track, ifname in entries:
            if group is None:
                continue
            if no_track:
                notes.append(f"Static {kind} has both track_group and no_track set - not tracking")
                continue
            tracked.append((group, ifname))
    refs: dict[str, dict[str, TrackRef]] = {}
    for group, ifname in tracked:
        tg = config.track_group.get(group)
        if tg is None or ifname is None:
            continue
        for name in tg.group:
            if name in config.vrrp_instance:
                refs.setdefault(name, {}).setdefault(ifname, TrackRef(ifname, 0, False))
    return {name: tuple(by_if.values()) for name, by_if in refs.items()}, notes
