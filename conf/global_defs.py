"""global_defs and the other top-level global keywords (keepalived.conf(5), "GLOBAL
CONFIGURATION"): the namespace/instance keywords that keepalived only takes at the top
level, the `global_defs { }` block (repeated blocks are merged, as keepalived does),
linkbeat_interfaces, interface_up_down_delays, track_group, static_* and bfd_instance.

Ranges and messages follow what keepalived 2.2.7 `-t` reports for each keyword.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from conf import accounts
from conf.addresses import IpAddressEntry
from conf.bfd import BfdInstance, check_bfd_instances
from conf.modelclass import model_class
from conf.routes import RouteEntry
from conf.rules import RuleEntry
from conf.schema import EMPTY, Block, ConfigValueError, Context, FrozenMap, kw, replace
from conf.static import (
    STATIC_ADDRESSES,
    STATIC_ROUTES,
    STATIC_RULES,
    IfUpDownDelay,
    LinkbeatInterface,
    TrackGroup,
    flatten,
    if_up_down_delays,
    linkbeat_interfaces,
)
from conf.syntax import Stmt
from conf.values import (
    Flag,
    Float,
    Int,
    IPAddress,
    Named,
    Names,
    Script,
    ScriptCmd,
    Str,
    Sub,
    Words,
    _args,
)

U32 = 0xFFFFFFFF
TASK_COMM_LEN = 16  # process names are cut to 15 characters by the kernel
DEFAULT_SCRIPT_USER = "keepalived_script"

# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class SmtpServer:
    host: str  # an IP address or a host name
    port: int = 25

    @property
    def address(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


class SmtpServerConv:
    """`smtp_server ADDR|NAME [PORT]` (port default 25, range 1..65535). keepalived
    resolves a name when it reads the file; we only check that it is a valid name."""

    takes_block = False
    syntax = "IPADDR|NAME [PORT]"

    def __call__(self, stmt: Stmt, ctx: Context) -> SmtpServer:
        args = _args(stmt, 1, None)
        host = args[0]
        port = Int(1, 65535).parse(args[1]) if len(args) > 1 else 25
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOSTNAME.match(host):
                raise ConfigValueError(f"invalid smtp server '{host}'") from None
        return SmtpServer(host, port)


@dataclass(frozen=True)
class NotifyFifo:
    """A notify FIFO and the owner it is created for: `FIFO_NAME [username [groupname]]`."""

    path: str
    user: str | None = None
    group: str | None = None

    def __str__(self) -> str:
        return " ".join(w for w in (self.path, self.user, self.group) if w)


def check_user(user: str, group: str | None) -> str | None:
    """What is wrong with a user[/group] to run scripts as, or None."""
    try:
        accounts.getpwnam(user)
    except KeyError:
        return f"user '{user}' does not exist"
    if group is not None:
        try:
            accounts.getgrnam(group)
        except KeyError:
            return f"group '{group}' does not exist"
    return None


class NotifyFifoConv:
    """`FIFO_NAME [username [groupname]]` (notify_fifo, vrrp_notify_fifo, lvs_notify_fifo)."""

    takes_block = False
    syntax = "FIFO_NAME [username [groupname]]"

    def __call__(self, stmt: Stmt, ctx: Context) -> NotifyFifo:
        args = _args(stmt, 1, 3)
        if not args[0]:
            raise ConfigValueError("empty name")
        user = args[1] if len(args) > 1 else None
        group = args[2] if len(args) > 2 else None
        if user is not None:
            problem = check_user(user, group)
            if problem:
                # keepalived says nothing and creates the FIFO as root; we say so.
                ctx.diags.warning(f"{stmt.keyword}: {problem}; creating it as root", stmt.location)
                user = group = None
        return NotifyFifo(args[0], user, group)


@dataclass(frozen=True)
class ScriptUser:
    user: str
    group: str | None = None

    def __iter__(self) -> Iterator[str]:
        """The words `USER [GROUP]` (what conf.security resolves)."""
        yield self.user
        if self.group is not None:
            yield self.group


class ScriptUserConv:
    takes_block = False
    syntax = "username [groupname]"

    def __call__(self, stmt: Stmt, ctx: Context) -> ScriptUser:
        args = _args(stmt, 1, 2)
        group = args[1] if len(args) > 1 else None
        problem = check_user(args[0], group)
        if problem:
            raise ConfigValueError(problem)  # keepalived: "Error setting global script uid/gid"
        return ScriptUser(args[0], group)


class ClampedInt(Int):
    """An integer that keepalived moves into [floor, ceil] with a message, after
    rejecting what is outside [lo, hi] (for example `vrrp_garp_master_repeat 0` -> 1)."""

    def __init__(self, lo: int | None, hi: int | None, floor: int | None = None, ceil: int | None = None) -> None:
        super().__init__(lo, hi)
        object.__setattr__(self, "floor", floor)
        object.__setattr__(self, "ceil", ceil)

    def __call__(self, stmt: Stmt, ctx: Context) -> int:
        value = super().__call__(stmt, ctx)
        floor: int | None = getattr(self, "floor", None)
        ceil: int | None = getattr(self, "ceil", None)
        if floor is not None and value < floor:
            ctx.diags.reset(f"{stmt.keyword} {value} is less than {floor}; using {floor}", stmt.location)
            return floor
        if ceil is not None and value > ceil:
            ctx.diags.reset(f"{stmt.keyword} {value} is more than {ceil}; using {ceil}", stmt.location)
            return ceil
        return value


class ProcessName(Str):
    syntax = "NAME"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        name = super().__call__(stmt, ctx)
        if len(name) >= TASK_COMM_LEN:
            short = name[: TASK_COMM_LEN - 1]
            ctx.diags.reset(
                f"process name {name} is longer than {TASK_COMM_LEN - 1} characters; using '{short}'", stmt.location
            )
            return short
        return name


class OptionalWord:
    """`KEYWORD [WORD]`: the word, or `bare` when only the keyword is given."""

    takes_block = False

    def __init__(self, bare: str = "", syntax: str = "[WORD]", choices: tuple[str, ...] = ()) -> None:
        self.bare, self.syntax, self.choices = bare, syntax, choices

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        args = _args(stmt, 0, 1)
        if not args:
            return self.bare
        if self.choices and args[0] not in self.choices:
            raise ConfigValueError(f"'{args[0]}' is not {' or '.join(self.choices)}")
        return args[0]


class OptionalInt:
    """`KEYWORD [N]`: N, or `bare` when only the keyword is given."""

    takes_block = False

    def __init__(self, lo: int, hi: int, bare: int) -> None:
        self.lo, self.hi, self.bare = lo, hi, bare
        self.syntax = f"[{lo}..{hi}]"

    def __call__(self, stmt: Stmt, ctx: Context) -> int:
        args = _args(stmt, 0, 1)
        return Int(self.lo, self.hi).parse(args[0]) if args else self.bare


class CpuList:
    takes_block = False
    syntax = "CPU_ID..."

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[int, ...]:
        return tuple(Int(0, 4095).parse(a) for a in _args(stmt, 1, None))


@dataclass(frozen=True)
class GarpExtraIf:
    """`vrrp_garp_extra_if [all] SECS` (1..86400)."""

    interval: int
    all: bool = False


class GarpExtraIfConv:
    takes_block = False
    syntax = "[all] SECONDS"

    def __call__(self, stmt: Stmt, ctx: Context) -> GarpExtraIf:
        args = list(_args(stmt, 1, 2))
        every = args[0] == "all"
        if every:
            args.pop(0)
        if not args:
            raise ConfigValueError("no time given")
        return GarpExtraIf(Int(1, 86400).parse(args[0]), every)


@dataclass(frozen=True)
class LvsTimeouts:
    tcp: int | None = None
    tcpfin: int | None = None
    udp: int | None = None


class LvsTimeoutsConv:
    takes_block = False
    syntax = "[tcp SECS] [tcpfin SECS] [udp SECS]"

    def __call__(self, stmt: Stmt, ctx: Context) -> LvsTimeouts:
        args = _args(stmt, 0, None)
        if not args:
            raise ConfigValueError("at least one of tcp, tcpfin and udp is needed")
        values: dict[str, int] = {}
        i = 0
        while i < len(args):
            word = args[i]
            if word not in ("tcp", "tcpfin", "udp"):
                raise ConfigValueError(f"unknown option '{word}' (expected tcp, tcpfin or udp)")
            if i + 1 >= len(args):
                raise ConfigValueError(f"no value after '{word}'")
            values[word] = Int(0, 86400 * 31).parse(args[i + 1])
            i += 2
        return LvsTimeouts(**values)


@dataclass(frozen=True)
class LvsSyncDaemon:
    interface: str
    inst: str | None = None  # the vrrp_instance whose state it follows
    id: int | None = None  # syncid, default the instance's VRID (or 0)
    maxlen: int | None = None
    port: int = 8848
    ttl: int | None = None
    group: IPAddress | None = None  # default 224.0.0.81


class LvsSyncDaemonConv:
    takes_block = False
    syntax = "INTERFACE [[inst] VRRP_INSTANCE] [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL] [group IPADDR]"
    _OPTS: ClassVar[dict[str, Any]] = {
        "id": Int(0, 255),
        "maxlen": Int(1, 65507),
        "port": Int(1, 65535),
        "ttl": Int(1, 255),
    }

    def __call__(self, stmt: Stmt, ctx: Context) -> LvsSyncDaemon:
        args = list(_args(stmt, 1, None))
        values: dict[str, Any] = {"interface": args[0]}
        i = 1
        while i < len(args):
            word = args[i]
            if word in ("inst", *self._OPTS, "group"):
                if i + 1 >= len(args):
                    raise ConfigValueError(f"no value after '{word}'")
                value = args[i + 1]
                i += 2
            elif i == 1:
                word, value = "inst", word  # `inst` may be left out
                i += 1
            else:
                raise ConfigValueError(f"unknown option '{word}'")
            try:
                if word == "inst":
                    values["inst"] = value
                elif word == "group":
                    addr = ipaddress.ip_address(value)
                    if not addr.is_multicast:
                        raise ConfigValueError(f"group address {value} is not multicast")
                    values["group"] = addr
                else:
                    values[word] = self._OPTS[word].parse(value)
            except (ConfigValueError, ValueError) as e:
                ctx.diags.reset(f"lvs_sync_daemon {word}: {e}; ignored", stmt.location)
        return LvsSyncDaemon(**values)


_UMASK_BITS = {
    "IRUSR": 0o400,
    "IWUSR": 0o200,
    "IXUSR": 0o100,
    "IRGRP": 0o40,
    "IWGRP": 0o20,
    "IXGRP": 0o10,
    "IROTH": 0o4,
    "IWOTH": 0o2,
    "IXOTH": 0o1,
}


class UmaskConv:
    """`umask NUMBER|BITS`: a number (hex, octal or decimal) or I{R|W|X}{USR|GRP|OTH}
    names joined by '|' (possibly spread over several words)."""

    takes_block = False
    syntax = "NUMBER|BITS"

    def __call__(self, stmt: Stmt, ctx: Context) -> int:
        text = "".join(_args(stmt, 1, None))
        if text[:1].isdigit():
            try:
                value = int(text, 0) if not (text.startswith("0") and text[1:2].isdigit()) else int(text, 8)
            except ValueError:
                raise ConfigValueError(f"invalid umask value {text}") from None
            if value > 0o777:
                raise ConfigValueError(f"invalid umask value {text}")
            return value
        mask = 0
        for bit in filter(None, text.split("|")):
            if bit not in _UMASK_BITS:
                raise ConfigValueError(f"unknown umask bit {bit}")
            mask |= _UMASK_BITS[bit]
        return mask


class RxBufsPolicy:
    """`vrrp_rx_bufs_policy MTU|ADVERT|NUMBER`."""

    takes_block = False
    syntax = "MTU|ADVERT|NUMBER"

    def __call__(self, stmt: Stmt, ctx: Context) -> str | int:
        word = _args(stmt, 1, 1)[0]
        if word.upper() in ("MTU", "ADVERT"):
            return word.upper()
        try:
            return Int(0, U32).parse(word)
        except ConfigValueError:
            raise ConfigValueError(f"invalid vrrp_rx_bufs_policy {word}") from None


class MulticastAddr:
    """vrrp_mcast_group4/6: must be a multicast address of the family (IPv6: link-local
    scope ffX2:: is expected and anything else draws a warning, as in keepalived)."""

    takes_block = False

    def __init__(self, version: int) -> None:
        self.version = version
        self.syntax = "IPV4_MULTICAST" if version == 4 else "IPV6_MULTICAST"

    def __call__(self, stmt: Stmt, ctx: Context) -> IPAddress:
        text = _args(stmt, 1, 1)[0]
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            raise ConfigValueError(f"'{text}' is not an IP address") from None
        if addr.version != self.version:
            raise ConfigValueError(f"{text} is not IPv{self.version}")
        if not addr.is_multicast:
            raise ConfigValueError(f"{text} is not multicast")
        if self.version == 6 and (addr.packed[1] & 0x0F) != 2:
            ctx.diags.warning(f"{stmt.keyword} {text} should be link-local multicast (ffX2::)", stmt.location)
        return addr


class DynamicInterfaces:
    takes_block = False
    syntax = "[allow_if_changes]"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        args = _args(stmt, 0, 1)
        if args and args[0] != "allow_if_changes":
            raise ConfigValueError(f"unknown option '{args[0]}' (only allow_if_changes)")
        return args[0] if args else "on"


class FlushOnStop:
    """`lvs_flush_on_stop [VS]`: "all" (the whole IPVS table) or "VS" (each virtual server)."""

    takes_block = False
    syntax = "[VS]"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        args = _args(stmt, 0, 1)
        if not args:
            return "all"
        if args[0] != "VS":
            raise ConfigValueError(f"unknown lvs_flush_on_stop type {args[0]}")
        return "VS"


class NotificationEmail(Names):
    """`notification_email { ADDR ... }`; keepalived ignores words on the keyword's line."""

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[str, ...]:
        if stmt.block is None:
            raise ConfigValueError("needs a { } block of addresses")
        out = super().__call__(stmt, ctx)
        if not out:
            ctx.diags.reset("empty notification_email block; ignored", stmt.location)
        return out


