"""Giving the C heap's free pages back to the kernel: glibc's malloc_trim(3).

CPython allocates every object over 512 bytes (most code objects, module and class dicts,
long strings, a parsed file's lines) with malloc. Importing, reading a configuration and a
child's start free many of them, but glibc's free() returns only the top of its heap to the
kernel: a free page between two live objects stays resident. In the parent such a page is
also shared with a child after the fork, and the first malloc that reuses it in either
process copies it. malloc_trim(0) hands every whole free page of every arena back
(MADV_DONTNEED); the next use gets a fresh zero page. With 250 instances this makes the parent
and the VRRP child 1.4-1.6 MB of PSS smaller together (README, "Measured").

Called where much was just freed: by the parent before each fork (haparent.system) and once
its children have started or reloaded (haparent.supervisor), by each child once started and
after each reload (watchdog.runtime). One call walks the free lists: about 0.2 ms with the
VRRP child's 6 MB heap.

The os module has no binding for it, so it goes through ctypes, imported at the first call
(about 150 KB of objects; the parent's first fork shares them with every child).
"""

from __future__ import annotations

import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """libc's malloc_trim, or None where the C library has none (musl)."""
    import ctypes  # noqa: PLC0415 (at the first trim: see the module's docstring)

    try:
        function = ctypes.CDLL(None).malloc_trim
    except AttributeError:
        return None
    function.argtypes = (ctypes.c_size_t,)
    function.restype = ctypes.c_int
    trim: Callable[[int], int] = function
    return trim


def trim() -> bool:
    """malloc_trim(0): whether any memory went back to the kernel."""
    function = _malloc_trim()
    return function is not None and function(0) == 1
