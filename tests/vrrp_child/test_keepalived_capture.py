"""Live: keepalived 2.2.7 adverts captured now are the ones in the golden fixtures, and every
one of them decodes and encodes again byte for byte (about 9 s, root only).

keepalived runs in node 1 of a `Lab.pair()` (labkit/lab.py), tcpdump on vb in node 2. The golden
captures in fixtures/ came from here:

    sudo .venv/bin/python -m tests.vrrp_child.test_keepalived_capture > /tmp/captures.json
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from labkit.lab import Lab
from tests.vrrp_child.pcap import IpPacket, ip_of_frame, parse_ip, read_pcap
from vrrp_child.packet import VRRP_PROTO, decode, encode

FIXTURES = Path(__file__).parent / "fixtures" / "adverts.json"

# keepalived in node 1 on "va" (192.0.2.1, fe80::1, 2001:db8::1); the capture in node 2 on "vb"
# (192.0.2.2, fe80::2, 2001:db8::2). Fixed link-local addresses make the IPv6 captures reproducible.
CAPTURE_CONFIG = """
global_defs {
    router_id capture
}
vrrp_instance V2_PASS {
    interface va
    state MASTER
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret12
    }
    virtual_ipaddress {
        192.0.2.51/24
        198.51.100.51
    }
}
vrrp_instance V3_V4 {
    version 3
    interface va
    state MASTER
    virtual_router_id 52
    priority 200
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.52/24
        192.0.2.152/24
    }
}
vrrp_instance V3_V6 {
    version 3
    interface va
    state MASTER
    virtual_router_id 53
    priority 100
    advert_int 1
    virtual_ipaddress {
        fe80::53/64
        2001:db8::53/64
    }
}
vrrp_instance UNI_V3_V4 {
    version 3
    interface va
    state MASTER
    virtual_router_id 54
    priority 254
    advert_int 0.5
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.54/24
    }
}
vrrp_instance UNI_V2_PASS {
    version 2
    interface va
    state MASTER
    virtual_router_id 55
    priority 99
    advert_int 2
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    authentication {
        auth_type PASS
        auth_pass p55
    }
    virtual_ipaddress {
        192.0.2.55/24
    }
}
vrrp_instance V2_NO_VIP {
    version 2
    interface va
    state MASTER
    virtual_router_id 56
    priority 120
    advert_int 1
}
vrrp_instance UNI_V3_V6 {
    version 3
    interface va
    state MASTER
    virtual_router_id 57
    priority 255
    advert_int 1
    unicast_src_ip 2001:db8::1
    unicast_peer {
        2001:db8::2
    }
    virtual_ipaddress {
        2001:db8::57/64
        2001:db8::157/64
    }
}
"""


def vrrp_packets(pcap: Path) -> list[IpPacket]:
    packets = []
    for linktype, frame in read_pcap(pcap):
        raw = ip_of_frame(linktype, frame)
        if raw is not None:
            packet = parse_ip(raw)
            if packet.proto == VRRP_PROTO:
                packets.append(packet)
    return packets


def capture_keepalived(config: str = CAPTURE_CONFIG, seconds: float = 7.0) -> tuple[list[IpPacket], str]:
    """Every advert keepalived (VRRP only) sent in `seconds` and while stopping, and its log."""
    with Lab.pair() as lab:
        cap = lab.capture(iface="vb", node=2, name="adverts")
        # Stopped with SIGTERM at the end of the block, so that it sends its priority 0 adverts.
        with lab.node(1).keepalived(config, args=["-P"]) as daemon:
            time.sleep(seconds)
        time.sleep(0.5)  # the last adverts reach the capture
        return vrrp_packets(cap.stop()), daemon.log_text()


pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("ip", "keepalived", "tshark")), reason="needs ip, keepalived, tshark"
    ),
]


def test_live_keepalived_adverts_match_the_fixtures() -> None:
    packets, log = capture_keepalived()
    assert packets, log
    for p in packets:
        advert = decode(p.payload, p.src, p.dst, p.ttl, multicast=p.dst.is_multicast)
        assert encode(advert, p.src, p.dst) == p.payload, (p, advert)
    golden = json.loads(FIXTURES.read_text())["adverts"]
    stored = {
        (e["src"], e["dst"], bytes.fromhex(e["vrrp"]).hex())
        for e in golden
        if e["origin"].startswith("keepalived 2.2.7 capture")
    }
    live = {(str(p.src), str(p.dst), p.payload.hex()) for p in packets}
    assert live == stored, log


def main() -> int:
    """Print, per (VRID, family, destination, priority 0 or not), the first advert seen."""
    packets, log = capture_keepalived()
    seen: dict[tuple[int, int, str, bool], IpPacket] = {}
    for p in packets:
        seen.setdefault((p.payload[1], p.src.version, str(p.dst), p.payload[2] == 0), p)
    out = [
        {
            "src": str(p.src),
            "dst": str(p.dst),
            "ttl": p.ttl,
            "ip_header": p.header.hex(),
            "vrrp": p.payload.hex(),
        }
        for p in seen.values()
    ]
    json.dump(out, sys.stdout, indent=2)
    print(f"\n{len(packets)} adverts captured", file=sys.stderr)
    print(log, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
