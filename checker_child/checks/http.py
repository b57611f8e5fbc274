"""HTTP_GET and SSL_GET: fetch each `url` of the checker and judge the answer.

keepalived's request, byte for byte (check_http.c, measured with genhash 2.2.7):

    GET <path> HTTP/1.0\\r\\n
    User-Agent: KeepAliveClient\\r\\n
    [Connection: close\\r\\n]            (http_protocol 1.0C and 1.1)
    Host: <virtualhost> | <address>:<port> | [<v6 address>]:<port>\\r\\n
    \\r\\n

(`HTTP/1.1` with `http_protocol 1.1`.) The port is always in the Host header when it
is the address (even 80 or 443), never when it is a virtualhost. The request is written
as those bytes; the reply is parsed by h11.

A url passes when its status is in `status_code`, the MD5 of the body equals `digest`
(if given) and `regex` matches (or, with `regex_no_match`, does not). The check passes
when every url passes. The whole exchange of one url (connect, TLS, request, reply) is
bounded by connect_timeout.

A chunked body (a server answering `http_protocol 1.1`): keepalived and genhash hash
the bytes as sent, chunk framing included, which changes with the chunk sizes. Both
that digest and the MD5 of the decoded content are accepted, so digests made with
genhash keep working and so do digests of the content.

Differences from keepalived, on purpose:
- The regex runs with Python's `re` on the first BODY_CAP bytes of the body, where
  keepalived streams PCRE2 over all of it. See `conf.checkers.compile_regex` for the options.

Failure texts start with keepalived's own log line, "<what> server <[addr]:tcp:port>.",
e.g. "HTTP status code error to server [10.0.0.1]:tcp:80.", followed by what we saw
("url(/), status_code [500]"), so log watchers matching keepalived's lines still match.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl as ssl_mod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h11

from conf.checkers import HttpGet, Url, compile_regex
from watchdog.tls import enable as enable_tls

from .base import Probe, ProbeEnv, Result, Target, connect, describe_error
from .tcp import fmt_check

if TYPE_CHECKING:
    from conf.lvs import SslConf

BODY_CAP = 1 << 20  # body bytes kept for the regex and genhash -v; all of it is hashed
READ_SIZE = 65536
HEAD_CAP = 65536
USER_AGENT = "KeepAliveClient"

# keepalived's words for each way an exchange fails (check_http.c timeout_epilog()).
CONNECT_FAILED = "Connection failed"
ERROR_CONNECTING = "Error connecting"
TIMEOUT_CONNECTING = "Timeout connecting"
SSL_ERROR = "SSL handshake/communication error connecting to"
SEND_ERROR = "Cannot send get request to"
TIMEOUT_WEB_READ = "Timeout WEB read"
TIMEOUT_HTTP_READ = "Timeout HTTP read"
READ_ERROR = "Read error with"
NO_DATA = "Read, no data received from "  # sic: keepalived's trailing space
STATUS_ERROR = "HTTP status code error to"
DIGEST_ERROR = "MD5 digest error to"
REGEX_ERROR = "Regex match failed"


class FetchError(Exception):
    """One url's exchange failed. `phrase` is keepalived's text for it (one of the
    constants above), `reason` what we saw ("connection refused")."""

    def __init__(self, phrase: str, reason: str = "") -> None:
        super().__init__(f"{phrase} ({reason})" if reason else phrase)
        self.phrase = phrase
        self.reason = reason


@dataclass
class Fetched:
    """What one GET brought back."""

    status: int
    reason: str
    http_version: str  # "1.0", "1.1"
    headers: list[tuple[str, str]]
    digest: str  # MD5 (hex) of the whole body (decoded from chunks)
    body: bytes  # its first BODY_CAP bytes
    length: int  # body bytes received
    content_length: int | None = None
    truncated: bool = False  # the server closed before Content-Length / the last chunk
    request: bytes = b""  # what we sent
    raw_head: bytes = b""  # the status line and headers as received
    elapsed: float = 0.0  # seconds, connect to last byte
    notes: list[str] = field(default_factory=list)
    wire_digest: str = ""  # MD5 as keepalived / genhash compute it: differs for a chunked body

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.digest, self.wire_digest) if self.wire_digest else (self.digest,)


# ---------------------------------------------------------------- the request (pure)


def host_header(target: Target, virtualhost: str | None) -> str:
    if virtualhost:
        return virtualhost
    port = 0 if target.port is None else target.port
    if target.address.version == 6:
        return f"[{target.address}]:{port}"
    return f"{target.address}:{port}"


def build_request(path: str, host: str, protocol: str) -> bytes:
    """keepalived's GET request for `http_protocol` 1.0, 1.0C or 1.1 (case-insensitive)."""
    proto = protocol.upper()
    version = "1.1" if proto == "1.1" else "1.0"
    close = "Connection: close\r\n" if proto in ("1.0C", "1.1") else ""
    text = f"GET {path} HTTP/{version}\r\nUser-Agent: {USER_AGENT}\r\n{close}Host: {host}\r\n\r\n"
    return text.encode("latin-1", "replace")


