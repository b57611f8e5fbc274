"""The C heap, seen from /proc, for the tests of watchdog.heaptrim."""

from __future__ import annotations

# bytes objects over 512 bytes come from malloc (CPython's own allocator takes the smaller
# ones), and below glibc's mmap threshold (128 KiB) they come from its heap.
BLOCK = 2000
KEEP_EVERY = 32


def heap_with_holes(megabytes: int = 40) -> list[bytes]:
    """Fill `megabytes` of the heap, then free 31 blocks of every 32: what is left are the kept
    blocks, with about 62 KB of free (and still resident) heap between each two."""
    blocks = [bytes(BLOCK) for _ in range(megabytes * 1_000_000 // BLOCK)]
    return blocks[::KEEP_EVERY]


def heap_rss_kb(pid: int | str = "self") -> int:
    """Resident KB of the [heap] mapping (the main malloc arena) of process `pid`."""
    in_heap = False
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's first line
                in_heap = fields[-1] == "[heap]"
            elif in_heap and fields[0] == "Rss:":
                return int(fields[1])
    return 0
