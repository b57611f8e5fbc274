"""The metric families of a status answer (pure) and the address syntax."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from checker_child.latency import Latency
from haparent.metrics import families, parse_address
from watchdog.protocol import Json

STATUS: dict[str, Json] = {
    "ok": True,
    "reloads": 3,
    "last_reload_error": None,
    "children": [
        {"role": "vrrp", "phase": "running", "restarts": 2, "heartbeat_age": 0.25},
        {"role": "checker", "phase": "backoff", "restarts": 1, "heartbeat_age": None},
    ],
    "vrrp": [
        {
            "data": {
                "iname": "VI_1",
                "ifp_ifname": "eth0",
                "vrid": 51,
                "state_name": "MASTER",
                "effective_priority": 140,
                "base_priority": 150,
                "vips": ["192.0.2.100/24", "192.0.2.101/24"],
            },
            "stats": {"advert_sent": 42, "become_master": 1, "pri_zero_rcvd": 3},
        }
    ],
    "vrrp_scripts": {"chk": {"status": "BAD", "state": "running"}},
    "vrrp_receive_drops": 7,
    "checker": {
        "virtual_servers": [
            {
                "vs": "[192.0.2.10]:tcp:80",
                "quorum_up": False,
                "real_servers": [{"rs": "[10.0.0.2]:tcp:80", "alive": True, "weight": 3}],
            }
        ],
        "ipvs": {"programmed": False},
    },
}


class Fixed(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from families(STATUS)


def exposition() -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    return generate_latest(registry).decode()


def test_the_exporters_names_and_labels() -> None:
    text = exposition()
    for line in (
        "keepalived_up 1.0",
        'keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.100/24",vrid="51"} 2.0',
        'keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.101/24",vrid="51"} 2.0',
        'keepalived_advertisements_sent_total{iname="VI_1",intf="eth0",vrid="51"} 42.0',
        'keepalived_become_master_total{iname="VI_1",intf="eth0",vrid="51"} 1.0',
        'keepalived_priority_zero_received_total{iname="VI_1",intf="eth0",vrid="51"} 3.0',
        'keepalived_script_status{name="chk"} 0.0',
        'keepalived_script_state{name="chk"} 1.0',
        'pykeepalived_effective_priority{iname="VI_1",intf="eth0",vrid="51"} 140.0',
        'pykeepalived_child_restarts_total{role="vrrp"} 2.0',
        'pykeepalived_child_running{role="checker"} 0.0',
        'pykeepalived_real_server_up{rs="[10.0.0.2]:tcp:80",vs="[192.0.2.10]:tcp:80"} 1.0',
        'pykeepalived_virtual_server_quorum_up{vs="[192.0.2.10]:tcp:80"} 0.0',
        "pykeepalived_ipvs_programmed 0.0",
        "pykeepalived_reloads_total 3.0",
        "pykeepalived_last_reload_ok 1.0",
        "pykeepalived_vrrp_receive_drops_total 7.0",
    ):
        assert line in text, line


def test_an_empty_status_is_down_not_an_error() -> None:
    assert families({})[0].samples[0].value == 0.0


@pytest.mark.parametrize(
    ("text", "want"),
    [("9650", ("0.0.0.0", 9650)), ("127.0.0.1:9650", ("127.0.0.1", 9650)), ("[::1]:9650", ("::1", 9650))],
)
def test_addresses(text: str, want: tuple[str, int]) -> None:
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["", "x", "1.2.3.4:0", "99999"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def test_check_durations_become_a_histogram() -> None:
    latency = Latency()
    for seconds in (0.0005, 0.004, 0.004, 0.3, 20.0):
        latency.observe("TCP_CHECK", seconds)
    status: dict[str, Json] = {"ok": True, "checker": {"virtual_servers": [], "check_latency": latency.json()}}
    registry = CollectorRegistry(auto_describe=False)

    class One(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from families(status)

    registry.register(One())
    text = generate_latest(registry).decode()
    assert 'pykeepalived_check_duration_seconds_bucket{checker="TCP_CHECK",le="0.001"} 1.0' in text
    assert 'pykeepalived_check_duration_seconds_bucket{checker="TCP_CHECK",le="0.005"} 3.0' in text
    assert 'pykeepalived_check_duration_seconds_bucket{checker="TCP_CHECK",le="0.5"} 4.0' in text
    assert 'pykeepalived_check_duration_seconds_bucket{checker="TCP_CHECK",le="+Inf"} 5.0' in text
    assert 'pykeepalived_check_duration_seconds_count{checker="TCP_CHECK"} 5.0' in text
