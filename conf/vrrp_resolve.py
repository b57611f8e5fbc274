"""keepalived's completion of a vrrp_instance (vrrp_complete_instance): from the block as
written, its sync group and global_defs, the `VrrpInstance` the VRRP child runs with.

Every keyword that takes global_defs' value unless the instance gives one is a row of
`INHERIT`, with what vrrp_strict/strict_mode forces; the rules that need more than that
are the small functions below, one per concern (priority and state, authentication,
preemption, accept mode, the VMAC, ...). What keepalived cannot run with is an error and
the instance is dropped; what it resets is said with keepalived's message.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from conf.global_defs import GarpExtraIf, GlobalDefs
from conf.schema import Context
from conf.values import IPAddress
from conf.vrrp_instance import VrrpInstance, VrrpInstanceBlock, VrrpSyncGroup
from conf.vrrp_tracking import unweight
from conf.vrrp_values import PRIO_DEFAULT, PRIO_OWNER, Authentication, UseVmac

T = TypeVar("T")


@dataclass(frozen=True)
class Inherit(Generic[T]):
    """A vrrp_instance keyword that takes global_defs' value unless given. `strict`: the
    value strict mode forces on a given value, with `strict_msg` (None: no such rule);
    strict mode also forces it on an inherited value, silently, unless `checks_inherited`
    (then the inherited value is checked like a given one, as keepalived does)."""

    keyword: str
    from_globals: Callable[[GlobalDefs, VrrpInstanceBlock], T]
    strict: T | None = None
    strict_msg: str = ""
    checks_inherited: bool = False


def _mcast_group(g: GlobalDefs, inst: VrrpInstanceBlock) -> IPAddress:
    return g.vrrp_mcast_group4 if inst.family == 4 else g.vrrp_mcast_group6


class InheritTable(NamedTuple):
    strict_mode: Inherit[bool]
    garp_master_delay: Inherit[int]
    garp_master_repeat: Inherit[int]
    garp_master_refresh: Inherit[int]
    garp_master_refresh_repeat: Inherit[int]
    garp_lower_prio_repeat: Inherit[int]
    garp_lower_prio_delay: Inherit[int]
    garp_extra_if: Inherit[GarpExtraIf | None]
    lower_prio_no_advert: Inherit[bool]
    higher_prio_send_advert: Inherit[bool]
    down_timer_adverts: Inherit[int]
    skip_check_adv_addr: Inherit[bool]
    check_unicast_src: Inherit[bool]
    mcast_dst_ip: Inherit[IPAddress]
    smtp_alert: Inherit[bool]


# The one table of "inherit from global_defs unless given" (keepalived.conf(5): each
# vrrp_instance keyword's default is the global_defs keyword named here).
INHERIT = InheritTable(
    strict_mode=Inherit("strict_mode", lambda g, i: g.vrrp_strict),
    garp_master_delay=Inherit("garp_master_delay", lambda g, i: g.effective_garp_master_delay),
    garp_master_repeat=Inherit("garp_master_repeat", lambda g, i: g.effective_garp_master_repeat),
    garp_master_refresh=Inherit("garp_master_refresh", lambda g, i: g.vrrp_garp_master_refresh),
    garp_master_refresh_repeat=Inherit("garp_master_refresh_repeat", lambda g, i: g.vrrp_garp_master_refresh_repeat),
    garp_lower_prio_repeat=Inherit(
        "garp_lower_prio_repeat",
        lambda g, i: g.effective_garp_lower_prio_repeat,
        strict=0,
        strict_msg="strict mode requires no repeat garps; using 0",
    ),
    garp_lower_prio_delay=Inherit(
        "garp_lower_prio_delay",
        lambda g, i: g.effective_garp_lower_prio_delay,
        strict=0,
        strict_msg="strict mode requires no repeat garp delay; using 0",
    ),
    garp_extra_if=Inherit("garp_extra_if", lambda g, i: g.vrrp_garp_extra_if),
    lower_prio_no_advert=Inherit(
        "lower_prio_no_advert",
        lambda g, i: bool(g.vrrp_lower_prio_no_advert),
        strict=True,
        strict_msg="strict mode requires lower_prio_no_advert; using on",
    ),
    higher_prio_send_advert=Inherit(
        "higher_prio_send_advert",
        lambda g, i: g.vrrp_higher_prio_send_advert,
        strict=False,
        strict_msg="strict mode requires higher_prio_send_advert to be off; using off",
    ),
    down_timer_adverts=Inherit(
        "down_timer_adverts",
        lambda g, i: g.vrrp_down_timer_adverts,
        strict=3,
        strict_msg="strict mode requires down_timer_adverts 3; using 3",
        checks_inherited=True,
    ),
    skip_check_adv_addr=Inherit("skip_check_adv_addr", lambda g, i: g.vrrp_skip_check_adv_addr),
    # a peer with min_ttl/max_ttl needs the source checked
    check_unicast_src=Inherit(
        "check_unicast_src", lambda g, i: g.vrrp_check_unicast_src or any(p.checks_ttl for p in i.unicast_peer)
    ),
    mcast_dst_ip=Inherit("mcast_dst_ip", _mcast_group),
    smtp_alert=Inherit("smtp_alert", lambda g, i: g.smtp_alert_for("vrrp")),
)


def inherit(
    rule: Inherit[T], given: T | None, inst: VrrpInstanceBlock, g: GlobalDefs, *, strict: bool, ctx: Context
) -> T:
    """The value of `rule`'s keyword: given, else global_defs', then strict mode's rule."""
    forced = rule.strict if strict else None
    if given is None:
        if forced is not None and not rule.checks_inherited:
            return forced
        given = rule.from_globals(g, inst)
    if forced is not None and given != forced:
        _reset(inst, ctx, rule.strict_msg, rule.keyword)
        return forced
    return given


