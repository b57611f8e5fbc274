"""Parse benchmark: pykeepalived's conf.load and `keepalived -t` on the same generated
files, side by side in one run, time and memory per parsed element.

- mixed 74k: 1,000 vrrp_instances and 10,000 real_servers (74,603 lines); `keepalived -t`
  on it is the machine's speed reference, so that figures from different days compare.
- mixed 300k: the same four times over (scaling: the time per line should not grow).
- VIPs 522k: 522,000 virtual_ipaddress(_excluded) lines on 255 instances (memory).

Each parse runs in a fresh process. Memory is the peak RSS of that process (ru_maxrss,
as for keepalived) less what it held before reading (the interpreter and the imports for
pykeepalived), and, for pykeepalived, the bytes the model holds once built ("kept",
traced by tracemalloc in one more run). Goals (issue 15): the 74k file in 0.35 s where keepalived -t takes
0.06 s (5.8 times keepalived's time), linear scaling, at most 200 bytes per element.

Run: make bench   (or .venv/bin/python bench/parse_bench.py [--runs N] [--quick])
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import conf

RS_PER_VS = 100
GOAL_RATIO = 0.35 / 0.06  # issue 15: 0.35 s where keepalived -t takes 0.06 s
GOAL_BYTES = 200


def generate(instances: int, real_servers: int) -> str:
    out = ["global_defs {", "    router_id bench", "}"]
    for n in range(instances):
        vrid = n % 255 + 1
        iface = f"eth{n // 255}"
        out += [
            f"vrrp_instance VI_{n} {{",
            "    state BACKUP",
            f"    interface {iface}",
            f"    virtual_router_id {vrid}",
            f"    priority {100 + n % 50}",
            "    advert_int 1",
            "    authentication {",
            "        auth_type PASS",
            "        auth_pass secret",
            "    }",
            "    virtual_ipaddress {",
            f"        10.{n // 256 % 256}.{n % 256}.1/24 dev {iface}",
            "    }",
            "}",
        ]
    for v in range((real_servers + RS_PER_VS - 1) // RS_PER_VS):
        out += [
            f"virtual_server 172.16.{v // 256}.{v % 256} 80 {{",
            "    delay_loop 6",
            "    lb_algo rr",
            "    lb_kind NAT",
            "    protocol TCP",
        ]
        for r in range(min(RS_PER_VS, real_servers - v * RS_PER_VS)):
            out += [
                f"    real_server 192.168.{r // 256 + v % 200}.{r % 256 + 1} 80 {{",
                "        weight 1",
                "        TCP_CHECK {",
                "            connect_timeout 3",
                "        }",
                "    }",
            ]
        out.append("}")
    return "\n".join(out) + "\n"


def generate_vips(vips: int, iface: str) -> str:
    """`vips` addresses on 255 instances of one interface: 255 VIPs each, the rest
    excluded (no limit on those), each line with its `dev`."""
    out = ["global_defs {", "    router_id bench", "}"]
    per = -(-vips // 255)
    made = 0
    for inst in range(255):
        count = min(per, vips - made)
        if count <= 0:
            break
        out += [
            f"vrrp_instance VI_{inst} {{",
            "    state BACKUP",
            f"    interface {iface}",
            f"    virtual_router_id {inst + 1}",
            "    priority 100",
            "    advert_int 1",
            "    virtual_ipaddress {",
        ]
        for v in range(count):
            if v == 255:
                out += ["    }", "    virtual_ipaddress_excluded {"]
            a = made + v
            out.append(f"        10.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/16 dev {iface}")
        out += ["    }", "}"]
        made += count
    return "\n".join(out) + "\n"


def host_interface() -> str:
    """A non-loopback interface of this host: the VIP file's instances are valid there."""
    names = [name for _, name in socket.if_nameindex() if name != "lo"]
    return "eth0" if "eth0" in names or not names else names[0]


# ---------------------------------------------------------------- measuring


def _rss_kb() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(path: str, kept: bool) -> None:
    """In a fresh process: read `path` once; print seconds and memory (KB) as JSON. With
    `kept`, under tracemalloc (slower): the bytes the model holds once built."""
    gc.collect()
    if kept:
        tracemalloc.start()
    base = _rss_kb()
    t0 = time.perf_counter()
    result = conf.load(path, config_id="bench")
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert result.config is not None
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] // 1024 if kept else None
    print(json.dumps({"s": took, "peak_kb": peak - base, "kept_kb": held}))


@dataclass
class Run:
    seconds: float
    peak_kb: int
    kept_kb: int | None = None


