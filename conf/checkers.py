"""Health checker blocks of a real_server (keepalived.conf(5), LVS CONFIGURATION).

Each checker type is a frozen dataclass. The connection options are shared through
`ConnChecker`; MISC_CHECK only has the options from `alpha` on (`CheckerBase`);
FILE_CHECK and BFD_CHECK have none of them. Timers and counts left unset (None) here
are filled in by the virtual server, which knows the real server's and its own values
(VS -> RS -> checker, then the checker type's default): see `resolve`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from conf.modelclass import model_class
from conf.schema import Block, ConfigValueError, Context, evolve, kw, parse_block, replace
from conf.syntax import Stmt
from conf.trackers import FILE_DEF_WEIGHT, Weight, WeightConv
from conf.values import (
    Choice,
    Flag,
    Float,
    Int,
    IpAddr,
    IPAddress,
    Script,
    ScriptCmd,
    Str,
    Words,
    _args,
)

U32 = 4294967295
# keepalived reads timers in microseconds into unsigned fields: these are its ranges.
TIMER_MAX = 18446744073709.551614
CONNECT_TIMEOUT_MAX = 4294.967295

DEFAULT_DELAY_LOOP = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY = 1
DEFAULT_DELAY_BEFORE_RETRY = 1.0
DEFAULT_SMTP_HELO = "smtpchecker.keepalived.org"

CHECKER_KEYWORDS = (
    "HTTP_GET",
    "SSL_GET",
    "TCP_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "MISC_CHECK",
    "BFD_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
)


class CheckerSub:
    """A checker `{ }` block. Stamps the order the checkers were given in (so a real
    server can list them in config order) and drops a checker keepalived would skip
    (an HTTP_GET without url, a MISC_CHECK without misc_path, ...)."""

    takes_block = True
    syntax = "{ ... }"

    def __init__(self, cls: type[Block]) -> None:
        self.cls = cls

    def __call__(self, stmt: Stmt, ctx: Context) -> Any:
        if stmt.args:
            ctx.diags.reset(f"'{stmt.keyword}' takes no value: '{' '.join(stmt.args)}' ignored", stmt.location)
        if stmt.block is None:
            raise ConfigValueError("needs a { } block")
        seq = ctx.settings.get("lvs.checker_seq", 0) + 1
        ctx.settings["lvs.checker_seq"] = seq
        block = parse_block(self.cls, stmt.block, ctx, location=stmt.location, seq=seq)
        problem = getattr(block, "problem", "")
        if problem:
            raise ConfigValueError(problem)
        return block


# ---------------------------------------------------------------- value converters


class Hex(bytes):
    """Bytes that print as hex digits (in --print-config)."""

    def __str__(self) -> str:
        return self.hex()


class HexBytes:
    """keepalived's free-form HEX_STR (UDP_CHECK payload): each word is read two digits
    at a time and an odd last digit is one byte, so `Ab12f 3` is AB 12 0F 03."""

    takes_block = False
    syntax = "<HEX_STR>"
    wildcard = False

    def words(self, args: tuple[str, ...]) -> tuple[bytes, bytes]:
        data = bytearray()
        mask = bytearray()  # bits that must match (require_reply's X digits match anything)
        for word in args:
            for i in range(0, len(word), 2):
                pair = word[i : i + 2]
                if len(pair) == 1:
                    pair = "0" + pair  # an odd last digit is the whole byte
                byte = 0
                bits = 0
                for ch in pair:
                    byte <<= 4
                    bits <<= 4
                    if ch in "xX" and self.wildcard:
                        continue
                    try:
                        byte |= int(ch, 16)
                    except ValueError:
                        raise ConfigValueError(f"'{word}' is not a hex string") from None
                    bits |= 0xF
                data.append(byte)
                mask.append(bits)
        return Hex(data), Hex(mask)

    def __call__(self, stmt: Stmt, ctx: Context) -> bytes:
        if not stmt.args:
            raise ConfigValueError("missing value")
        return self.words(stmt.args)[0]


@dataclass(frozen=True)
class ReplyPattern:
    """require_reply: the bytes a reply must start with; `mask` clears X digits.
    Empty: any reply will do."""

    data: bytes = b""
    mask: bytes = b""

    def __str__(self) -> str:
        return "".join(
            "".join("X" if not (m >> s) & 0xF else f"{(d >> s) & 0xF:X}" for s in (4, 0))
            for d, m in zip(self.data, self.mask, strict=True)
        )


class ReplyHex(HexBytes):
    syntax = "[<HEX_STR>]"
    wildcard = True

    def __call__(self, stmt: Stmt, ctx: Context) -> ReplyPattern:  # type: ignore[override]
        data, mask = self.words(stmt.args)
        return ReplyPattern(data, mask)


_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


class Digest:
    """An MD5 digest as genhash prints it: 32 hex digits."""

    takes_block = False
    syntax = "<MD5 HEX>"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        if len(stmt.args) != 1:
            raise ConfigValueError("needs exactly one value")
        text = stmt.args[0]
        if len(text) != 32:
            raise ConfigValueError(f"digest '{text}' should be 32 hex characters, not {len(text)}")
        if not _HEX32.fullmatch(text):
            raise ConfigValueError(f"digest '{text}' is not hexadecimal")
        return text.lower()


@dataclass(frozen=True)
class CodeRange:
    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.first <= code <= self.last


class CodeRanges(tuple[CodeRange, ...]):
    """status_code's ranges; prints as the config writes them (`200-299 401`)."""

    __slots__ = ()

    def __str__(self) -> str:
        return " ".join(str(r) for r in self)


