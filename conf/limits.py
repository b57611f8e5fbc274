"""What one configuration may cost, and the exception that stops a load that would cost more.

keepalived has no such limits and needs none: it reads a 50 MB file of 2.5 million
addresses in about 2 s and 280 MB. The same file cost pykeepalived 90 s and 2.9 GB before
these limits (a MemoryError traceback where memory was limited), enough to starve the
host or, on SIGHUP, to stall the running daemon; now it stops after 100,000 of them, in
1.3 s and 145 MB. Each limit is far above any configuration that can make sense (the
parse benchmark, bench/parse_bench.py, with 1,000 vrrp_instances and 10,000 real_servers,
is 1.4 MB, 74,603 lines and 148,305 words) and low enough that the worst file ends in a
diagnostic within seconds and a few hundred MB.
"""

from __future__ import annotations

from conf.diagnostics import Location

# Bytes read over the main file and every include together: 45 times the benchmark's
# file. Checked with stat() before a file is read, so a larger file costs nothing.
MAX_CONFIG_BYTES = 64 * 1024 * 1024

# Characters in one physical line. keepalived reads lines in 1,024-byte pieces (MAXBUF),
# so a longer line cannot mean anything to it; 64 times that leaves room for long
# quoted scripts and keeps one line's words from costing more than a few MB.
MAX_LINE_CHARS = 64 * 1024

# Lines of statements and their words, after includes, parameters and ~SEQ/~LST: 13 and
# 54 times the benchmark's file, and 3 times the largest configuration users run (100
# virtual servers of 1,000 real servers: 300,000 lines, which keepalived accepts, so we
# must). Building the model costs 9 us a line for the benchmark's lines and up to 35 us
# for address lines: a file just under the limits loads in 10 to 35 s. A reload reads it
# in a thread of the parent, which keeps supervising meanwhile.
MAX_LINES = 1_000_000
MAX_WORDS = 8_000_000

# Statements inside one block (the top level excepted: it is bounded by MAX_LINES).
# The longest real blocks are a virtual_server's real_servers and an instance's
# addresses; a VRRP advert carries at most 255 addresses (8-bit count, RFC 3768 section
# 5.3.5, RFC 5798 section 5.2.5). This limit stops a file of millions of addresses after
# a fraction of a second, where MAX_LINES would take several.
MAX_BLOCK_STATEMENTS = 100_000

# Blocks inside blocks: keepalived.conf's deepest is 4 (virtual_server, real_server,
# HTTP_GET, url). Bounds the stack of open blocks and the "missing '}'" diagnostics.
MAX_BLOCK_DEPTH = 100

# Include nesting, parameter expansion depth and the lines ~SEQ/~LST may make: where
# keepalived has no limit, a cycle must be an error, not a hang.
MAX_INCLUDE_DEPTH = 32
MAX_EXPANSION_DEPTH = 64
MAX_REPEAT_LINES = 2_000_000


class ConfigTooLarge(Exception):
    """Raised where a limit is crossed; `conf.load` turns it into one diagnostic,
    "configuration too large: ...", and stops reading."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