def _reset(inst: VrrpInstanceBlock, ctx: Context, msg: str, keyword: str | None = None) -> None:
    ctx.diags.reset(f"({inst.name}) {msg}", inst.where(keyword) if keyword else inst.location)


# ---------------------------------------------------------------- the named rules


def runnable_vrid(inst: VrrpInstanceBlock, g: GlobalDefs, ctx: Context) -> int | None:
    """The VRID, or None (an error said why) when keepalived cannot run the instance
    for want of a VRID or a usable interface."""
    name = inst.name
    if inst.virtual_router_id is None:
        ctx.diags.error(f"({name}) the virtual router id must be set", inst.location)
        return None
    if inst.interface is None and not inst.unicast_peer:
        ctx.diags.error(f"({name}) Unknown interface! (an interface or unicast peers are needed)", inst.location)
        return None
    if inst.interface is not None and inst.interface in ctx.loopbacks:
        # keepalived 2.2.7: "cannot use a loopback interface (lo) for vrrp - ignoring", then
        # "Unknown interface!" and -t exits 5; VRRP adverts cannot go out on a loopback.
        ctx.diags.error(
            f"({name}) cannot use a loopback interface ({inst.interface}) for vrrp - ignoring", inst.where("interface")
        )
        return None
    if inst.interface is not None and ctx.interfaces is not None and inst.interface not in ctx.interfaces:
        # keepalived -t fails on it ("Non-existent interface specified in configuration")
        # unless global_defs dynamic_interfaces allows interfaces that come later.
        msg = f"interface {inst.interface} for vrrp_instance {name} doesn't exist"
        if g.dynamic_interfaces:
            ctx.diags.warning(msg, inst.where("interface"))
        else:
            ctx.diags.missing_interface(
                f"{msg} (global_defs dynamic_interfaces allows this); the instance stays in FAULT "
                "state until it exists",
                inst.where("interface"),
            )
    return inst.virtual_router_id


def version(inst: VrrpInstanceBlock, g: GlobalDefs, strict: bool, ctx: Context) -> int:
    """vrrp_version, except that IPv6 needs VRRPv3 (RFC 5798)."""
    if inst.family == 6:
        if inst.version == 2 and strict:
            _reset(inst, ctx, "cannot use IPv6 with VRRP version 2; using version 3", "version")
            return 3
        if inst.version is None:
            return 3
    return inst.version if inst.version is not None else g.vrrp_version


def has_vips(inst: VrrpInstanceBlock, version: int, strict: bool, ctx: Context) -> bool:
    """VRRPv3, strict mode and IPv6 need a VIP; v2 only warns."""
    if inst.virtual_ipaddress:
        return True
    if version == 3 or strict or inst.family == 6:
        ctx.diags.error(f"({inst.name}) No VIP specified; at least one is required", inst.location)
        return False
    ctx.diags.warning(f"({inst.name}) No VIP specified; at least one is sensible", inst.location)
    return True


