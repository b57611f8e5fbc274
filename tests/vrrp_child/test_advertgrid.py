"""vrrp_child.advertgrid: masters of one interval send together, never late, never closer than
half an interval after their previous advert."""

from __future__ import annotations

from vrrp_child.advertgrid import MIN_GAP, AdvertGrid


def test_the_first_master_sets_the_time_and_the_next_join_it_earlier() -> None:
    grid = AdvertGrid()
    assert grid.place(1.0, 11.0, now=10.0) == 11.0  # nobody before: its own Adver_Timer
    assert grid.place(1.0, 11.3, now=10.3) == 11.0  # 0.3 s early, 0.7 s after its advert
    assert grid.place(1.0, 11.0, now=10.0) == 11.0  # already on the time


def test_never_later_than_the_adver_timer() -> None:
    grid = AdvertGrid()
    grid.place(1.0, 11.5, now=10.5)
    # the group's time is after this master's deadline: it keeps its own, which the next join
    assert grid.place(1.0, 11.2, now=10.2) == 11.2
    assert grid.place(1.0, 11.4, now=10.4) == 11.2


def test_never_closer_than_half_an_interval_after_the_advert_just_sent() -> None:
    grid = AdvertGrid()
    grid.place(1.0, 11.0, now=10.0)
    # 0.6 s after the group: joining would put its next advert 0.4 s after this one
    assert grid.place(1.0, 11.6, now=10.6) == 11.6
    # a loop that ran late: the Adver_Timer is already near, the group's time in the past
    grid.place(1.0, 12.0, now=11.0)
    assert grid.place(1.0, 12.05, now=11.9) == 12.05
    assert MIN_GAP == 0.5


def test_each_interval_has_its_own_time() -> None:
    grid = AdvertGrid()
    grid.place(1.0, 11.0, now=10.0)
    assert grid.place(0.1, 10.35, now=10.25) == 10.35
    assert grid.place(1.0, 11.2, now=10.2) == 11.0
    assert grid.place(0.1, 10.38, now=10.28) == 10.35
