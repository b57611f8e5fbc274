"""LVS blocks: virtual_server_group, virtual_server, real_server, SSL (keepalived.conf(5),
LVS CONFIGURATION).

Options that a virtual server, its real servers and their checkers share (delay_loop,
retry, connect_timeout, ...) cascade VS -> RS -> checker: `VirtualServer.finish`
resolves them, so the model holds the values the checker child uses. Where keepalived
logs a "setting default" message for a missing keyword (protocol, lb_algo, lb_kind), so
do we, as a reset: `keepalived -t` fails on those too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from conf.checkers import (
    CONNECT_TIMEOUT_MAX,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DELAY_BEFORE_RETRY,
    DEFAULT_DELAY_LOOP,
    DEFAULT_RETRY,
    TIMER_MAX,
    U32,
    AnyChecker,
    BfdCheck,
    CheckerSub,
    DnsCheck,
    FileCheck,
    HttpGet,
    MiscCheck,
    PingCheck,
    SmtpCheck,
    SslGet,
    TcpCheck,
    UdpCheck,
)
from conf.lvs_group import FAMILY, VsgConv
from conf.lvs_top import LvsTop
from conf.modelclass import model_class
from conf.schema import Block, ConfigValueError, Context, evolve, kw, parse_block, replace
from conf.syntax import Stmt
from conf.values import Choice, Flag, Float, Int, IpAddr, IPAddress, Script, ScriptCmd, Str, Sub, Text

SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos")
DEFAULT_SCHEDULER = "wlc"
DEFAULT_PERSISTENCE_TIMEOUT = 360  # "default 6 minutes"
WEIGHT_MAX = 2147483647

_PORT = Int(1, 65535)
_FWMARK = Int(0, U32)
_ADDR = IpAddr()


# ---------------------------------------------------------------- small values


@dataclass(frozen=True)
class LvsMethod:
    """lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]."""

    kind: str = "NAT"
    tunnel_type: str | None = None  # TUN only; None: ipip
    tunnel_port: int | None = None  # gue only
    checksum: str | None = None  # nocsum|csum|remcsum

    def __str__(self) -> str:
        words = [self.kind]
        if self.tunnel_type:
            words += ["type", self.tunnel_type]
        if self.tunnel_port is not None:
            words += ["port", str(self.tunnel_port)]
        if self.checksum:
            words.append(self.checksum)
        return " ".join(words)

    @property
    def tunnelled(self) -> bool:
        return self.kind == "TUN"


NAT = LvsMethod("NAT")
_KIND = Choice("NAT", "DR", "TUN", fold=False)  # keepalived compares these exactly
_TUNNEL_TYPE = Choice("ipip", "gue", "gre")
_CHECKSUMS = ("nocsum", "csum", "remcsum")


class LvsMethodConv:
    takes_block = False
    syntax = "NAT|DR|TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]]"

    def __call__(self, stmt: Stmt, ctx: Context) -> LvsMethod:
        if not stmt.args:
            raise ConfigValueError("missing value")
        kind = _KIND.parse(stmt.args[0])
        rest = list(stmt.args[1:])
        if kind != "TUN":
            if rest:
                raise ConfigValueError(f"'{' '.join(rest)}' only applies to TUN")
            return LvsMethod(kind)
        ttype: str | None = None
        port: int | None = None
        csum: str | None = None
        i = 0
        while i < len(rest):
            word = rest[i]
            if word in ("type", "port") and i + 1 >= len(rest):
                raise ConfigValueError(f"'{word}' needs a value")
            if word == "type":
                ttype = _TUNNEL_TYPE.parse(rest[i + 1])
                i += 2
            elif word == "port":
                port = _PORT.parse(rest[i + 1])
                i += 2
            elif word in _CHECKSUMS:
                csum = word
                i += 1
            else:
                raise ConfigValueError(f"unknown tunnel option '{word}'")
        # Kernel rules for tunnels (ipvsadm(8)): only GUE has a port; csum needs GUE or GRE,
        # and GRE has no remote checksum offload.
        if (ttype == "gue") != (port is not None):
            raise ConfigValueError("gue tunnels require a port, and other tunnels cannot have one")
        if csum is not None and ttype in (None, "ipip"):
            raise ConfigValueError("ipip tunnels do not support the checksum options")
        if csum == "remcsum" and ttype == "gre":
            raise ConfigValueError("gre tunnels do not support remcsum")
        return LvsMethod("TUN", ttype, port, csum)


@dataclass(frozen=True)
class SorryServer:
    address: IPAddress
    port: int | None = None

    def __str__(self) -> str:
        return _endpoint(self.address, self.port)


class SorryServerConv:
    takes_block = False
    syntax = "<IPADDR> [<PORT>]"

    def __call__(self, stmt: Stmt, ctx: Context) -> SorryServer:
        if not stmt.args or len(stmt.args) > 2:
            raise ConfigValueError("expected <IPADDR> [<PORT>]")
        port = _PORT.parse(stmt.args[1]) if len(stmt.args) > 1 else None
        return SorryServer(_ADDR.parse(stmt.args[0]), port)


Granularity = ipaddress.IPv4Address | int


class GranularityConv:
    """persistence_granularity: an IPv4 netmask, or a prefix length (IPv6)."""

    takes_block = False
    syntax = "<NETMASK>"

    def __call__(self, stmt: Stmt, ctx: Context) -> Granularity:
        if len(stmt.args) != 1:
            raise ConfigValueError("needs one value")
        text = stmt.args[0]
        if text.isdigit():
            return Int(1, 128).parse(text)
        try:
            mask = ipaddress.IPv4Address(text)
            ipaddress.IPv4Network(f"0.0.0.0/{text}")  # rejects non-contiguous masks
        except ValueError:
            raise ConfigValueError(f"'{text}' is not a netmask or prefix length") from None
        return mask


class PersistenceTimeout(Int):
    """persistence_timeout [<INTEGER>]: alone, the default of 6 minutes."""

    syntax = "[<INTEGER>]"

    def __init__(self) -> None:
        super().__init__(1, 2678400)  # ipvsadm's maximum: 31 days

    def __call__(self, stmt: Stmt, ctx: Context) -> int:
        if not stmt.args:
            return DEFAULT_PERSISTENCE_TIMEOUT
        return super().__call__(stmt, ctx)


def _endpoint(address: IPAddress | None, port: int | None) -> str:
    host = f"[{address}]" if address is not None and address.version == 6 else str(address)
    return host if port is None else f"{host}:{port}"


def _family_name(version: int) -> str:
    return "inet6" if version == 6 else "inet"


# ---------------------------------------------------------------- SSL


@model_class
class SslConf(Block):
    """SSL { }: client certificate settings for SSL_GET; none given: an auto context."""

    label: ClassVar[str] = "SSL"

    password: str | None = kw(Str())
    ca: str | None = kw(Str())
    certificate: str | None = kw(Str())
    key: str | None = kw(Str())


# ---------------------------------------------------------------- real_server

# Options that cascade VS -> RS -> checker, with keepalived's defaults when nobody sets them.
_CASCADE = ("alpha", "connect_timeout", "retry", "delay_before_retry", "warmup", "delay_loop")
_RS_INHERITED = (*_CASCADE, "inhibit_on_failure", "virtualhost", "lvs_method")


@model_class
class RealServer(Block):
    label: ClassVar[str] = "real_server"
    inline_fields: ClassVar[tuple[str, ...]] = (
        *("locations", "address", "port", "weight", *_RS_INHERITED),
        *("tcp_check", "http_get", "ssl_get", "misc_check"),
    )
    draft: ClassVar[bool] = True  # resolved by the virtual server (`_resolved_rs`)

    address: IPAddress
    port: int | None = None  # None: the virtual server's port (after finish)

    weight: int = kw(Int(0, WEIGHT_MAX), 1)
    lvs_method: LvsMethod | None = kw(LvsMethodConv())  # None: the virtual server's (after finish)
    notify_up: Script | None = kw(ScriptCmd(with_user=True))
    notify_down: Script | None = kw(ScriptCmd(with_user=True))
    uthreshold: int | None = kw(Int(0, U32))
    lthreshold: int | None = kw(Int(0, U32))
    smtp_alert: bool | None = kw(Flag())  # None: global smtp_alert / smtp_alert_checker
    virtualhost: str | None = kw(Str())
    snmp_name: str | None = kw(Text(), unsupported="SNMP is not implemented")
    alpha: bool | None = kw(Flag())
    connect_timeout: float | None = kw(Float(0.000001, CONNECT_TIMEOUT_MAX))
    retry: int | None = kw(Int(1, U32))
    delay_before_retry: float | None = kw(Float(0, TIMER_MAX))
    warmup: float | None = kw(Float(0, TIMER_MAX))
    delay_loop: float | None = kw(Float(0.000001, TIMER_MAX))
    inhibit_on_failure: bool | None = kw(Flag())

    http_get: tuple[HttpGet, ...] = kw(CheckerSub(HttpGet), keyword="HTTP_GET", many="list")
    ssl_get: tuple[SslGet, ...] = kw(CheckerSub(SslGet), keyword="SSL_GET", many="list")
    tcp_check: tuple[TcpCheck, ...] = kw(CheckerSub(TcpCheck), keyword="TCP_CHECK", many="list")
    smtp_check: tuple[SmtpCheck, ...] = kw(CheckerSub(SmtpCheck), keyword="SMTP_CHECK", many="list")
    dns_check: tuple[DnsCheck, ...] = kw(CheckerSub(DnsCheck), keyword="DNS_CHECK", many="list")
    misc_check: tuple[MiscCheck, ...] = kw(CheckerSub(MiscCheck), keyword="MISC_CHECK", many="list")
    bfd_check: tuple[BfdCheck, ...] = kw(
        CheckerSub(BfdCheck), keyword="BFD_CHECK", many="list", unsupported="BFD is not implemented"
    )
    udp_check: tuple[UdpCheck, ...] = kw(CheckerSub(UdpCheck), keyword="UDP_CHECK", many="list")
    ping_check: tuple[PingCheck, ...] = kw(CheckerSub(PingCheck), keyword="PING_CHECK", many="list")
    file_check: tuple[FileCheck, ...] = kw(CheckerSub(FileCheck), keyword="FILE_CHECK", many="list")

    @property
    def checkers(self) -> tuple[AnyChecker, ...]:
        """All checkers in config order."""
        found: list[AnyChecker] = [
            *self.http_get,
            *self.ssl_get,
            *self.tcp_check,
            *self.smtp_check,
            *self.dns_check,
            *self.misc_check,
            *self.bfd_check,
            *self.udp_check,
            *self.ping_check,
            *self.file_check,
        ]
        found.sort(key=lambda c: c.seq)
        return tuple(found)

    @property
    def method(self) -> LvsMethod:
        return self.lvs_method or NAT

    def __str__(self) -> str:
        return _endpoint(self.address, self.port)

    def with_checkers(self, keep: Callable[[AnyChecker], bool]) -> RealServer:
        """A copy keeping only the checkers for which `keep(checker)` is true."""
        changes = {}
        for name in _CHECKER_FIELDS:
            old = getattr(self, name)
            new = tuple(c for c in old if keep(c))
            if len(new) != len(old):
                changes[name] = new
        return replace(self, **changes) if changes else self

    def finish(self, ctx: Context) -> Self:
        if (
            self.uthreshold is not None
            and self.lthreshold is not None
            and self.uthreshold
            and self.lthreshold > self.uthreshold
        ):
            ctx.diags.warning(
                f"real_server {self}: lthreshold {self.lthreshold} is above uthreshold {self.uthreshold}",
                self.where("lthreshold"),
            )
        return self


_CHECKER_FIELDS = (
    "http_get",
    "ssl_get",
    "tcp_check",
    "smtp_check",
    "dns_check",
    "misc_check",
    "bfd_check",
    "udp_check",
    "ping_check",
    "file_check",
)
_CHECKER_SET = frozenset(_CHECKER_FIELDS)


class RealServerConv:
    """`real_server <IPADDR> [<PORT>] { ... }`."""

    takes_block = True
    syntax = "<IPADDR> [<PORT>] { ... }"

    def __call__(self, stmt: Stmt, ctx: Context) -> RealServer:
        if not stmt.args or len(stmt.args) > 2:
            raise ConfigValueError("expected <IPADDR> [<PORT>]")
        address = _ADDR.parse(stmt.args[0])
        port = None
        # keepalived (check_data.c alloc_rs): a port of all zeros is no port at all, so
        # `real_server X 0` under `virtual_server fwmark` is accepted, and elsewhere takes
        # the virtual server's port as an omitted one does.
        if len(stmt.args) > 1 and stmt.args[1].strip("0"):
            port = _PORT.parse(stmt.args[1])
        if stmt.block is None:
            raise ConfigValueError(f"{stmt.args[0]} needs a {{ }} block")
        # Checkers are numbered within their real server (RealServer.checkers sorts by it):
        # small numbers, which CPython shares (a number per checker above 256 was 32 bytes).
        ctx.settings["lvs.checker_seq"] = 0
        return parse_block(RealServer, stmt.block, ctx, location=stmt.location, address=address, port=port)


# ---------------------------------------------------------------- virtual_server


@model_class
class VirtualServer(Block):
    """One of `virtual_server <IPADDR> [<PORT>]`, `virtual_server fwmark <INTEGER>` or
    `virtual_server group <STRING>` (exactly one of address, fwmark, group is set)."""

    label: ClassVar[str] = "virtual_server"

    address: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None
    group: str | None = None

    lvs_sched: str | None = kw(Choice(*SCHEDULERS, fold=False), aliases=("lb_algo",))
    flag_1: bool = kw(Flag(), False, keyword="flag-1")
    flag_2: bool = kw(Flag(), False, keyword="flag-2")
    flag_3: bool = kw(Flag(), False, keyword="flag-3")
    sh_port: bool = kw(Flag(), False, keyword="sh-port")
    sh_fallback: bool = kw(Flag(), False, keyword="sh-fallback")
    mh_port: bool = kw(Flag(), False, keyword="mh-port")
    mh_fallback: bool = kw(Flag(), False, keyword="mh-fallback")
    hashed: bool = kw(Flag(), False)  # old spelling for the sh scheduler's hashing flag
    ops: bool = kw(Flag(), False)
    lvs_method: LvsMethod | None = kw(LvsMethodConv(), aliases=("lb_kind",))
    persistence_engine: str | None = kw(Str())
    persistence_timeout: int | None = kw(PersistenceTimeout())
    persistence_granularity: Granularity | None = kw(GranularityConv())
    protocol: str | None = kw(Choice("TCP", "UDP", "SCTP"))
    ha_suspend: bool = kw(Flag(), False)
    smtp_alert: bool | None = kw(Flag())  # None: global smtp_alert / smtp_alert_checker
    virtualhost: str | None = kw(Str())
    snmp_name: str | None = kw(Text(), unsupported="SNMP is not implemented")
    alpha: bool = kw(Flag(), False)
    omega: bool = kw(Flag(), False)
    quorum: int = kw(Int(1, U32), 1)
    hysteresis: int = kw(Int(0, U32), 0)
    quorum_up: Script | None = kw(ScriptCmd(with_user=True))
    quorum_down: Script | None = kw(ScriptCmd(with_user=True))
    ip_family: str | None = kw(FAMILY)  # after finish: the service's family
    sorry_server: SorryServer | None = kw(SorryServerConv())
    sorry_server_inhibit: bool = kw(Flag(), False)
    sorry_server_lvs_method: LvsMethod | None = kw(LvsMethodConv())
    connect_timeout: float = kw(Float(0.000001, CONNECT_TIMEOUT_MAX), DEFAULT_CONNECT_TIMEOUT)
    retry: int = kw(Int(1, U32), DEFAULT_RETRY)
    delay_before_retry: float = kw(Float(0, TIMER_MAX), DEFAULT_DELAY_BEFORE_RETRY)
    warmup: float | None = kw(Float(0, TIMER_MAX))  # None: up to delay_loop
    delay_loop: float = kw(Float(0.000001, TIMER_MAX), DEFAULT_DELAY_LOOP)
    inhibit_on_failure: bool = kw(Flag(), False)
    weight: int = kw(Int(1, WEIGHT_MAX), 1)  # accepted by keepalived, not documented
    real_server: tuple[RealServer, ...] = kw(RealServerConv(), many="list")

    def __str__(self) -> str:
        if self.fwmark is not None:
            return f"fwmark {self.fwmark}"
        if self.group is not None:
            return f"group {self.group}"
        return _endpoint(self.address, self.port)

    @property
    def family(self) -> int:
        """4 or 6: the service's address family (after finish)."""
        if self.address is not None:
            return self.address.version
        return 6 if self.ip_family == "inet6" else 4

    def finish(self, ctx: Context) -> Self:
        name = f"virtual_server {self}"
        vs = self
        changes: dict[str, Any] = {}

        if vs.fwmark is not None:
            if vs.protocol is not None:
                # keepalived's words; its -t fails on this (exit 5), so a reset.
                ctx.diags.reset(
                    f"{name}: protocol specified for fwmark - protocol will be ignored", vs.where("protocol")
                )
                changes["protocol"] = None
        elif vs.protocol is None:
            # keepalived 2.2.7: "no protocol set - defaulting to UDP".
            ctx.diags.reset(f"{name}: no protocol set; using UDP", vs.location)
            changes["protocol"] = "UDP"
        if vs.lvs_sched is None:
            ctx.diags.reset(f"{name}: no lvs_sched (lb_algo) set; using {DEFAULT_SCHEDULER}", vs.location)
            changes["lvs_sched"] = DEFAULT_SCHEDULER
        if vs.lvs_method is None:
            ctx.diags.reset(f"{name}: no lvs_method (lb_kind) set; using NAT", vs.location)
            changes["lvs_method"] = NAT
        if changes:
            vs = replace(vs, **changes)
            changes = {}

        if vs.address is not None and vs.port is None and vs.persistence_timeout is None:
            ctx.diags.reset(
                f"{name}: a port can only be left out for a persistent service; "
                f"using persistence_timeout {DEFAULT_PERSISTENCE_TIMEOUT}",
                vs.location,
            )
            vs = replace(vs, persistence_timeout=DEFAULT_PERSISTENCE_TIMEOUT)
        vs = vs._check_scheduler_flags(ctx)
        if vs.ops and vs.protocol != "UDP":
            ctx.diags.reset(f"{name}: ops (one packet scheduling) requires protocol UDP; ops off", vs.where("ops"))
            vs = replace(vs, ops=False)
        if vs.sorry_server is None:
            for key in ("sorry_server_lvs_method", "sorry_server_inhibit"):
                if key in vs.locations:
                    ctx.diags.reset(f"{name}: {key} without sorry_server; ignored", vs.where(key))
            if vs.sorry_server_lvs_method is not None or vs.sorry_server_inhibit:
                vs = replace(vs, sorry_server_lvs_method=None, sorry_server_inhibit=False)

        vs = vs._resolve_real_servers(ctx)
        vs = vs._check_quorum(ctx)
        if vs.group is None:
            vs = vs.check_family(vs._own_family(ctx), ctx)
        return vs

    def _check_scheduler_flags(self, ctx: Context) -> Self:
        # ipvsadm(8): sh-port/sh-fallback (and the old `hashed`) are sh flags, mh-* mh flags.
        off: dict[str, bool] = {}
        for field, keyword, sched in (
            ("hashed", "hashed", "sh"),
            ("sh_port", "sh-port", "sh"),
            ("sh_fallback", "sh-fallback", "sh"),
            ("mh_port", "mh-port", "mh"),
            ("mh_fallback", "mh-fallback", "mh"),
        ):
            if getattr(self, field) and self.lvs_sched != sched:
                ctx.diags.reset(
                    f"virtual_server {self}: {keyword} only applies to the {sched} scheduler; ignored",
                    self.where(field),
                )
                off[field] = False
        return replace(self, **off) if off else self

    def _resolve_real_servers(self, ctx: Context) -> Self:
        """Fill each real server's and checker's inherited options; drop duplicates."""
        vs_explicit = {k: getattr(self, k) for k in _CASCADE if k in self.locations}
        vs_explicit["virtualhost"] = self.virtualhost
        defaults: dict[str, Any] = {
            "alpha": self.alpha,
            "connect_timeout": self.connect_timeout,
            "retry": self.retry,
            "delay_before_retry": self.delay_before_retry,
            "delay_loop": self.delay_loop,
            "inhibit_on_failure": self.inhibit_on_failure,
            "virtualhost": self.virtualhost,
            "lvs_method": self.lvs_method,
        }
        seen: set[tuple[IPAddress, int | None]] = set()
        servers: list[RealServer] = []
        for rs in self.real_server:
            port = rs.port if rs.port is not None else self.port
            method = rs.lvs_method or self.lvs_method or NAT
            if self.port is not None and port != self.port and method.kind in ("DR", "TUN"):
                ctx.diags.reset(
                    f"virtual_server {self}: real server {rs} port does not match the virtual server's "
                    f"with lvs_method {method.kind}; using {self.port}",
                    rs.location,
                )
                port = self.port
            key = (rs.address, port)
            if key in seen:
                ctx.diags.reset(
                    f"virtual_server {self}: real server {_endpoint(rs.address, port)} is duplicated; "
                    "the second one is ignored",
                    rs.location,
                )
                continue
            seen.add(key)
            servers.append(self._resolved_rs(rs, port, method, vs_explicit, defaults))
        warmup = self.warmup if self.warmup is not None else self.delay_loop
        return replace(self, real_server=tuple(servers), warmup=warmup)

    def _resolved_rs(
        self, rs: RealServer, port: int | None, method: LvsMethod, vs_explicit: dict[str, Any], defaults: dict[str, Any]
    ) -> RealServer:
        """The real server with its inherited options, and its checkers with theirs (the
        fields are read from vars(), where a field left at its default, None, is absent:
        this runs for every real server)."""
        mine = vars(rs)
        explicit = dict(vs_explicit)
        explicit.update({k: mine[k] for k in _CASCADE if mine.get(k) is not None})
        if rs.virtualhost is not None:
            explicit["virtualhost"] = rs.virtualhost
        changes: dict[str, Any] = {"port": port, "lvs_method": method}
        if "weight" not in rs.locations:
            changes["weight"] = self.weight  # keepalived: a real server's weight defaults to the VS's `weight`
        for k in _RS_INHERITED:
            if mine.get(k) is None and k != "lvs_method":
                changes[k] = explicit.get(k, defaults.get(k))
        if changes.get("warmup", rs.warmup) is None:
            changes["warmup"] = changes.get("delay_loop", rs.delay_loop)
        for cname in rs.locations:
            if cname in _CHECKER_SET:
                changes[cname] = tuple(c.resolve(explicit) for c in mine[cname])
        return evolve(rs, changes)

    def _check_quorum(self, ctx: Context) -> Self:
        vs = self
        total = sum(rs.weight for rs in vs.real_server)
        if "quorum" in vs.locations and vs.quorum > total:
            ctx.diags.reset(
                f"virtual_server {vs}: quorum {vs.quorum} exceeds the total weight of the real servers "
                f"({total}); using {total}",
                vs.where("quorum"),
            )
            vs = replace(vs, quorum=total)
        if vs.hysteresis and vs.hysteresis >= vs.quorum:
            use = max(vs.quorum - 1, 0)
            ctx.diags.reset(
                f"virtual_server {vs}: hysteresis {vs.hysteresis} must be below quorum {vs.quorum}; using {use}",
                vs.where("hysteresis"),
            )
            vs = replace(vs, hysteresis=use)
        return vs

    def _own_family(self, ctx: Context) -> int | None:
        """The family of an address or fwmark service (None: cannot tell)."""
        if self.address is not None:
            if self.ip_family is not None and self.ip_family != _family_name(self.address.version):
                ctx.diags.reset(
                    f"virtual_server {self}: ip_family {self.ip_family} conflicts with the address family; ignored",
                    self.where("ip_family"),
                )
            return self.address.version
        return None

    def check_family(self, family: int | None, ctx: Context) -> Self:
        """Real/sorry servers that are not tunnelled must be of the service's family.
        `family` None (a fwmark service): from ip_family, persistence_granularity, the
        non-tunnelled servers, else the tunnelled servers if they agree, else IPv4."""
        servers = [(rs.address.version, rs.method.tunnelled) for rs in self.real_server]
        if self.sorry_server is not None:
            sorry_method = self.sorry_server_lvs_method or self.lvs_method or NAT
            servers.append((self.sorry_server.address.version, sorry_method.tunnelled))
        if family is None:
            if self.ip_family is not None:
                family = 6 if self.ip_family == "inet6" else 4
            elif isinstance(self.persistence_granularity, ipaddress.IPv4Address):
                family = 4
            else:
                plain = [v for v, tun in servers if not tun]
                every = {v for v, _ in servers}
                family = plain[0] if plain else (every.pop() if len(every) == 1 else 4)
        vs = self
        kept = []
        for rs in vs.real_server:
            if rs.address.version != family and not rs.method.tunnelled:
                ctx.diags.reset(
                    f"virtual_server {vs}: real server {rs} is not of the virtual server's address family "
                    "and is not tunnelled; real server ignored",
                    rs.location,
                )
                continue
            kept.append(rs)
        changes: dict[str, Any] = {}
        if len(kept) != len(vs.real_server):
            changes["real_server"] = tuple(kept)
        if vs.sorry_server is not None and vs.sorry_server.address.version != family:
            method = vs.sorry_server_lvs_method or vs.lvs_method or NAT
            if not method.tunnelled:
                ctx.diags.reset(
                    f"virtual_server {vs}: sorry_server {vs.sorry_server} is not of the virtual server's "
                    "address family and is not tunnelled; ignored",
                    vs.where("sorry_server"),
                )
                changes.update(sorry_server=None, sorry_server_lvs_method=None, sorry_server_inhibit=False)
        if isinstance(vs.persistence_granularity, ipaddress.IPv4Address) and family == 6:
            ctx.diags.reset(
                f"virtual_server {vs}: persistence_granularity of an IPv6 service is a prefix length; ignored",
                vs.where("persistence_granularity"),
            )
            changes["persistence_granularity"] = None
        changes["ip_family"] = _family_name(family)
        return replace(vs, **changes)

    @property
    def all_tunnelled(self) -> bool:
        methods = [rs.method for rs in self.real_server]
        if self.sorry_server is not None:
            methods.append(self.sorry_server_lvs_method or self.lvs_method or NAT)
        return all(m.tunnelled for m in methods)