# --------------------------------------------------------------------------- blocks

_BFD = "BFD is not implemented"
_SNMP = "SNMP is not implemented"
_DBUS = "D-Bus is not implemented"
_FW = "iptables, ipsets and the IPVS nftables rules are not implemented (the VRRP nftables drop tables are)"
_BUFS = "socket buffer tuning is not implemented"


@model_class
class GlobalDefs(Block):
    label: ClassVar[str] = "global_defs"
    passthrough: ClassVar[frozenset[str]] = frozenset({"include_check"})  # acted on by the preprocessor

    tmp_config_directory: str | None = kw(Str(), unsupported="the configuration is not copied")
    config_save_dir: str | None = kw(Str(), unsupported="a debugging aid")
    process_names: bool = kw(Flag(), False)
    process_name: str | None = kw(ProcessName())
    vrrp_process_name: str | None = kw(ProcessName())
    checker_process_name: str | None = kw(
        ProcessName(), aliases=("lvs_process_name",), deprecated=("lvs_process_name",)
    )
    bfd_process_name: str | None = kw(ProcessName(), unsupported="BFD is not implemented")
    startup_script: Script | None = kw(ScriptCmd(with_user=True))
    startup_script_timeout: int = kw(Int(1, 1000), 10)
    shutdown_script: Script | None = kw(ScriptCmd(with_user=True))
    shutdown_script_timeout: int = kw(Int(1, 1000), 10)
    notification_email: tuple[str, ...] = kw(NotificationEmail(), ())
    notification_email_from: str | None = kw(Str())  # default keepalived@<host name>
    smtp_server: SmtpServer | None = kw(SmtpServerConv())
    smtp_helo_name: str | None = kw(Str())  # default: the host name
    smtp_connect_timeout: int = kw(ClampedInt(0, 4294, floor=1), 30)
    smtp_alert: bool | None = kw(Flag())  # None: not set (then smtp_alert_vrrp/checker decide)
    smtp_alert_vrrp: bool | None = kw(Flag())
    smtp_alert_checker: bool | None = kw(Flag())
    checker_log_all_failures: bool = kw(Flag(), False)
    no_email_faults: bool = kw(Flag(), False, unsupported="FAULT mails are always sent")
    router_id: str | None = kw(Str())  # default: the host name (see effective_router_id)
    vrrp_mcast_group4: IPAddress = kw(MulticastAddr(4), ipaddress.IPv4Address("224.0.0.18"))
    vrrp_mcast_group6: IPAddress = kw(MulticastAddr(6), ipaddress.IPv6Address("ff02::12"))
    default_interface: str = kw(Str(), "eth0")
    lvs_sync_daemon: LvsSyncDaemon | None = kw(LvsSyncDaemonConv(), unsupported="the IPVS sync daemon is not driven")
    lvs_timeouts: LvsTimeouts | None = kw(LvsTimeoutsConv(), unsupported="IPVS connection timeouts are not set")
    lvs_flush: bool = kw(Flag(), False)
    lvs_flush_on_stop: str | None = kw(FlushOnStop(), aliases=("lvs_flush_onstop",), deprecated=("lvs_flush_onstop",))
    vrrp_garp_master_delay: int = kw(Int(0, 4294), 5)
    vrrp_garp_master_repeat: int = kw(ClampedInt(0, U32, floor=1), 5)
    vrrp_garp_lower_prio_delay: int | None = kw(Int(0, 4294))  # default vrrp_garp_master_delay
    vrrp_garp_lower_prio_repeat: int | None = kw(Int(0, U32))  # default vrrp_garp_master_repeat
    vrrp_down_timer_adverts: int = kw(Int(1, 100), 3)
    vrrp_garp_master_refresh: int = kw(Int(0, 4294), 0)
    vrrp_garp_master_refresh_repeat: int = kw(ClampedInt(0, U32, floor=1), 1)
    vrrp_garp_interval: float = kw(Float(0, 4294.967295), 0.0)
    vrrp_gna_interval: float = kw(Float(0, 4294.967295), 0.0)
    vrrp_min_garp: bool = kw(Flag(), False)
    vrrp_garp_extra_if: GarpExtraIf | None = kw(
        GarpExtraIfConv(), aliases=("vrrp_vmac_garp_intvl",), deprecated=("vrrp_vmac_garp_intvl",)
    )
    vrrp_lower_prio_no_advert: bool | None = kw(Flag())  # None: off unless vrrp_strict
    vrrp_higher_prio_send_advert: bool = kw(Flag(), False)
    vrrp_version: int = kw(Int(2, 3), 2)
    # no accept mode's drop tables: vrrp_child.firewall
    nftables: str | None = kw(OptionalWord("keepalived", "[TABLENAME]"))
    nftables_priority: int = kw(Int(-(2**31), 2**31 - 1), -1)
    nftables_counters: bool = kw(Flag(), False)
    nftables_ifindex: bool = kw(Flag(), False)
    nftables_ipvs: str | None = kw(OptionalWord("keepalived_ipvs", "[TABLENAME]"), unsupported=_FW)
    nftables_ipvs_priority: int = kw(Int(-(2**31), 2**31 - 1), -1, unsupported=_FW)
    nftables_ipvs_start_fwmark: int = kw(Int(1, U32), 1000, unsupported=_FW)
    vrrp_iptables: tuple[str, ...] | None = kw(Words(0, 2, "[IN_CHAIN [OUT_CHAIN]]"), unsupported=_FW)
    vrrp_ipsets: tuple[str, ...] | None = kw(
        Words(0, 5, "[NAME [NAME6 [NAME_IF6 [NAME_IGMP [NAME_MLD]]]]]"), unsupported=_FW
    )
    disable_local_igmp: bool = kw(Flag(), False, unsupported="the IGMP sysctl is not changed")
    vrrp_check_unicast_src: bool = kw(Flag(), False)
    vrrp_skip_check_adv_addr: bool = kw(Flag(), False)
    vrrp_strict: bool = kw(Flag(), False)
    vrrp_notify_priority_changes: bool = kw(Flag(), False)
    max_auto_priority: int = kw(OptionalInt(-1, 99, 99), 0)
    min_auto_priority_delay: int = kw(Int(1, 10_000_000), 1_000_000)
    vrrp_priority: int = kw(Int(-20, 19), 0)
    checker_priority: int = kw(Int(-20, 19), 0)
    bfd_priority: int = kw(Int(-20, 19), 0, unsupported="BFD is not implemented")
    vrrp_no_swap: bool = kw(Flag(), False)
    checker_no_swap: bool = kw(Flag(), False)
    bfd_no_swap: bool = kw(Flag(), False, unsupported=_BFD)
    vrrp_cpu_affinity: tuple[int, ...] = kw(CpuList(), ())
    checker_cpu_affinity: tuple[int, ...] = kw(CpuList(), ())
    bfd_cpu_affinity: tuple[int, ...] = kw(CpuList(), (), unsupported=_BFD)
    vrrp_rt_priority: int | None = kw(ClampedInt(None, None, floor=1, ceil=99))
    checker_rt_priority: int | None = kw(ClampedInt(None, None, floor=1, ceil=99))
    bfd_rt_priority: int | None = kw(ClampedInt(None, None, floor=1, ceil=99), unsupported=_BFD)
    vrrp_rlimit_rttime: int = kw(Int(1, U32), 10000, aliases=("vrrp_rlimit_rtime",), deprecated=("vrrp_rlimit_rtime",))
    checker_rlimit_rttime: int = kw(
        Int(1, U32), 10000, aliases=("checker_rlimit_rtime",), deprecated=("checker_rlimit_rtime",)
    )
    bfd_rlimit_rttime: int = kw(
        Int(1, U32), 10000, aliases=("bfd_rlimit_rtime",), deprecated=("bfd_rlimit_rtime",), unsupported=_BFD
    )
    snmp_socket: str | None = kw(Str(), unsupported=_SNMP)
    enable_snmp_vrrp: bool = kw(
        Flag(), False, aliases=("enable_snmp_keepalived",), deprecated=("enable_snmp_keepalived",), unsupported=_SNMP
    )
    enable_snmp_checker: bool = kw(Flag(), False, unsupported=_SNMP)
    enable_snmp_rfc: bool = kw(Flag(), False, unsupported=_SNMP)
    enable_snmp_rfcv2: bool = kw(Flag(), False, unsupported=_SNMP)
    enable_snmp_rfcv3: bool = kw(Flag(), False, unsupported=_SNMP)
    enable_traps: bool = kw(Flag(), False, unsupported=_SNMP)
    enable_dbus: bool = kw(Flag(), False, unsupported=_DBUS)
    dbus_service_name: str | None = kw(Str(), unsupported=_DBUS)
    script_user: ScriptUser | None = kw(ScriptUserConv())  # default keepalived_script if it exists, else root
    enable_script_security: bool = kw(Flag(), False)
    notify_fifo: NotifyFifo | None = kw(NotifyFifoConv())
    notify_fifo_script: Script | None = kw(ScriptCmd(with_user=True))
    vrrp_notify_fifo: NotifyFifo | None = kw(NotifyFifoConv())
    vrrp_notify_fifo_script: Script | None = kw(ScriptCmd(with_user=True))
    lvs_notify_fifo: NotifyFifo | None = kw(NotifyFifoConv())
    lvs_notify_fifo_script: Script | None = kw(ScriptCmd(with_user=True))
    fifo_write_vrrp_states_on_reload: bool = kw(Flag(), False, unsupported="the FIFO is not written at a reload")
    dynamic_interfaces: str | None = kw(DynamicInterfaces())  # None: off; "on" or "allow_if_changes"
    vrrp_netlink_cmd_rcv_bufs: int | None = kw(Int(0, U32), unsupported=_BUFS)
    vrrp_netlink_cmd_rcv_bufs_force: bool = kw(Flag(), False, unsupported=_BUFS)
    vrrp_netlink_monitor_rcv_bufs: int | None = kw(Int(0, U32), unsupported=_BUFS)
    vrrp_netlink_monitor_rcv_bufs_force: bool = kw(Flag(), False, unsupported=_BUFS)
    lvs_netlink_cmd_rcv_bufs: int | None = kw(Int(0, U32), unsupported=_BUFS)
    lvs_netlink_cmd_rcv_bufs_force: bool = kw(Flag(), False, unsupported=_BUFS)
    lvs_netlink_monitor_rcv_bufs: int | None = kw(Int(0, U32), unsupported=_BUFS)
    lvs_netlink_monitor_rcv_bufs_force: bool = kw(Flag(), False, unsupported=_BUFS)
    process_monitor_rcv_bufs: int | None = kw(Int(0, U32), unsupported=_BUFS)
    process_monitor_rcv_bufs_force: bool = kw(Flag(), False, unsupported=_BUFS)
    vrrp_rx_bufs_policy: str | int | None = kw(RxBufsPolicy(), unsupported=_BUFS)
    vrrp_rx_bufs_multiplier: int = kw(Int(1, U32), 3, unsupported=_BUFS)
    rs_init_notifies: bool = kw(Flag(), False)
    no_checker_emails: bool = kw(Flag(), False)
    umask: int | None = kw(UmaskConv())  # None: IWGRP|IWOTH (0o022) unless -m/--umask was given
    vrrp_startup_delay: float | None = kw(Float(0.001, 4294.967295))
    log_unknown_vrids: bool = kw(Flag(), False, unsupported="adverts for unknown VRIDs are not logged")
    vmac_prefix: str = kw(Str(), "vrrp")
    vmac_addr_prefix: str | None = kw(Str())  # default vmac_prefix
    random_seed: int | None = kw(Int(0, U32), unsupported="Python's random is seeded by the OS")
    reload_check_config: str | None = kw(
        OptionalWord("", "[LOG_FILE]"), unsupported="a reload is always validated first, without a log file"
    )  # "" : check without a log file
    reload_time_file: str | None = kw(Str(), unsupported="timed reloads are not implemented")
    reload_repeat: bool = kw(Flag(), False, unsupported="timed reloads are not implemented")
    reload_file: str | None = kw(
        OptionalWord("", "[FILE]"), unsupported="no reload file is written"
    )  # "": keepalived.reload in the pid directory
    data_use_instance: bool = kw(Flag(), False)  # dump names carry net_namespace/instance

    # --- what consumers need, with keepalived's defaults applied

    @property
    def effective_router_id(self) -> str:
        return self.router_id if self.router_id is not None else socket.gethostname()

    @property
    def effective_smtp_helo_name(self) -> str:
        return self.smtp_helo_name if self.smtp_helo_name is not None else socket.gethostname()

    @property
    def effective_notification_email_from(self) -> str:
        if self.notification_email_from is not None:
            return self.notification_email_from
        return f"keepalived@{socket.gethostname()}"

    @property
    def effective_garp_master_delay(self) -> int:
        """vrrp_min_garp means delay 0 unless vrrp_garp_master_delay is given."""
        if self.vrrp_min_garp and "vrrp_garp_master_delay" not in self.locations:
            return 0
        return self.vrrp_garp_master_delay

    @property
    def effective_garp_master_repeat(self) -> int:
        """vrrp_min_garp means one GARP unless vrrp_garp_master_repeat is given."""
        if self.vrrp_min_garp and "vrrp_garp_master_repeat" not in self.locations:
            return 1
        return self.vrrp_garp_master_repeat

    @property
    def effective_garp_lower_prio_delay(self) -> int:
        d = self.vrrp_garp_lower_prio_delay
        return self.effective_garp_master_delay if d is None else d

    @property
    def effective_garp_lower_prio_repeat(self) -> int:
        r = self.vrrp_garp_lower_prio_repeat
        return self.effective_garp_master_repeat if r is None else r

    @property
    def effective_lower_prio_no_advert(self) -> bool:
        """Defaults to on under vrrp_strict (man page, vrrp_lower_prio_no_advert)."""
        v = self.vrrp_lower_prio_no_advert
        return self.vrrp_strict if v is None else v

    @property
    def effective_vmac_addr_prefix(self) -> str:
        return self.vmac_addr_prefix if self.vmac_addr_prefix is not None else self.vmac_prefix

    @property
    def effective_umask(self) -> int:
        return 0o022 if self.umask is None else self.umask

    @property
    def effective_script_user(self) -> ScriptUser:
        """script_user, else keepalived_script if that user exists, else root (we run as root)."""
        if self.script_user is not None:
            return self.script_user
        try:
            accounts.getpwnam(DEFAULT_SCRIPT_USER)
            return ScriptUser(DEFAULT_SCRIPT_USER)
        except KeyError:
            return ScriptUser("root")

    def names(self) -> dict[str, str | None]:
        """The name (comm) each process sets, None: its usual one (watchdog.procname). As keepalived
        2.2.7's global_parser.c: process_names names the children keepalived_vrrp, keepalived_lvs
        and keepalived_bfd (not the parent), and of it and a child's own keyword the later wins."""
        defaults = {"vrrp": "keepalived_vrrp", "checker": "keepalived_lvs", "bfd": "keepalived_bfd"}
        own = {
            "parent": ("process_name", self.process_name),
            "vrrp": ("vrrp_process_name", self.vrrp_process_name),
            "checker": ("checker_process_name", self.checker_process_name),
            "bfd": ("bfd_process_name", self.bfd_process_name),
        }
        out: dict[str, str | None] = {}
        for role, (fname, value) in own.items():
            default = defaults.get(role) if self.process_names else None
            out[role] = default if value is None or (default and self._after("process_names", fname)) else value
        return out

    def _after(self, first: str, second: str) -> bool:
        """Whether keyword `first` came after `second` in the same file."""
        a, b = self.locations.get(first), self.locations.get(second)
        return a is not None and b is not None and a.file == b.file and a.line > b.line

    def smtp_alert_for(self, family: str) -> bool:
        """The default smtp_alert of a vrrp_instance ("vrrp") or a virtual server
        ("checker"): smtp_alert_vrrp/smtp_alert_checker, else smtp_alert, else off."""
        specific = self.smtp_alert_vrrp if family == "vrrp" else self.smtp_alert_checker
        if specific is not None:
            return specific
        return bool(self.smtp_alert)

    def finish(self, ctx: Context) -> Self:
        if self.notification_email and self.smtp_server is None:
            ctx.diags.warning(
                "notification_email is set but there is no smtp_server: no mail will be sent",
                self.where("notification_email"),
            )
        names = [(n, getattr(self, n)) for n in ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo")]
        seen: dict[str, str] = {}
        for name, fifo in names:
            if fifo is None:
                continue
            path = fifo.path
            if path in seen:
                # The man page says they must differ; keepalived 2.2.7 does not check.
                ctx.diags.warning(f"{name} {path} is the same FIFO as {seen[path]}", self.where(name))
            seen[path] = name
        return self


@model_class
class GlobalTop(Block):
    """Top-level keywords of the global family (keepalived takes the namespace and
    instance keywords, child_wait_time, use_pid_dir and linkbeat_use_polling only here,
    not inside global_defs)."""

    label: ClassVar[str] = "the top level"

    # The daemon setns()s into it before its children start (haparent.namespace).
    net_namespace: str | None = kw(Str())
    net_namespace_ipvs: str | None = kw(
        OptionalWord("", "[NAME]"),
        unsupported="IPVS is programmed in the daemon's own namespace, never in another one",
    )
    namespace_with_ipsets: bool = kw(Flag(), False, unsupported="pykeepalived manages no ipsets")
    instance: str | None = kw(Str())
    use_pid_dir: bool = kw(Flag(), False)
    linkbeat_use_polling: bool = kw(Flag(), False, unsupported="linkbeat polling is not implemented")
    child_wait_time: int = kw(Int(0, U32), 5)
    global_defs: GlobalDefs = kw(Sub(GlobalDefs), GlobalDefs(), many="merge")
    linkbeat_interfaces: tuple[LinkbeatInterface, ...] = kw(
        linkbeat_interfaces, (), many="merge", unsupported="linkbeat polling is not implemented"
    )
    interface_up_down_delays: tuple[IfUpDownDelay, ...] = kw(if_up_down_delays, (), many="merge")
    track_group: FrozenMap[str, TrackGroup] = kw(Named(TrackGroup), EMPTY, many="map")
    # Collected per block in file order (so that rule preferences are numbered as
    # keepalived numbers them), then joined by finish_global.
    static_ipaddress: tuple[IpAddressEntry, ...] = kw(STATIC_ADDRESSES, (), many="list")
    static_routes: tuple[RouteEntry, ...] = kw(STATIC_ROUTES, (), many="list")
    static_rules: tuple[RuleEntry, ...] = kw(STATIC_RULES, (), many="list")
    bfd_instance: FrozenMap[str, BfdInstance] = kw(
        Named(BfdInstance), EMPTY, many="map", unsupported="BFD is not implemented"
    )

    def finish_global(self, ctx: Context) -> Self:
        top = replace(
            self,
            static_ipaddress=flatten(self.static_ipaddress),
            static_routes=flatten(self.static_routes),
            static_rules=flatten(self.static_rules),
            bfd_instance=check_bfd_instances(self.bfd_instance, ctx),
        )
        for message, location in ctx.settings.pop("missing_interfaces", []):
            if ctx.interfaces is None:
                continue  # not this host's interfaces (net_namespace)
            if self.global_defs.dynamic_interfaces:
                ctx.diags.warning(message, location)
            else:
                ctx.diags.missing_interface(f"{message} (global_defs dynamic_interfaces allows this)", location)
        return top

    @property
    def static_interfaces(self) -> frozenset[str]:
        """Interfaces static addresses and routes are put on (default_interface if none given)."""
        default = self.global_defs.default_interface
        names = {a.dev or default for a in self.static_ipaddress}
        names |= {r.dev for r in self.static_routes if r.dev}
        return frozenset(names)