def priority_state(inst: VrrpInstanceBlock, strict: bool, ctx: Context) -> tuple[int, str]:
    """`state MASTER` without a priority is an address owner (255); without a state, an
    owner starts MASTER; strict mode makes them agree."""
    priority = inst.priority
    if priority is None:
        priority = PRIO_OWNER if inst.state == "MASTER" else PRIO_DEFAULT
    state = inst.state
    if state is None:
        return priority, "MASTER" if priority == PRIO_OWNER else "BACKUP"
    if strict and (state == "MASTER") != (priority == PRIO_OWNER):
        state = "MASTER" if priority == PRIO_OWNER else "BACKUP"
        _reset(
            inst,
            ctx,
            f"state MASTER must match being address owner (priority {PRIO_OWNER}) in strict mode; using state {state}",
            "state",
        )
    return priority, state


def auth(
    inst: VrrpInstanceBlock, strict: bool, version: int, *, priority: int, state: str, ctx: Context
) -> tuple[Authentication | None, str]:
    """The authentication in use (VRRPv2 only, RFC 3768 section 5.3.6) and the state,
    which AH makes BACKUP for a non-owner."""
    a = inst.authentication
    if a is None:
        return None, state
    why = ""
    if a.auth_type is None:
        why = "authentication without auth_type; authentication ignored"
    elif strict:
        why = "strict mode does not support authentication; authentication ignored"
    elif version == 3:
        why = "VRRP version 3 does not support authentication; authentication ignored"
    elif not a.auth_pass:
        why = "authentication specified but no password given; authentication ignored"
    elif inst.family == 6 and a.auth_type == "AH":
        why = "cannot use AH authentication with IPv6; authentication ignored"
    if why:
        _reset(inst, ctx, why, "authentication")
        return None, state
    if a.auth_type == "AH" and state == "MASTER" and priority != PRIO_OWNER:
        _reset(inst, ctx, "initial state MASTER is incompatible with AH authentication; using state BACKUP", "state")
        return a, "BACKUP"
    return a, state


def unicast_usable(inst: VrrpInstanceBlock, strict: bool, ctx: Context) -> bool:
    """Unicast needs a source; strict mode has no unicast; IPv6 wants a link-local VIP first."""
    name = inst.name
    if strict and inst.unicast_peer and inst.interface is not None:
        ctx.diags.error(f"({name}) Unicast peers are not supported in strict mode", inst.where("unicast_peer"))
        return False
    src = inst.src_ip
    if inst.interface is None:
        if src is None:
            ctx.diags.error(f"({name}) unicast instances must have unicast_src_ip or interface", inst.location)
            return False
        if inst.family == 6 and src.is_link_local:
            ctx.diags.error(f"({name}) non link-local unicast_src_ip required if interface omitted", inst.location)
            return False
    if inst.family == 6 and not inst.unicast_peer and inst.virtual_ipaddress:
        first = inst.virtual_ipaddress[0]
        if not first.ip.is_link_local:
            word = "must" if strict else "should"
            ctx.diags.warning(
                f"({name}) the first IPv6 VIP address {word} be link local",
                first.location or inst.where("virtual_ipaddress"),
            )
    return True


def preempt(inst: VrrpInstanceBlock, priority: int, state: str, strict: bool, ctx: Context) -> tuple[bool, float]:
    """(nopreempt, preempt_delay): an owner and a MASTER start preempt at once."""
    nopreempt = inst.nopreempt
    delay = inst.preempt_delay
    if priority == PRIO_OWNER and nopreempt:
        _reset(inst, ctx, f"nopreempt is incompatible with priority {PRIO_OWNER}; nopreempt cleared", "nopreempt")
        nopreempt = False
    if state == "MASTER":
        if nopreempt:
            _reset(inst, ctx, "nopreempt will not work with initial state MASTER; nopreempt cleared", "nopreempt")
            nopreempt = False
        if delay:
            _reset(inst, ctx, "preempt_delay will not work with initial state MASTER; using 0", "preempt_delay")
            delay = 0.0
    if delay and strict:
        _reset(inst, ctx, "preempt_delay is incompatible with strict mode; using 0", "preempt_delay")
        delay = 0.0
    elif delay and nopreempt:
        _reset(inst, ctx, "preempt_delay is incompatible with nopreempt; using 0", "preempt_delay")
        delay = 0.0
    return nopreempt, delay