DEFAULT_STATUS_CODES = CodeRanges((CodeRange(200, 299),))


class StatusCodes:
    """`status_code 200-299 401 ...`: codes and ranges in 100..599. A bad item is
    reported and skipped, as keepalived does, keeping the good ones."""

    takes_block = False
    syntax = "<INTEGER|RANGE> ..."

    def __call__(self, stmt: Stmt, ctx: Context) -> CodeRanges:
        if not stmt.args:
            raise ConfigValueError("missing value")
        out: list[CodeRange] = []
        for item in stmt.args:
            first, sep, last = item.partition("-")
            try:
                lo = int(first, 10)
                hi = int(last, 10) if sep else lo
            except ValueError:
                lo = hi = -1
            if not (100 <= lo <= hi <= 599):
                ctx.diags.reset(
                    f"status_code: invalid status code '{item}' (100-599 or a range of them); ignored", stmt.location
                )
                continue
            out.append(CodeRange(lo, hi))
        if not out:
            raise ConfigValueError("no valid status code")
        return CodeRanges(out)


REGEX_OPTIONS = (
    "allow_empty_class",
    "alt_bsux",
    "auto_callout",
    "caseless",
    "dollar_endonly",
    "dotall",
    "dupnames",
    "extended",
    "firstline",
    "match_unset_backref",
    "multiline",
    "never_ucp",
    "never_utf",
    "no_auto_capture",
    "no_auto_possess",
    "no_dotstar_anchor",
    "no_start_optimize",
    "ucp",
    "ungreedy",
    "utf",
    "never_backslash_c",
    "alt_circumflex",
    "alt_verbnames",
    "use_offset_limit",
)
_REGEX_OPTION_SET = frozenset(REGEX_OPTIONS)


class RegexOptions:
    takes_block = False
    syntax = "<OPTIONS>"

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[str, ...]:
        if not stmt.args:
            raise ConfigValueError("missing value")
        bad = [w for w in stmt.args if w not in _REGEX_OPTION_SET]
        if bad:
            raise ConfigValueError(f"unknown option(s) {' '.join(bad)} (see the man page for the list)")
        return tuple(stmt.args)


@dataclass(frozen=True)
class RegexStack:
    start: int
    max: int


class RegexStackConv:
    takes_block = False
    syntax = "<START> <MAX>"

    def __call__(self, stmt: Stmt, ctx: Context) -> RegexStack:
        if len(stmt.args) != 2:
            raise ConfigValueError("needs START and MAX sizes")
        start, top = (Int(1, U32).parse(a) for a in stmt.args)
        if start > top:
            raise ConfigValueError(f"start size {start} is larger than the maximum {top}")
        return RegexStack(start, top)


# ---------------------------------------------------------------- checker blocks


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a checker runs and how it retries (keepalived.conf(5): delay_loop, retry,
    delay_before_retry), and the most connections one run makes (a url each for
    HTTP_GET, the real server and each host for SMTP_CHECK)."""

    delay_loop: float
    delay_before_retry: float
    retry: int = 0
    probes_per_run: int = 1


def _every_delay_loop(delay_loop: float) -> Schedule:
    """FILE_CHECK and BFD_CHECK: no retries, on the virtual server's delay_loop."""
    return Schedule(delay_loop, delay_loop)


