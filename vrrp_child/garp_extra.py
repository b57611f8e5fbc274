"""`garp_extra_if [all] SECS` (vrrp_instance) / `vrrp_garp_extra_if` (global_defs): while
MASTER, one gratuitous ARP (or unsolicited NA) every SECS on each interface other than the
instance's own that holds one of its VIPs or eVIPs, so that switch MAC caches there do not
time out (keepalived.conf(5)). As keepalived 2.2.7's vrrp_send_vmac_update:

- only VMAC interfaces, unless `all`; the instance's own interface only with vmac_xmit_base;
- one frame per interface, for the first VIP (then eVIP) on it, from that interface's MAC;
- no frame on becoming MASTER: the first is due SECS later, and the check runs when an advert
  is sent, so the period is SECS rounded up to the next advert.

`extra_if_items` is pure; the instance (vrrp_child.instance) keeps the timer."""

from __future__ import annotations

from collections.abc import Iterable

from conf.vrrp import VrrpInstance
from vrrp_child.holdings import Item


def extra_if_items(conf: VrrpInstance, items: Iterable[Item], own_ifname: str) -> list[Item]:
    """The VIP to announce on each extra interface, in configuration order; [] when the
    feature is off (no interval, or no interface qualifies: keepalived then disables it)."""
    extra = conf.garp_extra_if
    if extra is None or extra.interval <= 0:
        return []
    out: dict[str, Item] = {}
    for entry, ifname in items:
        # the VMACs this daemon made: an instance's VIPs are only ever on its own one
        ours = conf.use_vmac is not None and ifname == own_ifname
        if not ours and not extra.all:
            continue
        if ifname == own_ifname and not conf.vmac_xmit_base:
            continue
        out.setdefault(ifname, (entry, ifname))
    return list(out.values())