def accept(inst: VrrpInstanceBlock, priority: int, strict: bool, version: int, ctx: Context) -> bool:
    """Accept mode (RFC 5798 section 6.1): on for an owner, else off under strict mode;
    RFC 3768 has none, so strict VRRPv2 clears it."""
    if inst.accept is None:
        return True if priority == PRIO_OWNER else not strict
    if inst.accept and priority != PRIO_OWNER and strict and version == 2:
        _reset(inst, ctx, "accept mode for VRRP version 2 does not comply with RFC3768; accept cleared", "accept")
        return False
    return inst.accept


class Vmac(NamedTuple):
    use_vmac: UseVmac | None
    vmac_xmit_base: bool
    promote_secondaries: bool


def vmac(inst: VrrpInstanceBlock, strict: bool, ctx: Context) -> Vmac:
    """vmac_xmit_base needs a VMAC and no strict mode, which also takes the default MAC."""
    xmit_base = inst.vmac_xmit_base
    if xmit_base and inst.use_vmac is None:
        _reset(inst, ctx, "vmac_xmit_base is only valid with a vmac; ignored", "vmac_xmit_base")
        xmit_base = False
    elif xmit_base and strict:
        _reset(inst, ctx, "vmac_xmit_base is incompatible with strict mode; ignored", "vmac_xmit_base")
        xmit_base = False
    use_vmac = inst.use_vmac
    if use_vmac is not None and use_vmac.mac is not None and strict:
        _reset(inst, ctx, "strict mode does not allow a configured VMAC MAC address; using the default", "use_vmac")
        use_vmac = UseVmac(use_vmac.ifname, None)
    promote = inst.promote_secondaries
    if promote and (inst.use_vmac is not None or inst.use_ipvlan is not None):
        _reset(inst, ctx, "promote_secondaries is automatically set for vmacs; ignored", "promote_secondaries")
        promote = False
    return Vmac(use_vmac, xmit_base, promote)


def mcast_dst_ip(inst: VrrpInstanceBlock, g: GlobalDefs, ctx: Context) -> IPAddress:
    """mcast_dst_ip must be a multicast address of the instance's family."""
    given = inst.mcast_dst_ip
    if given is not None and (given.version != inst.family or not given.is_multicast):
        _reset(
            inst,
            ctx,
            f"mcast_dst_ip {given} is not an IPv{inst.family} multicast address; using the default",
            "mcast_dst_ip",
        )
        given = None
    return inherit(INHERIT.mcast_dst_ip, given, inst, g, strict=False, ctx=ctx)


def notify_priority_changes(inst: VrrpInstanceBlock, group: VrrpSyncGroup | None, g: GlobalDefs) -> bool:
    """Given, else the sync group's, else vrrp_notify_priority_changes."""
    if inst.notify_priority_changes is not None:
        return inst.notify_priority_changes
    if group is not None and group.notify_priority_changes is not None:
        return group.notify_priority_changes
    return g.vrrp_notify_priority_changes


