"""global_defs vrrp_startup_delay, keepalived 2.2.7 in node 1 and pykeepalived in node 2 on the same
configuration (each its own virtual routers): instances sit in BACKUP through the delay and their
Master_Down_Timer counts from its end, so a lone backup takes its VIP delay + Master_Down_Interval
after the start, and an address owner (priority 255) right at the end of the delay."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from labkit.lab import Lab

pytestmark = pytest.mark.lab

DELAY = 2.0
CONF = """
global_defs {{
    router_id delay
    vrrp_startup_delay {delay}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid1}
    priority 100
    advert_int 1
    virtual_ipaddress {{
        {vip1}/24
    }}
}}
vrrp_instance VI_2 {{
    state MASTER
    interface eth0
    virtual_router_id {vrid2}
    priority 255
    advert_int 1
    virtual_ipaddress {{
        {vip2}/24
    }}
}}
"""


START_SLACK = 3.0  # s: a daemon's own start-up on a loaded 2-core machine (tests assert generous bounds)


def test_startup_delay_beside_keepalived(lab2: Lab) -> None:
    vips = {i: (f"192.0.2.{99 + i}", f"192.0.2.{109 + i}") for i in (1, 2)}
    started = {}
    daemons = {}
    for i in (1, 2):
        conf = CONF.format(delay=DELAY, vrid1=50 + i, vrid2=60 + i, vip1=vips[i][0], vip2=vips[i][1])
        started[i] = time.monotonic()
        daemons[i] = lab2.node(i).keepalived(conf) if i == 1 else lab2.node(i).pykeepalived(conf)

    def took(i: int, vip: str) -> float:
        lab2.wait_who_has(vip, [i], timeout=15.0)
        return time.monotonic() - started[i]

    with ThreadPoolExecutor(4) as pool:
        futures = {(i, k): pool.submit(took, i, vips[i][k]) for i in (1, 2) for k in (0, 1)}
        times = {key: f.result() for key, f in futures.items()}
    names = {1: "keepalived", 2: "pykeepalived"}
    for i in (1, 2):
        backup, owner = times[(i, 0)], times[(i, 1)]
        print(f"{names[i]}: owner MASTER after {owner:.2f} s, priority 100 after {backup:.2f} s (delay {DELAY} s)")
        log = daemons[i].log_text()
        assert f"Delaying startup for {DELAY:g} seconds" in log, names[i]
        assert "(VI_1) Entering BACKUP STATE (init)" in log, names[i]
        # the owner: at the end of the delay. Counted from the process start, so the upper
        # bound leaves room for starting the daemon (pykeepalived's interpreter: ~0.8 s idle,
        # 1.6 s measured with the suite loading both cores)
        assert DELAY - 0.05 < owner < DELAY + START_SLACK, (names[i], owner)
        # priority 100: the delay, then its Master_Down_Interval (3.61 s)
        assert DELAY + 3.5 < backup < DELAY + 3.61 + START_SLACK, (names[i], backup)
    for d in daemons.values():
        d.stop()
