"""SMTP_CHECK: the real server passes when it greets with 220, answers `HELO <helo_name>`
with 250 and answers QUIT (keepalived's check_smtp.c state machine).

The exchange, as keepalived runs it:

    S: 220 ...            (the banner; anything else fails "Bad greeting banner")
    C: HELO smtpchecker.keepalived.org
    S: 250 ...            (anything else fails "Bad HELO response")
    C: QUIT
    S: <any line>         (the server closing without a line fails "Read failure")

The whole exchange with one host is bounded by its connect_timeout. The port is the
real server's, else 25.

`host { }` blocks (deprecated in keepalived, still read): every host is checked in turn,
each with its own connection options falling back to the SMTP_CHECK's (the parser
resolved that) and then to the real server's; the check passes when every host passes
and stops at the first that fails.

Written on asyncio streams rather than aiosmtplib: the check is three lines each way,
and aiosmtplib would add its own timeouts, EHLO fallback and reply parsing on top of a
socket that must carry our bindto/bind_if/fwmark options. One difference from keepalived,
on purpose: a reply is read the RFC 5321 way (continuation lines `250-...` up to the
last `250 ...`, and a bare `220`), where keepalived only looks at the first line and
fails a multi-line banner. A server keepalived passes passes here too.

Failure texts are keepalived's log lines ("SMTP_CHECK Bad greeting banner from server
[10.0.0.1]:25"), followed by what the server said in parentheses.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from conf.checkers import SmtpCheck, SmtpHost

from .base import Probe, ProbeEnv, Result, Target, connect, describe_error, failed
from .tcp import fmt_check

SMTP_PORT = 25
MAX_LINE = 512  # RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with CRLF
MAX_LINES = 100  # a multi-line reply longer than this is not an SMTP server talking
SHOWN = 60  # characters of a bad reply kept in the detail


class SmtpError(Exception):
    """The exchange failed: `text` is keepalived's words, `saw` what we got."""

    def __init__(self, text: str, saw: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.saw = saw


def fmt_pair(target: Target) -> str:
    """keepalived's inet_sockaddrtopair: `[10.0.0.1]:25` (brackets for both families)."""
    return f"[{target.address}]:{target.port or 0}"


def host_target(host: SmtpHost, base: Target) -> Target:
    """The Target of one `host { }` block: its own options where set (the parser already
    filled unset ones from the SMTP_CHECK), else the checker's target."""
    return Target(
        address=host.connect_ip if host.connect_ip is not None else base.address,
        port=host.connect_port if host.connect_port is not None else base.port,
        bindto=host.bindto if host.bindto is not None else base.bindto,
        bind_port=host.bind_port if host.bind_port is not None else base.bind_port,
        bind_if=host.bind_if if host.bind_if is not None else base.bind_if,
        fwmark=host.fwmark if host.fwmark is not None else base.fwmark,
        timeout=host.connect_timeout if host.connect_timeout is not None else base.timeout,
    )


def targets(checker: SmtpCheck, target: Target) -> list[Target]:
    """Where the check connects, in order, each with port 25 when none is known."""
    found = [host_target(h, target) for h in checker.host] if checker.host else [target]
    return [t if t.port is not None else replace(t, port=SMTP_PORT) for t in found]


def reply_code(lines: list[bytes]) -> int | None:
    """The reply's code if every line carries the same three digits, else None."""
    code: bytes | None = None
    for line in lines:
        head = line[:3]
        if len(head) != 3 or not head.isdigit() or (code is not None and head != code):
            return None
        code = head
    return int(code) if code is not None else None


def is_last_line(line: bytes) -> bool:
    """RFC 5321 4.2.1: `NNN-text` continues, `NNN text` / `NNN` ends the reply. A line
    that is no reply line at all also ends it (and fails the code check)."""
    return not (len(line) > 3 and line[:3].isdigit() and line[3:4] == b"-")


def show(lines: list[bytes]) -> str:
    text = " / ".join(line.decode("utf-8", "replace") for line in lines)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


class Conversation:
    """One SMTP exchange over a connected socket. `phase` says what we were doing when
    the deadline struck, for keepalived's "Read timeout" / "Write timeout" words."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str) -> None:
        self.reader = reader
        self.writer = writer
        self.where = where
        self.phase = "read"

    async def reply(self) -> list[bytes]:
        self.phase = "read"
        lines: list[bytes] = []
        while len(lines) < MAX_LINES:
            try:
                raw = await self.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as e:
                raise SmtpError(f"Read failure from server {self.where}", "connection closed") from e
            except asyncio.LimitOverrunError as e:
                raise SmtpError(f"Read failure from server {self.where}", "line too long") from e
            except OSError as e:
                raise SmtpError(f"Read failure from server {self.where}", describe_error(e)) from e
            line = raw.rstrip(b"\r\n")
            lines.append(line)
            if is_last_line(line):
                return lines
        raise SmtpError(f"Read failure from server {self.where}", "endless reply")

    async def send(self, text: str) -> None:
        self.phase = "write"
        try:
            self.writer.write(text.encode("utf-8", "surrogateescape") + b"\r\n")
            await self.writer.drain()
        except OSError as e:
            raise SmtpError(f"Write failure to server {self.where}", describe_error(e)) from e

    async def run(self, helo_name: str) -> None:
        banner = await self.reply()
        if reply_code(banner) != 220:
            raise SmtpError(f"Bad greeting banner from server {self.where}", show(banner))
        await self.send(f"HELO {helo_name}")
        helo = await self.reply()
        if reply_code(helo) != 250:
            raise SmtpError(f"Bad HELO response from server {self.where}", show(helo))
        await self.send("QUIT")
        await self.reply()  # any answer will do, as in keepalived; none fails


async def check_host(target: Target, helo_name: str) -> Result:
    """The exchange with one host, bounded by its connect_timeout."""
    where = fmt_pair(target)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.timeout
    try:
        sock = await connect(target)
    except TimeoutError:
        return failed(f"SMTP_CHECK Connection timeout to server {where}")
    except OSError as e:
        return failed(f"SMTP_CHECK Error connecting to server {where} ({describe_error(e)})")
    talk: Conversation | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_LINE * 4)
            talk = Conversation(reader, writer, where)
            await talk.run(helo_name)
    except TimeoutError:
        phase = "Write timeout to" if talk is not None and talk.phase == "write" else "Read timeout from"
        return failed(f"SMTP_CHECK {phase} server {where}")
    except SmtpError as e:
        return failed(f"SMTP_CHECK {e.text}" + (f" ({e.saw})" if e.saw else ""))
    except OSError as e:
        return failed(f"SMTP_CHECK Read failure from server {where} ({describe_error(e)})")
    finally:
        if writer is not None:
            writer.close()  # not awaited: closing needs nothing from the server
        else:
            sock.close()
    return Result(True, f"Remote SMTP server {fmt_check(target)} succeed on service.")


def probe(checker: SmtpCheck, env: ProbeEnv) -> Probe:
    """One attempt per call over every host; retries and timers are the workload's."""
    del env
    helo_name = checker.helo_name

    async def run(target: Target) -> Result:
        result = Result(False, "SMTP_CHECK no host to check")
        for t in targets(checker, target):
            result = await check_host(t, helo_name)
            if not result.ok:
                return result
        return result

    return run