def round_advert(inst: VrrpInstanceBlock, version: int, ctx: Context) -> float:
    """advert_int in whole seconds for VRRPv2 (RFC 3768 section 5.3.7), in centiseconds
    below 40.96 s for VRRPv3 (RFC 5798 section 5.2.7)."""
    adv = inst.advert_int
    loc = inst.where("advert_int")
    micros = round(adv * 1_000_000)
    if version == 2:
        if micros % 1_000_000:
            new = max(1, (micros + 500_000) // 1_000_000)
            ctx.diags.reset(
                f"({inst.name}) VRRPv2 advertisement interval {adv:g}s must be an integer; using {new}", loc
            )
            return float(new)
        return adv
    if micros >= 4096 * 10_000:
        ctx.diags.reset(
            f"({inst.name}) VRRPv3 advertisement interval {adv:g}s is out of range, must be less "
            "than 40.96s; using 40.95",
            loc,
        )
        return 40.95
    if micros % 10_000:
        centis = max(1, (micros + 5_000) // 10_000)
        ctx.diags.reset(
            f"({inst.name}) VRRPv3 advertisement interval {adv:g}s must be in units of 10ms; using {centis / 100:g}",
            loc,
        )
        return centis / 100
    return adv


# ---------------------------------------------------------------- the whole instance


def complete_instance(
    inst: VrrpInstanceBlock, group: VrrpSyncGroup | None, g: GlobalDefs, ctx: Context
) -> VrrpInstance | None:
    """keepalived's completion of one instance, in its order of messages; None when
    keepalived cannot run it."""
    basics = _basics(inst, g, ctx)
    if basics is None:
        return None
    vrid, strict, ver = basics
    priority, state = priority_state(inst, strict, ctx)
    authentication, state = auth(inst, strict, ver, priority=priority, state=state, ctx=ctx)
    if not unicast_usable(inst, strict, ctx):
        return None
    nopreempt, preempt_delay = preempt(inst, priority, state, strict, ctx)
    accepts = accept(inst, priority, strict, ver, ctx)

    inherited = functools.partial(inherit, inst=inst, g=g, strict=strict, ctx=ctx)
    lp_repeat = inherited(INHERIT.garp_lower_prio_repeat, inst.garp_lower_prio_repeat)
    lp_delay = inherited(INHERIT.garp_lower_prio_delay, inst.garp_lower_prio_delay)
    lp_no_advert = inherited(INHERIT.lower_prio_no_advert, inst.lower_prio_no_advert)
    hp_send_advert = inherited(INHERIT.higher_prio_send_advert, inst.higher_prio_send_advert)
    down_timer_adverts = inherited(INHERIT.down_timer_adverts, inst.down_timer_adverts)
    vmac_conf = vmac(inst, strict, ctx)
    resolved = VrrpInstance(
        **_as_written(inst),
        virtual_router_id=vrid,
        state=state,
        priority=priority,
        version=ver,
        strict_mode=strict,
        accept=accepts,
        no_accept=not accepts,
        authentication=authentication,
        nopreempt=nopreempt,
        preempt=not nopreempt,
        preempt_delay=preempt_delay,
        garp_lower_prio_repeat=lp_repeat,
        garp_lower_prio_delay=lp_delay,
        lower_prio_no_advert=lp_no_advert,
        higher_prio_send_advert=hp_send_advert,
        down_timer_adverts=down_timer_adverts,
        use_vmac=vmac_conf.use_vmac,
        vmac_xmit_base=vmac_conf.vmac_xmit_base,
        promote_secondaries=vmac_conf.promote_secondaries,
        garp_master_delay=inherited(INHERIT.garp_master_delay, inst.garp_master_delay),
        garp_master_repeat=inherited(INHERIT.garp_master_repeat, inst.garp_master_repeat),
        garp_master_refresh=inherited(INHERIT.garp_master_refresh, inst.garp_master_refresh),
        garp_master_refresh_repeat=inherited(INHERIT.garp_master_refresh_repeat, inst.garp_master_refresh_repeat),
        garp_extra_if=inherited(INHERIT.garp_extra_if, inst.garp_extra_if),
        skip_check_adv_addr=inherited(INHERIT.skip_check_adv_addr, inst.skip_check_adv_addr),
        check_unicast_src=inherited(INHERIT.check_unicast_src, inst.check_unicast_src),
        mcast_dst_ip=mcast_dst_ip(inst, g, ctx),
        smtp_alert=inherited(INHERIT.smtp_alert, inst.smtp_alert),
        notify_priority_changes=notify_priority_changes(inst, group, g),
        # keepalived clears track_src_ip silently when there is no source to track
        track_src_ip=inst.track_src_ip and inst.src_ip is not None,
        native_ipv6=inst.native_ipv6 or inst.family == 6,
        advert_int=round_advert(inst, ver, ctx),
    )
    return unweight(resolved, group, ctx)


def _basics(inst: VrrpInstanceBlock, g: GlobalDefs, ctx: Context) -> tuple[int, bool, int] | None:
    """(VRID, strict mode, version), or None when keepalived cannot run the instance."""
    vrid = runnable_vrid(inst, g, ctx)
    if vrid is None:
        return None
    strict = inherit(INHERIT.strict_mode, inst.strict_mode, inst, g, strict=False, ctx=ctx)
    ver = version(inst, g, strict, ctx)
    if not has_vips(inst, ver, strict, ctx):
        return None
    return vrid, strict, ver


# What complete_instance passes itself: the fields VrrpInstance narrows, and these.
_RESOLVED = frozenset(VrrpInstance.__annotations__) | {
    "no_accept",
    "authentication",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "use_vmac",
    "vmac_xmit_base",
    "promote_secondaries",
    "garp_extra_if",
    "track_src_ip",
    "native_ipv6",
    "advert_int",
}


_AS_WRITTEN = frozenset(f.name for f in dataclasses.fields(VrrpInstanceBlock) if f.name not in _RESOLVED)


def _as_written(inst: VrrpInstanceBlock) -> dict[str, Any]:
    """The block's values (and locations) of the keywords that resolving leaves as they
    are: those it stores (the others are the class's defaults, read as such)."""
    return {name: value for name, value in vars(inst).items() if name in _AS_WRITTEN}
