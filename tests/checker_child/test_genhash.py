"""pygenhash as a real process against the test servers, compared with keepalived's genhash."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from checker_child import genhash
from tests.checker_child.servers import Reply, free_port, http_server, https_server, silent_server

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
BODY = b"hello world\n" * 3
GENHASH = shutil.which("genhash")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def pygenhash(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "checker_child.genhash",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def real_genhash(*args: str) -> tuple[int, str, str]:
    assert GENHASH is not None
    proc = await asyncio.create_subprocess_exec(
        GENHASH, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_prints_md5_of_body() -> None:
    async def main() -> None:
        async with http_server({"/x": Reply(200, BODY)}, host="::1") as srv:
            rc, out, err = await pygenhash("-s", "::1", "-p", str(srv.port), "-u", "/x")
            assert (rc, out, err) == (0, hashlib.md5(BODY).hexdigest() + "\n", "")
            seen = srv.requests[0]
            assert (
                seen.raw == f"GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [::1]:{srv.port}\r\n\r\n".encode()
            )

    run(main())


def test_options_reach_the_request() -> None:
    async def main() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            rc, out, _ = await pygenhash("-s", "127.0.0.1", "-p", str(srv.port), "-u", "/", "-V", "www.v", "-P", "1.1")
            assert rc == 0 and out.strip() == hashlib.md5(BODY).hexdigest()
            assert srv.requests[0].raw == (
                b"GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.v\r\n\r\n"
            )

    run(main())


def test_ssl_and_sni() -> None:
    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}) as srv:
            args = ("-S", "-s", "127.0.0.1", "-p", str(srv.port), "-u", "/")
            rc, out, _ = await pygenhash(*args, "-I", "-V", "www.example.test")
            assert rc == 0 and out.strip() == hashlib.md5(BODY).hexdigest()
            assert srv.requests[0].sni == "www.example.test"

    run(main())


@pytest.mark.parametrize(
    "argv",
    [
        ["-s", "127.0.0.1", "-p", "80"],  # no url
        ["-s", "not-an-ip", "-p", "80", "-u", "/"],
        ["-s", "127.0.0.1", "-p", "99999", "-u", "/"],
        ["-s", "127.0.0.1", "-p", "80", "-u", "/", "-P", "2.0"],
        ["-s", "127.0.0.1", "-p", "80", "-u", "/", "--bogus"],
    ],
)
def test_bad_options_one_line_exit_1(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        genhash.main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pygenhash: ")


def test_release() -> None:
    rc, out, _ = run(pygenhash("-r"))
    assert rc == 0 and out.startswith("pygenhash ")


def test_refused_and_timeout_one_line_exit_1() -> None:
    port = free_port()
    rc, out, err = run(pygenhash("-s", "127.0.0.1", "-p", str(port), "-u", "/"))
    assert (rc, out) == (1, "")
    assert err == "Connection failed: connection refused\n"

    async def main() -> None:
        async with silent_server() as srv:
            rc, out, err = await pygenhash("-s", "127.0.0.1", "-p", str(srv.port), "-u", "/", "-t", "0.5")
            assert (rc, out, err) == (1, "", "Timeout WEB read: timeout\n")

    run(main())


def test_main_in_process() -> None:
    # main() runs its own loop: the server lives in another thread's loop here.
    import threading

    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        async with http_server({"/": Reply(200, BODY)}) as srv:
            box["port"] = srv.port
            box["stop"] = asyncio.Event()
            box["loop"] = asyncio.get_running_loop()
            ready.set()
            await box["stop"].wait()

    th = threading.Thread(target=lambda: asyncio.run(serve()))
    th.start()
    try:
        assert ready.wait(10)
        out, err = io.StringIO(), io.StringIO()
        assert genhash.main(["-s", "127.0.0.1", "-p", str(box["port"]), "-u", "/"], out=out, err=err) == 0
        assert out.getvalue() == hashlib.md5(BODY).hexdigest() + "\n"
    finally:
        if "loop" in box:
            box["loop"].call_soon_threadsafe(box["stop"].set)
        th.join(10)


def test_hex_dump_as_genhash() -> None:
    # genhash 2.2.7 -v, measured.
    head = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-A: b\r\n\r\n"
    assert genhash.hex_dump(head) == (
        "0000  48 54 54 50 2f 31 2e 30 - 20 32 30 30 20 4f 4b 0d   HTTP/1.0 200 OK.\n"
        "0016  0a 43 6f 6e 74 65 6e 74 - 2d 54 79 70 65 3a 20 74   .Content-Type: t\n"
        "0032  65 78 74 2f 70 6c 61 69 - 6e 0d 0a 58 2d 41 3a 20   ext/plain..X-A: \n"
        "0048  62 0d 0a 0d 0a          -                           b....           \n"
    )
    assert genhash.hex_dump(b"") == ""


def _strip_timing(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("Global response time"))


def _header_part(text: str) -> str:
    """The verbose output up to the end of the header's text (before any body dump)."""
    lines = text.splitlines()
    ascii_at = next(i for i, line in enumerate(lines) if "HTTP Header Ascii Buffer" in line)
    end = next(
        (i for i in range(ascii_at, len(lines)) if "HTML Buffer" in lines[i] or lines[i].startswith("0000  ")),
        len(lines),
    )
    return "\n".join(lines[:end])


@pytest.mark.skipif(GENHASH is None, reason="keepalived's genhash is not installed")
@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, BODY, version="1.0", headers=[("Content-Type", "text/plain")]),
        Reply(404, b"missing\n"),
        Reply(200, bytes(range(256)) * 40),
        Reply(200, BODY, version="1.0", content_length=False),
        Reply(200, BODY * 5, chunked=True, chunk_size=10),
    ],
    ids=["plain", "404", "binary-10k", "no-length", "chunked"],
)
def test_same_output_as_keepalived_genhash(reply: Reply, verbose: bool) -> None:
    async def main() -> None:
        async with http_server({"/p": reply}) as srv:
            args = ["-s", "127.0.0.1", "-p", str(srv.port), "-u", "/p"] + (["-v"] if verbose else [])
            ours = await pygenhash(*args)
            theirs = await real_genhash(*args)
            assert ours[0] == theirs[0] == 0
            if verbose:
                # genhash dumps the body as it reads it: the "HTML Buffer" banner only when
                # the body came in the header's read, offsets restarting at each read. Compare
                # the header dumps and the digest part exactly.
                o, t = _strip_timing(ours[1]), _strip_timing(theirs[1])
                assert _header_part(o) == _header_part(t)
                assert o.split("HTML hash resulting")[1] == t.split("HTML hash resulting")[1]
            else:
                assert ours[1] == theirs[1]
                assert ours[1].strip() == hashlib.md5(reply.encode_body()).hexdigest()
            assert srv.requests[0].raw == srv.requests[1].raw

    run(main())


@pytest.mark.skipif(GENHASH is None, reason="keepalived's genhash is not installed")
def test_same_output_as_keepalived_genhash_ssl() -> None:
    async def main() -> None:
        async with https_server({"/": Reply(200, BODY)}) as srv:
            args = ["-S", "-s", "127.0.0.1", "-p", str(srv.port), "-u", "/"]
            ours = await pygenhash(*args)
            theirs = await real_genhash(*args)
            assert ours == theirs
            assert srv.requests[0].raw == srv.requests[1].raw

    run(main())