def run_ours(path: str, kept: bool = False) -> Run:
    cmd = [sys.executable, __file__, "--kept" if kept else "--child", path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return Run(data["s"], data["peak_kb"], data["kept_kb"])


def run_keepalived(path: str) -> Run:
    """keepalived -t, its output discarded; ru_maxrss of that one child (wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(["keepalived", "-t", "-f", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped here
    return Run(time.perf_counter() - t0, usage.ru_maxrss)


def median_run(fn: Callable[[str], Run], path: str, runs: int) -> Run:
    got = [fn(path) for _ in range(runs)]
    by_time = sorted(got, key=lambda r: r.seconds)
    mid = by_time[len(by_time) // 2]
    return Run(mid.seconds, max(r.peak_kb for r in got), mid.kept_kb)


# ---------------------------------------------------------------- report


@dataclass
class Case:
    name: str
    text: str

    @property
    def elements(self) -> int:
        """Statements: non-blank lines that are not just a closing brace."""
        return sum(1 for line in self.text.splitlines() if line.strip() not in ("", "}"))


@dataclass
class Row:
    case: Case
    elements: int
    ours: Run
    theirs: Run | None


def measure(case: Case, runs: int, keepalived: bool) -> Row:
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "keepalived.conf")
        Path(path).write_text(case.text)
        ours = median_run(run_ours, path, runs)
        ours.kept_kb = run_ours(path, kept=True).kept_kb
        theirs = median_run(run_keepalived, path, runs) if keepalived else None
    return Row(case, case.elements, ours, theirs)


def print_report(rows: list[Row]) -> None:
    head = f"{'file':<12}{'elements':>10}  {'keepalived -t':>22}  {'pykeepalived':>34}  {'ratio':>6}"
    print(head)
    print(f"{'':<12}{'':>10}  {'s':>7} {'MB':>6} {'B/el':>7}  {'s':>7} {'us/el':>6} {'MB':>6} {'B/el':>6} {'kept':>5}")
    for row in rows:
        ours, theirs, n = row.ours, row.theirs, row.elements
        k = (
            f"{theirs.seconds:>7.2f} {theirs.peak_kb / 1024:>6.0f} {theirs.peak_kb * 1024 / n:>7.0f}"
            if theirs
            else f"{'n/a':>22}"
        )
        kept = f"{(ours.kept_kb or 0) * 1024 / n:>5.0f}"
        o = (
            f"{ours.seconds:>7.2f} {ours.seconds * 1e6 / n:>6.1f} {ours.peak_kb / 1024:>6.0f} "
            f"{ours.peak_kb * 1024 / n:>6.0f} {kept}"
        )
        ratio = f"{ours.seconds / theirs.seconds:>6.1f}" if theirs else ""
        print(f"{row.case.name:<12}{n:>10}  {k}  {o}  {ratio}")


def print_goals(rows: list[Row]) -> None:
    first, ref = rows[0].ours, rows[0].theirs
    if ref is not None:
        print(f"speed reference: keepalived -t on the 74k file {ref.seconds * 1000:.0f} ms")
        ratio = first.seconds / ref.seconds
        verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(
            f"goal 74k file <= {GOAL_RATIO:.1f} x keepalived (0.35 s at its 0.06 s): {ratio:.1f} x, "
            f"{first.seconds * 0.06 / ref.seconds:.2f} s at the reference -> {verdict}"
        )
    per = [(r.elements, r.ours.seconds) for r in rows]
    if len(per) > 1:
        small, big = per[0][1] / per[0][0], per[1][1] / per[1][0]
        print(f"scaling: {big / small:.2f} x the time per element at 4 x the file (linear: 1.00)")
    worst = max(r.ours.peak_kb * 1024 / r.elements for r in rows)
    kept = max((r.ours.kept_kb or 0) * 1024 / r.elements for r in rows)
    verdict = "met" if kept <= GOAL_BYTES else "NOT met"
    print(f"goal <= {GOAL_BYTES} B per element: peak {worst:.0f} B, kept {kept:.0f} B -> {verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs of the 74k file (the larger files run once)")
    ap.add_argument("--quick", action="store_true", help="the 74k file only")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--kept", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child or args.kept:
        child(args.child or args.kept, kept=bool(args.kept))
        return 0
    keepalived = shutil.which("keepalived") is not None
    cases = [Case("mixed 74k", generate(1000, 10000))]
    if not args.quick:
        cases += [
            Case("mixed 300k", generate(4000, 40000)),
            Case("VIPs 522k", generate_vips(522_000, host_interface())),
        ]
    rows = [measure(c, args.runs if i == 0 else 1, keepalived) for i, c in enumerate(cases)]
    print_report(rows)
    print_goals(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
