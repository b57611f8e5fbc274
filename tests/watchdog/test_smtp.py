"""watchdog.smtp: subjects and bodies (keepalived 2.2.7's words), then real mail to an
aiosmtpd server on 127.0.0.1: one mail per alert with keepalived's headers, a dead server
and a silent one logged, the loop never blocked, close() bounded by its timeout."""

from __future__ import annotations

import asyncio
import email
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from conf.global_defs import GlobalDefs, SmtpServer
from watchdog.smtp import QUEUE_MAX, Alerter, checker_alert, message, vrrp_alert


def test_vrrp_subjects_and_bodies() -> None:
    assert vrrp_alert("R1", "INSTANCE", "VI_1", "MASTER") == (
        "[R1] VRRP Instance VI_1 - Entering MASTER state",
        "=> VRRP Instance is now owning VRRP VIPs <=",
    )
    assert vrrp_alert("R1", "INSTANCE", "VI_1", "BACKUP")[1] == "=> VRRP Instance is no longer owning VRRP VIPs <="
    assert vrrp_alert("R1", "GROUP", "G1", "FAULT") == (
        "[R1] VRRP Group G1 - Entering FAULT state",
        "=> All VRRP group instances are now in FAULT state <=",
    )


def test_checker_subjects_and_bodies() -> None:
    subject, body = checker_alert(
        "R1", "[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", up=False, body="=> TCP CHECK failed on service <="
    )
    assert subject == "[R1] Realserver [10.0.0.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN"
    assert body == "=> TCP CHECK failed on service <="
    subject, body = checker_alert("R1", "FWM 3", up=True, quorum=(2, 1, 3, 4))
    assert (subject, body) == ("[R1] Virtualserver FWM 3 - UP", "=> Gained quorum 2+1=3 <= 4 <=")
    assert checker_alert("R1", "FWM 3", up=False, quorum=(2, 0, 2, 1), init=True)[1] == (
        "=> Starting with quorum down 2+0=2 <= 1 <="
    )


def test_message_layout() -> None:
    text = message("ka@example.com", ("a@example.com", "b@example.com"), "[R1] x", "body", now=0.0)
    head, body = text.split("\r\n\r\n", 1)
    names = [line.split(":", 1)[0] for line in head.split("\r\n")]
    assert names == ["Date", "From", "Subject", "X-Mailer", "To"]
    assert "To: a@example.com, b@example.com" in head and "X-Mailer: Keepalived" in head
    assert body == "body\r\n"


class Sink:
    def __init__(self) -> None:
        self.mails: list[Any] = []
        self.helo: list[str] = []

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:  # noqa: N802
        self.helo.append(hostname)
        session.host_name = hostname
        return "250 ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(envelope)
        return "250 OK"


@pytest.fixture
def smtpd() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield sink, port
    finally:
        ctl.stop()


def gdefs(port: int, host: str = "127.0.0.1", timeout: int = 5) -> GlobalDefs:
    return GlobalDefs(
        notification_email=("ops@example.com", "noc@example.com"),
        notification_email_from="keepalived@lb1.example.com",
        smtp_server=SmtpServer(host, port),
        smtp_helo_name="lb1.example.com",
        smtp_connect_timeout=timeout,
        router_id="LB1",
    )


def test_inactive_without_server_or_emails() -> None:
    async def main() -> None:
        a = Alerter(GlobalDefs(notification_email=("x@example.com",)))
        a.alert("s", "b")
        assert not a.active and a._task is None
        await a.close()

    asyncio.run(main())


def test_one_mail_per_alert(smtpd: tuple[Sink, int]) -> None:
    sink, port = smtpd

    async def main() -> Alerter:
        a = Alerter(gdefs(port, host="localhost"))  # a name: resolved on the loop
        a.alert(*vrrp_alert("LB1", "INSTANCE", "VI_1", "MASTER"))
        a.alert(*vrrp_alert("LB1", "GROUP", "G1", "MASTER"))
        await a.close(timeout=10)
        return a

    a = asyncio.run(main())
    assert a.sent == 2 and a.failed == 0
    assert sink.helo == ["lb1.example.com", "lb1.example.com"]
    first = sink.mails[0]
    assert first.mail_from == "keepalived@lb1.example.com"
    assert first.rcpt_tos == ["ops@example.com", "noc@example.com"]
    msg = email.message_from_bytes(first.content)
    assert msg["Subject"] == "[LB1] VRRP Instance VI_1 - Entering MASTER state"
    assert msg["From"] == "keepalived@lb1.example.com" and msg["X-Mailer"] == "Keepalived"
    assert msg["To"] == "ops@example.com, noc@example.com" and msg["Date"]
    assert str(msg.get_payload()).strip() == "=> VRRP Instance is now owning VRRP VIPs <="
    assert email.message_from_bytes(sink.mails[1].content)["Subject"] == "[LB1] VRRP Group G1 - Entering MASTER state"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dead_server_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")

    async def main() -> Alerter:
        a = Alerter(gdefs(free_port()))
        a.alert("s", "b")
        await a.close(timeout=5)
        return a

    a = asyncio.run(main())
    assert a.failed == 1 and a.sent == 0
    assert "SMTP connection ERROR to [127.0.0.1]" in caplog.text


async def lag_while(coro: Any, step: float = 0.01) -> tuple[Any, float]:
    """Run `coro` while measuring the loop's worst lateness on a `step` ticker."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            t = time.monotonic()
            await asyncio.sleep(step)
            worst = max(worst, time.monotonic() - t - step)

    tick = asyncio.create_task(ticker())
    try:
        result = await coro
    finally:
        done = True
        await tick
    return result, worst


def test_silent_server_never_blocks_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    """A server that accepts and never says 220: the alert times out after
    smtp_connect_timeout (1 s); the loop keeps its 10 ms ticks; close() waits at most its
    timeout."""
    caplog.set_level("INFO")

    async def main() -> tuple[Alerter, float, float, float]:
        held: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        a = Alerter(gdefs(port, timeout=1))
        for _ in range(3):
            a.alert("s", "b")
        start = time.monotonic()
        _, lag = await lag_while(a.close(timeout=0.5))
        closed_in = time.monotonic() - start

        b = Alerter(gdefs(port, timeout=1))
        b.alert("s", "b")
        t = time.monotonic()
        _, lag2 = await lag_while(b.close(timeout=5))
        took = time.monotonic() - t
        for w in held:
            w.close()
        server.close()
        return b, max(lag, lag2), closed_in, took

    b, lag, closed_in, took = asyncio.run(main())
    assert closed_in < 1.5  # close(timeout=0.5) does not wait for the 1 s timeouts
    assert 0.8 < took < 4.0  # the single alert ran into smtp_connect_timeout
    assert b.failed == 1
    print(f"loop lag {lag * 1000:.1f} ms, close(0.5) in {closed_in:.2f} s, timeout after {took:.2f} s")
    assert lag < 0.2, f"loop lag {lag:.3f} s"
    assert "Timeout" in caplog.text and "[127.0.0.1]" in caplog.text


def test_queue_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> Alerter:
        a = Alerter(gdefs(free_port()))
        for _ in range(QUEUE_MAX + 10):
            a.alert("s", "b")
        await a.close(timeout=0.1)
        return a

    a = asyncio.run(main())
    assert a.dropped >= 9
    assert "SMTP alert queue full" in caplog.text