_RESOLVED_OPTIONS = ("delay_loop", "alpha", "retry", "delay_before_retry", "connect_timeout", "warmup")
_OPTIONS_OF: dict[type, tuple[str, ...]] = {}


def _resolved_options(cls: type) -> tuple[str, ...]:
    """Those of _RESOLVED_OPTIONS that checker class `cls` has (each checker has its own)."""
    names = _OPTIONS_OF.get(cls)
    if names is None:
        fields = {f.name for f in dataclasses.fields(cls)}
        names = _OPTIONS_OF[cls] = tuple(n for n in _RESOLVED_OPTIONS if n in fields)
    return names


@model_class
class CheckerBase(Block):
    """The options every checker with standard options has (MISC_CHECK has only these).
    None: not given here; `resolve` fills it from the real/virtual server."""

    label: ClassVar[str] = "a checker"
    type_name: ClassVar[str] = ""
    inline_fields: ClassVar[tuple[str, ...]] = (
        "locations",
        "seq",
        "alpha",
        "retry",
        "delay_before_retry",
        "warmup",
        "delay_loop",
    )
    draft: ClassVar[bool] = True  # resolved by the virtual server (`resolve`)

    alpha: bool | None = kw(Flag())
    retry: int | None = kw(Int(0, U32), aliases=("nb_get_retry",), deprecated=("nb_get_retry",))
    delay_before_retry: float | None = kw(Float(0, TIMER_MAX))
    warmup: float | None = kw(Float(0, TIMER_MAX))
    delay_loop: float | None = kw(Float(0.000001, TIMER_MAX))
    log_all_failures: bool = kw(Flag(), False)
    # Position among the real server's checkers (config order); not a keyword.
    seq: int = dataclasses.field(default=0, compare=False, repr=False)

    # Type defaults applied after the VS -> RS cascade (man page, delay_before_retry and DNS/MISC notes).
    default_retry: ClassVar[int] = DEFAULT_RETRY
    default_delay_before_retry: ClassVar[float | None] = DEFAULT_DELAY_BEFORE_RETRY  # None: delay_loop

    @property
    def problem(self) -> str:
        """Why keepalived would drop this checker, or ''."""
        return ""

    @property
    def starts_down(self) -> bool:
        """alpha: the checker starts down, so its real server waits for it to pass."""
        return bool(self.alpha)

    def schedule(self, vs_delay_loop: float) -> Schedule:
        """The resolved timing (`resolve` fills them; the virtual server's delay_loop
        stands in for one that was never resolved)."""
        delay_loop = self.delay_loop if self.delay_loop is not None else vs_delay_loop
        dbr = self.delay_before_retry
        return Schedule(
            delay_loop=delay_loop,
            delay_before_retry=dbr if dbr is not None else delay_loop,
            retry=self.retry or 0,
            probes_per_run=self.probes_per_run,
        )

    @property
    def probes_per_run(self) -> int:
        return 1

    def resolve(self, inherited: dict[str, Any]) -> Self:
        """Fill unset options from `inherited` (the real server's, then the virtual
        server's explicit values), then the type's defaults."""
        changes: dict[str, Any] = {}
        for name in _resolved_options(type(self)):
            if getattr(self, name) is not None:
                continue  # given here
            value = inherited.get(name)
            if value is None:
                value = self._type_default(name, changes)
            changes[name] = value
        return evolve(self, changes) if changes else self

    def _type_default(self, name: str, changes: dict[str, Any]) -> Any:
        delay_loop = changes.get("delay_loop", self.delay_loop)
        if name == "alpha":
            return False
        if name == "retry":
            return self.default_retry
        if name == "delay_before_retry":
            d = self.default_delay_before_retry
            return delay_loop if d is None else d
        if name == "delay_loop":
            return DEFAULT_DELAY_LOOP
        if name == "connect_timeout":
            return DEFAULT_CONNECT_TIMEOUT
        # warmup: random start delay of at most delay_loop by default.
        return delay_loop


