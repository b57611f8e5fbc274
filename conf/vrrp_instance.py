"""The vrrp_instance, vrrp_sync_group and garp_group blocks (keepalived.conf(5), "VRRPD
CONFIGURATION").

A vrrp_instance has two types. `VrrpInstanceBlock` is what the block says: its
keywords, None where one was not given, checked only for what the block alone decides
(`finish`: the address family, the order of preempt/nopreempt). `VrrpInstance` is what
the VRRP child runs with, made by `conf.vrrp_resolve` from the block, its sync group and
global_defs: the same keywords, with every value keepalived always has typed as such.
"""

from __future__ import annotations

from dataclasses import field
from ipaddress import IPv4Address
from typing import Any, ClassVar, Self

from conf.addresses import ADDRESS_LINE, IpAddressEntry
from conf.diagnostics import Location
from conf.global_defs import GarpExtraIf, GarpExtraIfConv
from conf.modelclass import model_class
from conf.routes import ROUTE_LINE, RouteEntry
from conf.rules import RULE_LINE, RuleEntry
from conf.schema import Block, Context, kw, replace
from conf.trackers import (
    BFD_UNSUPPORTED,
    TRACK_BFD,
    TRACK_FILE,
    TRACK_INTERFACE,
    TRACK_PROCESS,
    TRACK_SCRIPT,
    TrackRef,
)
from conf.values import Flag, Float, Int, IpAddr, IPAddress, Lines, Names, Script, ScriptCmd, Str, Sub
from conf.vrrp_values import (
    PRIO_DEFAULT,
    PRIO_OWNER,
    VRRP_MAX_ADDR,
    Authentication,
    NotifyDeleted,
    OldChecksum,
    OptionalScript,
    PriorityConv,
    StateConv,
    UnicastPeer,
    UseIpvlan,
    UseIpvlanConv,
    UseVmac,
    UseVmacConv,
    peer_item,
)

_BUFS = "socket buffer tuning is not implemented"
_LINKBEAT = "linkbeat polling is not implemented"
_IPVLAN = "VRRP over ipvlan is not implemented"


@model_class
class VrrpSyncGroup(Block):
    """`vrrp_sync_group NAME { group { INSTANCE... } ... }`. `smtp_alert` None and
    `notify_priority_changes` None are resolved from global_defs by finish_vrrp."""

    label: ClassVar[str] = "vrrp_sync_group"

    name: str = ""
    group: tuple[str, ...] = kw(Names("{ VRRP_INSTANCE ... }"), ())
    track_interface: tuple[TrackRef, ...] = kw(TRACK_INTERFACE, ())
    track_script: tuple[TrackRef, ...] = kw(TRACK_SCRIPT, ())
    track_file: tuple[TrackRef, ...] = kw(TRACK_FILE, ())
    track_process: tuple[TrackRef, ...] = kw(TRACK_PROCESS, ())
    track_bfd: tuple[TrackRef, ...] = kw(TRACK_BFD, (), unsupported=BFD_UNSUPPORTED)
    notify_master: Script | None = kw(ScriptCmd(with_user=True))
    notify_backup: Script | None = kw(ScriptCmd(with_user=True))
    notify_fault: Script | None = kw(ScriptCmd(with_user=True))
    notify_stop: Script | None = kw(ScriptCmd(with_user=True))
    # no notify_deleted: keepalived 2.2.7 has it for instances only ("Unknown keyword" here)
    notify: Script | None = kw(ScriptCmd(with_user=True))
    notify_priority_changes: bool | None = kw(Flag())
    smtp_alert: bool | None = kw(Flag())
    global_tracking: bool = kw(Flag(), False)  # deprecated: same as sync_group_tracking_weight
    sync_group_tracking_weight: bool = kw(Flag(), False)

    @property
    def tracking_weight(self) -> bool:
        """Member instances keep the weights of their own trackers."""
        return self.sync_group_tracking_weight or self.global_tracking

    def finish(self, ctx: Context) -> Self:
        if self.global_tracking:
            ctx.diags.warning(
                f"({self.name}) global_tracking is deprecated; use track_interface/script/file on the sync group",
                self.where("global_tracking"),
            )
        return self


