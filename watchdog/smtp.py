"""SMTP alerts (global_defs notification_email, notification_email_from, smtp_server,
smtp_helo_name, smtp_connect_timeout; smtp_alert on instances, sync groups, virtual
servers), sent as keepalived 2.2.7 sends them (core/smtp.c):

    HELO <smtp_helo_name>          (HELO, not EHLO)
    MAIL FROM:<notification_email_from>
    RCPT TO:<each notification_email>
    DATA
    Date: Sun, 22 Nov 2026 08:01:13 +0000
    From: <notification_email_from>
    Subject: [<router_id>] VRRP Instance VI_1 - Entering MASTER state
    X-Mailer: Keepalived
    To: a@example.com, b@example.com

    => VRRP Instance is now owning VRRP VIPs <=

smtp_connect_timeout bounds the connection and every reply. Alerts are queued and sent one
after the other by one task, so alert() never blocks; a full queue drops (and logs) the
alert. Failures are logged in keepalived's words and never raised. A host name in
smtp_server is resolved on the loop's resolver (getaddrinfo in its executor).

The SMTP client (aiosmtplib, and the email package for the Date header: about 1 MB) is
imported only for a configuration that sends alerts: by `preload`, in the parent before it
forks a child, so that neither a VRRP-only daemon nor a respawn pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import time

from conf.global_defs import GlobalDefs

log = logging.getLogger(__name__)

QUEUE_MAX = 100

VRRP_BODIES = {
    ("INSTANCE", "MASTER"): ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    ("INSTANCE", "BACKUP"): ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    ("INSTANCE", "FAULT"): ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    ("INSTANCE", "STOP"): ("Stopping", "=> VRRP Instance stopping <="),
    ("INSTANCE", "DELETED"): ("Deleted", "=> VRRP Deleted at reload <="),  # notify_deleted
    ("GROUP", "MASTER"): ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    ("GROUP", "BACKUP"): ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    ("GROUP", "FAULT"): ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    ("GROUP", "STOP"): ("Stopping", "=> All VRRP group instances are now stopping <="),
}


def vrrp_alert(router_id: str, kind: str, name: str, state: str) -> tuple[str, str]:
    """(subject, body) for an instance (`kind` INSTANCE) or sync group (GROUP) entering
    `state` (MASTER, BACKUP, FAULT, STOP; DELETED for an instance)."""
    what, body = VRRP_BODIES[(kind, state)]
    label = "VRRP Instance" if kind == "INSTANCE" else "VRRP Group"
    return f"[{router_id}] {label} {name} - {what}", body


def checker_alert(
    router_id: str,
    vs: str,
    *,
    rs: str | None = None,
    up: bool,
    body: str | None = None,
    quorum: tuple[int, int, int, int] | None = None,
    init: bool = False,
    stopping: bool = False,
) -> tuple[str, str]:
    """(subject, body) for the checker. `vs`/`rs` are formatted as watchdog.fifo formats
    them. A real server: `rs` given, `body` the checker's own words (keepalived's checkers
    say e.g. "=> TCP CHECK failed on service <="), "=> Shutting down <=" when stopping.
    A virtual server's quorum: `quorum` = (quorum, hysteresis, threshold, live weight)."""
    state = "UP" if up else "DOWN"
    if rs is not None:
        text = (
            "=> Shutting down <=" if stopping else (body or f"=> CHECK {'succeed' if up else 'failed'} on service <=")
        )
        return f"[{router_id}] Realserver {rs} of virtual server {vs} - {state}", text
    if stopping:
        text = "=> Shutting down <="
    elif quorum is not None:
        q, hysteresis, threshold, weight = quorum
        if up:
            what = "Starting with quorum up" if init else "Gained quorum"
        else:
            what = "Starting with quorum down" if init else "Lost quorum"
        text = f"=> {what} {q}+{hysteresis}={threshold} <= {weight} <="
    else:
        text = body or ""
    return f"[{router_id}] Virtualserver {vs} - {state}", text


def message(sender: str, recipients: tuple[str, ...], subject: str, body: str, now: float | None = None) -> str:
    """The DATA part as keepalived writes it (CRLF line ends)."""
    import email.utils  # noqa: PLC0415 (only with alerts: preload)

    date = email.utils.formatdate(now, localtime=True)
    return (
        f"Date: {date}\r\nFrom: {sender}\r\nSubject: {subject}\r\nX-Mailer: Keepalived\r\n"
        f"To: {', '.join(recipients)}\r\n\r\n{body}\r\n"
    )