# ---------------------------------------------------------------- TLS contexts


def sni_usable(name: str) -> bool:
    """Whether the ssl module can send `name` as SNI (it refuses what IDNA cannot
    encode: empty labels, labels over 63 characters). keepalived sends any string; we
    send none rather than fail the check."""
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True


_SSL_CACHE: dict[tuple[str | None, str | None, str | None, str | None], ssl_mod.SSLContext] = {}


def ssl_context(conf: SslConf | None) -> ssl_mod.SSLContext:
    """The client context for the `SSL { }` block (cached: building one reads files and
    is slow). keepalived verifies nothing unless `ca` is given; then the chain must
    verify, but the name is not checked (the target is an address)."""
    key = (conf.ca, conf.certificate, conf.key, conf.password) if conf is not None else (None, None, None, None)
    ctx = _SSL_CACHE.get(key)
    if ctx is not None:
        return ctx
    enable_tls()  # asyncio was imported without ssl (watchdog/tls.py): every TLS connection starts here
    ctx = ssl_mod.SSLContext(ssl_mod.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if conf is not None and conf.ca:
        ctx.load_verify_locations(cafile=conf.ca)
        ctx.verify_mode = ssl_mod.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl_mod.CERT_NONE
    if conf is not None and conf.certificate:
        ctx.load_cert_chain(conf.certificate, conf.key or None, conf.password or None)
    _SSL_CACHE[key] = ctx
    return ctx


# ---------------------------------------------------------------- one exchange


class _Reader:
    """Feeds h11 from the stream and maps each failure to keepalived's words."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.conn = h11.Connection(h11.CLIENT)
        self.received = 0
        self.in_body = False
        self.head = bytearray()  # the first bytes received, up to the blank line (genhash -v)
        self.head_done = False
        # keepalived and genhash hash the bytes after the header as they come: for a
        # chunked body that includes the chunk framing.
        self.wire_md5 = hashlib.md5(usedforsecurity=False)

    async def next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as e:
                if not self.received:
                    raise FetchError(NO_DATA, "empty reply") from None
                if self.in_body:
                    raise _Truncated() from None
                raise FetchError(STATUS_ERROR, f"invalid HTTP reply: {e}") from None
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.reader.read(READ_SIZE)
            except ConnectionError as e:
                raise FetchError(READ_ERROR, describe_error(e)) from None
            except ssl_mod.SSLError as e:
                raise FetchError(READ_ERROR, e.reason or str(e)) from None
            except OSError as e:
                raise FetchError(READ_ERROR, describe_error(e)) from None
            self.received += len(data)
            self._split_head(data)
            self.conn.receive_data(data)

    def _split_head(self, data: bytes) -> None:
        if self.head_done:
            self.wire_md5.update(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end != -1:
            self.wire_md5.update(self.head[end + 4 :])
            del self.head[end + 4 :]
            self.head_done = True
        elif len(self.head) > HEAD_CAP:
            self.head_done = True  # h11 refuses such a header anyway


class _Truncated(Exception):
    """The connection closed inside a framed body."""


@dataclass
class _Stage:
    """Where the exchange is, to name a timeout with keepalived's words."""

    stage: str = TIMEOUT_CONNECTING


async def _open(
    target: Target, ssl: ssl_mod.SSLContext | None, sni: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect (and TLS), failures named as keepalived names them."""
    try:
        sock = await connect(target)
    except TimeoutError:
        raise FetchError(TIMEOUT_CONNECTING, "timeout") from None
    except ConnectionRefusedError as e:
        raise FetchError(CONNECT_FAILED, describe_error(e)) from None
    except OSError as e:
        raise FetchError(ERROR_CONNECTING, describe_error(e)) from None
    try:
        if ssl is not None:
            # server_hostname "" sends no SNI: keepalived sends one only with enable_sni.
            name = sni if sni and sni_usable(sni) else ""
            return await asyncio.open_connection(sock=sock, ssl=ssl, server_hostname=name)
        return await asyncio.open_connection(sock=sock)
    except (ssl_mod.SSLError, ConnectionError, EOFError, ValueError) as e:
        # ValueError: an sni name the ssl module refuses (IDNA, empty labels).
        sock.close()
        reason = e.reason if isinstance(e, ssl_mod.SSLError) and e.reason else describe_error(e)
        raise FetchError(SSL_ERROR, reason) from None
    except BaseException:
        sock.close()
        raise


async def _send(writer: asyncio.StreamWriter, request: bytes, rd: _Reader) -> None:
    # h11 writes only HTTP/1.1: tell it of a request (its bytes are dropped) so that it
    # frames the reply. Placeholder target and Host: h11 would refuse odd characters
    # that keepalived sends as they are, and they do not matter for the framing.
    rd.conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x"), ("Connection", "close")]))
    rd.conn.send(h11.EndOfMessage())
    try:
        writer.write(request)
        await writer.drain()
    except (OSError, ssl_mod.SSLError) as e:
        raise FetchError(SEND_ERROR, describe_error(e)) from None


async def _head(rd: _Reader, request: bytes) -> Fetched:
    """The reply's status line and headers (1xx replies skipped)."""
    event = await rd.next_event()
    while isinstance(event, h11.InformationalResponse):
        event = await rd.next_event()
    if not isinstance(event, h11.Response):
        raise FetchError(NO_DATA, "no reply")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()]
    clen: int | None = None
    for k, v in headers:
        if k.lower() == "content-length":
            try:
                clen = int(v)
            except ValueError:
                clen = None
    return Fetched(
        status=event.status_code,
        reason=event.reason.decode("latin-1"),
        http_version=event.http_version.decode("ascii", "replace"),
        headers=headers,
        digest="",
        body=b"",
        length=0,
        content_length=clen,
        request=request,
    )


async def _body(rd: _Reader, got: Fetched) -> None:
    """Read the body into `got`: its MD5 digests, its length, its first BODY_CAP bytes,
    and a note when the connection closed inside it."""
    md5 = hashlib.md5(usedforsecurity=False)
    kept = bytearray()
    rd.in_body = True
    try:
        while True:
            ev = await rd.next_event()
            if isinstance(ev, h11.Data):
                chunk = bytes(ev.data)
                md5.update(chunk)
                got.length += len(chunk)
                room = BODY_CAP - len(kept)
                if room > 0:
                    kept += chunk[:room]
            elif isinstance(ev, (h11.EndOfMessage, h11.ConnectionClosed)) or ev is h11.PAUSED:
                break
    except _Truncated:
        got.truncated = True
        clen = got.content_length
        if clen is not None:
            got.notes.append(f"content_length ({clen}) does not match received bytes ({got.length})")
        else:
            got.notes.append(f"connection closed inside the body after {got.length} bytes")
    got.digest = md5.hexdigest()
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in got.headers)
    got.wire_digest = rd.wire_md5.hexdigest() if chunked else got.digest
    got.raw_head = bytes(rd.head)
    got.body = bytes(kept)


