"""The values of vrrp_instance keywords that need more than a number or a word: state,
priority, authentication, use_vmac, use_ipvlan, unicast_peer, notify_deleted,
old_unicast_checksum (keepalived.conf(5), "VRRP instance(s)")."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import ClassVar

from conf.diagnostics import Location
from conf.modelclass import model_class
from conf.schema import Block, ConfigValueError, Context, kw
from conf.syntax import Stmt
from conf.values import Int, IpAddr, IPAddress, LineOf, Opt, Script, ScriptCmd, with_location

PRIO_OWNER = 255
# The advert's "Count IP Addrs" is 8 bits (RFC 3768 section 5.3.5, RFC 5798 section 5.2.5):
# keepalived moves the addresses beyond it to the excluded ones (vrrp_complete_instance).
# It also lowers the count to what the interface's MTU leaves room for, which a
# configuration alone cannot know.
VRRP_MAX_ADDR = 255
PRIO_DEFAULT = 100


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


def peer_item(stmt: Stmt, ctx: Context) -> UnicastPeer:
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


@model_class
class Authentication(Block):
    label: ClassVar[str] = "authentication"
    inline_fields: ClassVar[tuple[str, ...]] = ("locations", "auth_type", "auth_pass")

    auth_type: str | None = kw(AuthType())
    auth_pass: str | None = kw(AuthPass())
