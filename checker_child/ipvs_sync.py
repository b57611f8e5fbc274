"""IPVS bookkeeping: what the kernel holds, as far as it said so, and bringing it to the
table the real servers' states want (checker_child.table).

- `Applied` records only what the kernel accepted. Each entry of a diff is one kernel
  command whose answer is read (`answer`, pure): a refused entry stays as the kernel has
  it, so the next diff asks for it again.
- A refused entry is retried with a backoff (`RetryBook`, pure: 1 s doubling up to 60 s),
  its error logged once (again only if the reason changes), counted in the stats dump,
  listed in the JSON dump (`ipvs.retrying`) and raised as a degraded condition (STATUS=,
  `pykeepalivedctl status`) until the kernel takes it ("... succeeded after N tries").
- Answers that say the kernel already is where we want it count as accepted: an add
  refused with EEXIST (an entry an earlier run or ipvsadm left), a delete refused with
  ENOENT/ESRCH. An edit refused with ENOENT/ESRCH means the entry is gone: it is recorded
  as absent, so the next pass adds it again.

Where the kernel has no IPVS, keepalived's checker dies FATAL; we log one warning and
program nothing (everything else runs).
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from checker_child import ipvs as ipvs_mod
from checker_child.ipvs import Refused
from checker_child.table import Destination, DestKey, Diff, EntryKey, Service, ServiceKey, Table, diff, entries
from conf.model import Config
from watchdog.protocol import Json
from watchdog.runtime import EXIT_MISSING_PERMISSION, PermanentError
from watchdog.status import NO_IPVS_IN_KERNEL, Conditions, IpvsStatus

log = logging.getLogger("pykeepalived_healthcheckers")

NO_IPVS_WARNING = "IPVS is not available in this kernel: health checks run and notify, the IPVS table is not programmed"
RETRY_FIRST = 1.0  # s before the first retry of a refused entry
RETRY_MAX = 60.0  # s: the backoff doubles up to this (keepalived's respawn cap, for the same reason)
RETRY_CONDITION = "ipvs:refused"
_ABSENT = frozenset({errno.ENOENT, errno.ESRCH})


class IpvsTable(Protocol):
    """The kernel's IPVS table as the bookkeeping uses it (checker_child.ipvs.Ipvs, or a
    fake in tests: this kernel has no IPVS module)."""

    def apply(self, change: Diff) -> list[Refused]: ...
    def flush(self) -> None: ...
    def remove(self, keys: Iterable[ServiceKey]) -> None: ...
    def close(self) -> None: ...


class Answer(enum.Enum):
    ACCEPTED = "accepted"  # the kernel holds the entry as asked (or had it already)
    GONE = "gone"  # the kernel does not have the entry an edit was for
    REFUSED = "refused"  # the kernel keeps what it had: retry


def answer(entry: Diff, refusal: Refused | None) -> Answer:
    """What the kernel's answer to one entry's command means for the bookkeeping."""
    if refusal is None:
        return Answer.ACCEPTED
    if (entry.add_services or entry.add_destinations) and refusal.code == errno.EEXIST:
        return Answer.ACCEPTED
    if (entry.remove_services or entry.remove_destinations) and refusal.code in _ABSENT:
        return Answer.ACCEPTED
    if (entry.edit_services or entry.edit_destinations) and refusal.code in _ABSENT:
        return Answer.GONE
    return Answer.REFUSED


class Applied:
    """The table the kernel accepted, changed in place entry by entry (a copy per entry
    would cost O(n^2) when thousands of real servers change at once)."""

    def __init__(self) -> None:
        self.services: dict[ServiceKey, Service] = {}
        self.destinations: dict[ServiceKey, dict[DestKey, Destination]] = {}

    def table(self) -> Table:
        return Table(self.services, self.destinations)

    def accept(self, entry: Diff) -> None:
        for svc in (*entry.add_services, *entry.edit_services):
            self.services[svc.key] = svc
            self.destinations.setdefault(svc.key, {})
        for skey, dest in (*entry.add_destinations, *entry.edit_destinations):
            if skey in self.services:
                self.destinations[skey][dest.key] = dest
        for skey, dkey in entry.remove_destinations:
            self.destinations.get(skey, {}).pop(dkey, None)
        for skey in entry.remove_services:
            self.forget(skey)

    def forget(self, key: EntryKey) -> None:
        if isinstance(key, tuple):
            self.destinations.get(key[0], {}).pop(key[1], None)
        else:
            self.services.pop(key, None)
            self.destinations.pop(key, None)

    def clear(self) -> None:
        self.services.clear()
        self.destinations.clear()


@dataclass
class Failing:
    refusal: Refused
    tries: int
    next_at: float  # loop time of the next try


class RetryBook:
    """The refused entries, each with its backoff (pure: times come in)."""

    def __init__(self, first: float = RETRY_FIRST, cap: float = RETRY_MAX) -> None:
        self.first, self.cap = first, cap
        self.failing: dict[EntryKey, Failing] = {}

    def held(self, key: EntryKey, now: float) -> bool:
        """Whether `key` waits for its next try."""
        f = self.failing.get(key)
        return f is not None and f.next_at > now

    def refused(self, key: EntryKey, refusal: Refused, now: float) -> bool:
        """Record a refusal; True when it is news (first, or a new reason): log it."""
        f = self.failing.get(key)
        tries = 1 if f is None else f.tries + 1
        delay = min(self.cap, self.first * 2 ** (tries - 1))
        self.failing[key] = Failing(refusal, tries, now + delay)
        return f is None or f.refusal.reason != refusal.reason

    def accepted(self, key: EntryKey) -> Failing | None:
        return self.failing.pop(key, None)

    def keep_only(self, keys: set[EntryKey]) -> None:
        """Forget entries the wanted table no longer differs on."""
        for key in [k for k in self.failing if k not in keys]:
            del self.failing[key]

    def next_at(self) -> float | None:
        return min((f.next_at for f in self.failing.values()), default=None)


class IpvsSync:
    """Opens the kernel's IPVS table and keeps it at the wanted table."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        conditions: Conditions,
        wanted: Callable[[], Table],
        opener: Callable[[], IpvsTable] | None = None,  # default: checker_child.ipvs.Ipvs
    ) -> None:
        self.loop = loop
        self.conditions = conditions
        self.wanted = wanted
        self.opener = opener
        self.kernel: IpvsTable | None = None
        self.status = IpvsStatus(False, "not opened yet")
        self.applied = Applied()
        self.retries = RetryBook()
        self.errors = 0  # refusals, retries included (the stats dump's "IPVS errors")
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def available(self) -> bool:
        return self.kernel is not None

    def open(self, config: Config) -> None:
        """Open the IPVS table, or say (log, STATUS=, dumps) why it is not programmed."""
        if self.opener is None and not ipvs_mod.kernel_has_ipvs():
            log.warning("%s", NO_IPVS_WARNING)
            self.status = NO_IPVS_IN_KERNEL
            return
        try:
            self.kernel = (self.opener or ipvs_mod.Ipvs)()
            self.status = IpvsStatus(True)
        except ipvs_mod.IpvsNoPermission as e:
            # Restarting cannot grant CAP_NET_ADMIN: a permanent error, as the VRRP
            # child's sockets (keepalived's checker exits FATAL where IPVS fails).
            log.error("%s", e)
            raise PermanentError(
                "Missing permission: the checker needs CAP_NET_ADMIN for IPVS (run it as root)",
                EXIT_MISSING_PERMISSION,
            ) from e
        except ipvs_mod.IpvsUnavailable as e:
            log.warning("%s (%s)", NO_IPVS_WARNING, e)
            self.status = IpvsStatus(False, f"cannot use IPVS: {e.__cause__ or e}")
        except OSError as e:
            log.warning("%s (%s)", NO_IPVS_WARNING, e.strerror or e)
            self.status = IpvsStatus(False, f"cannot use IPVS: {e.strerror or e}")
        if self.kernel is not None and config.global_defs.lvs_flush:
            # lvs_flush: start from an empty table.
            try:
                self.kernel.flush()
            except Exception as e:
                log.error("Cannot flush the IPVS table: %s", e)

    def sync(self) -> None:
        """Send the kernel what differs from the wanted table, one command per entry,
        except the refused entries still waiting for their next try."""
        if self.kernel is None or self._closed:
            return
        change = diff(self.applied.table(), self.wanted())
        now = self.loop.time()
        keys: set[EntryKey] = set()
        for key, entry in entries(change):
            keys.add(key)
            if not self.retries.held(key, now):
                self._send(key, entry, now)
        self.retries.keep_only(keys)
        self._after_sync()

    def _send(self, key: EntryKey, entry: Diff, now: float) -> None:
        assert self.kernel is not None
        try:
            refusals = self.kernel.apply(entry)
        except Exception as e:
            refusals = [ipvs_mod.refused("update", e)]
        refusal = refusals[0] if refusals else None
        if refusal is not None:
            self.errors += 1
        result = answer(entry, refusal)
        if result is Answer.REFUSED:
            assert refusal is not None
            if self.retries.refused(key, refusal, now):
                log.error("%s", refusal)
            return
        if refusal is not None:
            log.error("%s", refusal)  # EEXIST on add, ENOENT on delete: logged, not retried
        if result is Answer.GONE:
            self.applied.forget(key)
        else:
            self.applied.accept(entry)
        earlier = self.retries.accepted(key)
        if earlier is not None:
            log.info("IPVS cmd %s succeeded after %d tries", earlier.refusal.what, earlier.tries + 1)

    def _after_sync(self) -> None:
        """Arm the retry timer and raise (or clear) the degraded condition."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        failing = self.retries.failing
        if not failing:
            self.conditions.clear(RETRY_CONDITION)
            return
        first = next(iter(failing.values())).refusal
        self.conditions.set(RETRY_CONDITION, f"IPVS refused {len(failing)} table entries, retrying (first: {first})")
        when = self.retries.next_at()
        if when is not None:
            self._timer = self.loop.call_at(when, self.sync)

    def retrying(self) -> list[Json]:
        """The refused entries, for the JSON dump."""
        now = self.loop.time()
        return [
            {
                "command": f.refusal.what,
                "error": f.refusal.reason,
                "tries": f.tries,
                "next_try_in_s": round(max(0.0, f.next_at - now), 3),
            }
            for f in self.retries.failing.values()
        ]

    def release(self, flush: str | None, dont_release: bool) -> None:
        """At stop: keep the table (-I), flush it (lvs_flush_on_stop), remove our
        services (lvs_flush_on_stop VS), or remove what the kernel accepted entry by entry."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.kernel is None or dont_release:
            return
        try:
            if flush == "all":
                self.kernel.flush()
            elif flush == "VS":
                self.kernel.remove(list(self.applied.services))
            else:
                for refusal in self.kernel.apply(diff(self.applied.table(), Table())):
                    log.error("%s", refusal)
        except Exception as e:
            log.error("Cannot release the IPVS table: %s", e)
        self.applied.clear()

    def close(self) -> None:
        self._closed = True
        if self.kernel is not None:
            try:
                self.kernel.close()
            except Exception as e:
                log.debug("closing the IPVS socket: %s", e)
