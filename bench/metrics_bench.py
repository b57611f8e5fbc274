"""Does watching pykeepalived disturb it? A VRRPv3 master with 50 instances at advert_int 0.2
is scraped on /metrics 10 times a second (and asked `pykeepalivedctl status` once a second)
for a minute; its adverts are captured on the bridge, and the same minute is measured without
any scrape before it as the baseline. Reported: adverts per second and how late they were
(the gap between two adverts of one VRID beyond advert_int: the VRRP child's loop lag as the
wire sees it), p50/p99/max, and the parent's and the VRRP child's CPU.

keepalived has no metrics of its own (exporters send it signals and parse /tmp files), so
there is no keepalived column here.

Run as root: .venv/bin/python -m bench.metrics_bench [--seconds 60] [--instances 50]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from labkit.configs import config, instance
from labkit.lab import ROOT, Lab, Node, VrrpPacket

PORT = 9650


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lateness(packets: list[VrrpPacket], advert_int: float) -> list[float]:
    by_vrid: dict[int, list[float]] = defaultdict(list)
    for p in packets:
        if p["src"] == "192.0.2.11":
            by_vrid[p["vrid"]].append(p["time"])
    return sorted(max(0.0, b - a - advert_int) for ts in by_vrid.values() for a, b in itertools.pairwise(ts))


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def measure(lab: Lab, node: Node, seconds: float, *, scrape: bool, sock: Path, pids: tuple[int, int]) -> str:
    cap = lab.capture()
    before = [cpu_seconds(p) for p in pids]
    started = time.monotonic()
    scraper = None
    if scrape:
        loop = (
            f"end=$(($(date +%s) + {int(seconds)})); while [ $(date +%s) -lt $end ]; do "
            f"curl -sfo /dev/null 127.0.0.1:{PORT}/metrics; sleep 0.1; done"
        )
        scraper = node.start(["sh", "-c", loop], name="scraper")
    while time.monotonic() - started < seconds:
        if scrape:
            subprocess.run(
                [sys.executable, "-m", "haparent.ctl", "--socket", str(sock), "status"],
                capture_output=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=False,
            )
        time.sleep(1.0)
    if scraper is not None:
        scraper.wait(30)
    took = time.monotonic() - started
    after = [cpu_seconds(p) for p in pids]
    late = lateness(cap.packets(), 0.2)
    cpu = [100 * (b - a) / took for a, b in zip(before, after, strict=True)]
    worst = late[-1] * 1000 if late else 0.0
    return (
        f"{'scraped 10/s' if scrape else 'no scrapes':>13}: {len(late) / took:6.1f} adverts/s, late p50 "
        f"{pct(late, 0.5) * 1000:5.1f} ms p99 {pct(late, 0.99) * 1000:5.1f} ms max {worst:6.1f} ms; "
        f"CPU parent {cpu[0]:4.1f} %, VRRP child {cpu[1]:4.1f} %"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--instances", type=int, default=50)
    args = ap.parse_args()
    sock_dir = Path(tempfile.mkdtemp(prefix="pk-mb-"))
    sock = sock_dir / "ctl.sock"
    text = config(
        1,
        *(
            instance(
                f"VI_{i}", vrid=i, prio=150, state="MASTER", version=3, advert_int="0.2", vips=(f"198.51.100.{i}/32",)
            )
            for i in range(1, args.instances + 1)
        ),
    )
    with Lab(n=2) as lab:
        node = lab.node(1)
        # keepalived 2.2.7 on the same instances first: the wire's baseline for these timers
        ka = node.keepalived(text)
        lab.wait_who_has(f"198.51.100.{args.instances}", [1], timeout=30)
        time.sleep(2.0)
        ka_vrrp = ka.pid_of("vrrp")
        assert ka_vrrp is not None
        print(f"{args.instances} VRRPv3 instances at advert_int 0.2 on one master, {args.seconds:g} s each:")
        print("keepalived 2.2.7 " + measure(lab, node, args.seconds, scrape=False, sock=sock, pids=(ka.pid, ka_vrrp)))
        ka.stop()
        d = node.pykeepalived(text, args=["--control-socket", str(sock), "--metrics-address", str(PORT)])
        lab.wait_who_has(f"198.51.100.{args.instances}", [1], timeout=30)
        time.sleep(2.0)
        vrrp = d.pid_of("vrrp")
        assert vrrp is not None
        pids = (d.pid, vrrp)
        for scrape in (False, True):
            print("pykeepalived     " + measure(lab, node, args.seconds, scrape=scrape, sock=sock, pids=pids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
