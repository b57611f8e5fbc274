"""Address lines: static_ipaddress, virtual_ipaddress and virtual_ipaddress_excluded
entries (keepalived.conf(5), "Static routes/addresses/rules" and vrrp_instance):

    <IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>]
        [peer <IPADDR>] [home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin]
        [track_group GROUP] [preferred_lft nn|forever] [no_track] [use_vmac]

keepalived skips an address it cannot use, but for most bad options it reports the
option and ignores just that option; we do the same.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conf.diagnostics import Location
from conf.routes import check_interface, check_track_group, dump_as, parse_uint, rt_names
from conf.schema import ConfigValueError, Context
from conf.syntax import Stmt
from conf.values import IPAddress, IPInterface, IPNetwork, ip_address

IFNAMSIZ = 16
PREFERRED_LFT_FOREVER = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class IpAddressEntry:
    address: IPInterface  # the address with its prefix length (default /32 or /128)
    brd: IPAddress | str | None = None  # an address, or '+'/'-' (set/clear the host bits)
    dev: str | None = None  # None: the vrrp_instance's interface, or default_interface for static
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
    location: Location | None = field(default=None, compare=False, repr=False)

    @property
    def family(self) -> int:
        return self.address.version

    @property
    def ip(self) -> IPAddress:
        return self.address.ip

    @property
    def broadcast(self) -> IPAddress | None:
        """The broadcast address the kernel gets (brd '+' sets the host bits, '-' clears them)."""
        if self.brd == "+":
            return self.address.network.broadcast_address
        if self.brd == "-":
            return self.address.network.network_address
        return self.brd if not isinstance(self.brd, str) else None

    def __str__(self) -> str:
        return str(self.address)


_FLAGS = {
    "home": "home",
    "-nodad": "nodad",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
    "no_track": "no_track",
}


def parse_address_prefix(text: str, loc: Location, ctx: Context) -> IPInterface:
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
        # from the number: ip_interface(str) would format and parse the address again
        number = int(addr)
        return _shared_network(ipaddress.IPv4Interface((number, plen)), (number >> (32 - plen), plen), ctx)
    return ipaddress.ip_interface(f"{addr}/{plen}")  # keeps an IPv6 scope (%IF)


def _shared_network(address: IPInterface, key: tuple[int, int], ctx: Context) -> IPInterface:
    """Make the addresses of one subnet (`key`: its number and length) share one `network`
    object (a public attribute; the values are equal, so comparisons and hashes do not
    change): 178 bytes less per address where VIPs share subnets. The table lives as long
    as the load."""
    networks: dict[tuple[int, int], IPNetwork] = ctx.settings.setdefault("networks", {})
    network = networks.setdefault(key, address.network)
    if network is not address.network:
        address.network = network
    return address


class _Line:
    """The address line being read, for the option readers' checks and messages."""

    __slots__ = ("address", "ctx", "loc")

    def __init__(self, address: IPInterface, ctx: Context, loc: Location) -> None:
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
    if address.version == 6:
        raise ConfigValueError(f"a broadcast address cannot be given for the IPv6 address {address}")
    if arg in ("+", "-"):
        if address.network.prefixlen >= 31:
            return line.ignored(
                f"prefix length {address.network.prefixlen} too long for broadcast '{arg}' on {address}; ignored"
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
    if line.address.version == 6:
        return line.ignored(f"a label cannot be given for IPv6 addresses ({line.address}); label ignored")
    if len(arg) >= IFNAMSIZ:
        raise ConfigValueError(f"address label {arg} is longer than {IFNAMSIZ - 1} characters")
    return arg


def _peer(arg: str, line: _Line) -> object:
    try:
        peer = ip_address(arg)
    except ValueError:
        raise ConfigValueError(f"invalid peer address '{arg}'") from None
    if peer.version != line.address.version:
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
        line = _Line(parse_address_prefix(words[0], loc, ctx), ctx, loc)
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
        dev = values.get("dev")
        if dev is not None and ctx.interfaces is not None and dev not in ctx.interfaces:
            check_interface(dev, f"ip address {line.address}", ctx, loc)
        return IpAddressEntry(line.address, location=loc, **values)


ADDRESS_LINE: Callable[[Stmt, Context], IpAddressEntry] = AddressLine(static=False)
"""For virtual_ipaddress and virtual_ipaddress_excluded."""
STATIC_ADDRESS_LINE: Callable[[Stmt, Context], IpAddressEntry] = AddressLine(static=True)
