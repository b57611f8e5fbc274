"""How long a node may keep the VIPs of instances it no longer advertises, and how fast
the parent must notice a hung VRRP child for that (pure: configuration in, seconds out).

The rule (the promise of never two masters): a node never holds a VIP that it has not
advertised for longer than the peers' Master_Down_Interval. A peer in BACKUP takes over
Master_Down_Interval = 3 x Master_Adver_Interval + Skew_Time after the last advert it
received (RFC 3768 / RFC 5798 section 6.4.2). We do not know the peers' priorities, and a
higher priority means a shorter Skew_Time, so we assume the peer that takes over soonest:
priority 254 (a backup above us exists whenever it runs `nopreempt`, or both start as BACKUP
with nopreempt). Priority 1 would give up to a second more (v2) but would not be a bound.

The parent only knows when it last heard the VRRP child (a heartbeat, stamped with the
child's CLOCK_MONOTONIC); the child's last advert went out at most one Advertisement_Interval
before that. So the VIPs of a silent child must be gone by

    last_heard + Master_Down_Interval(254) - Advertisement_Interval - margin

(`hold_time`), and a child silent for `hang_time` (2 x its shortest advert_int, never more
than the hold time nor --heartbeat-timeout) is declared hung and its VIPs released then.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from conf.model import Config
from conf.vrrp import VrrpInstance
from vrrp_child import ah, firewall
from vrrp_child.fsm import master_down_interval
from watchdog.heartbeat import HeartbeatSettings
from watchdog.protocol import Json

# The highest priority a backup peer can have (255 is the address owner, which is MASTER).
# A higher priority means a shorter Skew_Time, so it is the peer that takes over soonest.
FASTEST_PEER_PRIORITY = 254
# Headroom for the parent's own reaction (one loop pass, one netlink batch), at most this
# and at most a quarter of an advert interval.
MARGIN_MAX = 0.1
# Hung: no heartbeat for this many advert intervals (the shortest of the child's instances).
HANG_ADVERTS = 2
# Heartbeats per hang timeout: one lost or late heartbeat must never look like a hang.
HEARTBEATS_PER_TIMEOUT = 4
# The shortest hold (and hang timeout) the parent works with. `down_timer_adverts 1` (or 2
# with a tiny advert_int) leaves the peers no time at all; there the rule cannot be kept
# and the parent does the best it can (docs/daemon.md).
HOLD_MIN = 0.05


def margin(advert_int: float) -> float:
    return min(MARGIN_MAX, advert_int / 4)


def hold_time(inst: VrrpInstance) -> float:
    """Seconds after the VRRP child was last heard during which this instance's VIPs may
    stay without a running child that advertises them."""
    # down_timer_adverts: keepalived's keyword (default the RFC's 3); peers of one virtual
    # router share it in any sane set-up, so ours stands for theirs.
    return _hold_time(inst.version, inst.advert_int, inst.down_timer_adverts)


@functools.lru_cache(maxsize=256)
def _hold_time(version: int, adv: float, adverts: int) -> float:
    # Cached: the parent asks for the shortest hold of every instance it holds on each pass of
    # its loop (20 passes a second at advert_int 0.1), and there are few distinct timings.
    mdi = master_down_interval(version, FASTEST_PEER_PRIORITY, adv, adverts)
    return max(HOLD_MIN, mdi - adv - margin(adv))


def hang_time(inst: VrrpInstance) -> float:
    """Silence after which the child running `inst` counts as hung: HANG_ADVERTS advert
    intervals, and never later than the hold time (the VIPs go at that moment)."""
    return min(HANG_ADVERTS * inst.advert_int, hold_time(inst))


@dataclass(frozen=True)
class Held:
    """What a VRRP child holds on the system for the parent to release: the instances it
    reported MASTER, and the nftables table of the configuration they run under (no-accept
    drop rules, vrrp_child.firewall), if any."""

    instances: tuple[VrrpInstance, ...] = ()
    firewall_table: str | None = None
    # auth_type AH: each instance's last reported sequence number and when (vrrp_child.ah),
    # so that the priority-0 release goes out above it
    ah_seqs: tuple[tuple[str, int, float], ...] = ()

    def __len__(self) -> int:
        return len(self.instances)

    def names(self) -> list[str]:
        return [i.name for i in self.instances]


def shortest_hold(held: Held) -> float | None:
    """The hold time of the most demanding instance; None without instances."""
    holds = [hold_time(i) for i in held.instances]
    return min(holds) if holds else None


def vrrp_heartbeat(base: HeartbeatSettings, config: Config) -> HeartbeatSettings:
    """The VRRP child's heartbeat: hung after the shortest `hang_time` of its instances (never
    later than the operator's --heartbeat-timeout), heartbeats HEARTBEATS_PER_TIMEOUT times per
    timeout (never rarer than --heartbeat-interval)."""
    if not config.vrrp_instance:
        return base
    timeout = min(base.timeout, *(hang_time(i) for i in config.vrrp_instance.values()))
    interval = min(base.interval, timeout / HEARTBEATS_PER_TIMEOUT)
    return HeartbeatSettings(interval, timeout)


# The state the VRRP child reports for an instance whose VIPs the parent released (STATUS=
# shows it until a successor reports the instance's real state).
RELEASED = "RELEASED"


def masters(config: Config, states: Mapping[str, Json]) -> Held:
    """The configured instances the VRRP child last reported MASTER: what it holds on the
    system (sync groups report under their own keys and hold nothing of their own)."""
    out = []
    seqs = []
    for name, inst in config.vrrp_instance.items():
        state = states.get(name)
        if isinstance(state, dict) and state.get("state") == "MASTER":
            out.append(inst)
            seq = ah.reported_seq(state)
            if seq is not None:
                seqs.append((name, *seq))
    return Held(tuple(out), firewall.table_of(config, out) if out else None, tuple(seqs))