@model_class
class ConnChecker(CheckerBase):
    """Checkers that open a connection: the generic connection options."""

    inline_fields: ClassVar[tuple[str, ...]] = (*CheckerBase.inline_fields, "connect_timeout", "connect_port")

    connect_ip: IPAddress | None = kw(IpAddr())
    connect_port: int | None = kw(Int(1, 65535))
    bindto: IPAddress | None = kw(IpAddr())
    bind_if: str | None = kw(Str())
    bind_port: int | None = kw(Int(1, 65535))
    fwmark: int | None = kw(Int(0, U32))
    connect_timeout: float | None = kw(Float(0.000001, CONNECT_TIMEOUT_MAX))

    def finish(self, ctx: Context) -> Self:
        out = self
        if out.bind_if is not None and ctx.interfaces is not None and out.bind_if not in ctx.interfaces:
            ctx.diags.warning(f"bind_if: interface '{out.bind_if}' does not exist here", out.where("bind_if"))
        if out.connect_ip is not None and out.bindto is not None and out.connect_ip.version != out.bindto.version:
            ctx.diags.warning(
                f"bindto {out.bindto} is not of the family of connect_ip {out.connect_ip}: the check cannot connect",
                out.where("bindto"),
            )
        return out


@model_class
class TcpCheck(ConnChecker):
    label: ClassVar[str] = "TCP_CHECK"
    type_name: ClassVar[str] = "TCP_CHECK"


@model_class
class PingCheck(ConnChecker):
    label: ClassVar[str] = "PING_CHECK"
    type_name: ClassVar[str] = "PING_CHECK"


# regex_options with a Python `re` equivalent. The others either only tune PCRE2's
# speed (no_auto_possess, no_start_optimize, no_dotstar_anchor, auto_callout, never_*)
# or have no equivalent and are ignored: ungreedy, dollar_endonly, allow_empty_class,
# alt_bsux, match_unset_backref, dupnames, alt_circumflex, alt_verbnames,
# use_offset_limit, ucp/utf (the body is matched as bytes).
REGEX_FLAGS = {"caseless": re.IGNORECASE, "dotall": re.DOTALL, "multiline": re.MULTILINE, "extended": re.VERBOSE}


def compile_regex(url: Url) -> re.Pattern[bytes] | None:
    """The url's regex for matching the body bytes; raises re.error when Python cannot
    compile it."""
    if url.regex is None:
        return None
    flags = 0
    for opt in url.regex_options:
        flags |= REGEX_FLAGS.get(opt, 0)
    return re.compile(url.regex.encode("utf-8", "surrogateescape"), flags)


class UrlPath:
    """`path PATH`. keepalived reads a one-line block (`url { path /x status_code 200 }`)
    as the line `path /x status_code 200` and keeps the first word (check_http.c
    path_handler): the url runs with its default status codes. So do we, with a warning,
    rather than dropping the url and with it the whole checker."""

    takes_block = False
    syntax = "PATH"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        args = _args(stmt, 1, None)
        if len(args) > 1:
            ctx.diags.warning(
                f"path: extra value(s) '{' '.join(args[1:])}' ignored, as keepalived does; "
                "put each keyword of the url block on a line of its own",
                stmt.location,
            )
        return args[0]


@model_class
class Url(Block):
    label: ClassVar[str] = "url"
    inline_fields: ClassVar[tuple[str, ...]] = ("locations", "path", "digest", "status_code")

    path: str | None = kw(UrlPath())
    digest: str | None = kw(Digest())
    status_code: tuple[CodeRange, ...] = kw(StatusCodes(), DEFAULT_STATUS_CODES)
    virtualhost: str | None = kw(Str())
    regex: str | None = kw(Str())
    regex_no_match: bool = kw(Flag(), False)
    regex_options: tuple[str, ...] = kw(RegexOptions(), ())
    regex_stack: RegexStack | None = kw(RegexStackConv())
    regex_min_offset: int = kw(Int(0, U32), 0)
    regex_max_offset: int | None = kw(Int(0, U32))

    def finish(self, ctx: Context) -> Self:
        out = self
        if out.regex is None:
            for name in ("regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset"):
                if name in out.locations:
                    ctx.diags.warning(f"{name} without regex has no effect", out.where(name))
        elif out.regex_max_offset is not None and out.regex_max_offset < out.regex_min_offset:
            ctx.diags.reset(
                f"regex_max_offset {out.regex_max_offset} is below regex_min_offset "
                f"{out.regex_min_offset}; regex_max_offset ignored",
                out.where("regex_max_offset"),
            )
            out = replace(out, regex_max_offset=None)
        if out.regex is not None:
            try:
                compile_regex(out)
            except re.error as e:
                # keepalived compiles with PCRE2; we use Python's re: say so at -t time
                ctx.diags.warning(
                    f"regex '{out.regex}' does not compile with Python's re ({e}); this url fails at every check",
                    out.where("regex"),
                )
        return out

    def matches_status(self, code: int) -> bool:
        return any(code in r for r in self.status_code)