@model_class
class GarpGroup(Block):
    """`garp_group { garp_interval; gna_interval; interface | interfaces { } }`."""

    label: ClassVar[str] = "garp_group"

    garp_interval: float | None = kw(Float(0, 4294.967295))
    gna_interval: float | None = kw(Float(0, 4294.967295))
    interface: str | None = kw(Str())
    interfaces: tuple[str, ...] = kw(Names("{ INTERFACE ... }"), ())

    @property
    def all_interfaces(self) -> tuple[str, ...]:
        names = ((self.interface,) if self.interface else ()) + self.interfaces
        return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------- vrrp_instance


@model_class
class VrrpInstanceBlock(Block):
    """`vrrp_instance NAME { ... }` as written, with keepalived's defaults for what does
    not depend on anything else; None: not given (resolved by `conf.vrrp_resolve`)."""

    label: ClassVar[str] = "vrrp_instance"

    name: str = ""
    state: str | None = kw(StateConv())
    interface: str | None = kw(Str())
    vrf: str | None = kw(Str())
    use_vmac: UseVmac | None = kw(UseVmacConv())
    use_vmac_addr: bool = kw(Flag(), False, unsupported="a VMAC's own address is not used as the advert source")
    vmac_xmit_base: bool = kw(Flag(), False)
    use_ipvlan: UseIpvlan | None = kw(UseIpvlanConv(), unsupported=_IPVLAN)
    native_ipv6: bool = kw(Flag(), False)
    dont_track_primary: bool = kw(Flag(), False)
    track_interface: tuple[TrackRef, ...] = kw(TRACK_INTERFACE, ())
    track_script: tuple[TrackRef, ...] = kw(TRACK_SCRIPT, ())
    track_file: tuple[TrackRef, ...] = kw(TRACK_FILE, ())
    track_process: tuple[TrackRef, ...] = kw(TRACK_PROCESS, ())
    track_bfd: tuple[TrackRef, ...] = kw(TRACK_BFD, (), unsupported=BFD_UNSUPPORTED)
    mcast_src_ip: IPAddress | None = kw(IpAddr())
    unicast_src_ip: IPAddress | None = kw(IpAddr())
    mcast_dst_ip: IPAddress | None = kw(IpAddr())
    track_src_ip: bool = kw(Flag(), False)
    version: int | None = kw(Int(2, 3))
    check_unicast_src: bool | None = kw(Flag())
    unicast_peer: tuple[UnicastPeer, ...] = kw(Lines(peer_item, "{ <IPADDR> [min_ttl N] [max_ttl N] ... }"), ())
    unicast_fault_no_peer: bool = kw(Flag(), False, unsupported="an instance without unicast peers is not put in FAULT")
    unicast_ttl: int | None = kw(Int(0, 255))  # None: 255 for IPv4, the kernel's for IPv6
    old_unicast_checksum: str | None = kw(OldChecksum(), unsupported="only the RFC checksum is computed")
    garp_master_delay: int | None = kw(Int(0, 4294))
    garp_master_repeat: int | None = kw(Int(1, 2**32 - 1))
    garp_lower_prio_delay: int | None = kw(Int(0, 4294))
    garp_lower_prio_repeat: int | None = kw(Int(0, 2**32 - 1))
    garp_master_refresh: int | None = kw(Int(0, 4294))
    garp_master_refresh_repeat: int | None = kw(Int(1, 2**32 - 1))
    garp_extra_if: GarpExtraIf | None = kw(
        GarpExtraIfConv(), aliases=("vmac_garp_intvl",), deprecated=("vmac_garp_intvl",)
    )
    down_timer_adverts: int | None = kw(Int(1, 100))
    lower_prio_no_advert: bool | None = kw(Flag())
    higher_prio_send_advert: bool | None = kw(Flag())
    virtual_router_id: int | None = kw(Int(1, 255))
    priority: int | None = kw(PriorityConv())
    advert_int: float = kw(Float(0.01, 255), 1.0)
    authentication: Authentication | None = kw(Sub(Authentication))
    virtual_ipaddress: tuple[IpAddressEntry, ...] = kw(Lines(ADDRESS_LINE, "{ <IPADDR>[/<MASK>] [OPTIONS] ... }"), ())
    virtual_ipaddress_excluded: tuple[IpAddressEntry, ...] = kw(
        Lines(ADDRESS_LINE, "{ <IPADDR>[/<MASK>] [OPTIONS] ... }"), ()
    )
    promote_secondaries: bool = kw(Flag(), False)
    virtual_routes: tuple[RouteEntry, ...] = kw(Lines(ROUTE_LINE, "{ ROUTE ... }"), ())
    virtual_rules: tuple[RuleEntry, ...] = kw(Lines(RULE_LINE, "{ RULE ... }"), ())
    accept: bool | None = kw(Flag())
    no_accept: bool = kw(Flag(), False)
    nopreempt: bool = kw(Flag(), False)
    preempt: bool = kw(Flag(), False)  # backwards compatibility: clears nopreempt
    preempt_delay: float = kw(Float(0, 1000), 0.0)
    skip_check_adv_addr: bool | None = kw(Flag())
    strict_mode: bool | None = kw(Flag())
    debug: int = kw(Int(0, 4), 0)
    notify_master: Script | None = kw(ScriptCmd(with_user=True))
    notify_backup: Script | None = kw(ScriptCmd(with_user=True))
    notify_fault: Script | None = kw(ScriptCmd(with_user=True))
    notify_stop: Script | None = kw(ScriptCmd(with_user=True))
    notify_deleted: NotifyDeleted | None = kw(OptionalScript())  # vrrp_child.workload._retire
    notify: Script | None = kw(ScriptCmd(with_user=True))
    notify_master_rx_lower_pri: Script | None = kw(ScriptCmd(with_user=True))
    notify_priority_changes: bool | None = kw(Flag())
    smtp_alert: bool | None = kw(Flag())
    kernel_rx_buf_size: int | None = kw(Int(1, 2**31 - 1), unsupported=_BUFS)
    linkbeat_use_polling: bool = kw(Flag(), False, unsupported=_LINKBEAT)
    # Not in the 2.2.7 man page; keepalived still takes it with a deprecation message.
    lvs_sync_daemon_interface: str | None = kw(Str(), unsupported="the IPVS sync daemon is not driven")

    # ------------------------------------------------------------ convenience

    @property
    def family(self) -> int:
        """4 or 6: the family of the VIPs (and unicast addresses); IPv4 if none."""
        for addr in (self.unicast_src_ip, self.mcast_src_ip):
            if addr is not None:
                return addr.version
        if self.virtual_ipaddress:
            return self.virtual_ipaddress[0].family
        if self.unicast_peer:
            return self.unicast_peer[0].address.version
        return 6 if self.native_ipv6 else 4

    @property
    def src_ip(self) -> IPAddress | None:
        """The configured source address (unicast_src_ip, else mcast_src_ip)."""
        return self.unicast_src_ip if self.unicast_src_ip is not None else self.mcast_src_ip

    @property
    def is_unicast(self) -> bool:
        return bool(self.unicast_peer)

    @property
    def is_owner(self) -> bool:
        return self.priority == PRIO_OWNER

    @property
    def advert_int_centis(self) -> int:
        """The advert interval in centiseconds (the VRRPv3 packet field)."""
        return round(self.advert_int * 100)

    @property
    def auth_type(self) -> str | None:
        """PASS/AH when authentication is in use (v2 only), else None."""
        return self.authentication.auth_type if self.authentication else None

    @property
    def auth_pass(self) -> str | None:
        return self.authentication.auth_pass if self.authentication else None

    # ------------------------------------------------------------ own checks

    def finish(self, ctx: Context) -> Self:
        """What keepalived checks while it reads the block: deprecated keywords, the
        later of preempt/nopreempt and accept/no_accept wins, and the address family."""
        self._warn_deprecated(ctx)
        inst = self._later_flag_wins()
        family = inst._first_family()
        if family is None:
            return inst
        return inst._keep_family(family, ctx)

    def _warn_deprecated(self, ctx: Context) -> None:
        if self.lvs_sync_daemon_interface is not None:
            ctx.diags.warning(
                f"({self.name}) specifying lvs_sync_daemon_interface against a vrrp is deprecated; "
                "use global_defs lvs_sync_daemon",
                self.where("lvs_sync_daemon_interface"),
            )
        if self.linkbeat_use_polling:
            ctx.diags.warning(
                f"({self.name}) 'linkbeat_use_polling' in vrrp instance is deprecated; use the "
                "linkbeat_interfaces block",
                self.where("linkbeat_use_polling"),
            )

    def _later_flag_wins(self) -> Self:
        """keepalived sets and clears one flag, so the keyword given later wins."""
        inst = self
        if self.preempt and self.nopreempt:
            later_preempt = _line(self.where("preempt")) > _line(self.where("nopreempt"))
            inst = replace(inst, nopreempt=not later_preempt)
        if self.no_accept and self.accept is not None:
            inst = replace(inst, accept=_line(self.where("accept")) > _line(self.where("no_accept")))
        elif self.no_accept:
            inst = replace(inst, accept=False)
        return inst

    def _first_family(self) -> int | None:
        """The family of the first address given (unicast_src_ip/mcast_src_ip, VIP, peer)."""
        firsts: list[tuple[int, int]] = []
        for fname, addr in (("unicast_src_ip", self.unicast_src_ip), ("mcast_src_ip", self.mcast_src_ip)):
            if addr is not None:
                firsts.append((_line(self.where(fname)), addr.version))
        if self.virtual_ipaddress:
            vip = self.virtual_ipaddress[0]
            firsts.append((_line(vip.location or self.where("virtual_ipaddress")), vip.family))
        if self.unicast_peer:
            firsts.append((_line(self.unicast_peer[0].location), self.unicast_peer[0].address.version))
        return min(firsts)[1] if firsts else None

    def _keep_family(self, family: int, ctx: Context) -> Self:
        """Addresses of the other family are ignored, with a message each."""
        inst = self
        if self.native_ipv6 and family == 4:
            ctx.diags.reset(
                f"({self.name}) cannot specify native_ipv6 with IPv4 addresses; ignored", self.where("native_ipv6")
            )
            inst = replace(inst, native_ipv6=False)
        if self.unicast_src_ip is not None and self.unicast_src_ip.version != family:
            inst = replace(inst, unicast_src_ip=self._ignored("unicast_src_ip", self.unicast_src_ip, ctx))
        if self.mcast_src_ip is not None and self.mcast_src_ip.version != family:
            inst = replace(inst, mcast_src_ip=self._ignored("mcast_src_ip", self.mcast_src_ip, ctx))
        inst = inst._keep_vips(family, ctx)
        peers = tuple(p for p in self.unicast_peer if p.address.version == family)
        if len(peers) != len(self.unicast_peer):
            for p in self.unicast_peer:
                if p.address.version != family:
                    ctx.diags.reset(
                        f"({self.name}) unicast peer address [{p.address}] must be of the same family "
                        "as the instance; ignored",
                        p.location or self.where("unicast_peer"),
                    )
            inst = replace(inst, unicast_peer=peers)
        return inst

    def _ignored(self, fname: str, addr: IPAddress, ctx: Context) -> None:
        ctx.diags.reset(
            f"({self.name}) {fname} {addr} must be of the same family as the instance; ignored", self.where(fname)
        )

    def _keep_vips(self, family: int, ctx: Context) -> Self:
        """VIPs of the other family are ignored; beyond VRRP_MAX_ADDR they are excluded."""
        inst = self
        vips = tuple(v for v in self.virtual_ipaddress if v.family == family)
        if len(vips) != len(self.virtual_ipaddress):
            for v in self.virtual_ipaddress:
                if v.family != family:
                    ctx.diags.reset(
                        f"({self.name}) address family must match VRRP instance [{v.ip}]; ignored "
                        "(use virtual_ipaddress_excluded for the other family)",
                        v.location or self.where("virtual_ipaddress"),
                    )
            inst = replace(inst, virtual_ipaddress=vips)
        if len(vips) > VRRP_MAX_ADDR:
            ctx.diags.reset(
                f"({self.name}) Number of VIPs ({len(vips)}) exceeds maximum/space available in packet "
                f"(max {VRRP_MAX_ADDR} addresses) - excess moved to eVIPs",
                self.where("virtual_ipaddress"),
            )
            inst = replace(
                inst,
                virtual_ipaddress=vips[:VRRP_MAX_ADDR],
                virtual_ipaddress_excluded=(*inst.virtual_ipaddress_excluded, *vips[VRRP_MAX_ADDR:]),
            )
        return inst


