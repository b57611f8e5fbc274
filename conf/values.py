"""Converters: how a keyword's arguments become a typed value.

A `Scalar` reads one word (`parse(text)`); used as a keyword's converter it insists on
exactly one argument. The block converters (`Sub`, `Named`, `Lines`, `Names`) read the
statement's `{ }` block. `LineOf` reads item lines such as virtual_ipaddress entries:
positional words, then `option value` pairs and bare flags, into a dataclass.

Syntax notes come from keepalived.conf(5): <BOOL> is on|off|true|false|yes|no, a
<TIMER> is seconds with a fraction allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import ipaddress
import math
import shlex
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from conf.schema import DEFERRED_MODULES, Block, ConfigValueError, Context, Converter, format_value, parse_block
from conf.syntax import Stmt

T = TypeVar("T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

_TRUE = {"on", "true", "yes"}
_FALSE = {"off", "false", "no"}


def _args(stmt: Stmt, lo: int, hi: int | None) -> tuple[str, ...]:
    n = len(stmt.args)
    if n < lo:
        raise ConfigValueError("missing value" if lo == 1 else f"needs at least {lo} values")
    if hi is not None and n > hi:
        extra = " ".join(stmt.args[hi:])
        raise ConfigValueError(f"unexpected extra value(s) '{extra}'")
    return stmt.args


class Scalar(Generic[T]):
    """A one-word value."""

    takes_block = False
    syntax = "VALUE"

    def parse(self, text: str) -> T:
        raise NotImplementedError

    def __call__(self, stmt: Stmt, ctx: Context) -> T:
        return self.parse(_args(stmt, 1, 1)[0])


class Str(Scalar[str]):
    syntax = "STRING"

    def parse(self, text: str) -> str:
        # One object for each distinct text (an interface named by a thousand instances);
        # CPython drops an interned string no longer used. A quoted word keeps its type.
        return sys.intern(text) if type(text) is str else text


class Bool(Scalar[bool]):
    syntax = "<BOOL>"

    def parse(self, text: str) -> bool:
        t = text.lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise ConfigValueError(f"'{text}' is not one of on|off|true|false|yes|no")


class Flag:
    """A keyword whose presence turns something on; an optional <BOOL> may follow."""

    takes_block = False
    syntax = "[<BOOL>]"

    def __call__(self, stmt: Stmt, ctx: Context) -> bool:
        args = _args(stmt, 0, 1)
        return Bool().parse(args[0]) if args else True


@dataclass(frozen=True)
class Int(Scalar[int]):
    lo: int | None = None
    hi: int | None = None
    syntax = "INTEGER"

    def parse(self, text: str) -> int:
        value = _INTS.get(text)
        if value is None:
            try:
                value = int(text, 0) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
            except ValueError:
                raise ConfigValueError(f"'{text}' is not an integer") from None
            if len(_INTS) < _SEEN_MAX:
                _INTS[text] = value
        _check_range(value, self.lo, self.hi)
        return value


@dataclass(frozen=True)
class Float(Scalar[float]):
    """A number of seconds (keepalived's <TIMER>) or any decimal number."""

    lo: float | None = None
    hi: float | None = None
    syntax = "<TIMER>"

    def parse(self, text: str) -> float:
        value = _FLOATS.get(text)
        if value is None:
            try:
                value = float(text)
            except ValueError:
                raise ConfigValueError(f"'{text}' is not a number") from None
            if not math.isfinite(value):
                raise ConfigValueError(f"'{text}' is not a finite number")
            if len(_FLOATS) < _SEEN_MAX:
                _FLOATS[text] = value
        _check_range(value, self.lo, self.hi)
        return value


# text -> the number read from it, for the first texts seen: the same number written
# ten thousand times (`connect_timeout 3` in every checker) is then one object, not ten
# thousand (24 or 28 bytes each). Bounded, as the daemon reads configurations for ever.
_INTS: dict[str, int] = {}
_FLOATS: dict[str, float] = {}
_SEEN_MAX = 4096


def _check_range(value: float, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = format_value(lo) if lo is not None else "-inf"
        hi_s = format_value(hi) if hi is not None else "inf"
        raise ConfigValueError(f"{format_value(value)} is outside the range [{lo_s}, {hi_s}]")


class Choice(Scalar[str]):
    def __init__(self, *options: str, aliases: Mapping[str, str] | None = None, fold: bool = True) -> None:
        self.options = options
        self.aliases = dict(aliases or {})
        self.fold = fold
        self.syntax = "|".join(options)

    def parse(self, text: str) -> str:
        key = text.lower() if self.fold else text
        for o in self.options:
            if (o.lower() if self.fold else o) == key:
                return o
        for alias, target in self.aliases.items():
            if (alias.lower() if self.fold else alias) == key:
                return target
        raise ConfigValueError(f"'{text}' is not one of {'|'.join(self.options)}")


def ip_address(text: str) -> IPAddress:
    """ipaddress.ip_address, with a fast path for dotted-quad IPv4 (a large LVS config
    has tens of thousands of them, and ipaddress's own parser is slow)."""
    try:
        return ipaddress.IPv4Address(int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"))
    except OSError:
        return ipaddress.ip_address(text)


class IpAddr(Scalar[IPAddress]):
    syntax = "IPADDR"

    def __init__(self, version: int | None = None) -> None:
        self.version = version

    def parse(self, text: str) -> IPAddress:
        try:
            addr = ip_address(text.split("%", 1)[0] if "%" in text else text)
        except ValueError:
            raise ConfigValueError(f"'{text}' is not an IP address") from None
        if self.version and addr.version != self.version:
            raise ConfigValueError(f"'{text}' is not an IPv{self.version} address")
        return addr


class IpPrefix(Scalar[IPInterface]):
    """ADDR[/LEN], keeping the host bits (an address with its prefix, like `ip addr`)."""

    syntax = "IPADDR[/LEN]"

    def __init__(self, version: int | None = None) -> None:
        self.version = version

    def parse(self, text: str) -> IPInterface:
        try:
            value = ipaddress.ip_interface(text)
        except ValueError:
            raise ConfigValueError(f"'{text}' is not an IP address or address/prefix") from None
        if self.version and value.version != self.version:
            raise ConfigValueError(f"'{text}' is not IPv{self.version}")
        return value


class IpNet(Scalar[IPNetwork]):
    """A network, or the word `default` / `all` for 0.0.0.0/0."""

    syntax = "NETWORK/LEN|default"

    def parse(self, text: str) -> IPNetwork:
        if text in ("default", "all", "any"):
            return ipaddress.ip_network("0.0.0.0/0")
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ConfigValueError(f"'{text}' is not a network (ADDR/LEN)") from None


class Port(Int):
    def __init__(self) -> None:
        super().__init__(0, 65535)


@dataclass(frozen=True)
class Script:
    """A command line from the config, split the way keepalived splits it: one quoted
    word is split on spaces except inside single quotes; several words are the argv.
    `user`/`group` are set where the keyword takes `[username [groupname]]`."""

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None

    def __str__(self) -> str:
        return " ".join(shlex.quote(a) if (not a or any(c.isspace() for c in a)) else a for a in self.argv)

    @property
    def path(self) -> str:
        return self.argv[0] if self.argv else ""


def split_command(words: Sequence[str]) -> tuple[str, ...]:
    if len(words) == 1:
        try:
            return tuple(shlex.split(words[0], posix=True))
        except ValueError:
            return tuple(words[0].split())
    return tuple(words)


class ScriptCmd:
    """A script. With `with_user`, the keyword's syntax is
    `<STRING>|<QUOTED-STRING> [username [groupname]]`: the command is the first word
    (quote it to pass arguments) and conf.security checks the user."""

    takes_block = False

    def __init__(self, with_user: bool = False) -> None:
        self.with_user = with_user
        self.syntax = "SCRIPT|QUOTED_STRING [username [groupname]]" if with_user else "SCRIPT [ARGS...]"

    def __call__(self, stmt: Stmt, ctx: Context) -> Script:
        if not self.with_user:
            argv = split_command(_args(stmt, 1, None))
            if not argv:
                raise ConfigValueError("empty command")
            return Script(argv)
        if len(stmt.args) > 3:
            extra = " ".join(stmt.args[3:])
            raise ConfigValueError(f"unexpected extra value(s) '{extra}' (quote the command if it has arguments)")
        args = _args(stmt, 1, 3)
        argv = split_command(args[:1])
        if not argv:
            raise ConfigValueError("empty command")
        return Script(argv, args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else None)


class Words:
    """All arguments as a tuple of strings."""

    takes_block = False

    def __init__(self, lo: int = 1, hi: int | None = None, syntax: str = "WORD...") -> None:
        self.lo, self.hi, self.syntax = lo, hi, syntax

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[str, ...]:
        return tuple(_args(stmt, self.lo, self.hi))


class Text:
    """All arguments joined by one space (free text, such as a mail subject)."""

    takes_block = False
    syntax = "TEXT"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        return " ".join(_args(stmt, 1, None))


class Sub(Generic[T]):
    """A `{ }` sub-block parsed as block class `cls`."""

    takes_block = True

    def __init__(self, cls: type[Block], syntax: str = "{ ... }") -> None:
        self.cls, self.syntax = cls, syntax

    def __call__(self, stmt: Stmt, ctx: Context) -> Any:
        if stmt.args:
            ctx.diags.reset(f"'{stmt.keyword}' takes no value: '{' '.join(stmt.args)}' ignored", stmt.location)
        if stmt.block is None:
            raise ConfigValueError("needs a { } block")
        return parse_block(self.cls, stmt.block, ctx, location=stmt.location)


class Deferred:
    """The converter `name` of module `module`, imported when a statement first needs it
    (or the man page asks its syntax): the blocks of a keyword family the configuration
    does not use are then never imported (conf.lvs_top)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        DEFERRED_MODULES.add(module)

    @functools.cached_property
    def target(self) -> Converter:
        """The converter, imported once (every statement of the family goes through it)."""
        converter: Converter = getattr(importlib.import_module(self.module), self.name)
        return converter

    @property
    def takes_block(self) -> bool:
        return self.target.takes_block

    @property
    def syntax(self) -> str:
        return self.target.syntax

    def __call__(self, stmt: Stmt, ctx: Context) -> Any:
        return self.target(stmt, ctx)


class Named:
    """`KEYWORD NAME { ... }`: a named block; the field maps names to blocks."""

    takes_block = True
    syntax = "NAME { ... }"

    def __init__(self, cls: type[Block]) -> None:
        self.cls = cls

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[str, Block]:
        if not stmt.args:
            raise ConfigValueError("needs a name")
        if len(stmt.args) > 1:
            extra = " ".join(stmt.args[1:])
            ctx.diags.reset(f"{stmt.keyword} {stmt.args[0]}: extra words '{extra}' ignored", stmt.location)
        if stmt.block is None:
            raise ConfigValueError(f"'{stmt.args[0]}' needs a {{ }} block")
        name = stmt.args[0]
        return name, parse_block(self.cls, stmt.block, ctx, location=stmt.location, name=name)


class Lines(Generic[T]):
    """A block whose lines are items, each converted by `item` (which sees the line
    as a statement: its first word is `keyword`)."""

    takes_block = True

    def __init__(self, item: Callable[[Stmt, Context], T], syntax: str = "{ ITEM ... }", inline: bool = False) -> None:
        self.item, self.syntax, self.inline = item, syntax, inline

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[T, ...]:
        lines = list(stmt.block or ())
        if stmt.block is None and not (self.inline and stmt.args):
            raise ConfigValueError("needs a { } block")
        if stmt.args:
            if self.inline:
                # keepalived also takes the items on the keyword's line.
                lines = [Stmt(a, (), stmt.location) for a in stmt.args] + lines
            else:
                words = " ".join(stmt.args)
                ctx.diags.reset(f"'{stmt.keyword}': '{words}' ignored before the block", stmt.location)
        out: list[T] = []
        for line in lines:
            if line.block is not None:
                ctx.diags.reset(
                    f"unexpected {{ }} block after '{line.keyword}' in {stmt.keyword}; ignored", line.location
                )
                continue
            try:
                out.append(self.item(line, ctx))
            except ConfigValueError as e:
                ctx.diags.reset(f"{stmt.keyword}: {e}; entry ignored", line.location)
        return tuple(out)


def name_item(line: Stmt, ctx: Context) -> str:
    """An item line that is a single name (sync group members, ...)."""
    if line.args:
        raise ConfigValueError(f"'{' '.join(line.words)}': expected a single name per line")
    return line.keyword


def names_item(line: Stmt, ctx: Context) -> tuple[str, ...]:
    return line.words


class Names(Lines[str]):
    def __init__(self, syntax: str = "{ NAME ... }") -> None:
        super().__init__(name_item, syntax)

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[str, ...]:
        # Several names on one line are accepted (`group { VI_1 VI_2 }`).
        flat: list[Stmt] = []
        for line in stmt.block or ():
            flat.append(Stmt(line.keyword, (), line.location, line.block))
            flat.extend(Stmt(a, (), line.location) for a in line.args)
        block = tuple(flat) if stmt.block is not None else None
        return super().__call__(Stmt(stmt.keyword, stmt.args, stmt.location, block), ctx)


@dataclass(frozen=True)
class Opt:
    """One `name VALUE` option of an item line, or a bare flag if `value` is None."""

    field: str
    value: Scalar[Any] | None = None
    also: tuple[str, ...] = ()  # alternative spellings


class LineOf:
    """An item line `POS... [opt VALUE]... [flag]...` into dataclass `cls`.

    `positional` lists (field, Scalar) read in order before the options; those after
    `required` of them may be left out. The dataclass must give every other field a
    default. Each option may appear once."""

    takes_block = False

    def __init__(
        self,
        cls: type[Any],
        positional: Sequence[tuple[str, Scalar[Any]]],
        options: Mapping[str, Opt] = {},
        *,
        required: int | None = None,
        syntax: str = "",
        finish: Callable[[Any, Stmt, Context], Any] | None = None,
    ) -> None:
        self.cls = cls
        self.positional = list(positional)
        self.required = len(self.positional) if required is None else required
        self.options: dict[str, Opt] = {}
        for name, opt in options.items():
            for word in (name, *opt.also):
                self.options[word] = opt
        self.syntax = syntax or " ".join(n.upper() for n, _ in self.positional)
        self.finish = finish

    def __call__(self, stmt: Stmt, ctx: Context) -> Any:
        return self.parse_words(list(stmt.args), stmt, ctx)

    def parse_words(self, words: list[str], stmt: Stmt, ctx: Context) -> Any:
        values: dict[str, Any] = {}
        i = 0
        for n, (fname, conv) in enumerate(self.positional):
            if i >= len(words) or (n >= self.required and words[i] in self.options):
                if n < self.required:
                    raise ConfigValueError(f"missing {fname}")
                break
            values[fname] = conv.parse(words[i])
            i += 1
        seen: set[str] = set()
        while i < len(words):
            word = words[i]
            opt = self.options.get(word)
            if opt is None:
                known = sorted(k for k in self.options if len(k) > 1)
                expected = f" (expected one of {', '.join(known)})" if known else ""
                raise ConfigValueError(f"unknown option '{word}'{expected}")
            if opt.field in seen:
                raise ConfigValueError(f"option '{word}' given twice")
            seen.add(opt.field)
            if opt.value is None:
                values[opt.field] = True
                i += 1
                continue
            if i + 1 >= len(words):
                raise ConfigValueError(f"option '{word}' needs a value")
            values[opt.field] = opt.value.parse(words[i + 1])
            i += 2
        obj = self.cls(**values)
        if self.finish is not None:
            obj = self.finish(obj, stmt, ctx)
        return obj


class ItemLine(LineOf):
    """LineOf for lines inside a block, where the first word is the keyword slot."""

    def __call__(self, stmt: Stmt, ctx: Context) -> Any:
        return self.parse_words(list(stmt.words), stmt, ctx)


def with_location(obj: Any, stmt: Stmt) -> Any:
    """Attach the item's location when its dataclass has a `location` field."""
    if dataclasses.is_dataclass(obj) and any(f.name == "location" for f in dataclasses.fields(obj)):
        return dataclasses.replace(obj, location=stmt.location)  # type: ignore[type-var]
    return obj
