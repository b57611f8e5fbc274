"""`auth_type AH` (IPsec AH, HMAC-MD5-96) in the lab: keepalived 2.2.7 and pykeepalived in one
virtual router, each side master and backup, and pykeepalived on both nodes.

An AH instance starts as BACKUP whatever its `state` (keepalived: it needs an advert's
sequence number before it may send), so the node at priority 150 becomes master after its
Master_Down_Interval (3.41 s); the backup must accept its adverts (ICV, SPI, increasing
sequence numbers) and stay BACKUP, then take over after a SIGKILL of the master, continuing
the sequence numbers above the old master's so that a restarted peer accepts them."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from labkit.lab import Daemon, Lab, assert_single_holder, takeover_seconds
from vrrp_child import ah

pytestmark = pytest.mark.lab

VIP = "192.0.2.100"
PASSWORD = "secret1"


def conf(node: int, prio: int) -> str:
    return f"""global_defs {{
    router_id node{node}
}}
vrrp_instance VI_1 {{
    interface eth0
    state BACKUP
    virtual_router_id 51
    priority {prio}
    advert_int 1
    authentication {{
        auth_type AH
        auth_pass {PASSWORD}
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
"""


def start(lab: Lab, node: int, prio: int, kind: str) -> Daemon:
    n = lab.node(node)
    return n.keepalived(conf(node, prio)) if kind == "ka" else n.pykeepalived(conf(node, prio))


def datagrams(pcap: str) -> list[bytes]:
    """The IPv4 datagrams of a pcap (tcpdump -x prints them without the Ethernet header)."""
    text = subprocess.run(["tcpdump", "-nr", pcap, "-x"], capture_output=True, text=True, check=True).stdout
    out: list[bytes] = []
    for line in text.splitlines():
        if not line.startswith("\t"):
            out.append(b"")
        elif out:
            out[-1] += bytes.fromhex("".join(line.split(":", 1)[1].split()))
    return [d for d in out if d]


def check_wire(pcap: str) -> dict[int, list[int]]:
    """Every AH datagram verifies with the password; the sequence numbers per source."""
    key = ah.key_of(PASSWORD.encode())
    seqs: dict[int, list[int]] = {}
    for d in datagrams(pcap):
        assert d[9] == ah.AH_PROTO, d.hex()
        sealed = ah.unseal(d, key, unicast=False)
        assert d[1] == 0xC0 and d[8] == 255 and d[6] & 0x40 == 0, d.hex()  # TOS, TTL, no DF
        seqs.setdefault(sealed.spi & 0xFF, []).append(sealed.seq)
    return seqs


@pytest.mark.parametrize(("first", "second"), [("ka", "pyk"), ("pyk", "ka"), ("pyk", "pyk")])
def test_ah_master_backup_takeover(lab2: Lab, first: str, second: str) -> None:
    cap = lab2.capture(filter="ip proto 51 or ip proto 112")
    # The backup starts once the master holds the VIP: started together, whichever daemon is up
    # first (keepalived, which starts faster) would time out first and be preempted later.
    d1 = start(lab2, 1, 150, first)
    s = lab2.sampler(VIP)
    s.wait_holders([1], timeout=10.0)
    d2 = start(lab2, 2, 100, second)
    d2.wait_state("VI_1", "BACKUP", timeout=10.0)
    steady = time.monotonic()
    time.sleep(4.0)  # four adverts the backup must accept
    killed = time.monotonic()
    assert_single_holder(s.samples, since=steady, until=killed)
    assert not re.search(r"\(VI_1\) Entering MASTER STATE", d2.log_text()), d2.log_text()[-2000:]
    d1.kill()
    s.wait(lambda h: 2 in h, timeout=8.0, since=killed)
    took = takeover_seconds(s.samples, 2, killed)
    print(f"\nAH {first} master -> {second} backup, SIGKILL takeover: {took:.3f} s")
    assert 2.0 < took < 4.7  # Master_Down_Interval 3.61 s, counted from the last advert
    time.sleep(1.5)
    seqs = check_wire(str(cap.stop()))
    # 192.0.2.11 (node 1) counts from 1; node 2 continues above the last number it accepted.
    one, two = seqs[11], seqs[12]
    assert one[0] == 1 and one == sorted(one) and len(set(one)) == len(one), one
    assert two and two[0] == one[-1] + 1 and two == sorted(two), (one, two)
    for d in (d1, d2):
        assert "IPSEC" not in d.log_text() and "Invalid advert" not in d.log_text(), d.log_text()[-2000:]


def test_ah_wrong_password_both_master(lab2: Lab) -> None:
    """A keepalived backup with another password drops pykeepalived's adverts (its ICV line)
    and becomes master too: the ICV really is checked on the other side."""
    d1 = lab2.node(1).pykeepalived(conf(1, 150))
    d2 = lab2.node(2).keepalived(conf(2, 100).replace(PASSWORD, "other"))
    d1.wait_state("VI_1", "MASTER", timeout=10.0)
    d2.wait_log(r"IPSEC-AH : invalid IPSEC HMAC-MD5 value", timeout=5.0)
    d1.wait_log(r"IPSEC-AH : invalid IPSEC HMAC-MD5 value", timeout=8.0)