def sends_alerts(gdefs: GlobalDefs) -> bool:
    """Whether the configuration sends SMTP alerts: an smtp_server and a notification_email."""
    return gdefs.smtp_server is not None and bool(gdefs.notification_email)


def preload(gdefs: GlobalDefs) -> None:
    """Import the SMTP client if `gdefs` sends alerts (called before a fork: the child then
    starts with it, and its pages are shared); nothing otherwise."""
    if sends_alerts(gdefs):
        for name in ("aiosmtplib", "email.utils"):
            importlib.import_module(name)


class Alerter:
    """Sends alerts for one child. Inactive (alert() does nothing) without smtp_server or
    without notification_email."""

    def __init__(self, gdefs: GlobalDefs) -> None:
        self.server = gdefs.smtp_server
        self.recipients = tuple(gdefs.notification_email)
        self.sender = gdefs.effective_notification_email_from
        self.helo = gdefs.effective_smtp_helo_name
        self.timeout = float(gdefs.smtp_connect_timeout)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: asyncio.Queue[tuple[str, str]] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.server is not None and bool(self.recipients)

    def alert(self, subject: str, body: str) -> None:
        """Queue an alert; called from the loop, returns at once."""
        if not self.active:
            return
        if self._queue is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                log.warning("SMTP alert '%s' not sent: no event loop", subject)
                return
            self._queue = asyncio.Queue(QUEUE_MAX)
            self._task = loop.create_task(self._sender(self._queue))
        try:
            self._queue.put_nowait((subject, body))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("SMTP alert queue full (%d waiting); dropping alert '%s'", QUEUE_MAX, subject)

    async def close(self, timeout: float = 5.0) -> None:
        """Let queued alerts go out for at most `timeout` seconds, then give up on the rest."""
        task, queue = self._task, self._queue
        self._task = self._queue = None
        if task is None or queue is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(queue.join()), timeout)
        left = queue.qsize()
        if left:
            log.warning("%d SMTP alert(s) not sent at shutdown", left)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _sender(self, queue: asyncio.Queue[tuple[str, str]]) -> None:
        while True:
            subject, body = await queue.get()
            try:
                await self._send(subject, body)
            finally:
                queue.task_done()

    def _where(self, host: str) -> str:
        assert self.server is not None
        return f"[{host}]:{self.server.port}"

    async def _send(self, subject: str, body: str) -> None:
        import aiosmtplib  # noqa: PLC0415 (only with alerts: preload)

        assert self.server is not None
        loop = asyncio.get_running_loop()
        host = self.server.host
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, self.server.port, type=socket.SOCK_STREAM), self.timeout
            )
            addr = str(infos[0][4][0])
        except (OSError, TimeoutError) as e:
            self.failed += 1
            log.info("SMTP connection ERROR to %s. (cannot resolve: %s)", self._where(host), e)
            return
        where = self._where(addr)
        smtp = aiosmtplib.SMTP(
            hostname=addr,
            port=self.server.port,
            local_hostname=self.helo,
            timeout=self.timeout,
            use_tls=False,
            start_tls=False,
        )
        started = time.monotonic()
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPConnectTimeoutError, aiosmtplib.SMTPTimeoutError):
            self.failed += 1
            log.info("Timeout connecting SMTP server %s.", where)
            return
        except (aiosmtplib.SMTPException, OSError) as e:
            self.failed += 1
            log.info("SMTP connection ERROR to %s. (%s)", where, e)
            return
        log.info("Remote SMTP server %s connected.", where)
        try:
            await smtp.helo(hostname=self.helo)
            data = message(self.sender, self.recipients, subject, body)
            await smtp.sendmail(self.sender, list(self.recipients), data.encode())
        except aiosmtplib.SMTPResponseException as e:
            self.failed += 1
            log.info("Error processing SMTP cmd on SMTP server %s. SMTP status code = %d", where, e.code)
        except aiosmtplib.SMTPTimeoutError:
            self.failed += 1
            log.info("Timeout reading data to remote SMTP server %s.", where)
        except (aiosmtplib.SMTPException, OSError) as e:
            self.failed += 1
            log.info("Error sending data to remote SMTP server %s. (%s)", where, e)
        else:
            self.sent += 1
            log.info("SMTP alert successfully sent.")
            log.debug("SMTP alert '%s' took %.3f s", subject, time.monotonic() - started)
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
            smtp.close()
