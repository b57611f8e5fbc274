"""pygenhash: keepalived's genhash, the MD5 of a web page's body for a url's `digest`.

    pygenhash -s ADDRESS -p PORT -u PATH [-S [-I]] [-V HOST] [-P 1.0|1.0c|1.1] [-t S] [-m MARK] [-v]

It sends the request HTTP_GET / SSL_GET send (checker_child.checks.http.fetch), so the
digest it prints is one the checker accepts. Output as genhash 2.2.7 prints it
(measured): the 32 hex digits on a line; with -v first the header and body as hex
dumps, the header as text, and the response time. For a chunked body (-P 1.1) the
digest is genhash's, over the body as sent, chunk framing included; -v dumps the
decoded body.

Differences from genhash: a failure (refused, timeout, TLS error, no data) is one line
on stderr and exit status 1 (genhash prints it on stdout and exits 0); -r prints the
version (genhash 2.2.7 has no -r).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from ipaddress import ip_address
from typing import NoReturn, TextIO

from checker_child.checks.base import Target
from checker_child.checks.http import Fetched, FetchError, fetch, ssl_context
from watchdog.version import KEEPALIVED_COMPAT, VERSION

DEFAULT_TIMEOUT = 5.0  # genhash's HTTP_CNX_TIMEOUT

_DELIM_BEGIN = "-----------------------["
_DELIM_END = "]-----------------------"


def _banner(title: str) -> str:
    return f"{_DELIM_BEGIN}{title}{_DELIM_END}"


def hex_dump(data: bytes) -> str:
    """genhash's dump_buffer(): 16 bytes a line, decimal offsets, two groups of eight."""
    lines = []
    for off in range(0, len(data), 16):
        row = data[off : off + 16]
        cells = [f"{b:02x} " if i < len(row) else "   " for i, b in enumerate(row.ljust(16, b"\0"))]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{off:04d}  {''.join(cells[:8])}- {''.join(cells[8:])}  {text:<16}")
    return "\n".join(lines) + ("\n" if lines else "")


def verbose_report(got: Fetched) -> str:
    """What genhash -v prints before the digest line, and the timing line after it."""
    out = [_banner("    HTTP Header Buffer    "), "\n", hex_dump(got.raw_head)]
    out += [_banner(" HTTP Header Ascii Buffer "), "\n", got.raw_head.decode("latin-1"), "\n"]
    out += [_banner("        HTML Buffer        "), "\n", hex_dump(got.body), "\n"]
    out += [_banner("    HTML hash resulting    "), "\n", hex_dump(bytes.fromhex(got.wire_digest or got.digest))]
    out += [_banner(" HTML hash final resulting "), "\n"]
    return "".join(out)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: {message} (see {self.prog} -h)\n")


def _port(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port number '{text}'")
    return value


def _protocol(text: str) -> str:
    proto = text.upper()
    if proto not in ("1.0", "1.0C", "1.1"):
        raise argparse.ArgumentTypeError(f"invalid HTTP protocol version '{text}'")
    return proto


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 4294.967295:
        raise argparse.ArgumentTypeError(f"invalid timeout '{text}'")
    return value


def _fwmark(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(f"invalid fwmark '{text}'")
    return value


def _address(text: str) -> str:
    try:
        return str(ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"server should be an IP, not {text}") from None


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pygenhash",
        description="MD5 of a web page's body, for HTTP_GET / SSL_GET url digest (keepalived's genhash).",
    )
    p.add_argument("-s", "--server", type=_address, help="the server's IP address")
    p.add_argument("-p", "--port", type=_port, help="the server's port")
    p.add_argument("-u", "--url", help="the path to fetch, e.g. /index.html")
    p.add_argument("-S", "--use-ssl", action="store_true", help="use TLS (as SSL_GET)")
    p.add_argument("-I", "--use-sni", action="store_true", help="send SNI: the -V virtualhost")
    p.add_argument("-V", "--use-virtualhost", metavar="HOST", help="the Host header (default ADDRESS:PORT)")
    p.add_argument(
        "-P", "--protocol", type=_protocol, default="1.0", help="1.0, 1.0c (1.0 with Connection: close) or 1.1"
    )
    p.add_argument("-t", "--timeout", type=_timeout, default=DEFAULT_TIMEOUT, help="seconds (default 5)")
    p.add_argument("-m", "--fwmark", type=_fwmark, help="firewall mark for the connection")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the header, body and timing")
    p.add_argument(
        "-r",
        "--release",
        action="version",
        version=f"pygenhash {VERSION} (keepalived {KEEPALIVED_COMPAT} genhash)",
        help="print the version and exit",
    )
    return p


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    target = Target(ip_address(args.server), args.port, fwmark=args.fwmark, timeout=args.timeout)
    ctx = ssl_context(None) if args.use_ssl else None
    sni = args.use_virtualhost if args.use_sni else None
    try:
        got = await fetch(
            target,
            args.url,
            ssl=ctx,
            host=args.use_virtualhost,
            protocol=args.protocol,
            sni=sni,
            timeout=args.timeout,
        )
    except FetchError as e:
        err.write(f"{e.phrase.strip()}: {e.reason}\n" if e.reason else f"{e.phrase.strip()}\n")
        return 1
    if not got.raw_head and not got.length:
        err.write("no data received from remote webserver\n")
        return 1
    if args.verbose:
        out.write(verbose_report(got))
    out.write(f"{got.wire_digest or got.digest}\n")
    if args.verbose:
        out.write(f"\nGlobal response time for [{args.url}] = {int(got.elapsed * 1e6)} usecs\n")
    return 0


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The `pygenhash` console script; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = make_parser()
    args = parser.parse_args(argv)
    missing = [opt for opt, val in (("-s", args.server), ("-p", args.port), ("-u", args.url)) if val is None]
    if missing:
        parser.error(f"{', '.join(missing)} required")
    if args.use_sni and not args.use_ssl:
        parser.error("-I needs -S")
    try:
        return asyncio.run(_run(args, out, err))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
