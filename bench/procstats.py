"""What the benchmarks read about a daemon's processes and its machine: CPU time, memory (PSS),
raw-socket drops, the load average. Plain readers of /proc, for bench/vrrp_failover.py."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuUse:
    name: str
    ticks: int  # utime + stime from /proc/PID/stat (clock ticks, all threads)
    ns: int  # time on a CPU from /proc/PID/task/*/schedstat (nanoseconds, all threads)


def process_name(pid: int, parent: int) -> str:
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    return f"{comm} (parent)" if pid == parent else comm


def family_cpu(pids: Iterable[int], parent: int) -> dict[int, CpuUse]:
    """pid -> CPU used so far, for every live process of a daemon. /proc/PID/stat counts in 10 ms ticks,
    too coarse for a master that uses a few ms per second, so schedstat's nanoseconds are read as well."""
    out: dict[int, CpuUse] = {}
    for pid in sorted(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ns = 0
            for task in os.scandir(f"/proc/{pid}/task"):
                ns += int(Path(task.path, "schedstat").read_text().split()[0])
            name = process_name(pid, parent)
        except (OSError, ValueError):
            continue
        out[pid] = CpuUse(name, int(fields[11]) + int(fields[12]), ns)
    return out


def cpu_between(a: dict[int, CpuUse], b: dict[int, CpuUse], wall: float) -> tuple[float, float, dict[str, float]]:
    """(% of a core from schedstat, the same from /proc/PID/stat ticks, % per process) between two readings."""
    tick = os.sysconf("SC_CLK_TCK")
    by_proc: dict[str, float] = {}
    ns = ticks = 0
    for pid, use in b.items():
        before = a.get(pid, CpuUse(use.name, 0, 0))
        ns += use.ns - before.ns
        ticks += use.ticks - before.ticks
        by_proc[use.name] = by_proc.get(use.name, 0.0) + (use.ns - before.ns) / 1e9 / wall * 100
    return ns / 1e9 / wall * 100, ticks / tick / wall * 100, by_proc


def pss_mb(pid: int, field: str = "Pss") -> float:
    """Proportional set size (MB): each shared page counted as 1/N in each of the N processes that map
    it, so that a forked child's copy-on-write pages are not counted twice (RSS would). `Pss_Anon` leaves
    out file pages (libpython, shared libraries), whose share moves with whatever else maps them on the
    machine: the steadier figure for what each instance costs."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} in /proc/{pid}/smaps_rollup")


def family_pss(pids: Iterable[int], parent: int, field: str = "Pss") -> dict[str, float]:
    """Process name -> PSS (MB, or another smaps_rollup field) for the processes of a daemon (keepalived's
    two children have one name: their figures are added)."""
    out: dict[str, float] = {}
    for pid in sorted(pids):
        try:
            name = process_name(pid, parent)
            out[name] = out.get(name, 0.0) + pss_mb(pid, field)
        except (OSError, ValueError):
            continue
    return out


def raw_drops(pid: int, exclude: Iterable[int] = ()) -> int:
    """Datagrams the kernel dropped for a full receive buffer, over the raw sockets of `pid`'s network
    namespace (the `drops` column of /proc/PID/net/raw and raw6), leaving out the sockets whose inode
    is in `exclude` (the benchmark's own)."""
    skip = set(exclude)
    total = 0
    for table in ("raw", "raw6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) >= 13 and int(cols[9]) not in skip:
                total += int(cols[-1])
    return total


def load1() -> float:
    return os.getloadavg()[0]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the two nearest values; NaN for none."""
    vals = sorted(values)
    if not vals:
        return float("nan")
    pos = (len(vals) - 1) * min(100.0, max(0.0, q)) / 100
    lo = int(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)
