"""Due times of many keys in a timing wheel: pure, no clock and no loop.

10,000 TCP_CHECKs at delay_loop 1 put 10,000 due times a second in and take them out
again (issue 15). A binary heap of (time, sequence, key) tuples costs a log(n) sift of
tuple comparisons each way; here a due time goes into the list of its time slot (`slot`
seconds wide, the scheduler's tick), and only the slot numbers are kept in a heap: one
heap operation per slot (500 a second at a 2 ms tick) instead of two per check, whatever
the number of checks.

Rescheduling a key leaves its old entry behind; entries whose sequence number is not the
key's current one are skipped when their slot comes (lazy deletion, as `cancel` does), and
the wheel is rebuilt when they outnumber the live ones.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

_Entry = tuple[float, int, K]


class TimerWheel(Generic[K]):
    """Due times for keys (non-negative times), one pending time per key."""

    def __init__(self, slot: float = 0.002) -> None:
        if slot <= 0:
            raise ValueError("slot must be positive")
        self._per_second = 1.0 / slot
        self._slots: dict[int, list[_Entry[K]]] = {}
        self._order: list[int] = []  # a heap of the slot numbers in _slots
        self._current: dict[K, int] = {}  # key -> the sequence number of its live entry
        self._seq = 0
        self._entries = 0  # live and stale entries in _slots

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, key: object) -> bool:
        return key in self._current

    def push(self, when: float, key: K) -> None:
        """`key` is due at `when` (replacing its pending time, if any)."""
        self._seq = seq = self._seq + 1
        self._current[key] = seq
        n = math.floor(when * self._per_second)
        bucket = self._slots.get(n)
        if bucket is None:
            bucket = self._slots[n] = []
            heapq.heappush(self._order, n)
        bucket.append((when, seq, key))
        self._entries += 1
        if self._entries > 2 * len(self._current) + 1024:
            self._compact()

    def cancel(self, key: K) -> None:
        self._current.pop(key, None)

    def next_when(self) -> float | None:
        """The earliest pending time (stale entries met on the way are dropped)."""
        order, slots = self._order, self._slots
        while order:
            n = order[0]
            live = self._live(slots[n])
            if live:
                slots[n] = live
                return min(live)[0]
            heapq.heappop(order)
            del slots[n]
        return None

    def pop_due(self, now: float) -> list[tuple[float, K]]:
        """Every key due at `now`, with its due time, earliest first."""
        out: list[tuple[float, K]] = []
        order, slots = self._order, self._slots
        last = math.floor(now * self._per_second)
        while order and order[0] <= last:
            n = order[0]
            bucket = slots[n]
            if n == last:  # the slot of `now`: only what is due by now leaves it
                later = [e for e in bucket if e[0] > now]
                if later:
                    slots[n] = later
                    self._entries -= len(bucket) - len(later)
                    self._take(sorted(e for e in bucket if e[0] <= now), out)
                    break
            heapq.heappop(order)
            del slots[n]
            self._entries -= len(bucket)
            bucket.sort()  # (when, seq, key): seq is unique, keys are never compared
            self._take(bucket, out)
        return out

    def clear(self) -> None:
        self._slots.clear()
        self._order.clear()
        self._current.clear()
        self._entries = 0

    def _take(self, entries: list[_Entry[K]], out: list[tuple[float, K]]) -> None:
        current = self._current
        for when, seq, key in entries:
            if current.get(key) == seq:
                del current[key]
                out.append((when, key))

    def _live(self, bucket: list[_Entry[K]]) -> list[_Entry[K]]:
        current = self._current
        live = [e for e in bucket if current.get(e[2]) == e[1]]
        self._entries -= len(bucket) - len(live)
        return live

    def _compact(self) -> None:
        for n in list(self._slots):
            live = self._live(self._slots[n])
            if live:
                self._slots[n] = live
            else:
                del self._slots[n]
        self._order = list(self._slots)
        heapq.heapify(self._order)