class VirtualServerConv:
    takes_block = True
    syntax = "<IPADDR> [<PORT>] | fwmark <INTEGER> | group <STRING> { ... }"

    def __call__(self, stmt: Stmt, ctx: Context) -> VirtualServer:
        args = stmt.args
        header: dict[str, Any] = {}
        if not args:
            raise ConfigValueError("expected <IPADDR> [<PORT>], fwmark <INTEGER> or group <STRING>")
        if args[0] in ("fwmark", "group"):
            if len(args) < 2:
                raise ConfigValueError(f"'{args[0]}' needs a value")
            header[args[0]] = _FWMARK.parse(args[1]) if args[0] == "fwmark" else args[1]
            used = 2
        else:
            header["address"] = _ADDR.parse(args[0])
            used = 1
            if len(args) > 1:
                header["port"] = _PORT.parse(args[1])
                used = 2
        if len(args) > used:
            ctx.diags.reset(f"virtual_server: extra words '{' '.join(args[used:])}' ignored", stmt.location)
        if stmt.block is None:
            raise ConfigValueError("needs a { } block")
        return parse_block(VirtualServer, stmt.block, ctx, location=stmt.location, **header)


# ---------------------------------------------------------------- top level


VSG_CONV = VsgConv()
VIRTUAL_SERVER_CONV = VirtualServerConv()
SSL_CONV: Sub[SslConf] = Sub(SslConf)