def _line(loc: Location | None) -> int:
    return loc.line if loc is not None else 0


VRRP_GROUP4 = IPv4Address("224.0.0.18")  # RFC 5798 section 5.1.1.2; vrrp_mcast_group4's default


def _resolved(name: str, default: object = None) -> Any:
    """VrrpInstanceBlock's field `name` (its keyword and converter, for --print-config and
    the man page), with the narrowed type of the annotation; `default` is what an instance
    resolves to with an empty global_defs (tests/conf/test_vrrp_resolve.py checks it)."""
    base = VrrpInstanceBlock.__dataclass_fields__[name]
    if default is None:
        return field(metadata=base.metadata)
    return field(default=default, metadata=base.metadata)


@model_class(kw_only=True)
class VrrpInstance(VrrpInstanceBlock):
    """A vrrp_instance as keepalived runs it (`conf.vrrp_resolve.complete_instance`).

    - from the instance alone: virtual_router_id (required), priority (255 if `state
      MASTER` has no priority, else 100), state (MASTER for an owner, else BACKUP),
      advert_int (rounded to whole seconds for v2 and to centiseconds for v3), family.
    - from global_defs, unless given (the table `conf.vrrp_resolve.INHERIT`): version,
      strict_mode, the garp_* timers and repeats, down_timer_adverts,
      lower_prio_no_advert, higher_prio_send_advert, skip_check_adv_addr,
      check_unicast_src, mcast_dst_ip, smtp_alert, notify_priority_changes (the sync
      group's first); accept (on for an owner, else off under strict).
    - track_* references carry their resolved weight and reverse.
    Still None when it means "none": authentication, garp_extra_if, use_vmac, ...
    """

    virtual_router_id: int = _resolved("virtual_router_id")
    state: str = _resolved("state", "BACKUP")
    priority: int = _resolved("priority", PRIO_DEFAULT)
    version: int = _resolved("version", 2)
    strict_mode: bool = _resolved("strict_mode", False)
    accept: bool = _resolved("accept", True)
    garp_master_delay: int = _resolved("garp_master_delay", 5)
    garp_master_repeat: int = _resolved("garp_master_repeat", 5)
    garp_lower_prio_delay: int = _resolved("garp_lower_prio_delay", 5)
    garp_lower_prio_repeat: int = _resolved("garp_lower_prio_repeat", 5)
    garp_master_refresh: int = _resolved("garp_master_refresh", 0)
    garp_master_refresh_repeat: int = _resolved("garp_master_refresh_repeat", 1)
    down_timer_adverts: int = _resolved("down_timer_adverts", 3)
    lower_prio_no_advert: bool = _resolved("lower_prio_no_advert", False)
    higher_prio_send_advert: bool = _resolved("higher_prio_send_advert", False)
    skip_check_adv_addr: bool = _resolved("skip_check_adv_addr", False)
    check_unicast_src: bool = _resolved("check_unicast_src", False)
    mcast_dst_ip: IPAddress = _resolved("mcast_dst_ip", VRRP_GROUP4)
    smtp_alert: bool = _resolved("smtp_alert", False)
    notify_priority_changes: bool = _resolved("notify_priority_changes", False)