async def _exchange(
    target: Target,
    path: str,
    *,
    ssl: ssl_mod.SSLContext | None,
    host: str,
    protocol: str,
    sni: str | None,
    started: float,
    state: _Stage,
) -> Fetched:
    loop = asyncio.get_running_loop()
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await _open(target, ssl, sni)
        request = build_request(path, host, protocol)
        rd = _Reader(reader)
        state.stage = SEND_ERROR
        await _send(writer, request, rd)
        state.stage = TIMEOUT_WEB_READ
        got = await _head(rd, request)
        state.stage = TIMEOUT_HTTP_READ
        await _body(rd, got)
        got.elapsed = loop.time() - started
        return got
    finally:
        if writer is not None:
            # keepalived closes TLS quietly (SSL_set_quiet_shutdown): no close_notify wait.
            writer.transport.abort()


async def fetch(
    target: Target,
    path: str,
    *,
    ssl: ssl_mod.SSLContext | None,
    host: str | None,
    protocol: str,
    sni: str | None,
    timeout: float,
) -> Fetched:
    """GET `path` from `target` as keepalived does, within `timeout` for the whole
    exchange. `host`: the virtualhost, else the Host header is `address:port`.
    Raises FetchError (never OSError / SSLError / h11 errors) when the exchange fails;
    a reply with any status is a Fetched."""
    loop = asyncio.get_running_loop()
    state = _Stage()
    try:
        async with asyncio.timeout(timeout):
            return await _exchange(
                target,
                path,
                ssl=ssl,
                host=host_header(target, host),
                protocol=protocol,
                sni=sni,
                started=loop.time(),
                state=state,
            )
    except TimeoutError:
        stage = TIMEOUT_WEB_READ if state.stage == SEND_ERROR else state.stage
        raise FetchError(stage, "timeout") from None