L = TypeVar("L", bound=LvsTop)


def finish_lvs(top: L, ctx: Context) -> L:
    """What keepalived checks across virtual servers, once the top level is read (LvsTop.finish_lvs)."""
    servers: list[VirtualServer] = []
    changed = False
    seen: set[tuple[object, ...]] = set()
    for vs in top.virtual_server:
        new = _finish_group(top, vs, ctx) if vs.group is not None else vs
        new = _prune_checkers(top, new, ctx) if new is not None else None
        changed = changed or new is not vs
        if new is None:
            continue
        # keepalived says nothing, but IPVS cannot hold the same service twice.
        key = (new.address, new.port, new.fwmark, new.group, new.protocol, new.ip_family)
        if key in seen:
            ctx.diags.warning(
                f"virtual_server {new}" + (f" ({new.protocol})" if new.protocol else "") + " is defined more than once",
                new.location,
            )
        seen.add(key)
        servers.append(new)
    return replace(top, virtual_server=tuple(servers)) if changed else top


def _finish_group(top: LvsTop, vs: VirtualServer, ctx: Context) -> VirtualServer | None:
    vsg = top.virtual_server_group.get(vs.group or "")
    if vsg is None:
        ctx.diags.reset(
            f"virtual_server group {vs.group}: no virtual_server_group '{vs.group}' is defined; virtual server ignored",
            vs.location,
        )
        return None
    families = vsg.families
    if len(families) > 1 and not vs.all_tunnelled:
        ctx.diags.reset(
            f"virtual_server group {vs.group}: the group has both IPv4 and IPv6 entries, which needs "
            "all real and sorry servers tunnelled; virtual server ignored",
            vs.location,
        )
        return None
    if len(families) > 1 and any(f.family is None for f in vsg.fwmarks):
        ctx.diags.reset(
            f"virtual_server group {vs.group}: a group with IPv4 and IPv6 entries needs inet or inet6 "
            "on its fwmarks; virtual server ignored",
            vs.location,
        )
        return None
    return vs.check_family(next(iter(families)) if len(families) == 1 else None, ctx)


def _prune_checkers(top: LvsTop, vs: VirtualServer, ctx: Context) -> VirtualServer:
    """Drop the checkers that cannot run: a MISC_CHECK whose script security
    disabled, a FILE_CHECK naming no top-level track_file (when that is modelled)."""
    tracked = getattr(top, "track_file", None)
    if not isinstance(tracked, Mapping):
        tracked = None
    servers = []
    changed = False
    for rs in vs.real_server:
        if not (rs.misc_check or (rs.file_check and tracked is not None)):
            servers.append(rs)
            continue

        def keep(c: object, rs: RealServer = rs) -> bool:
            if isinstance(c, MiscCheck) and c.misc_path is None:
                ctx.diags.reset(f"real_server {rs}: MISC_CHECK has no usable misc_path; checker ignored", c.location)
                return False
            if isinstance(c, FileCheck) and tracked is not None and c.track_file not in tracked:
                ctx.diags.reset(
                    f"real_server {rs}: FILE_CHECK track_file '{c.track_file}' is not defined; checker ignored",
                    c.where("track_file"),
                )
                return False
            return True

        new = rs.with_checkers(keep)
        changed = changed or new is not rs
        servers.append(new)
    return replace(vs, real_server=tuple(servers)) if changed else vs
