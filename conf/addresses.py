"""Address lines: static_ipaddress, virtual_ipaddress and virtual_ipaddress_excluded
entries (keepalived.conf(5), "Static routes/addresses/rules" and vrrp_instance):

    <IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>]
        [peer <IPADDR>] [home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin]
        [track_group GROUP] [preferred_lft nn|forever] [no_track] [use_vmac]

keepalived skips an address it cannot use, but for most bad options it reports the
option and ignores just that option; we do the same.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar, overload

from conf.diagnostics import Location
from conf.routes import check_interface, check_track_group, dump_as, parse_uint, rt_names
from conf.schema import KW, ConfigValueError, Context
from conf.syntax import Stmt
from conf.values import IPAddress, IPInterface, ip_address

IFNAMSIZ = 16
PREFERRED_LFT_FOREVER = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class AddressOptions:
    """The options of an address line besides its address and `dev`. Most lines give
    none: their entries share NO_OPTIONS."""

    brd: IPAddress | str | None = None  # an address, or '+'/'-' (set/clear the host bits)
    scope: int | None = None  # rt_scopes number (global 0, site 200, link 253, host 254, nowhere 255)
    label: str | None = None  # IPv4 only
    peer: IPAddress | None = None
    home: bool = False
    nodad: bool = field(default=False, metadata=dump_as("-nodad"))
    mngtmpaddr: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    track_group: str | None = None  # static addresses only
    preferred_lft: int | None = None  # seconds; PREFERRED_LFT_FOREVER for `forever`
    no_track: bool = False
    use_vmac: bool = False  # VIPs only


NO_OPTIONS = AddressOptions()
# --print-config keys of the options, in the order they follow `brd` and `dev`
_OPTION_KEYS = tuple((f.name, f.metadata[KW].keyword if KW in f.metadata else f.name) for f in fields(AddressOptions))[
    1:
]
_PREFIX_BITS = 8  # an IPv4 entry's address: the address's number << 8 | the prefix length
_PREFIX_MASK = (1 << _PREFIX_BITS) - 1

Packed = int | ipaddress.IPv6Interface  # IPv4: number << _PREFIX_BITS | prefix length
T = TypeVar("T")


class _Option(Generic[T]):
    """An option of an IpAddressEntry, read from the entry's AddressOptions."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, entry: None, owner: type) -> _Option[T]: ...
    @overload
    def __get__(self, entry: IpAddressEntry, owner: type) -> T: ...
    def __get__(self, entry: IpAddressEntry | None, owner: type) -> _Option[T] | T:
        if entry is None:
            return self
        value: T = getattr(entry._options, self.name)
        return value


class IpAddressEntry:
    """One address line, immutable, compared and hashed by value (its location does not
    count). A VIP file may hold hundreds of thousands, so an entry is four slots: an IPv4
    address and its prefix length as one int (IPv6 keeps its IPv6Interface, scope
    included), `dev`, the other options (NO_OPTIONS, shared, when none is given) and the
    line as an int. `address`, `ip` and `location` are made when asked for."""

    __slots__ = ("_address", "_options", "_where", "dev")
    _address: Packed
    _options: AddressOptions
    _where: int | None  # the Location's value
    dev: str | None  # None: the vrrp_instance's interface, or default_interface for static

    def __init__(
        self, address: IPInterface, *, dev: str | None = None, location: Location | None = None,
        brd: IPAddress | str | None = None, scope: int | None = None, label: str | None = None,
        peer: IPAddress | None = None, home: bool = False, nodad: bool = False, mngtmpaddr: bool = False,
        noprefixroute: bool = False, autojoin: bool = False, track_group: str | None = None,
        preferred_lft: int | None = None, no_track: bool = False, use_vmac: bool = False,
    ) -> None:  # fmt: skip
        options = AddressOptions(
            brd, scope, label, peer, home, nodad, mngtmpaddr, noprefixroute, autojoin, track_group, preferred_lft,
            no_track, use_vmac,
        )  # fmt: skip
        _fill(self, pack(address), dev, NO_OPTIONS if options == NO_OPTIONS else options, location)

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field '{name}'")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field '{name}'")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not IpAddressEntry:
            return NotImplemented
        assert isinstance(other, IpAddressEntry)
        return self._address == other._address and self.dev == other.dev and self._options == other._options

    def __hash__(self) -> int:
        return hash((self._address, self.dev, self._options))

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild, (self._address, self.dev, self._options, self.location)

    def __repr__(self) -> str:
        options = self._options
        named = [("dev", self.dev)] + [(f.name, getattr(options, f.name)) for f in fields(options)]
        given = [f"{name}={value!r}" for name, value in named if value != getattr(NO_OPTIONS, name, None)]
        return f"IpAddressEntry({', '.join([repr(self.address), *given])})"

    def __str__(self) -> str:
        a = self._address
        return f"{ipaddress.IPv4Address(a >> _PREFIX_BITS)}/{a & _PREFIX_MASK}" if isinstance(a, int) else str(a)

    @property
    def address(self) -> IPInterface:
        """The address with its prefix length (default /32 or /128)."""
        a = self._address
        return ipaddress.IPv4Interface((a >> _PREFIX_BITS, a & _PREFIX_MASK)) if isinstance(a, int) else a

    @property
    def ip(self) -> IPAddress:
        a = self._address
        return ipaddress.IPv4Address(a >> _PREFIX_BITS) if isinstance(a, int) else a.ip

    @property
    def prefixlen(self) -> int:
        a = self._address
        return a & _PREFIX_MASK if isinstance(a, int) else a.network.prefixlen

    @property
    def family(self) -> int:
        return 4 if isinstance(self._address, int) else 6

    @property
    def location(self) -> Location | None:
        where = self._where
        return None if where is None else int.__new__(Location, where)

    @property
    def broadcast(self) -> IPAddress | None:
        """The broadcast address the kernel gets (brd '+' sets the host bits, '-' clears them)."""
        brd = self._options.brd
        if brd == "+":
            return self.address.network.broadcast_address
        if brd == "-":
            return self.address.network.network_address
        return brd if not isinstance(brd, str) else None

    def dump_items(self) -> list[tuple[str, object]]:
        """(--print-config key, value) of every option, in keepalived.conf(5)'s order."""
        options = self._options
        head: list[tuple[str, object]] = [("address", self.address), ("brd", options.brd), ("dev", self.dev)]
        return head + [(key, getattr(options, name)) for name, key in _OPTION_KEYS]

    # The options, read from its AddressOptions (shared NO_OPTIONS or its own).
    brd: _Option[IPAddress | str | None] = _Option()
    scope: _Option[int | None] = _Option()
    label: _Option[str | None] = _Option()
    peer: _Option[IPAddress | None] = _Option()
    home: _Option[bool] = _Option()
    nodad: _Option[bool] = _Option()
    mngtmpaddr: _Option[bool] = _Option()
    noprefixroute: _Option[bool] = _Option()
    autojoin: _Option[bool] = _Option()
    track_group: _Option[str | None] = _Option()
    preferred_lft: _Option[int | None] = _Option()
    no_track: _Option[bool] = _Option()
    use_vmac: _Option[bool] = _Option()


