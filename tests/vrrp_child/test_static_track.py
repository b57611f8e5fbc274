"""vrrp_child.static_track: which interfaces an instance tracks through the track_group of
static entries (keepalived 2.2.7's static_track_group_init), pure."""

from __future__ import annotations

from pathlib import Path

from conf.trackers import TrackRef
from tests.conf.util import config_of, parse
from vrrp_child.static_track import static_track_refs

CONF = """
global_defs { default_interface eth1 }
track_group G1 { group { VI_1 VI_9 } }
static_ipaddress {
    198.51.100.1/24 track_group G1
    198.51.100.2/24 dev eth0 track_group G1 no_track
}
static_routes {
    203.0.113.0/24 via 192.0.2.254 dev eth0 track_group G1
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress { 192.0.2.100/24 }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress { 192.0.2.101/24 }
}
"""


def test_the_group_tracks_each_entrys_interface_with_weight_0(tmp_path: Path) -> None:
    refs, notes = static_track_refs(config_of(parse(tmp_path, CONF)))
    assert refs == {"VI_1": (TrackRef("eth1", 0, False), TrackRef("eth0", 0, False))}
    assert notes == ["Static address has both track_group and no_track set - not tracking"]