class UrlSub:
    """url { ... }; a url without path is dropped, as keepalived does."""

    takes_block = True
    syntax = "{ ... }"

    def __call__(self, stmt: Stmt, ctx: Context) -> Url:
        if stmt.block is None:
            raise ConfigValueError("needs a { } block")
        if stmt.args:
            ctx.diags.reset(f"'url' takes no value: '{' '.join(stmt.args)}' ignored", stmt.location)
        url = parse_block(Url, stmt.block, ctx, location=stmt.location)
        if url.path is None:
            raise ConfigValueError("the url has no path")
        return url


@model_class
class HttpGet(ConnChecker):
    label: ClassVar[str] = "HTTP_GET"
    type_name: ClassVar[str] = "HTTP_GET"
    inline_fields: ClassVar[tuple[str, ...]] = (*ConnChecker.inline_fields, "url", "virtualhost")
    default_delay_before_retry: ClassVar[float | None] = 3.0

    url: tuple[Url, ...] = kw(UrlSub(), many="list")
    # 1.0C is 1.0 plus "Connection: close" (which 1.1 sends anyway).
    http_protocol: str = kw(Choice("1.0", "1.0C", "1.1"), "1.0")
    fast_recovery: bool = kw(Flag(), False)
    virtualhost: str | None = kw(Str())
    enable_sni: bool = kw(Flag(), False)

    @property
    def problem(self) -> str:
        return "" if self.url else "the checker has no url; the checker is ignored"

    def resolve(self, inherited: dict[str, Any]) -> Self:
        out = super().resolve(inherited)
        if out.virtualhost is None and inherited.get("virtualhost") is not None:
            out = evolve(out, {"virtualhost": inherited["virtualhost"]})
        return out

    @property
    def is_ssl(self) -> bool:
        return False

    @property
    def probes_per_run(self) -> int:
        return max(1, len(self.url))


@model_class
class SslGet(HttpGet):
    label: ClassVar[str] = "SSL_GET"
    type_name: ClassVar[str] = "SSL_GET"

    @property
    def is_ssl(self) -> bool:
        return True


@model_class
class SmtpHost(ConnChecker):
    """SMTP_CHECK host { }: another address for the same check, with the checker's
    options as defaults."""

    label: ClassVar[str] = "SMTP_CHECK host"


@model_class
class SmtpCheck(ConnChecker):
    label: ClassVar[str] = "SMTP_CHECK"
    type_name: ClassVar[str] = "SMTP_CHECK"
    inline_fields: ClassVar[tuple[str, ...]] = (*ConnChecker.inline_fields, "host", "helo_name")

    helo_name: str = kw(Str(), DEFAULT_SMTP_HELO)
    host: tuple[SmtpHost, ...] = kw(CheckerSub(SmtpHost), many="list")

    @property
    def probes_per_run(self) -> int:
        return len(self.host) + 1

    def resolve(self, inherited: dict[str, Any]) -> Self:
        out = super().resolve(inherited)
        if not out.host:
            return out
        # A host takes unset options from its SMTP_CHECK.
        mine = {name: getattr(out, name) for name in _INHERITED_HOST_FIELDS}
        hosts = []
        for h in out.host:
            changes = {n: v for n, v in mine.items() if getattr(h, n) is None and v is not None}
            hosts.append(evolve(h, changes) if changes else h)
        return evolve(out, {"host": tuple(hosts)})


_INHERITED_HOST_FIELDS = (
    "alpha",
    "retry",
    "delay_before_retry",
    "warmup",
    "delay_loop",
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_if",
    "bind_port",
    "fwmark",
    "connect_timeout",
)


DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY")


