"""The adverts of the masters that share an advert interval go out together (pure).

A steady master's Adver_Timer keeps the phase it got when the instance became MASTER, and a
takeover of 250 instances spreads over up to half a second (their own deadlines, the 5 ms slices
of the burst), so 250 masters would wake the VRRP child about twenty times a second for their
adverts even with the timers' early window (fsm.advert_early), each wakeup costing this 2-core
VM 100-170 us of CPU: more than the adverts themselves (README, "Measured").

A master MAY send an advert before its Adver_Timer: a backup only restarts its
Master_Down_Timer on each advert it accepts (RFC 3768 / RFC 5798 section 6.4.2), and a VRRPv3
backup learns the interval from the advert's field, never from the spacing. So when a master's
next advert is due, it is moved onto the time already chosen by another master of the same
interval when that time is

- not later than its own Adver_Timer (never late: the backups' Master_Down_Interval holds), and
- at least MIN_GAP of the interval after now (the advert just sent): no advert is added, and none
  comes closer than half an interval after the one before.

Otherwise its own deadline becomes the time the next masters join. Once on one time, the masters
compute the same next deadline (the cadence is kept from the deadline, fsm.advert_timer), so an
instance's advert moves once, when it becomes MASTER or its timing changes (a priority 0 advert
heard, a reload), and from then on all of them go in one loop wakeup a second. keepalived's own
masters send theirs the same way when they start together: the 250 adverts of its
benchmark master come in a burst of about 4 ms.
"""

from __future__ import annotations

MIN_GAP = 0.5  # of the interval: the shortest time between two adverts of one instance


class AdvertGrid:
    """Per advert interval, the time the latest group of masters sends its next adverts."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[float, float] = {}

    def place(self, interval: float, deadline: float, now: float) -> float:
        """When a master whose next advert is due at `deadline` (its Adver_Timer) sends it: the
        group's time when that is no later and at least MIN_GAP x `interval` after `now`; else
        `deadline`, which the masters after it then join."""
        at = self._next.get(interval)
        if at is not None and now + interval * MIN_GAP <= at <= deadline:
            return at
        self._next[interval] = deadline
        return deadline
