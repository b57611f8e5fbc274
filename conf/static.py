"""Static addresses, routes and rules, static track groups, linkbeat_interfaces and
interface_up_down_delays (keepalived.conf(5), "GLOBAL CONFIGURATION")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

from conf.addresses import STATIC_ADDRESS_LINE, IpAddressEntry
from conf.diagnostics import Location
from conf.modelclass import model_class
from conf.routes import STATIC_ROUTE_LINE, RouteEntry, check_interface
from conf.rules import STATIC_RULE_LINE, RuleEntry
from conf.schema import Block, ConfigValueError, Context, kw
from conf.syntax import Stmt
from conf.values import Float, Lines, Names

T = TypeVar("T")
E = TypeVar("E")

STATIC_ADDRESSES: Lines[IpAddressEntry] = Lines(STATIC_ADDRESS_LINE, "{ <IPADDR>[/<MASK>] [OPTIONS] ... }")
STATIC_ROUTES: Lines[RouteEntry] = Lines(STATIC_ROUTE_LINE, "{ ROUTE ... }")
STATIC_RULES: Lines[RuleEntry] = Lines(STATIC_RULE_LINE, "{ RULE ... }")


def flatten(blocks: Sequence[E | tuple[E, ...]]) -> tuple[E, ...]:
    """Join the entries of repeated static_* blocks (collected one tuple per block)."""
    out: list[E] = []
    for b in blocks:
        if isinstance(b, tuple):
            out.extend(b)
        else:
            out.append(b)
    return tuple(out)


@model_class
class TrackGroup(Block):
    """`track_group NAME { group { VI_1 ... } }`: the vrrp instances that track the
    static addresses/routes/rules naming this group."""

    label: ClassVar[str] = "track_group"
    name: str = ""
    group: tuple[str, ...] = kw(Names("{ VRRP_INSTANCE ... }"), ())

    def finish(self, ctx: Context) -> Self:
        # Static entries may only name a track_group defined before them (keepalived
        # looks the name up while reading the file).
        ctx.settings.setdefault("track_groups", set()).add(self.name)
        return self


@dataclass(frozen=True)
class LinkbeatInterface:
    """A linkbeat_interfaces line: `IFNAME [MII|ETHTOOL|IOCTL]`."""

    interface: str
    type: str | None = None  # None: MII, else ETHTOOL, else IOCTL, whichever works
    location: Location | None = field(default=None, compare=False, repr=False)


def _linkbeat_item(line: Stmt, ctx: Context) -> LinkbeatInterface:
    if len(line.args) > 1 or (line.args and line.args[0] not in ("MII", "ETHTOOL", "IOCTL")):
        raise ConfigValueError(
            f"extra characters {' '.join(line.args)} after {line.keyword} (expected MII, ETHTOOL or IOCTL)"
        )
    check_interface(line.keyword, "linkbeat", ctx, line.location)
    return LinkbeatInterface(line.keyword, line.args[0] if line.args else None, line.location)


linkbeat_interfaces: Lines[LinkbeatInterface] = Lines(_linkbeat_item, "{ IFNAME [MII|ETHTOOL|IOCTL] ... }")


@dataclass(frozen=True)
class IfUpDownDelay:
    """An interface_up_down_delays line: `IFNAME DOWN_DELAY [UP_DELAY]` (seconds, 0..255)."""

    interface: str
    down_delay: float
    # 0 when not given: keepalived 2.2.7's parser (vrrp_parser.c), whatever keepalived.conf(5)
    # says ("set to be the same as the down delay")
    up_delay: float
    location: Location | None = field(default=None, compare=False, repr=False)


_DELAY = Float(0, 255)


def _delay_item(line: Stmt, ctx: Context) -> IfUpDownDelay:
    if not line.args:
        raise ConfigValueError(f"no delay given for {line.keyword}")
    down = _DELAY.parse(line.args[0])
    up = _DELAY.parse(line.args[1]) if len(line.args) > 1 else 0.0
    check_interface(line.keyword, "up/down delay", ctx, line.location)
    return IfUpDownDelay(line.keyword, down, up, line.location)


if_up_down_delays: Lines[IfUpDownDelay] = Lines(_delay_item, "{ IFNAME DOWN_DELAY [UP_DELAY] ... }")
