"""Capture real keepalived adverts: two network namespaces joined by a veth pair,
keepalived in one, tshark in the other. The golden captures in fixtures/ came from here:

    sudo .venv/bin/python -m tests.vrrp_child.keepalived_lab > /tmp/captures.json

Everything is torn down on the way out, also on failure. Only documentation addresses
(192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32, fe80::) are used, inside the namespaces.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.vrrp_child.pcap import IpPacket, ip_of_frame, parse_ip, read_pcap
from vrrp_child.packet import VRRP_PROTO

_counter = itertools.count()

# keepalived in namespace A on "va" (192.0.2.1, fe80::1, 2001:db8::1); the capture in
# namespace B on "vb" (192.0.2.2, fe80::2, 2001:db8::2). Fixed link-local addresses
# (addrgenmode none) make the IPv6 captures reproducible.
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


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class Lab:
    ns_a: str
    ns_b: str
    dir: Path

    def exec_a(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns_a, *argv]

    def exec_b(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns_b, *argv]


def _delete_namespace(ns: str) -> None:
    # Killing what still runs inside first: a namespace with processes in it would
    # outlive `ip netns del`.
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def cleanup_stale() -> None:
    """Namespaces of ours left by a run that was SIGKILLed (its pid is gone)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) == 4 and parts[0] == "pkv" and parts[1].isdigit() and not Path(f"/proc/{parts[1]}").exists():
            _delete_namespace(name)


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    """Two namespaces with unique names (pid and counter) joined by va <-> vb."""
    cleanup_stale()
    n = next(_counter)
    ns_a, ns_b = f"pkv-{os.getpid()}-{n}-a", f"pkv-{os.getpid()}-{n}-b"
    work = Path(tempfile.mkdtemp(prefix="pkv-lab-"))
    made: list[str] = []
    try:
        for ns in (ns_a, ns_b):
            _run("ip", "netns", "add", ns)
            made.append(ns)
        _run("ip", "-n", ns_a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", ns_b)
        for ns, ifname, host in ((ns_a, "va", 1), (ns_b, "vb", 2)):
            _run("ip", "-n", ns, "link", "set", ifname, "addrgenmode", "none")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "addr", "add", f"192.0.2.{host}/24", "dev", ifname)
            _run("ip", "-n", ns, "addr", "add", f"fe80::{host}/64", "dev", ifname, "nodad")
            _run("ip", "-n", ns, "addr", "add", f"2001:db8::{host}/64", "dev", ifname, "nodad")
            _run("ip", "-n", ns, "link", "set", ifname, "up")
        yield Lab(ns_a, ns_b, work)
    finally:
        for ns in made:
            _delete_namespace(ns)
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def keepalived(the_lab: Lab, config: str, name: str = "a") -> Iterator[subprocess.Popen[bytes]]:
    """keepalived 2.2.7 (VRRP only, foreground, console log) in namespace A or B; stopped with
    SIGTERM (so that it sends its priority 0 adverts) when the block ends."""
    conf = the_lab.dir / f"{name}.conf"
    conf.write_text(config)
    pids = [f"--pid={the_lab.dir / name}.pid", f"--vrrp_pid={the_lab.dir / name}.vrrp.pid"]
    argv = ["keepalived", "-n", "-l", "-D", "-G", "-P", "-f", str(conf), *pids]
    wrap = the_lab.exec_a if name == "a" else the_lab.exec_b
    with open(the_lab.dir / f"{name}.log", "wb") as log:
        proc = subprocess.Popen(wrap(*argv), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def capture(the_lab: Lab) -> Iterator[Path]:
    """tshark on vb in namespace B for the block's duration; yields the pcap's path."""
    out = the_lab.dir / "capture.pcap"
    argv = ["tshark", "-q", "-i", "vb", "-F", "pcap", "-w", str(out), "-f", "ip proto 112 or ip6 proto 112"]
    proc = subprocess.Popen(the_lab.exec_b(*argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (out.exists() and out.stat().st_size >= 24) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        yield out
    finally:
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    """Every advert keepalived sent in `seconds` and while stopping, and its log."""
    with lab() as the_lab:
        with capture(the_lab) as pcap, keepalived(the_lab, config):
            time.sleep(seconds)
        return vrrp_packets(pcap), (the_lab.dir / "a.log").read_text(errors="replace")


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
