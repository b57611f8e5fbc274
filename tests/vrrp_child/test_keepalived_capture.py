"""Live: keepalived 2.2.7 adverts captured now are the ones in the golden fixtures, and every
one of them decodes and encodes again byte for byte (about 9 s, root only)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.vrrp_child.keepalived_lab import capture_keepalived
from vrrp_child.packet import decode, encode

FIXTURES = Path(__file__).parent / "fixtures" / "adverts.json"

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
