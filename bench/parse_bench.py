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
from conf.schema import import_deferred

RS_PER_VS = 100
TIME = "/usr/bin/time"  # GNU time: keepalived's own peak RSS
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


def _status_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (the peak) of this process: unlike ru_maxrss, VmHWM starts
    again at exec, so the benchmark's own size does not count."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child(path: str, kept: bool) -> None:
    """In a fresh process: read `path` once; print seconds and memory (KB) as JSON. With
    `kept`, under tracemalloc (slower): the bytes the model holds once built. The keyword
    families a configuration imports on first use (the LVS blocks) are imported before, with
    the rest of pykeepalived: what is measured is reading, and the model."""
    import_deferred()
    gc.collect()
    if kept:
        tracemalloc.start()
    base = _status_kb("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    result = conf.load(path, config_id="bench")
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_kb("VmHWM")
    assert result.config is not None
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] // 1024 if kept else None
    print(json.dumps({"s": took, "cpu": cpu, "peak_kb": peak - base, "kept_kb": held}))


@dataclass
class Run:
    seconds: float  # wall clock
    cpu: float  # user + system time: steadier than the wall clock on a shared machine
    peak_kb: int
    kept_kb: int | None = None


def run_ours(path: str, kept: bool = False) -> Run:
    cmd = [sys.executable, __file__, "--kept" if kept else "--child", path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return Run(data["s"], data["cpu"], data["peak_kb"], data["kept_kb"])


def run_keepalived(path: str) -> Run:
    """keepalived -t, its output discarded, under GNU time: ru_maxrss survives fork and
    exec, so keepalived started from this (large) process would report this process's
    size; started from `time`, it reports its own."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        cmd = [TIME, "-f", "%e %U %S %M", "-o", out.name, "keepalived", "-t", "-f", path]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900, check=False)
        wall, user, system, max_kb = out.read().split()[-4:]
    return Run(float(wall), float(user) + float(system), int(max_kb))


def median_run(fn: Callable[[str], Run], path: str, runs: int) -> Run:
    got = [fn(path) for _ in range(runs)]
    by_time = sorted(got, key=lambda r: r.cpu)
    mid = by_time[len(by_time) // 2]
    return Run(mid.seconds, mid.cpu, max(r.peak_kb for r in got), mid.kept_kb)


# ---------------------------------------------------------------- report


@dataclass
class Case:
    name: str
    make: Callable[[], str]  # the file's text, made when measured (this process stays small)


def elements(text: str) -> int:
    """Statements: non-blank lines that are not just a closing brace."""
    return sum(1 for line in text.splitlines() if line.strip() not in ("", "}"))


@dataclass
class Row:
    case: Case
    elements: int
    ours: Run
    theirs: Run | None


def measure(case: Case, runs: int, keepalived: bool) -> Row:
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "keepalived.conf")
        text = case.make()
        count = elements(text)
        Path(path).write_text(text)
        del text
        ours = median_run(run_ours, path, runs)
        ours.kept_kb = run_ours(path, kept=True).kept_kb
        theirs = median_run(run_keepalived, path, runs) if keepalived else None
    return Row(case, count, ours, theirs)


def print_report(rows: list[Row]) -> None:
    print(f"{'':<12}{'':>9}  {'keepalived -t':^26}  {'pykeepalived conf.load':^40}  {'CPU':>5}")
    print(
        f"{'file':<12}{'elements':>9}  {'wall':>6} {'CPU':>6} {'MB':>5} {'B/el':>6}  "
        f"{'wall':>6} {'CPU':>6} {'us/el':>6} {'MB':>5} {'B/el':>6} {'kept':>5}  {'ratio':>5}"
    )
    for row in rows:
        ours, theirs, n = row.ours, row.theirs, row.elements
        k = (
            f"{theirs.seconds:>6.2f} {theirs.cpu:>6.2f} {theirs.peak_kb / 1024:>5.0f} {theirs.peak_kb * 1024 / n:>6.0f}"
            if theirs
            else f"{'n/a':>26}"
        )
        o = (
            f"{ours.seconds:>6.2f} {ours.cpu:>6.2f} {ours.cpu * 1e6 / n:>6.1f} {ours.peak_kb / 1024:>5.0f} "
            f"{ours.peak_kb * 1024 / n:>6.0f} {(ours.kept_kb or 0) * 1024 / n:>5.0f}"
        )
        ratio = f"{ours.cpu / theirs.cpu:>5.1f}" if theirs and theirs.cpu else ""
        print(f"{row.case.name:<12}{n:>9}  {k}  {o}  {ratio}")
    print("wall, CPU: seconds; us/el: CPU per element; MB, B/el: peak RSS; kept: bytes the model keeps per element")


def print_goals(rows: list[Row]) -> None:
    first, ref = rows[0].ours, rows[0].theirs
    if ref is not None and ref.cpu:
        wall, cpu = ref.seconds * 1000, ref.cpu * 1000
        print(f"speed reference: keepalived -t on the 74k file {wall:.0f} ms ({cpu:.0f} ms CPU)")
        ratio = first.cpu / ref.cpu
        verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(
            f"goal: the 74k file in <= {GOAL_RATIO:.1f} x keepalived's CPU (0.35 s at its 0.06 s): {ratio:.1f} x, "
            f"{ratio * 0.06:.2f} s at the reference -> {verdict}"
        )
    per = [(r.elements, r.ours.cpu) for r in rows]
    if len(per) > 1:
        small, big = per[0][1] / per[0][0], per[1][1] / per[1][0]
        print(f"scaling: {big / small:.2f} x the CPU per element at 4 x the file (linear: 1.00)")
    kept = max((r.ours.kept_kb or 0) * 1024 / r.elements for r in rows)
    verdict = "met" if kept <= GOAL_BYTES else "NOT met"
    print(f"goal: <= {GOAL_BYTES} B kept per element: at most {kept:.0f} B -> {verdict}")


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
    keepalived = shutil.which("keepalived") is not None and os.path.exists(TIME)
    cases = [Case("mixed 74k", lambda: generate(1000, 10000))]
    if not args.quick:
        cases.append(Case("mixed 300k", lambda: generate(4000, 40000)))
        cases.append(Case("VIPs 522k", lambda: generate_vips(522_000, host_interface())))
    rows = [measure(c, args.runs if i == 0 else 1, keepalived) for i, c in enumerate(cases)]
    print_report(rows)
    print_goals(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
