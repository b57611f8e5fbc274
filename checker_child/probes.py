"""From a checker of the configuration to something that runs it: its `Target` (where
it connects) and its probe (checker type -> check module).

keepalived's connection options (keepalived.conf(5), "All checkers have the following
options"): connect_ip / connect_port default to the real server's address and port;
bindto, bind_port, bind_if, fwmark and connect_timeout go with the socket. FILE_CHECK is
not polled (the track file's changes drive it) and BFD_CHECK is not implemented: neither
has a probe.
"""

from __future__ import annotations

from dataclasses import dataclass

from checker_child.checks import dns, http, misc, ping, smtp, udp
from checker_child.checks.base import Probe, ProbeEnv, Target
from conf.checkers import (
    DEFAULT_CONNECT_TIMEOUT,
    AnyChecker,
    ConnChecker,
    DnsCheck,
    HttpGet,
    MiscCheck,
    PingCheck,
    SmtpCheck,
    TcpCheck,
    UdpCheck,
)
from conf.lvs import RealServer, VirtualServer

# The word keepalived puts in its SMTP bodies ("=> TCP CHECK failed on service <=").
_SHORT = {
    "TCP_CHECK": "TCP",
    "HTTP_GET": "HTTP",
    "SSL_GET": "SSL",
    "SMTP_CHECK": "SMTP",
    "DNS_CHECK": "DNS",
    "MISC_CHECK": "MISC",
    "UDP_CHECK": "UDP",
    "PING_CHECK": "PING",
    "FILE_CHECK": "FILE",
    "BFD_CHECK": "BFD",
}


def short_name(checker: AnyChecker) -> str:
    return _SHORT.get(checker.type_name, checker.type_name)


def target_of(checker: AnyChecker, rs: RealServer, vs: VirtualServer) -> Target:
    """Where `checker` of real server `rs` connects."""
    port = rs.port if rs.port is not None else vs.port
    if not isinstance(checker, ConnChecker):
        return Target(rs.address, port)
    address = checker.connect_ip if checker.connect_ip is not None else rs.address
    if checker.connect_port is not None:
        port = checker.connect_port
    timeout = checker.connect_timeout if checker.connect_timeout is not None else DEFAULT_CONNECT_TIMEOUT
    return Target(
        address=address,
        port=None if isinstance(checker, PingCheck) else port,
        bindto=checker.bindto,
        bind_port=checker.bind_port,
        bind_if=checker.bind_if,
        fwmark=checker.fwmark or None,
        timeout=float(timeout),
    )


@dataclass(frozen=True)
class Built:
    """A checker ready to run: a coroutine `probe`, or `tcp` for TCP_CHECK (a
    checks.tcp.TcpConnect per attempt, no coroutine); neither means not polled
    (FILE_CHECK) or unsupported."""

    probe: Probe | None
    target: Target
    why_not: str = ""  # for a checker without a probe that should have one
    tcp: bool = False

    @property
    def polled(self) -> bool:
        return self.tcp or self.probe is not None


def build(checker: AnyChecker, rs: RealServer, vs: VirtualServer, env: ProbeEnv) -> Built:
    target = target_of(checker, rs, vs)
    probe: Probe | None
    if isinstance(checker, HttpGet):  # SSL_GET too (a subclass)
        probe = http.probe(checker, env, virtualhost=rs.virtualhost or vs.virtualhost)
    elif isinstance(checker, TcpCheck):  # no options of its own: the Target carries them
        return Built(None, target, tcp=True)
    elif isinstance(checker, SmtpCheck):
        probe = smtp.probe(checker, env)
    elif isinstance(checker, DnsCheck):
        probe = dns.probe(checker, env)
    elif isinstance(checker, UdpCheck):
        probe = udp.probe(checker, env)
    elif isinstance(checker, PingCheck):
        probe = ping.probe(checker, env)
    elif isinstance(checker, MiscCheck):
        probe = misc.probe(checker, env)
    elif checker.type_name == "FILE_CHECK":
        return Built(None, target)
    else:
        return Built(None, target, f"{checker.type_name} is not implemented; the checker stays up")
    return Built(probe, target)


def recovery_runs(checker: AnyChecker) -> int:
    """Passing runs a down checker needs to come up: HTTP_GET/SSL_GET without
    fast_recovery check one url per delay_loop when recovering (keepalived.conf(5))."""
    if isinstance(checker, HttpGet) and not checker.fast_recovery:
        return max(1, len(checker.url))
    return 1