def pack(address: IPInterface) -> Packed:
    """The entry's form of `address`."""
    if isinstance(address, ipaddress.IPv4Interface):
        return int(address) << _PREFIX_BITS | address.network.prefixlen
    return address


def _fill(entry: IpAddressEntry, address: Packed, dev: str | None, options: AddressOptions, where: int | None) -> None:
    setter = object.__setattr__  # past the frozen __setattr__
    setter(entry, "_address", address)
    setter(entry, "dev", dev)
    setter(entry, "_options", options)
    setter(entry, "_where", None if where is None else int(where))


_new = object.__new__


def _rebuild(address: Packed, dev: str | None, options: AddressOptions, where: Location | None) -> IpAddressEntry:
    """Unpickle (the location travels as a Location, by file name: the numbers of files
    differ between processes, and the supervisor reads a reload in a forked one)."""
    entry: IpAddressEntry = object.__new__(IpAddressEntry)
    _fill(entry, address, dev, options, where)
    return entry


_FLAGS = {
    "home": "home",
    "-nodad": "nodad",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
    "no_track": "no_track",
}


def parse_address_prefix(text: str, loc: Location, ctx: Context) -> Packed:
    """ADDR[/LEN]: a bad address is an error; a bad length is reset to the full length."""
    addr_s, slash, plen_s = text.partition("/")
    try:
        addr = ip_address(addr_s)
    except ValueError:
        raise ConfigValueError(f"invalid IP address '{text}'") from None
    full: int = addr.max_prefixlen
    plen = full
    if slash:
        try:
            plen = int(plen_s, 10)
            if not 0 <= plen <= addr.max_prefixlen:
                raise ValueError
        except ValueError:
            ctx.diags.reset(f"invalid prefix length in {text}; using {full}", loc)
            plen = full
    if addr.version == 4:
        return int(addr) << _PREFIX_BITS | plen  # not an IPv4Interface: 140 bytes more per VIP
    return ipaddress.IPv6Interface(f"{addr}/{plen}")  # keeps an IPv6 scope (%IF)


class _Line:
    """The address line being read, for the option readers' checks and messages."""

    __slots__ = ("address", "ctx", "loc")

    def __init__(self, address: IpAddressEntry, ctx: Context, loc: Location) -> None:
        self.address = address
        self.ctx = ctx
        self.loc = loc

    def ignored(self, msg: str) -> _Skip:
        self.ctx.diags.reset(msg, self.loc)
        return SKIP


class _Skip:
    """An option value that was reset with a message: the option is ignored."""


SKIP = _Skip()
Reader = Callable[[str, _Line], object]


