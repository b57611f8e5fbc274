"""VRRP blocks: vrrp_script, track_file, vrrp_track_process, vrrp_sync_group,
garp_group and vrrp_instance (keepalived.conf(5), "VRRPD CONFIGURATION").

Each block checks what it can on its own in `finish`; `VrrpTop.finish_vrrp` then does
what keepalived does when it completes the VRRP configuration (vrrp_complete_instance):
resolve the defaults that come from global_defs, apply vrrp_strict/strict_mode, check
the cross references (tracked objects, sync group members, duplicate VRIDs).

What keepalived cannot run with is an error: the VRRP process of keepalived 2.2.7 exits
with a configuration error ("(VI_1) the virtual router id must be set", "Unknown
interface!", ...), and the instance is dropped from the model. What keepalived resets
with a message is a reset, and the model holds the value keepalived uses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from conf.addresses import ADDRESS_LINE, IpAddressEntry
from conf.diagnostics import Location
from conf.global_defs import GarpExtraIf, GarpExtraIfConv, GlobalDefs
from conf.routes import ROUTE_LINE, RouteEntry
from conf.rules import RULE_LINE, RuleEntry
from conf.schema import EMPTY, Block, ConfigValueError, Context, FrozenMap, kw, replace
from conf.syntax import Stmt
from conf.trackers import (
    BFD_UNSUPPORTED,
    TRACK_BFD,
    TRACK_FILE,
    TRACK_INTERFACE,
    TRACK_PROCESS,
    TRACK_SCRIPT,
    TrackFile,
    TrackProcess,
    TrackRef,
    VrrpScript,
    resolve_refs,
)
from conf.values import (
    Flag,
    Float,
    Int,
    IpAddr,
    IPAddress,
    LineOf,
    Lines,
    Named,
    Names,
    Opt,
    Script,
    ScriptCmd,
    Str,
    Sub,
    with_location,
)

PRIO_OWNER = 255
# The advert's "Count IP Addrs" is 8 bits (RFC 3768 section 5.3.5, RFC 5798 section 5.2.5):
# keepalived moves the addresses beyond it to the excluded ones (vrrp_complete_instance).
# It also lowers the count to what the interface's MTU leaves room for, which a
# configuration alone cannot know.
VRRP_MAX_ADDR = 255
PRIO_DEFAULT = 100
_BUFS = "socket buffer tuning is not implemented"
_LINKBEAT = "linkbeat polling is not implemented"
_IPVLAN = "VRRP over ipvlan is not implemented"


# ---------------------------------------------------------------- small converters


class StateConv:
    """`state MASTER|BACKUP` (case sensitive in keepalived); anything else is BACKUP."""

    takes_block = False
    syntax = "MASTER|BACKUP"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        if len(stmt.args) != 1:
            raise ConfigValueError("expected MASTER or BACKUP")
        word = stmt.args[0]
        if word in ("MASTER", "BACKUP"):
            return word
        ctx.diags.reset(f"unknown state '{word}'; using BACKUP", stmt.location)
        return "BACKUP"


class PriorityConv:
    """`priority 1..255`; keepalived uses 100 for a bad value."""

    takes_block = False
    syntax = "<1..255>"

    def __call__(self, stmt: Stmt, ctx: Context) -> int:
        try:
            return Int(1, 255).parse(" ".join(stmt.args))
        except ConfigValueError:
            ctx.diags.reset(
                f"priority '{' '.join(stmt.args)}' not valid, must be between 1 & 255; using {PRIO_DEFAULT}",
                stmt.location,
            )
            return PRIO_DEFAULT


class OptionalScript:
    """`notify_deleted [SCRIPT [username [groupname]]]`."""

    takes_block = False
    syntax = "[<STRING>|<QUOTED-STRING> [username [groupname]]]"

    def __call__(self, stmt: Stmt, ctx: Context) -> NotifyDeleted:
        if not stmt.args:
            return NotifyDeleted(None)
        return NotifyDeleted(ScriptCmd(with_user=True)(stmt, ctx))


@dataclass(frozen=True)
class NotifyDeleted:
    """notify_deleted: send DELETED rather than FAULT to notifies when the instance is
    removed by a reload, and run `script` if given."""

    script: Script | None = None


class OldChecksum:
    """`old_unicast_checksum [never]`: "config" (use the old algorithm) or "never"."""

    takes_block = False
    syntax = "[never]"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        if not stmt.args:
            return "config"
        if stmt.args == ("never",):
            return "never"
        raise ConfigValueError(f"unknown mode '{' '.join(stmt.args)}'")


@dataclass(frozen=True)
class UseVmac:
    """`use_vmac [IFNAME] [MAC]`: None parts are chosen by keepalived (vrrp.VRID, and
    00:00:5e:00:01|02:VRID). A 5-octet MAC gets the VRID as its last octet."""

    ifname: str | None = None
    mac: str | None = None


def _is_mac(text: str) -> bool:
    parts = text.split(":")
    return len(parts) in (5, 6) and all(
        len(p) in (1, 2) and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )


class UseVmacConv:
    takes_block = False
    syntax = "[<VMAC_INTERFACE_NAME>] [MAC_ADDRESS]"

    def __call__(self, stmt: Stmt, ctx: Context) -> UseVmac:
        ifname: str | None = None
        mac: str | None = None
        for word in stmt.args:
            if _is_mac(word) and mac is None:
                mac = word.lower()
            elif ifname is None and mac is None:
                if len(word) >= 16:
                    raise ConfigValueError(f"interface name '{word}' is longer than 15 characters")
                ifname = word
            else:
                raise ConfigValueError(f"unexpected '{word}'")
        return UseVmac(ifname, mac)


@dataclass(frozen=True)
class UseIpvlan:
    ifname: str | None = None
    address: str | None = None
    mode: str = "bridge"


class UseIpvlanConv:
    takes_block = False
    syntax = "[<INTERFACE_NAME>] [IP_ADDRESS] [bridge|private|vepa]"

    def __call__(self, stmt: Stmt, ctx: Context) -> UseIpvlan:
        ifname: str | None = None
        address: str | None = None
        mode = "bridge"
        for word in stmt.args:
            if word in ("bridge", "private", "vepa"):
                mode = word
                continue
            try:
                ipaddress.ip_interface(word)
                address = word
            except ValueError:
                ifname = word
        return UseIpvlan(ifname, address, mode)


@dataclass(frozen=True)
class UnicastPeer:
    """`unicast_peer` line: `ADDR [min_ttl 0..255] [max_ttl 0..255]`."""

    address: IPAddress
    min_ttl: int | None = None
    max_ttl: int | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    @property
    def checks_ttl(self) -> bool:
        return self.min_ttl is not None or self.max_ttl is not None


UNICAST_PEER_LINE = LineOf(
    UnicastPeer,
    [("address", IpAddr())],
    {"min_ttl": Opt("min_ttl", Int(0, 255)), "max_ttl": Opt("max_ttl", Int(0, 255))},
    syntax="<IPADDR> [min_ttl {0..255}] [max_ttl {0..255}]",
    finish=lambda obj, stmt, ctx: with_location(obj, stmt),
)


def _peer_item(stmt: Stmt, ctx: Context) -> UnicastPeer:
    peer: UnicastPeer = UNICAST_PEER_LINE.parse_words(list(stmt.words), stmt, ctx)
    return peer


class AuthPass:
    """auth_pass: keepalived uses only the first 8 characters."""

    takes_block = False
    syntax = "STRING"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        if len(stmt.args) != 1:
            raise ConfigValueError("expected one password")
        password = stmt.args[0]
        if len(password) > 8:
            ctx.diags.reset(f"auth_pass is longer than 8 characters; using '{password[:8]}'", stmt.location)
            return password[:8]
        return password


class AuthType:
    takes_block = False
    syntax = "PASS|AH"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        if stmt.args not in (("PASS",), ("AH",)):
            raise ConfigValueError(f"unknown authentication type '{' '.join(stmt.args)}' (PASS|AH)")
        kind: str = stmt.args[0]
        return kind


@dataclass(frozen=True)
class Authentication(Block):
    label: ClassVar[str] = "authentication"

    auth_type: str | None = kw(AuthType())
    auth_pass: str | None = kw(AuthPass())


# ---------------------------------------------------------------- sync group, garp group


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class VrrpInstance(Block):
    """`vrrp_instance NAME { ... }`, with keepalived's defaults.

    After `finish_vrrp` these hold the values keepalived runs with (None only where it
    means "not set" for the VRRP child):
    - from the instance alone: priority (255 if `state MASTER` has no priority, else
      100), state (MASTER for an owner, else BACKUP), advert_int (1, rounded to whole
      seconds for v2 and to centiseconds for v3), family (`family` property).
    - from global_defs: version (vrrp_version; IPv6 forces 3 unless given),
      strict_mode (vrrp_strict), garp_master_delay/_repeat/_refresh/_refresh_repeat,
      garp_lower_prio_delay/_repeat, garp_extra_if (vrrp_garp_*), down_timer_adverts,
      lower_prio_no_advert, higher_prio_send_advert, skip_check_adv_addr,
      check_unicast_src, mcast_dst_ip (vrrp_mcast_group4/6), smtp_alert
      (smtp_alert_vrrp, smtp_alert), notify_priority_changes (sync group, then
      vrrp_notify_priority_changes); accept (on for an owner, else off under strict).
    - track_* references carry their resolved weight and reverse.
    """

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
    unicast_peer: tuple[UnicastPeer, ...] = kw(Lines(_peer_item, "{ <IPADDR> [min_ttl N] [max_ttl N] ... }"), ())
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
    def effective_priority(self) -> int:
        return self.priority if self.priority is not None else PRIO_DEFAULT

    @property
    def effective_version(self) -> int:
        return self.version if self.version is not None else (3 if self.family == 6 else 2)

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
        """What keepalived checks while it reads the block: the address family is set
        by the first address given (unicast_src_ip/mcast_src_ip, VIP, peer) and the
        other addresses of another family are ignored."""
        inst = self
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
        if self.preempt and self.nopreempt:
            # the later keyword wins, as keepalived sets/clears one flag
            later_preempt = _line(self.where("preempt")) > _line(self.where("nopreempt"))
            inst = replace(inst, nopreempt=not later_preempt)
        if self.no_accept and self.accept is not None:
            inst = replace(inst, accept=_line(self.where("accept")) > _line(self.where("no_accept")))
        elif self.no_accept:
            inst = replace(inst, accept=False)
        firsts: list[tuple[int, int]] = []
        for fname in ("unicast_src_ip", "mcast_src_ip"):
            addr = getattr(self, fname)
            if addr is not None:
                firsts.append((_line(self.where(fname)), addr.version))
        if self.virtual_ipaddress:
            firsts.append(
                (
                    _line(self.virtual_ipaddress[0].location or self.where("virtual_ipaddress")),
                    self.virtual_ipaddress[0].family,
                )
            )
        if self.unicast_peer:
            firsts.append((_line(self.unicast_peer[0].location), self.unicast_peer[0].address.version))
        if not firsts:
            return inst
        family = min(firsts)[1]
        if self.native_ipv6 and family == 4:
            ctx.diags.reset(
                f"({self.name}) cannot specify native_ipv6 with IPv4 addresses; ignored", self.where("native_ipv6")
            )
            inst = replace(inst, native_ipv6=False)
        for fname in ("unicast_src_ip", "mcast_src_ip"):
            addr = getattr(self, fname)
            if addr is not None and addr.version != family:
                ctx.diags.reset(
                    f"({self.name}) {fname} {addr} must be of the same family as the instance; ignored",
                    self.where(fname),
                )
                inst = replace(inst, **{fname: None})
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
            excess = vips[VRRP_MAX_ADDR:]
            inst = replace(
                inst,
                virtual_ipaddress=vips[:VRRP_MAX_ADDR],
                virtual_ipaddress_excluded=(*inst.virtual_ipaddress_excluded, *excess),
            )
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


def _line(loc: Location | None) -> int:
    return loc.line if loc is not None else 0


# ---------------------------------------------------------------- the top level


@dataclass(frozen=True)
class VrrpTop(Block):
    """Top-level VRRP keywords."""

    vrrp_script: FrozenMap[str, VrrpScript] = kw(Named(VrrpScript), EMPTY, many="map")
    track_file: FrozenMap[str, TrackFile] = kw(
        Named(TrackFile), EMPTY, many="map", aliases=("vrrp_track_file",), deprecated=("vrrp_track_file",)
    )
    vrrp_track_process: FrozenMap[str, TrackProcess] = kw(Named(TrackProcess), EMPTY, many="map")
    vrrp_sync_group: FrozenMap[str, VrrpSyncGroup] = kw(Named(VrrpSyncGroup), EMPTY, many="map")
    garp_group: tuple[GarpGroup, ...] = kw(Sub(GarpGroup), (), many="list")
    vrrp_instance: FrozenMap[str, VrrpInstance] = kw(Named(VrrpInstance), EMPTY, many="map")

    def sync_group_of(self, instance: str) -> VrrpSyncGroup | None:
        for group in self.vrrp_sync_group.values():
            if instance in group.group:
                return group
        return None

    def finish_vrrp(self, ctx: Context) -> Self:
        g: GlobalDefs = getattr(self, "global_defs", GlobalDefs())  # GlobalTop's, in Config
        scripts = self._checked_scripts(ctx)
        files = self._checked_files(ctx)
        processes = self._checked_processes(ctx)
        garp_groups = self._checked_garp_groups(ctx)
        disabled = frozenset(n for n, s in self.vrrp_script.items() if s.script is None and "script" in s.locations)
        known: dict[str, Any] = {
            "disabled scripts": disabled,
            "track script": dict(scripts),
            "track file": dict(files),
            "track process": dict(processes),
        }
        instances: dict[str, VrrpInstance] = {}
        for name, inst in self.vrrp_instance.items():
            instances[name] = _resolve_tracking(inst, known, ctx)
        groups = self._checked_sync_groups(instances, known, g, ctx)
        member_of = {m: grp for grp in groups.values() for m in grp.group}
        done: dict[str, VrrpInstance] = {}
        for name, inst in instances.items():
            completed = _complete_instance(inst, member_of.get(name), g, ctx)
            if completed is not None:
                done[name] = completed
        done = _check_vrid_conflicts(done, ctx)
        # keepalived's VRRP process cannot start when an instance failed to complete; the
        # error is reported; the sync groups keep only members that are still there.
        groups = {n: replace(grp, group=tuple(m for m in grp.group if m in done)) for n, grp in groups.items()}
        return replace(
            self,
            vrrp_script=FrozenMap(scripts),
            track_file=FrozenMap(files),
            vrrp_track_process=FrozenMap(processes),
            garp_group=garp_groups,
            vrrp_sync_group=FrozenMap(groups),
            vrrp_instance=FrozenMap(done),
        )

    # ------------------------------------------------------------ tracked objects

    def _checked_scripts(self, ctx: Context) -> dict[str, VrrpScript]:
        out: dict[str, VrrpScript] = {}
        for name, script in self.vrrp_script.items():
            if script.script is None and "script" in script.locations:
                continue  # disabled by the script security check, which said why
            if script.script is None:
                ctx.diags.reset(f"no script set for vrrp_script {name}; vrrp_script removed", script.location)
                continue
            out[name] = script
        return out

    def _checked_files(self, ctx: Context) -> dict[str, TrackFile]:
        out: dict[str, TrackFile] = {}
        for name, tf in self.track_file.items():
            if tf.file is None:
                ctx.diags.reset(f"no file set for track_file {name}; track_file ignored", tf.location)
                continue
            out[name] = tf
        return out

    def _checked_processes(self, ctx: Context) -> dict[str, TrackProcess]:
        out: dict[str, TrackProcess] = {}
        for name, tp in self.vrrp_track_process.items():
            if not tp.process:
                ctx.diags.reset(
                    f"track process '{name}' process name not specified; vrrp_track_process ignored", tp.location
                )
                continue
            out[name] = tp
        return out

    def _checked_garp_groups(self, ctx: Context) -> tuple[GarpGroup, ...]:
        out: list[GarpGroup] = []
        claimed: set[str] = set()
        for gg in self.garp_group:
            names = []
            for ifname in gg.all_interfaces:
                if ifname in claimed:
                    ctx.diags.reset(
                        f"garp_group already specified for {ifname}; ignored in this garp_group", gg.location
                    )
                    continue
                if ctx.interfaces is not None and ifname not in ctx.interfaces:
                    ctx.diags.warning(f"interface {ifname} specified for garp_group doesn't exist", gg.location)
                claimed.add(ifname)
                names.append(ifname)
            if gg.interface and gg.interfaces:
                ctx.diags.warning("garp_group: only one of interface and interfaces should be used", gg.location)
            if gg.garp_interval is None and gg.gna_interval is None:
                ctx.diags.reset("garp_group does not have any delay set; garp_group removed", gg.location)
                continue
            if not names:
                ctx.diags.reset("garp_group has no interface; garp_group removed", gg.location)
                continue
            interface = gg.interface if gg.interface in names else None
            out.append(replace(gg, interface=interface, interfaces=tuple(n for n in names if n != interface)))
        return tuple(out)

    def _checked_sync_groups(
        self, instances: dict[str, VrrpInstance], known: dict[str, Any], g: GlobalDefs, ctx: Context
    ) -> dict[str, VrrpSyncGroup]:
        out: dict[str, VrrpSyncGroup] = {}
        taken: dict[str, str] = {}
        for name, declared in self.vrrp_sync_group.items():
            grp = declared
            loc = grp.where("group")
            members: list[str] = []
            for member in grp.group:
                if member not in instances:
                    ctx.diags.reset(
                        f"virtual router {member} specified in sync group {name} doesn't exist; ignored", loc
                    )
                elif member in taken:
                    ctx.diags.reset(
                        f"virtual router {member} cannot exist in more than one sync group "
                        f"(already in {taken[member]}); ignored in {name}",
                        loc,
                    )
                elif member not in members:
                    members.append(member)
            if not members:
                ctx.diags.reset(f"sync group {name} has no virtual router; sync group removed", grp.location)
                continue
            if len(members) == 1:
                ctx.diags.reset(
                    f"sync group {name} has only 1 virtual router(s) - this probably isn't what you want; kept as is",
                    grp.location,
                )
            for m in members:
                taken[m] = name
            grp = replace(
                grp,
                group=tuple(members),
                track_interface=resolve_refs(grp.track_interface, None, "track interface", name, ctx),
                track_script=resolve_refs(
                    grp.track_script, known["track script"], "track script", name, ctx, silent=known["disabled scripts"]
                ),
                track_file=resolve_refs(grp.track_file, known["track file"], "track file", name, ctx),
                track_process=resolve_refs(grp.track_process, known["track process"], "track process", name, ctx),
                smtp_alert=grp.smtp_alert if grp.smtp_alert is not None else _smtp_default(g),
            )
            grp = _check_group_owner_weights(grp, [instances[m] for m in members], ctx)
            out[name] = grp
        return out


# ---------------------------------------------------------------- completion helpers


def _smtp_default(g: GlobalDefs) -> bool:
    return bool(g.smtp_alert_for("vrrp"))


def _resolve_tracking(inst: VrrpInstance, known: dict[str, Any], ctx: Context) -> VrrpInstance:
    name = inst.name
    track_if = resolve_refs(inst.track_interface, None, "track interface", name, ctx)
    if inst.interface is not None and any(r.name == inst.interface for r in track_if):
        for r in track_if:
            if r.name == inst.interface:
                ctx.diags.reset(
                    f"({name}) track_interface {r.name} is the instance's own interface; ignored", r.location
                )
        track_if = tuple(r for r in track_if if r.name != inst.interface)
    if ctx.interfaces is not None:
        for r in track_if:
            if r.name not in ctx.interfaces:
                ctx.diags.warning(f"track_interface {r.name} for vrrp_instance {name} doesn't exist", r.location)
    return replace(
        inst,
        track_interface=track_if,
        track_script=resolve_refs(
            inst.track_script, known["track script"], "track script", name, ctx, silent=known["disabled scripts"]
        ),
        track_file=resolve_refs(inst.track_file, known["track file"], "track file", name, ctx),
        track_process=resolve_refs(inst.track_process, known["track process"], "track process", name, ctx),
    )


def _check_group_owner_weights(grp: VrrpSyncGroup, members: list[VrrpInstance], ctx: Context) -> VrrpSyncGroup:
    """A sync group with an address owner member cannot have weighted trackers."""
    if not any(m.effective_priority == PRIO_OWNER for m in members):
        return grp
    changes: dict[str, tuple[TrackRef, ...]] = {}
    for fname in ("track_interface", "track_script", "track_file", "track_process"):
        refs: tuple[TrackRef, ...] = getattr(grp, fname)
        new = []
        for r in refs:
            if r.weight:
                ctx.diags.reset(
                    f"({grp.name}) cannot have weighted {fname} '{r.name}' with a member having "
                    f"priority {PRIO_OWNER}; using weight 0",
                    r.location,
                )
                new.append(TrackRef(r.name, 0, r.reverse, r.location))
            else:
                new.append(r)
        changes[fname] = tuple(new)
    return replace(grp, **changes)


def _unweight(inst: VrrpInstance, group: VrrpSyncGroup | None, ctx: Context) -> VrrpInstance:
    """Members of a sync group without sync_group_tracking_weight, and address owners,
    do not use weighted trackers (man page, VRRP synchronization group(s))."""
    sync = group is not None and not group.tracking_weight
    if not sync and inst.priority != PRIO_OWNER:
        return inst
    why = "SYNC group" if sync else "address owner"
    name = inst.name
    track_if = []
    for r in inst.track_interface:
        if r.weight:
            if sync:
                ctx.diags.reset(
                    f"({name}) ignoring weight of tracked interface {r.name} due to {why}; using 0", r.location
                )
                track_if.append(TrackRef(r.name, 0, r.reverse, r.location))
            else:
                ctx.diags.reset(f"({name}) ignoring tracked interface {r.name} due to {why}", r.location)
            continue
        track_if.append(r)
    scripts = []
    for r in inst.track_script:
        if r.weight:
            ctx.diags.reset(f"({name}) ignoring tracked script {r.name} with weights due to {why}", r.location)
            continue
        scripts.append(r)
    files = []
    for r in inst.track_file:
        if r.weight == 1:  # the default: keepalived makes it unweighted
            ctx.diags.reset(
                f"({name}) ignoring weight from tracked file {r.name} due to {why}; using 0 (specify weight 0)",
                r.location,
            )
            files.append(TrackRef(r.name, 0, r.reverse, r.location))
        elif r.weight:
            ctx.diags.reset(f"({name}) ignoring tracked file {r.name} with weight {r.weight} due to {why}", r.location)
        else:
            files.append(r)
    return replace(inst, track_interface=tuple(track_if), track_script=tuple(scripts), track_file=tuple(files))


def _round_advert(inst: VrrpInstance, version: int, ctx: Context) -> float:
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


def _complete_instance(
    inst: VrrpInstance, group: VrrpSyncGroup | None, g: GlobalDefs, ctx: Context
) -> VrrpInstance | None:
    """keepalived's completion of one instance; None when keepalived cannot run it."""
    name = inst.name
    loc = inst.location
    c: dict[str, Any] = {}

    def reset(msg: str, where: str | None = None) -> None:
        ctx.diags.reset(f"({name}) {msg}", inst.where(where) if where else loc)

    if inst.virtual_router_id is None:
        ctx.diags.error(f"({name}) the virtual router id must be set", loc)
        return None
    if inst.interface is None and not inst.unicast_peer:
        ctx.diags.error(f"({name}) Unknown interface! (an interface or unicast peers are needed)", loc)
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

    strict = inst.strict_mode if inst.strict_mode is not None else bool(g.vrrp_strict)
    c["strict_mode"] = strict
    family = inst.family
    version = inst.version
    if family == 6:
        if version == 2 and strict:
            reset("cannot use IPv6 with VRRP version 2; using version 3", "version")
            version = 3
        elif version is None:
            version = 3
    if version is None:
        version = int(g.vrrp_version)
    c["version"] = version

    if not inst.virtual_ipaddress:
        if version == 3 or strict or family == 6:
            ctx.diags.error(f"({name}) No VIP specified; at least one is required", loc)
            return None
        ctx.diags.warning(f"({name}) No VIP specified; at least one is sensible", loc)

    priority = inst.priority
    state = inst.state
    if priority is None:
        priority = PRIO_OWNER if state == "MASTER" else PRIO_DEFAULT
    if state is None:
        state = "MASTER" if priority == PRIO_OWNER else "BACKUP"
    elif strict and (state == "MASTER") != (priority == PRIO_OWNER):
        new_state = "MASTER" if priority == PRIO_OWNER else "BACKUP"
        reset(
            f"state MASTER must match being address owner (priority {PRIO_OWNER}) in strict mode; "
            f"using state {new_state}",
            "state",
        )
        state = new_state

    auth = inst.authentication
    if auth is not None and auth.auth_type is not None:
        where = "authentication"
        if strict:
            reset("strict mode does not support authentication; authentication ignored", where)
            auth = None
        elif version == 3:
            reset("VRRP version 3 does not support authentication; authentication ignored", where)
            auth = None
        elif not auth.auth_pass:
            reset("authentication specified but no password given; authentication ignored", where)
            auth = None
        elif family == 6 and auth.auth_type == "AH":
            reset("cannot use AH authentication with IPv6; authentication ignored", where)
            auth = None
        elif auth.auth_type == "AH" and state == "MASTER" and priority != PRIO_OWNER:
            reset("initial state MASTER is incompatible with AH authentication; using state BACKUP", "state")
            state = "BACKUP"
    elif auth is not None:
        reset("authentication without auth_type; authentication ignored", "authentication")
        auth = None
    c["authentication"] = auth

    if strict and inst.unicast_peer and inst.interface is not None:
        ctx.diags.error(f"({name}) Unicast peers are not supported in strict mode", inst.where("unicast_peer"))
        return None
    src = inst.src_ip
    if inst.interface is None:
        if src is None:
            ctx.diags.error(f"({name}) unicast instances must have unicast_src_ip or interface", loc)
            return None
        if family == 6 and src.is_link_local:
            ctx.diags.error(f"({name}) non link-local unicast_src_ip required if interface omitted", loc)
            return None
    if family == 6 and not inst.unicast_peer and inst.virtual_ipaddress:
        first = inst.virtual_ipaddress[0]
        if not first.ip.is_link_local:
            word = "must" if strict else "should"
            ctx.diags.warning(
                f"({name}) the first IPv6 VIP address {word} be link local",
                first.location or inst.where("virtual_ipaddress"),
            )

    nopreempt = inst.nopreempt
    preempt_delay = inst.preempt_delay
    if priority == PRIO_OWNER and nopreempt:
        reset(f"nopreempt is incompatible with priority {PRIO_OWNER}; nopreempt cleared", "nopreempt")
        nopreempt = False
    if state == "MASTER":
        if nopreempt:
            reset("nopreempt will not work with initial state MASTER; nopreempt cleared", "nopreempt")
            nopreempt = False
        if preempt_delay:
            reset("preempt_delay will not work with initial state MASTER; using 0", "preempt_delay")
            preempt_delay = 0.0
    if preempt_delay:
        if strict:
            reset("preempt_delay is incompatible with strict mode; using 0", "preempt_delay")
            preempt_delay = 0.0
        elif nopreempt:
            reset("preempt_delay is incompatible with nopreempt; using 0", "preempt_delay")
            preempt_delay = 0.0
    c.update(priority=priority, state=state, nopreempt=nopreempt, preempt=not nopreempt, preempt_delay=preempt_delay)

    accept = inst.accept
    if accept is None:
        accept = True if priority == PRIO_OWNER else not strict
    elif accept and priority != PRIO_OWNER and strict and version == 2:
        reset("accept mode for VRRP version 2 does not comply with RFC3768; accept cleared", "accept")
        accept = False
    c.update(accept=accept, no_accept=not accept)

    lp_rep = inst.garp_lower_prio_repeat
    if lp_rep is None:
        lp_rep = 0 if strict else g.effective_garp_lower_prio_repeat
    elif strict and lp_rep:
        reset("strict mode requires no repeat garps; using 0", "garp_lower_prio_repeat")
        lp_rep = 0
    lp_delay = inst.garp_lower_prio_delay
    if lp_delay is None:
        lp_delay = 0 if strict else g.effective_garp_lower_prio_delay
    elif strict and lp_delay:
        reset("strict mode requires no repeat garp delay; using 0", "garp_lower_prio_delay")
        lp_delay = 0
    lpna = inst.lower_prio_no_advert
    if lpna is None:
        lpna = True if strict else bool(g.vrrp_lower_prio_no_advert)
    elif strict and not lpna:
        reset("strict mode requires lower_prio_no_advert; using on", "lower_prio_no_advert")
        lpna = True
    hpsa = inst.higher_prio_send_advert
    if hpsa is None:
        hpsa = False if strict else bool(g.vrrp_higher_prio_send_advert)
    elif strict and hpsa:
        reset("strict mode requires higher_prio_send_advert to be off; using off", "higher_prio_send_advert")
        hpsa = False
    c.update(
        garp_lower_prio_repeat=lp_rep,
        garp_lower_prio_delay=lp_delay,
        lower_prio_no_advert=lpna,
        higher_prio_send_advert=hpsa,
    )

    dta = inst.down_timer_adverts
    if dta is None:
        dta = int(g.vrrp_down_timer_adverts)
    if strict and dta != 3:
        reset("strict mode requires down_timer_adverts 3; using 3", "down_timer_adverts")
        dta = 3
    c["down_timer_adverts"] = dta

    vmac_xmit_base = inst.vmac_xmit_base
    if vmac_xmit_base and inst.use_vmac is None:
        reset("vmac_xmit_base is only valid with a vmac; ignored", "vmac_xmit_base")
        vmac_xmit_base = False
    elif vmac_xmit_base and strict:
        reset("vmac_xmit_base is incompatible with strict mode; ignored", "vmac_xmit_base")
        vmac_xmit_base = False
    c["vmac_xmit_base"] = vmac_xmit_base
    if inst.use_vmac is not None and inst.use_vmac.mac is not None and strict:
        reset("strict mode does not allow a configured VMAC MAC address; using the default", "use_vmac")
        c["use_vmac"] = UseVmac(inst.use_vmac.ifname, None)
    if inst.promote_secondaries and (inst.use_vmac is not None or inst.use_ipvlan is not None):
        reset("promote_secondaries is automatically set for vmacs; ignored", "promote_secondaries")
        c["promote_secondaries"] = False

    c["garp_master_delay"] = (
        inst.garp_master_delay if inst.garp_master_delay is not None else g.effective_garp_master_delay
    )
    c["garp_master_repeat"] = (
        inst.garp_master_repeat if inst.garp_master_repeat is not None else g.effective_garp_master_repeat
    )
    c["garp_master_refresh"] = (
        inst.garp_master_refresh if inst.garp_master_refresh is not None else int(g.vrrp_garp_master_refresh)
    )
    c["garp_master_refresh_repeat"] = (
        inst.garp_master_refresh_repeat
        if inst.garp_master_refresh_repeat is not None
        else int(g.vrrp_garp_master_refresh_repeat)
    )
    if inst.garp_extra_if is None:
        c["garp_extra_if"] = g.vrrp_garp_extra_if
    if inst.skip_check_adv_addr is None:
        c["skip_check_adv_addr"] = bool(g.vrrp_skip_check_adv_addr)
    if inst.check_unicast_src is None:
        c["check_unicast_src"] = bool(g.vrrp_check_unicast_src) or any(p.checks_ttl for p in inst.unicast_peer)
    if inst.mcast_dst_ip is None:
        c["mcast_dst_ip"] = g.vrrp_mcast_group4 if family == 4 else g.vrrp_mcast_group6
    elif inst.mcast_dst_ip.version != family or not inst.mcast_dst_ip.is_multicast:
        reset(
            f"mcast_dst_ip {inst.mcast_dst_ip} is not an IPv{family} multicast address; using the default",
            "mcast_dst_ip",
        )
        c["mcast_dst_ip"] = g.vrrp_mcast_group4 if family == 4 else g.vrrp_mcast_group6
    if inst.smtp_alert is None:
        c["smtp_alert"] = _smtp_default(g)
    if inst.notify_priority_changes is None:
        if group is not None and group.notify_priority_changes is not None:
            c["notify_priority_changes"] = group.notify_priority_changes
        else:
            c["notify_priority_changes"] = bool(g.vrrp_notify_priority_changes)
    if inst.track_src_ip and src is None:
        c["track_src_ip"] = False  # keepalived clears it silently: nothing to track
    if family == 6 and not inst.native_ipv6:
        c["native_ipv6"] = True

    inst = replace(inst, **c)
    inst = replace(inst, advert_int=_round_advert(inst, version, ctx))
    return _unweight(inst, group, ctx)


def _check_vrid_conflicts(instances: dict[str, VrrpInstance], ctx: Context) -> dict[str, VrrpInstance]:
    """The same VRID, family and interface (multicast), or the same source address
    (unicast), cannot be used twice (keepalived: "A and B both use VRID 12 with IPv4 on
    interface eth0"; the VRRP process does not start)."""
    seen: dict[tuple[Any, ...], str] = {}
    out: dict[str, VrrpInstance] = {}
    for name, inst in instances.items():
        if inst.is_unicast:
            if inst.src_ip is None:
                out[name] = inst  # the source address is only known at run time
                continue
            key: tuple[Any, ...] = ("u", inst.virtual_router_id, inst.family, inst.interface, inst.src_ip)
        else:
            key = ("m", inst.virtual_router_id, inst.family, inst.interface, inst.mcast_dst_ip)
        other = seen.get(key)
        if other is not None:
            ctx.diags.error(
                f"{other} and {name} both use VRID {inst.virtual_router_id} with IPv{inst.family} on "
                f"interface {inst.interface}",
                inst.where("virtual_router_id"),
            )
            continue
        seen[key] = name
        out[name] = inst
    return out