@model_class
class DnsCheck(ConnChecker):
    label: ClassVar[str] = "DNS_CHECK"
    type_name: ClassVar[str] = "DNS_CHECK"
    inline_fields: ClassVar[tuple[str, ...]] = (*ConnChecker.inline_fields, "type", "name")
    default_retry: ClassVar[int] = 3
    default_delay_before_retry: ClassVar[float | None] = None  # delay_loop

    type: str = kw(Choice(*DNS_TYPES), "SOA")
    name: str = kw(Str(), ".")


@model_class
class MiscCheck(CheckerBase):
    label: ClassVar[str] = "MISC_CHECK"
    type_name: ClassVar[str] = "MISC_CHECK"
    inline_fields: ClassVar[tuple[str, ...]] = (*CheckerBase.inline_fields, "misc_path", "misc_timeout")
    default_retry: ClassVar[int] = 0

    misc_path: Script | None = kw(ScriptCmd())
    misc_timeout: int | None = kw(Int(0, U32))  # None: the checker uses delay_loop
    misc_dynamic: bool = kw(Flag(), False)
    user: tuple[str, ...] = kw(Words(1, 2, "USERNAME [GROUPNAME]"), ())

    @property
    def problem(self) -> str:
        # conf.security, which runs first, removes a misc_path it cannot run (unknown
        # user, insecure script) and says why; the checker then goes too, as in keepalived.
        if self.misc_path is None:
            return "no misc_path to run; the checker is ignored"
        return ""


@model_class
class UdpCheck(ConnChecker):
    label: ClassVar[str] = "UDP_CHECK"
    type_name: ClassVar[str] = "UDP_CHECK"
    inline_fields: ClassVar[tuple[str, ...]] = (*ConnChecker.inline_fields, "payload", "require_reply")

    payload: bytes | None = kw(HexBytes())  # None: keepalived's fixed filler (checks/udp.py)
    require_reply: ReplyPattern | None = kw(ReplyHex())
    min_reply_length: int = kw(Int(0, 65535), 0)
    max_reply_length: int = kw(Int(0, 65535), 255)

    def finish(self, ctx: Context) -> Self:
        out = super().finish(ctx)
        if out.min_reply_length > out.max_reply_length:
            ctx.diags.warning(
                f"min_reply_length {out.min_reply_length} > max_reply_length "
                f"{out.max_reply_length}: the check will always fail",
                out.where("min_reply_length"),
            )
        return out


@model_class
class FileCheck(Block):
    """FILE_CHECK: follows a top-level track_file; none of the standard options."""

    label: ClassVar[str] = "FILE_CHECK"
    type_name: ClassVar[str] = "FILE_CHECK"
    inline_fields: ClassVar[tuple[str, ...]] = ("locations", "track_file", "dynamic", "weight", "seq")

    track_file: str | None = kw(Str())
    dynamic: bool = kw(Flag(), False)
    weight: Weight = kw(WeightConv(*FILE_DEF_WEIGHT), Weight(1))
    seq: int = dataclasses.field(default=0, compare=False, repr=False)

    @property
    def problem(self) -> str:
        return "" if self.track_file is not None else "no track_file given; the checker is ignored"

    @property
    def starts_down(self) -> bool:
        return False

    def schedule(self, vs_delay_loop: float) -> Schedule:
        return _every_delay_loop(vs_delay_loop)

    def resolve(self, inherited: dict[str, Any]) -> Self:
        return self


@model_class
class BfdCheck(Block):
    label: ClassVar[str] = "BFD_CHECK"
    type_name: ClassVar[str] = "BFD_CHECK"
    inline_fields: ClassVar[tuple[str, ...]] = ("locations", "name", "alpha", "seq")

    name: str | None = kw(Str())
    alpha: bool = kw(Flag(), False)
    seq: int = dataclasses.field(default=0, compare=False, repr=False)

    @property
    def starts_down(self) -> bool:
        return self.alpha

    def schedule(self, vs_delay_loop: float) -> Schedule:
        return _every_delay_loop(vs_delay_loop)

    def resolve(self, inherited: dict[str, Any]) -> Self:
        return self


AnyChecker = (
    TcpCheck | PingCheck | HttpGet | SslGet | SmtpCheck | DnsCheck | MiscCheck | UdpCheck | FileCheck | BfdCheck
)
