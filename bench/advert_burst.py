"""keepalived 2.2.7 as the BACKUP of a pykeepalived master: does it hear every advert of the bursts?

pykeepalived's masters of one advert interval send their adverts together (vrrp_child.advertgrid), so
a keepalived backup of 250 instances on one interface gets 250 adverts in a few milliseconds every
second, as it does from a keepalived master whose instances started together. This checks that it
misses none and never takes over:

1. a keepalived master (priority 200) on node 1 and pykeepalived (100) on node 2, both started afresh;
   the master is SIGKILLed, so pykeepalived's instances become MASTER over the spread of their own
   deadlines, as in a real failover, and move their adverts together;
2. keepalived starts again on node 1 at priority 50, a BACKUP of every instance;
3. over a window of --seconds: keepalived's "Advertisements Received" counter of every instance
   (SIGUSR2's stats file, before and after) against the adverts of that instance a raw socket of the
   benchmark heard on node 1 meanwhile; the datagrams the kernel dropped from keepalived's raw sockets
   (/proc/PID/net/raw), its "Entering MASTER STATE" lines and the VIPs on node 1 (false takeovers);
   and the bursts as node 1 hears them (adverts closer than 100 ms to the one before form one burst).

Run as root: .venv/bin/python bench/advert_burst.py [--instances 250] [--interfaces 1] [--seconds 30]
[--vrrp-version 2|3] [--advert-int 1] [--same-cpu]. 1,000 instances: --instances 1000 --interfaces 4.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.procstats import load1, raw_drops
from bench.vrrp_failover import Bench, Heard, Layout, hard_kill
from labkit.lab import Daemon, Lab, wait_for

KEEPALIVED_BACKUP_PRIORITY = 50
BURST_GAP = 0.1  # s: an advert this long after the one before starts a new burst
STATS_LINE = re.compile(r"^\s*Received:\s*(\d+)\s*$")


def say(text: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')} load {load1():.2f}] {text}", flush=True)


def received(daemon: Daemon, timeout: float = 10.0) -> dict[str, int]:
    """SIGUSR2, then each instance's "Advertisements: Received" from keepalived's stats file."""
    path = daemon.workdir / "keepalived.stats"
    path.unlink(missing_ok=True)
    daemon.signal(signal.SIGUSR2)

    def parse() -> dict[str, int] | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        out: dict[str, int] = {}
        name, section = None, ""
        for line in text.splitlines():
            if m := re.fullmatch(r"VRRP Instance: (\S+)", line.strip()):
                name, section = m.group(1), ""
            elif line.strip().endswith(":"):
                section = line.strip()[:-1]
            elif name is not None and section == "Advertisements" and (m := STATS_LINE.match(line)):
                out[name] = int(m.group(1))
        complete = "Priority Zero" in text and text.rstrip().endswith(tuple("0123456789"))
        return out if complete and len(out) == text.count("VRRP Instance:") else None

    return wait_for(f"keepalived's stats in {path}", parse, timeout)


def bursts(heard: Sequence[Heard]) -> list[tuple[int, float]]:
    """(adverts, width in s) of each burst, in time order."""
    out: list[tuple[int, float]] = []
    start = prev = None
    count = 0
    for h in sorted(heard, key=lambda h: h.t):
        if prev is None or h.t - prev > BURST_GAP:
            if start is not None and prev is not None:
                out.append((count, prev - start))
            start, count = h.t, 0
        count += 1
        prev = h.t
    if start is not None and prev is not None:
        out.append((count, prev - start))
    return out


def run(lab: Lab, args: argparse.Namespace, layout: Layout) -> int:
    bench = Bench(lab, args, layout)
    backup_conf = layout.config("backup").replace("priority 100", f"priority {KEEPALIVED_BACKUP_PRIORITY}")
    keys = layout.keys()
    names = {f"VI_{k}_{vrid}": (k, vrid) for k, vrid in keys}
    master = bench.start_master()
    pyk = bench.start_backup("pykeepalived", bench.backup_conf)
    try:
        bench.wait_backup(pyk, 0)
        hard_kill(master)
        wait_for("pykeepalived to hold every VIP", lambda: len(bench.b_node.held(bench.vips)) == bench.n, 30.0)
        say(f"pykeepalived is MASTER of {bench.n} instances; keepalived starts as their BACKUP (priority 50)")
        ka = bench.m_node.keepalived(backup_conf)
        try:
            n = bench.n
            wait_for("keepalived's backups", lambda: ka.log_text().count("Entering BACKUP STATE") >= n, 60.0)
            if args.same_cpu:
                # the worst case for the backup: it cannot read while the burst is being sent
                for pid in pyk.family() | ka.family():
                    os.sched_setaffinity(pid, {0})
                say("both daemons pinned to CPU 0")
            time.sleep(5.0)
            return measure(bench, ka, names, args.seconds)
        finally:
            ka.stop()
    finally:
        pyk.stop()
        bench.close()


def measure(bench: Bench, ka: Daemon, names: dict[str, tuple[int, int]], seconds: float) -> int:
    drops0, masters0 = raw_drops(ka.pid, bench.at_master.inodes()), ka.log_text().count("Entering MASTER STATE")
    t0 = time.monotonic()
    before = received(ka)
    time.sleep(seconds)
    after = received(ka)
    t1 = time.monotonic()
    drops = raw_drops(ka.pid, bench.at_master.inodes()) - drops0
    masters = ka.log_text().count("Entering MASTER STATE") - masters0
    held = len(bench.m_node.held(bench.vips))
    time.sleep(0.2)
    heard = [h for h in bench.at_master.between(t0 - 1.0, t1 + 1.0) if h.src in bench.backup_ip]
    sent = Counter(h.key for h in heard if t0 <= h.t <= t1)
    got = {names[n]: after[n] - before.get(n, 0) for n in after if n in names}
    missed = {key: sent[key] - got.get(key, 0) for key in sent if sent[key] - got.get(key, 0) > 1}
    shape = bursts([h for h in heard if t0 <= h.t <= t1])
    widths = [w * 1000 for _, w in shape]
    say(
        f"{seconds:.0f} s: {sum(sent.values())} adverts sent by pykeepalived, {sum(got.values())} counted received by "
        f"keepalived; instances short by more than 1: {len(missed)}; kernel drops at keepalived: {drops}; keepalived "
        f"'Entering MASTER STATE': {masters}; VIPs on keepalived's node: {held}"
    )
    say(
        f"bursts: {len(shape)}, adverts per burst median {statistics.median(c for c, _ in shape):.0f}; width median "
        f"{statistics.median(widths):.1f} ms, max {max(widths):.1f} ms"
    )
    ok = not missed and drops == 0 and masters == 0 and held == 0
    say("keepalived heard every burst" if ok else f"MISSED: {sorted(missed.items())[:20]}")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=250)
    ap.add_argument("--interfaces", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--vrrp-version", type=int, choices=(2, 3), default=2)
    ap.add_argument("--advert-int", type=float, default=1.0)
    ap.add_argument("--same-cpu", action="store_true", help="pin both daemons to CPU 0")
    args = ap.parse_args(argv)
    args.per_vrid, args.cpu_seconds, args.logs = False, 10.0, None  # what Bench reads
    layout = Layout(args.instances, args.interfaces, args.vrrp_version, args.advert_int)
    with Lab(n=2) as lab:
        layout.wire(lab)
        return run(lab, args, layout)


if __name__ == "__main__":
    sys.exit(main())
