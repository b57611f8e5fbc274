"""vrrp_child.garp_extra: which interfaces get garp_extra_if's frames (keepalived 2.2.7's
vrrp_send_vmac_update), pure."""

from __future__ import annotations

from pathlib import Path

from conf.model import Config
from tests.conf.util import config_of, parse
from vrrp_child import holdings
from vrrp_child.garp_extra import extra_if_items


def _config(tmp_path: Path, extra: str) -> Config:
    return config_of(
        parse(
            tmp_path,
            f"""
            vrrp_instance VI_1 {{
                interface eth0
                virtual_router_id 51
                {extra}
                virtual_ipaddress {{
                    192.0.2.100/24
                    198.51.100.1/24 dev eth1
                    198.51.100.2/24 dev eth1
                }}
                virtual_ipaddress_excluded {{
                    203.0.113.1/24 dev eth1
                }}
            }}
            """,
        )
    )


def _names(tmp_path: Path, extra: str) -> list[tuple[str, str]]:
    conf = _config(tmp_path, extra).vrrp_instance["VI_1"]
    items = holdings.vip_items(conf, "eth0")
    return [(str(e.address.ip), ifname) for e, ifname in extra_if_items(conf, items, "eth0")]


def test_all_sends_once_per_other_interface_for_its_first_vip(tmp_path: Path) -> None:
    assert _names(tmp_path, "garp_extra_if all 100") == [("198.51.100.1", "eth1")]


def test_without_all_only_vmacs_count(tmp_path: Path) -> None:
    assert _names(tmp_path, "garp_extra_if 100") == []


def test_off_by_default(tmp_path: Path) -> None:
    assert _names(tmp_path, "") == []
