"""watchdog.tls: asyncio without OpenSSL in the processes that make no TLS connection, and
SSL_GET's TLS through asyncio once the checker builds a context. Each case runs in a fresh
interpreter: sys.modules and the process's memory map are what is under test."""

from __future__ import annotations

from tests.watchdog.test_lazypkg import run


def test_importing_our_packages_loads_no_openssl() -> None:
    out = run(
        """
        import sys
        import haparent.cli, haparent.start, haparent.supervisor, vrrp_child.workload
        print("asyncio" in sys.modules, [m for m in ("ssl", "_ssl", "_hashlib", "hmac") if m in sys.modules])
        print("libcrypto" in open("/proc/self/maps").read())
        """
    )
    assert out.split("\n")[:2] == ["True []", "False"]


TLS_SERVER = """
    import sys
    import watchdog  # asyncio comes in here, without ssl
    assert "asyncio" in sys.modules and "ssl" not in sys.modules
    import asyncio, http.server, ssl, threading
    import trustme
    from ipaddress import ip_address

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    # A thread per connection, the handshake in it: a client that never speaks TLS hangs
    # only its own.
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
"""


def test_asyncio_refuses_tls_until_enabled() -> None:
    """The state the other tests rely on is real: a context made behind the module's back
    gets asyncio's 'no ssl' answer, and the same connection works after enable()."""
    out = run(
        TLS_SERVER
        + """
    from watchdog import tls

    async def hello():
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        writer.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
        body = await reader.read()
        writer.close()
        return body.split(b"\\r\\n")[0].decode()

    try:
        asyncio.run(hello())
    except RuntimeError as e:
        print("before:", e)
    tls.enable()
    tls.enable()  # idempotent
    print("after:", asyncio.run(hello()))
    """
    )
    assert out.split("\n")[:2] == ["before: stdlib ssl module not available", "after: HTTP/1.0 200 OK"]


def test_ssl_get_connects_through_an_asyncio_imported_without_ssl() -> None:
    out = run(
        TLS_SERVER
        + """
    from checker_child.checks import http
    from checker_child.checks.base import Target

    async def get():
        return await http.fetch(
            Target(ip_address("127.0.0.1"), port, timeout=5), "/",
            ssl=http.ssl_context(None), host=None, protocol="1.1", sni=None, timeout=5,
        )

    got = asyncio.run(get())
    print(got.status, got.body.decode())
    """
    )
    assert out.split("\n")[0] == "200 hello"
