"""RFC 5798 section 6.1's timers (RFC 3768 section 6.1 for v2), in keepalived 2.2.7's
arithmetic: whole microseconds, v3 intervals in centiseconds. Pure; the state machine
(`vrrp_child.fsm`) arms its Master_Down_Timer with them."""

from __future__ import annotations

from functools import cache

DOWN_TIMER_ADVERTS = 3  # the 3 of RFC 5798 section 6.1 Master_Down_Interval (keepalived down_timer_adverts)
USEC = 1_000_000


def usec(seconds: float) -> int:
    """Whole microseconds, as keepalived's timers count."""
    return round(seconds * USEC)


@cache  # a BACKUP works it out for every advert it hears, from a handful of values
def skew_time(version: int, priority: int, master_adver_int: float) -> float:
    """Skew_Time in seconds.

    v2 (RFC 3768 section 6.1): (256 - Priority) / 256 s.
    v3 (RFC 5798 section 6.1): ((256 - Priority) * Master_Adver_Interval) / 256 with the interval
    in centiseconds; computed, as keepalived does, in whole microseconds as
    (256 - Priority) * interval_cs * 625 // 16.
    """
    if version == 2:
        return (256 - priority) * USEC // 256 / USEC
    centis = round(master_adver_int * 100)
    return (256 - priority) * centis * 625 // 16 / USEC


@cache
def master_down_interval(
    version: int, priority: int, master_adver_int: float, down_timer_adverts: int = DOWN_TIMER_ADVERTS
) -> float:
    """Master_Down_Interval = down_timer_adverts (the RFC's 3) * Master_Adver_Interval + Skew_Time
    (RFC 5798 section 6.1, RFC 3768 section 6.1; keepalived `down_timer_adverts`)."""
    skew = usec(skew_time(version, priority, master_adver_int))
    return (down_timer_adverts * usec(master_adver_int) + skew) / USEC