# ---------------------------------------------------------------- judging a reply (pure)


def regex_matches(url: Url, pattern: re.Pattern[bytes], body: bytes) -> bool:
    """Whether the pattern matches with keepalived's offsets: the match starts at or
    after regex_min_offset and at or before regex_max_offset; `firstline` wants it to
    start in the first line."""
    m = pattern.search(body, url.regex_min_offset)
    if m is None:
        return False
    if url.regex_max_offset is not None and m.start() > url.regex_max_offset:
        return False
    if "firstline" in url.regex_options:
        nl = body.find(b"\n")
        if nl != -1 and m.start() > nl:
            return False
    return True


def judge(url: Url, got: Fetched, pattern: re.Pattern[bytes] | None) -> tuple[str, str] | None:
    """None when the url passes, else (keepalived's phrase, what we saw); checked in
    keepalived's order: status, digest, regex."""
    path = url.path or "/"
    if not url.matches_status(got.status):
        return STATUS_ERROR, f"url({path}), status_code [{got.status}]"
    if url.digest is not None and url.digest.lower() not in got.digests:
        return DIGEST_ERROR, f"url[{path}], MD5SUM [{got.wire_digest or got.digest}]"
    if pattern is not None and regex_matches(url, pattern, got.body) == url.regex_no_match:
        return REGEX_ERROR, f"url({path}), regex{' no match' if url.regex_no_match else ''} [{url.regex}]"
    return None


def success_phrase(url: Url) -> str:
    """keepalived's "<what> success to <chk> url(<path>)" names the last test passed."""
    if url.regex is not None:
        return "Regex match"
    if url.digest is not None:
        return "MD5 digest"
    return "HTTP status code"


def _line(phrase: str, target: Target, extra: str = "") -> str:
    text = f"{phrase} server {fmt_check(target)}."
    return f"{text} {extra}" if extra else text


# ---------------------------------------------------------------- the probe


def probe(checker: HttpGet, env: ProbeEnv, *, virtualhost: str | None = None) -> Probe:
    """HTTP_GET or SSL_GET (`checker.is_ssl`). `virtualhost`: the real server's, else
    the virtual server's, used when neither the url nor the checker has one
    (keepalived's precedence: url, checker, real server, virtual server)."""
    urls: Sequence[Url] = checker.url
    default_vhost = checker.virtualhost or virtualhost
    setup_error = ""
    ctx: ssl_mod.SSLContext | None = None
    if checker.is_ssl:
        try:
            ctx = ssl_context(env.ssl)
        except (OSError, ssl_mod.SSLError, ValueError) as e:
            setup_error = f"SSL context: {describe_error(e)}"
    patterns: list[re.Pattern[bytes] | None] = []
    for url in urls:
        try:
            patterns.append(compile_regex(url))
        except re.error as e:
            patterns.append(None)
            setup_error = setup_error or f"url({url.path}): regex [{url.regex}] does not compile: {e}"

    async def run(target: Target) -> Result:
        if setup_error:
            return Result(False, setup_error)
        passed = ""
        for url, pattern in zip(urls, patterns, strict=True):
            vhost = url.virtualhost or default_vhost
            sni = vhost if checker.enable_sni else None  # enable_sni: the virtualhost is the SNI name
            path = url.path or "/"
            try:
                got = await fetch(
                    target,
                    path,
                    ssl=ctx,
                    host=vhost,
                    protocol=checker.http_protocol,
                    sni=sni,
                    timeout=target.timeout,
                )
            except FetchError as e:
                return Result(False, _line(e.phrase, target, f"url({path}), {e.reason}" if e.reason else ""))
            bad = judge(url, got, pattern)
            if bad is not None:
                return Result(False, _line(bad[0], target, bad[1]))
            passed = f"{success_phrase(url)} success to {fmt_check(target)} url({path})"
            if got.notes:
                passed += f" ({'; '.join(got.notes)})"
        return Result(True, passed)

    return run
