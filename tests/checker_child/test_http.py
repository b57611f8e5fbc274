"""HTTP_GET / SSL_GET against real servers on loopback, and the pure parts."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker_child.checks import http
from checker_child.checks.base import ProbeEnv, Result, Target
from checker_child.checks.http import Fetched, build_request, host_header, judge, regex_matches
from conf.checkers import CodeRange, CodeRanges, HttpGet, SslGet, Url, compile_regex
from conf.lvs import SslConf
from tests.checker_child.servers import (
    Reply,
    Seen,
    free_port,
    garbage_server,
    http_server,
    https_server,
    reset_server,
    silent_server,
)

T = TypeVar("T")
BODY = b"<html>hello keepalived</html>\n"
MD5 = hashlib.md5(BODY).hexdigest()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def target(srv: Any, timeout: float = 3.0, **kw: Any) -> Target:
    return Target(srv.address, srv.port, timeout=timeout, **kw)


async def check(checker: HttpGet, t: Target, env: ProbeEnv | None = None, vhost: str | None = None) -> Result:
    return await http.probe(checker, env or ProbeEnv(), virtualhost=vhost)(t)


def get(*urls: Url, **kw: Any) -> HttpGet:
    return HttpGet(url=urls, **kw)


def codes(*ranges: tuple[int, int]) -> CodeRanges:
    return CodeRanges(CodeRange(a, b) for a, b in ranges)


# ---------------------------------------------------------------- the request


def test_request_bytes_as_keepalived() -> None:
    # Measured with genhash 2.2.7 and read in check_http.c: same template.
    assert build_request("/a", "127.0.0.1:80", "1.0") == (
        b"GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:80\r\n\r\n"
    )
    assert build_request("/b", "www.x.org", "1.0C") == (
        b"GET /b HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.x.org\r\n\r\n"
    )
    assert build_request("/c", "h", "1.1") == (
        b"GET /c HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: h\r\n\r\n"
    )


def test_host_header() -> None:
    from ipaddress import ip_address

    assert host_header(Target(ip_address("10.0.0.1"), 80), None) == "10.0.0.1:80"
    assert host_header(Target(ip_address("10.0.0.1"), 443), None) == "10.0.0.1:443"
    assert host_header(Target(ip_address("2001:db8::1"), 8080), None) == "[2001:db8::1]:8080"
    assert host_header(Target(ip_address("2001:db8::1"), 8080), "www.a.org") == "www.a.org"


def test_request_seen_by_server_for_each_protocol() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            for proto, version, close in (("1.0", "1.0", None), ("1.0C", "1.0", "close"), ("1.1", "1.1", "close")):
                r = await check(get(Url(path="/"), http_protocol=proto), target(srv))
                assert r.ok, r
                seen = srv.requests[-1]
                assert seen.method == "GET" and seen.target == "/" and seen.http_version == version
                assert seen.header("User-Agent") == "KeepAliveClient"
                assert seen.header("Connection") == close
                assert seen.header("Host") == f"127.0.0.1:{srv.port}"

    run(main())


def test_ipv6_host_header() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}, host="::1") as srv:
            r = await check(get(Url(path="/")), target(srv))
            assert r.ok, r
            assert srv.requests[0].header("Host") == f"[::1]:{srv.port}"
            assert r.detail == f"HTTP status code success to [::1]:tcp:{srv.port} url(/)"

    run(main())


def test_virtualhost_precedence() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            t = target(srv)
            await check(get(Url(path="/"), virtualhost="chk.example"), t, vhost="rs.example")
            await check(get(Url(path="/", virtualhost="url.example"), virtualhost="chk.example"), t)
            await check(get(Url(path="/")), t, vhost="rs.example")
            assert [s.header("Host") for s in srv.requests] == ["chk.example", "url.example", "rs.example"]

    run(main())


# ---------------------------------------------------------------- judging the reply


def test_status_codes() -> None:
    async def main() -> None:
        routes = {"/ok": Reply(200, BODY), "/201": Reply(201), "/404": Reply(404), "/500": Reply(500, b"oops")}
        async with http_server(routes) as srv:
            t = target(srv)
            assert (await check(get(Url(path="/ok")), t)).ok
            assert (await check(get(Url(path="/201")), t)).ok
            r = await check(get(Url(path="/500")), t)
            assert not r.ok
            assert (
                r.detail == f"HTTP status code error to server [127.0.0.1]:tcp:{srv.port}. url(/500), status_code [500]"
            )
            assert (await check(get(Url(path="/404", status_code=codes((404, 404)))), t)).ok
            assert not (await check(get(Url(path="/ok", status_code=codes((404, 404), (500, 599)))), t)).ok
            assert (await check(get(Url(path="/500", status_code=codes((404, 404), (500, 599)))), t)).ok

    run(main())


def test_digest_match_and_mismatch() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            t = target(srv)
            r = await check(get(Url(path="/", digest=MD5)), t)
            assert r.ok and r.detail.startswith("MD5 digest success to"), r
            assert (await check(get(Url(path="/", digest=MD5.upper())), t)).ok
            r = await check(get(Url(path="/", digest="0" * 32)), t)
            assert not r.ok
            assert r.detail == f"MD5 digest error to server [127.0.0.1]:tcp:{srv.port}. url[/], MD5SUM [{MD5}]"

    run(main())


def test_regex() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            t = target(srv)
            assert (await check(get(Url(path="/", regex="hel+o")), t)).ok
            r = await check(get(Url(path="/", regex="goodbye")), t)
            assert not r.ok and r.detail.startswith("Regex match failed server [127.0.0.1]")
            assert not (await check(get(Url(path="/", regex="hel+o", regex_no_match=True)), t)).ok
            assert (await check(get(Url(path="/", regex="goodbye", regex_no_match=True)), t)).ok
            assert not (await check(get(Url(path="/", regex="HELLO")), t)).ok
            assert (await check(get(Url(path="/", regex="HELLO", regex_options=("caseless",))), t)).ok

    run(main())


def fetched(body: bytes) -> Fetched:
    return Fetched(200, "OK", "1.1", [], hashlib.md5(body).hexdigest(), body, len(body))


def test_regex_offsets_pure() -> None:
    body = b"0123456789abc"
    url = Url(path="/", regex="abc")
    pat = compile_regex(url)
    assert pat is not None
    assert regex_matches(url, pat, body)
    assert regex_matches(Url(path="/", regex="abc", regex_min_offset=10), pat, body)
    assert not regex_matches(Url(path="/", regex="abc", regex_min_offset=11), pat, body)
    assert regex_matches(Url(path="/", regex="abc", regex_max_offset=10), pat, body)  # starts at 10
    assert not regex_matches(Url(path="/", regex="abc", regex_max_offset=9), pat, body)
    two = b"line one\nline two abc\n"
    first = Url(path="/", regex="abc", regex_options=("firstline",))
    p2 = compile_regex(first)
    assert p2 is not None and not regex_matches(first, p2, two)
    ml = Url(path="/", regex="^line two", regex_options=("multiline",))
    p3 = compile_regex(ml)
    assert p3 is not None and regex_matches(ml, p3, two)
    dot = Url(path="/", regex="one.line", regex_options=("dotall",))
    p4 = compile_regex(dot)
    assert p4 is not None and regex_matches(dot, p4, two)


def test_judge_order_status_then_digest_then_regex() -> None:
    got = fetched(BODY)
    got.status = 500
    bad = judge(Url(path="/", digest="0" * 32, regex="nothere"), got, re.compile(b"nothere"))
    assert bad is not None and bad[0] == http.STATUS_ERROR
    got.status = 200
    bad = judge(Url(path="/", digest="0" * 32, regex="nothere"), got, re.compile(b"nothere"))
    assert bad is not None and bad[0] == http.DIGEST_ERROR
    bad = judge(Url(path="/", digest=MD5, regex="nothere"), got, re.compile(b"nothere"))
    assert bad is not None and bad[0] == http.REGEX_ERROR
    assert judge(Url(path="/", digest=MD5, regex="hello"), got, re.compile(b"hello")) is None


def test_bad_regex_fails_every_check_with_a_reason() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            r = await check(get(Url(path="/", regex="(unclosed")), target(srv))
            assert not r.ok and "does not compile" in r.detail
            assert srv.requests == []

    run(main())


def test_two_urls_one_failing() -> None:
    async def main() -> None:
        async with http_server({"/a": Reply(200, BODY), "/b": Reply(503)}) as srv:
            t = target(srv)
            r = await check(get(Url(path="/a"), Url(path="/b")), t)
            assert not r.ok and "url(/b), status_code [503]" in r.detail
            assert [s.target for s in srv.requests] == ["/a", "/b"]
            r = await check(get(Url(path="/a"), Url(path="/b", status_code=codes((503, 503)))), t)
            assert r.ok and r.detail.endswith("url(/b)")

    run(main())


def test_chunked_body_is_hashed_decoded() -> None:
    body = b"chunk " * 50

    async def main() -> None:
        async with http_server({"/": Reply(200, body, chunked=True, chunk_size=13)}) as srv:
            digest = hashlib.md5(body).hexdigest()
            r = await check(get(Url(path="/", digest=digest, regex="(chunk ){50}"), http_protocol="1.1"), target(srv))
            assert r.ok, r
            got = await http.fetch(target(srv), "/", ssl=None, host=None, protocol="1.1", sni=None, timeout=3)
            assert got.body == body and got.digest == digest and not got.truncated
            # keepalived's digest of the same page: over the chunk framing as sent.
            wire = hashlib.md5(Reply(200, body, chunked=True, chunk_size=13).encode_body()).hexdigest()
            assert got.wire_digest == wire != digest
            assert (await check(get(Url(path="/", digest=wire), http_protocol="1.1"), target(srv))).ok
            assert not (await check(get(Url(path="/", digest="1" * 32), http_protocol="1.1"), target(srv))).ok

    run(main())


def test_body_without_content_length_ends_at_close() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY, version="1.0", content_length=False)}) as srv:
            assert (await check(get(Url(path="/", digest=MD5)), target(srv))).ok

    run(main())


def test_large_body_hashed_whole_and_kept_capped() -> None:
    body = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB and a bit

    async def main() -> None:
        async with http_server({"/": Reply(200, body)}) as srv:
            got = await http.fetch(target(srv), "/", ssl=None, host=None, protocol="1.0", sni=None, timeout=10)
            assert got.length == len(body)
            assert got.digest == hashlib.md5(body).hexdigest()
            assert got.body == body[: http.BODY_CAP]

    run(main())


def test_closed_mid_body() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY, close_after=5)}) as srv:
            t = target(srv)
            # keepalived only notes the length mismatch: the status alone passes...
            r = await check(get(Url(path="/")), t)
            assert r.ok and f"content_length ({len(BODY)}) does not match received bytes (5)" in r.detail
            # ...but not the digest of the whole page.
            r = await check(get(Url(path="/", digest=MD5)), t)
            assert not r.ok and "MD5 digest error" in r.detail
        async with http_server({"/": Reply(200, BODY, chunked=True, close_after=10)}) as srv:
            r = await check(get(Url(path="/", digest=MD5), http_protocol="1.1"), target(srv))
            assert not r.ok

    run(main())


# ---------------------------------------------------------------- failing exchanges


def test_refused() -> None:
    from ipaddress import ip_address

    port = free_port()
    r = run(check(get(Url(path="/")), Target(ip_address("127.0.0.1"), port, timeout=3)))
    assert not r.ok
    assert r.detail == f"Connection failed server [127.0.0.1]:tcp:{port}. url(/), connection refused"


def test_silent_server_times_out_within_bound() -> None:
    async def main() -> None:
        async with silent_server() as srv:
            t0 = time.monotonic()
            r = await check(get(Url(path="/")), target(srv, timeout=0.5))
            elapsed = time.monotonic() - t0
            assert not r.ok and r.detail.startswith("Timeout WEB read server"), r
            assert 0.4 < elapsed < 2.5

    run(main())


def test_slow_server_times_out_whole_exchange() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY, delay=3)}) as srv:
            t0 = time.monotonic()
            r = await check(get(Url(path="/")), target(srv, timeout=0.5))
            assert not r.ok and "Timeout" in r.detail
            assert time.monotonic() - t0 < 2.5

    run(main())


def test_reset() -> None:
    async def main() -> None:
        async with reset_server() as srv:
            r = await check(get(Url(path="/")), target(srv))
            assert not r.ok
            assert r.detail.startswith("Read error with server") or r.detail.startswith("Read, no data"), r

    run(main())


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"", http.NO_DATA),
        (b"garbage\r\n\r\n", http.STATUS_ERROR),
        (b"HTTP/1.1 abc OK\r\n\r\n", http.STATUS_ERROR),
        (b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n", http.STATUS_ERROR),
        (b"HTTP/1.1 200 OK\r\n", http.STATUS_ERROR),  # closed inside the header
        (b"\x00\xff" * 100, http.STATUS_ERROR),
    ],
)
def test_garbage(data: bytes, phrase: str) -> None:
    async def main() -> None:
        async with garbage_server(data) as srv:
            r = await check(get(Url(path="/")), target(srv))
            assert not r.ok
            assert r.detail.startswith(f"{phrase} server [127.0.0.1]:tcp:{srv.port}."), r

    run(main())


def test_bindto() -> None:
    from ipaddress import ip_address

    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            r = await check(get(Url(path="/")), target(srv, bindto=ip_address("127.0.0.2")))
            assert r.ok, r
            assert srv.requests[0].peer[0] == "127.0.0.2"

    run(main())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600) | st.builds(lambda tail: b"HTTP/1.1 200 OK\r\n" + tail, st.binary(max_size=300)))
def test_any_reply_never_raises(data: bytes) -> None:
    async def main() -> None:
        async with garbage_server(data) as srv:
            r = await check(get(Url(path="/", digest=MD5, regex="x+")), target(srv, timeout=2))
            assert isinstance(r, Result)

    run(main())


# ---------------------------------------------------------------- SSL_GET


def ssl_get(*urls: Url, **kw: Any) -> SslGet:
    return SslGet(url=urls, **kw)


def test_ssl_get_without_verification() -> None:
    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}) as srv:
            r = await check(ssl_get(Url(path="/", digest=MD5)), target(srv))
            assert r.ok, r
            assert srv.requests[0].sni is None  # no SNI without enable_sni
            assert srv.requests[0].header("Host") == f"127.0.0.1:{srv.port}"

    run(main())


def test_ssl_get_sni() -> None:
    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}) as srv:
            t = target(srv)
            assert (await check(ssl_get(Url(path="/"), enable_sni=True, virtualhost="www.example.test"), t)).ok
            assert (await check(ssl_get(Url(path="/", virtualhost="url.example"), enable_sni=True), t)).ok
            assert (await check(ssl_get(Url(path="/"), enable_sni=True), t, vhost="rs.example")).ok
            assert (await check(ssl_get(Url(path="/"), enable_sni=True), t)).ok  # no vhost: no SNI
            assert (await check(ssl_get(Url(path="/"), virtualhost="www.example.test"), t)).ok
            assert [s.sni for s in srv.requests] == ["www.example.test", "url.example", "rs.example", None, None]

    run(main())


def test_ssl_get_odd_sni_names() -> None:
    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}) as srv:
            t = target(srv)
            for vhost, sni in (("a..b", None), ("x" * 70, None), ("ünï.example", "xn--n-nga1b.example")):
                r = await check(ssl_get(Url(path="/"), enable_sni=True, virtualhost=vhost), t)
                assert r.ok, r
                assert srv.requests[-1].sni == sni

    run(main())


def test_ssl_get_ipv6() -> None:
    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}, host="::1") as srv:
            assert (await check(ssl_get(Url(path="/")), target(srv))).ok

    run(main())


def test_ssl_get_with_ca(tmp_path: Path) -> None:
    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}) as srv:
            assert srv.ca is not None
            good = tmp_path / "ca.pem"
            srv.ca.cert_pem.write_to_path(str(good))
            other = tmp_path / "other.pem"
            trustme.CA().cert_pem.write_to_path(str(other))
            t = target(srv)
            assert (await check(ssl_get(Url(path="/")), t, ProbeEnv(ssl=SslConf(ca=str(good))))).ok
            r = await check(ssl_get(Url(path="/")), t, ProbeEnv(ssl=SslConf(ca=str(other))))
            assert not r.ok and r.detail.startswith("SSL handshake/communication error connecting to server"), r

    run(main())


def test_ssl_get_client_certificate(tmp_path: Path) -> None:
    client_ca = trustme.CA()
    cert = client_ca.issue_cert("client.example")
    cert_file = tmp_path / "client.pem"
    key_file = tmp_path / "client.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))

    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}, client_ca=client_ca) as srv:
            t = target(srv)
            conf = SslConf(certificate=str(cert_file), key=str(key_file))
            r = await check(ssl_get(Url(path="/")), t, ProbeEnv(ssl=conf))
            assert r.ok, r
            assert srv.requests[-1].client_cert
            r = await check(ssl_get(Url(path="/")), t)  # no client certificate: refused
            assert not r.ok

    run(main())


def test_ssl_get_missing_files_fail_with_reason(tmp_path: Path) -> None:
    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}) as srv:
            conf = SslConf(certificate=str(tmp_path / "nope.pem"))
            r = await check(ssl_get(Url(path="/")), target(srv), ProbeEnv(ssl=conf))
            assert not r.ok and r.detail.startswith("SSL context:"), r

    run(main())


def test_ssl_contexts_are_cached() -> None:
    conf = SslConf(ca=None)
    assert http.ssl_context(conf) is http.ssl_context(SslConf(ca=None)) is http.ssl_context(None)


def test_ssl_against_plain_server_fails() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            # The server waits for a blank line that the ClientHello does not have.
            r = await check(ssl_get(Url(path="/")), target(srv, timeout=0.5))
            assert not r.ok and r.detail.startswith("Timeout connecting server"), r
        async with garbage_server(b"HTTP/1.0 400 Bad Request\r\n\r\n", wait_for_data=False) as srv:
            r = await check(ssl_get(Url(path="/")), target(srv))
            assert not r.ok and r.detail.startswith("SSL handshake/communication error"), r

    run(main())


def test_route_function_sees_request() -> None:
    def echo(seen: Seen) -> Reply:
        return Reply(200, (seen.header("Host") or "").encode())

    async def main() -> None:
        async with http_server({"/": echo}) as srv:
            host = f"127.0.0.1:{srv.port}"
            digest = hashlib.md5(host.encode()).hexdigest()
            assert (await check(get(Url(path="/", digest=digest)), target(srv))).ok

    run(main())
