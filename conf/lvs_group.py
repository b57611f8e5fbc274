"""virtual_server_group NAME { ADDR PORT; ADDR-LAST PORT; fwmark N; ... }
(keepalived.conf(5), "Virtual server group(s)"): the entries a virtual_server may name
with `group` instead of its own address."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from conf.checkers import U32
from conf.modelclass import model_class
from conf.schema import Block, ConfigValueError, Context
from conf.syntax import Stmt
from conf.values import Choice, Int, IpAddr, IPAddress

_PORT = Int(1, 65535)
_FWMARK = Int(0, U32)
_ADDR = IpAddr()


@dataclass(frozen=True)
class VsgRange:
    """A virtual_server_group address line: one address or a range, and the port."""

    first: IPAddress
    last: IPAddress
    port: int | None = None

    @property
    def version(self) -> int:
        return self.first.version

    def __str__(self) -> str:
        text = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return text if self.port is None else f"{text} {self.port}"


@dataclass(frozen=True)
class VsgFwmark:
    fwmark: int
    family: str | None = None  # inet|inet6: only for all-tunnelled real servers


@model_class
class VirtualServerGroup(Block):
    label: ClassVar[str] = "virtual_server_group"

    name: str = ""
    addresses: tuple[VsgRange, ...] = ()
    fwmarks: tuple[VsgFwmark, ...] = ()

    @property
    def families(self) -> frozenset[int]:
        """The IP versions its addresses and family-tagged fwmarks use."""
        out = {r.version for r in self.addresses}
        out.update(6 if f.family == "inet6" else 4 for f in self.fwmarks if f.family)
        return frozenset(out)


def _parse_range(text: str) -> tuple[IPAddress, IPAddress]:
    """ADDR, ADDR-LAST (LAST replacing the last byte of IPv4 or group of IPv6),
    ADDR-ADDR, or ADDR/LEN."""
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ConfigValueError(f"'{text}' is not an address/prefix") from None
        return net.network_address, net.broadcast_address
    start_text, sep, end_text = text.partition("-")
    start = _ADDR.parse(start_text)
    if not sep:
        return start, start
    end: IPAddress
    if ("." in end_text) or (":" in end_text):
        end = _ADDR.parse(end_text)
        if end.version != start.version:
            raise ConfigValueError(f"'{text}': the range mixes IPv4 and IPv6")
    else:
        try:
            last = int(end_text, 16 if start.version == 6 else 10)
        except ValueError:
            raise ConfigValueError(f"'{text}': '{end_text}' is not a valid range end") from None
        top = 0xFFFF if start.version == 6 else 0xFF
        if not 0 <= last <= top:
            raise ConfigValueError(f"'{text}': range end {end_text} is out of range")
        end = ipaddress.ip_address((int(start) & ~top) | last)
    if int(end) <= int(start):
        raise ConfigValueError(f"'{text}': the range end is not greater than its start")
    return start, end


FAMILY = Choice("inet", "inet6")


def _vsg_line(line: Stmt, ctx: Context) -> VsgRange | VsgFwmark:
    if line.keyword == "fwmark":
        if not line.args or len(line.args) > 2:
            raise ConfigValueError("expected fwmark <INTEGER> [inet|inet6]")
        family = FAMILY.parse(line.args[1]) if len(line.args) > 1 else None
        return VsgFwmark(_FWMARK.parse(line.args[0]), family)
    if len(line.args) > 1:
        raise ConfigValueError(f"unexpected extra value(s) '{' '.join(line.args[1:])}'")
    first, last = _parse_range(line.keyword)
    port = _PORT.parse(line.args[0]) if line.args else None
    return VsgRange(first, last, port)


class VsgConv:
    """`virtual_server_group NAME { entry ... }`: its lines are addresses, not keywords."""

    takes_block = True
    syntax = "NAME { <IPADDR|RANGE> [<PORT>] ... fwmark <INTEGER> [inet|inet6] ... }"

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[str, VirtualServerGroup]:
        if not stmt.args:
            raise ConfigValueError("needs a name")
        name = stmt.args[0]
        if len(stmt.args) > 1:
            ctx.diags.reset(
                f"virtual_server_group {name}: extra words '{' '.join(stmt.args[1:])}' ignored", stmt.location
            )
        if stmt.block is None:
            raise ConfigValueError(f"'{name}' needs a {{ }} block")
        addresses: list[VsgRange] = []
        fwmarks: list[VsgFwmark] = []
        for line in stmt.block:
            if line.block is not None:
                ctx.diags.reset(
                    f"unexpected {{ }} block after '{line.keyword}' in virtual_server_group {name}; ignored",
                    line.location,
                )
                continue
            try:
                entry = _vsg_line(line, ctx)
            except ConfigValueError as e:
                ctx.diags.reset(f"virtual_server_group {name}: {e}; entry ignored", line.location)
                continue
            if isinstance(entry, VsgFwmark):
                fwmarks.append(entry)
            else:
                addresses.append(entry)
        if not addresses and not fwmarks:
            raise ConfigValueError(f"'{name}' has no entries")
        return name, VirtualServerGroup(
            name=name, addresses=tuple(addresses), fwmarks=tuple(fwmarks), location=stmt.location
        )
