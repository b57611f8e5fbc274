"""Does this instance take this advert? The instance-level receive checks of RFC 3768 /
RFC 5798 section 7.1, after `packet.decode` has found the datagram well-formed: version,
VRID, v2 authentication, v2 advert interval, and the address list. What the instance then
does with an accepted advert (priority, preemption, timers) is the state machine's.

The order and the log lines are keepalived 2.2.7's (`vrrp_check_packet`), each line
without rate limiting (the caller limits). Where keepalived and the RFCs disagree, the
RFCs win and the docstring says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from vrrp_child.packet import AUTH_AH, AUTH_DATA_LEN, AUTH_NONE, AUTH_PASS, Advert, DropReason, IPAddress

if TYPE_CHECKING:
    from conf.vrrp import VrrpInstance

_AUTH_TYPES: Final = {None: AUTH_NONE, "PASS": AUTH_PASS, "AH": AUTH_AH}


@dataclass(frozen=True)
class Expect:
    """What an instance expects of the adverts for its VRID. `auth_pass` is the configured
    password (keepalived uses its first 8 bytes); `addresses` are the VIPs that go in the
    advert (virtual_ipaddress, not virtual_ipaddress_excluded)."""

    version: int
    vrid: int
    auth_type: int
    auth_pass: bytes
    adver_int_cs: int
    addresses: tuple[IPAddress, ...]
    name: str = ""
    _address_set: frozenset[IPAddress] = field(init=False, repr=False, compare=False)
    _auth_data: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_address_set", frozenset(self.addresses))
        object.__setattr__(self, "_auth_data", self.auth_pass[:AUTH_DATA_LEN].ljust(AUTH_DATA_LEN, b"\0"))

    @classmethod
    def from_instance(cls, inst: VrrpInstance) -> Expect:
        """From a completed vrrp_instance (conf.vrrp): version, VRID, authentication,
        advert_int and the VIPs of the instance's family, in configuration order."""
        password = inst.auth_pass or ""
        return cls(
            version=inst.version,
            vrid=inst.virtual_router_id,
            auth_type=_AUTH_TYPES[inst.auth_type],
            auth_pass=password.encode(),
            adver_int_cs=inst.advert_int_centis,
            addresses=tuple(vip.ip for vip in inst.virtual_ipaddress if vip.family == inst.family),
            name=inst.name,
        )

    def advert(self, priority: int) -> Advert:
        """Our own advert for this VRID at `priority`: what we expect is what we send."""
        # keepalived's AH adverts carry zero authentication data (the ICV is in the AH).
        v2_auth = self.version == 2 and self.auth_type == AUTH_PASS
        return Advert(
            version=self.version,
            vrid=self.vrid,
            priority=priority,
            addresses=self.addresses,
            adver_int_cs=self.adver_int_cs,
            auth_type=self.auth_type if self.version == 2 else 0,
            auth_data=self.auth_pass[:AUTH_DATA_LEN] if v2_auth else b"",
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """`accept`: hand the advert to the state machine. `reason`: the counter to increment,
    also for an accepted advert whose address list was wrong. `log`: keepalived's line."""

    accept: bool
    reason: DropReason | None = None
    log: str | None = None


ACCEPT: Final = Verdict(True)


def check(advert: Advert, expect: Expect, *, check_addresses: bool = True) -> Verdict:
    """keepalived's instance checks in its order: version, (VRID), v2 auth type, password,
    v2 interval, address count, each VIP. `check_addresses=False` is keepalived's
    `skip_check_adv_addr` when the advert comes from the master already known.

    Authentication (RFC 3768 section 7.1; keepalived's AUTH_PASS and AH): a type keepalived
    does not know, a type other than ours, or a wrong password drops the advert. For IPsec
    AH the type is checked here; the ICV, SPI and sequence number were checked before the
    message was decoded (vrrp_child.ah, by the instance).

    v2 interval (RFC 3768 section 7.1 "MUST verify ... the same as the locally configured",
    keepalived: "to prevent concurrent VRID running"): a mismatch drops. v3 has no such
    check; the backup adopts the master's interval.

    Address list (RFC 3768 / RFC 5798 section 7.1 "MAY verify ... SHOULD log"): a v3
    mismatch is logged and counted but the advert is accepted, as RFC 5798 says ("continue
    processing"). A v2 mismatch drops the advert unless it comes from the address owner
    (priority 255), as RFC 3768 requires. keepalived 2.2.7 drops on every mismatch (so a
    backup with other VIPs also becomes master); we keep the RFC's behaviour for v3."""
    name = expect.name
    if advert.version != expect.version:
        return Verdict(
            False, DropReason.VERSION, f"({name}) wrong version. Received {advert.version} and expect {expect.version}"
        )
    if advert.vrid != expect.vrid:
        return Verdict(
            False, DropReason.VRID, f"({name}) received VRID mismatch. Received {advert.vrid}, Expected {expect.vrid}"
        )
    if advert.version == 2:
        verdict = _check_v2(advert, expect)
        if verdict is not None:
            return verdict
    if check_addresses:
        log = _address_mismatch(advert, expect)
        if log is not None:
            accept = advert.version == 3 or advert.priority == 255
            return Verdict(accept, DropReason.ADDRESS_LIST, log)
    return ACCEPT


def _check_v2(advert: Advert, expect: Expect) -> Verdict | None:
    name = expect.name
    if advert.auth_type not in (AUTH_NONE, AUTH_PASS, AUTH_AH):
        return Verdict(False, DropReason.AUTH_INVALID_TYPE, f"({name}) Invalid auth type: {advert.auth_type}")
    if advert.auth_type != expect.auth_type:
        return Verdict(
            False,
            DropReason.AUTH_TYPE_MISMATCH,
            f"({name}) received a {advert.auth_type} auth, expecting {expect.auth_type}!",
        )
    if expect.auth_type == AUTH_PASS:
        # keepalived compares all 8 bytes (NUL padded) in constant time.
        import hmac  # noqa: PLC0415 (it loads OpenSSL's libcrypto, ~3 MB: PASS instances only)

        received = advert.auth_data[:AUTH_DATA_LEN].ljust(AUTH_DATA_LEN, b"\0")
        if not hmac.compare_digest(received, expect._auth_data):
            return Verdict(False, DropReason.AUTH_FAILURE, f"({name}) received an invalid passwd!")
    if advert.adver_int_cs != expect.adver_int_cs:
        return Verdict(
            False,
            DropReason.INTERVAL,
            f"({name}) advertisement interval mismatch mine={expect.adver_int_cs // 100} sec "
            f"rcv'd={advert.adver_int_cs // 100} sec",
        )
    return None


def _address_mismatch(advert: Advert, expect: Expect) -> str | None:
    """keepalived's line for the first difference: the count, else a VIP of ours missing."""
    if len(advert.addresses) != len(expect.addresses):
        return (
            f"({expect.name}) received an unexpected ip number count {len(advert.addresses)}, "
            f"expected {len(expect.addresses)}!"
        )
    if expect._address_set.issubset(advert.addresses):
        return None
    received = set(advert.addresses)
    missing = next(a for a in expect.addresses if a not in received)
    return f"({expect.name}) ip address associated with VRID {expect.vrid} not present in MASTER advert: {missing}"