def _scope(arg: str, line: _Line) -> object:
    scope = rt_names("rt_scopes").get(arg)
    if scope is not None:
        return scope
    try:
        return parse_uint(arg, 0, 255, "scope")
    except ConfigValueError:
        return line.ignored(f"invalid scope '{arg}' for {line.address}; ignored")


def _brd(arg: str, line: _Line) -> object:
    address = line.address
    if address.family == 6:
        raise ConfigValueError(f"a broadcast address cannot be given for the IPv6 address {address}")
    if arg in ("+", "-"):
        if address.prefixlen >= 31:
            return line.ignored(
                f"prefix length {address.prefixlen} too long for broadcast '{arg}' on {address}; ignored"
            )
        return arg
    try:
        brd = ip_address(arg)
    except ValueError:
        raise ConfigValueError(f"invalid broadcast address '{arg}'") from None
    if brd.version != 4:
        raise ConfigValueError(f"broadcast address {arg} is not IPv4")
    return brd


def _label(arg: str, line: _Line) -> object:
    if line.address.family == 6:
        return line.ignored(f"a label cannot be given for IPv6 addresses ({line.address}); label ignored")
    if len(arg) >= IFNAMSIZ:
        raise ConfigValueError(f"address label {arg} is longer than {IFNAMSIZ - 1} characters")
    return arg


def _peer(arg: str, line: _Line) -> object:
    try:
        peer = ip_address(arg)
    except ValueError:
        raise ConfigValueError(f"invalid peer address '{arg}'") from None
    if peer.version != line.address.family:
        raise ConfigValueError(f"peer address {arg} does not match the address family")
    return peer


def _preferred_lft(arg: str, line: _Line) -> object:
    if arg == "forever":
        return PREFERRED_LFT_FOREVER
    try:
        return parse_uint(arg, what="preferred_lft")
    except ConfigValueError:
        return line.ignored(f"preferred_lft {arg} is invalid; ignored")


# option -> (field, how to read its value); a reader raises ConfigValueError when
# keepalived skips the whole address, and returns SKIP when it ignores the option.
_OPTIONS: dict[str, tuple[str, Reader]] = {
    "dev": ("dev", lambda arg, line: sys.intern(arg)),  # one string per interface, not per VIP
    "scope": ("scope", _scope),
    "brd": ("brd", _brd),
    "broadcast": ("brd", _brd),
    "label": ("label", _label),
    "peer": ("peer", _peer),
    "preferred_lft": ("preferred_lft", _preferred_lft),
}
_STATIC_OPTIONS = _OPTIONS | {
    "track_group": ("track_group", lambda arg, line: check_track_group(arg, line.ctx, line.loc))
}
_VIP_FLAGS = _FLAGS | {"use_vmac": "use_vmac"}


class AddressLine:
    """The converter for an address line (`static`: static_ipaddress, which takes
    track_group; otherwise VIPs, which take use_vmac)."""

    takes_block = False
    syntax = (
        "<IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>] [peer <IPADDR>] "
        "[home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin] [no_track] [preferred_lft nn|forever]"
    )

    def __init__(self, static: bool) -> None:
        self.static = static
        self.options = _STATIC_OPTIONS if static else _OPTIONS
        self.flags = _FLAGS if static else _VIP_FLAGS

    def __call__(self, stmt: Stmt, ctx: Context) -> IpAddressEntry:
        return self.parse(stmt.words, stmt.location, ctx)

    def parse(self, words: tuple[str, ...] | list[str], loc: Location, ctx: Context) -> IpAddressEntry:
        entry = _new(IpAddressEntry)
        _fill(entry, parse_address_prefix(words[0], loc, ctx), None, NO_OPTIONS, loc)
        line = _Line(entry, ctx, loc)
        values: dict[str, Any] = {}
        i, n = 1, len(words)
        while i < n:
            w = words[i]
            i += 1
            flag = self.flags.get(w)
            if flag is not None:
                values[flag] = True
                continue
            option = self.options.get(w)
            if option is None:
                line.ignored(f"unknown option '{w}' for ip address {line.address}; ignored")
                continue
            if i >= n:
                # keepalived stops reading the line here and keeps the address.
                line.ignored(f"no value after '{w}' for {line.address}; ignored")
                break
            value = option[1](words[i], line)
            i += 1
            if value is not SKIP:
                values[option[0]] = value
        dev = values.pop("dev", None)
        if dev is not None:
            if ctx.interfaces is not None and dev not in ctx.interfaces:
                check_interface(dev, f"ip address {entry}", ctx, loc)
            object.__setattr__(entry, "dev", dev)  # still being built: past the frozen __setattr__
        if values:
            object.__setattr__(entry, "_options", AddressOptions(**values))
        return entry


ADDRESS_LINE: Callable[[Stmt, Context], IpAddressEntry] = AddressLine(static=False)
"""For virtual_ipaddress and virtual_ipaddress_excluded."""
STATIC_ADDRESS_LINE: Callable[[Stmt, Context], IpAddressEntry] = AddressLine(static=True)
