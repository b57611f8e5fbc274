"""vrrp_child.linkwatch: keepalived 2.2.7's bound on interface_up_down_delays (its
check_debounce_timers), pure. The delays themselves run in tests/lab/test_vrrp_linkdelay.py."""

from __future__ import annotations

from pathlib import Path

from conf.model import Config
from conf.static import IfUpDownDelay
from tests.conf.util import config_of, parse
from vrrp_child.linkwatch import Delays, link_delays


def _instance(tmp_path: Path, advert: str, extra: str = "") -> Config:
    return config_of(
        parse(
            tmp_path,
            f"""
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    advert_int {advert}
    {extra}
    virtual_ipaddress {{ 192.0.2.100/24 }}
}}
""",
        )
    )


def test_delays_below_the_bound_are_kept(tmp_path: Path) -> None:
    c = _instance(tmp_path, "1")
    delays, notes = link_delays([IfUpDownDelay("eth0", 1.5, 0.5)], c.vrrp_instance.values())
    assert delays == {"eth0": Delays(1.5, 0.5)} and notes == []


def test_a_delay_at_the_bound_is_reduced(tmp_path: Path) -> None:
    # (down_timer_adverts - 1) * advert_int = 2 s; keepalived sets 2 - 1/256
    c = _instance(tmp_path, "1")
    delays, notes = link_delays([IfUpDownDelay("eth0", 3.0, 0.5)], c.vrrp_instance.values())
    assert delays == {"eth0": Delays(2 - 1 / 256, 0.5)}
    assert notes == ["VI_1: interface eth0 debounce timer(s) not less that 2 * advert_int - resetting"]


def test_down_timer_adverts_1_drops_the_delays(tmp_path: Path) -> None:
    c = _instance(tmp_path, "1", "down_timer_adverts 1")
    delays, notes = link_delays([IfUpDownDelay("eth0", 0.5, 0.5)], c.vrrp_instance.values())
    assert delays == {"eth0": Delays()}
    assert notes == ["VI_1: cannot use debounce timers with down_timer_adverts = 1 - resetting"]
