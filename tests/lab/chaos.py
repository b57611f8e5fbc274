"""Chaos test harness: two nodes sharing three VRRP instances, random faults for a fixed time, VIPs sampled
every 10 ms, and a verdict on what the samples, the logs and the process table show.

The same seeded fault plan runs against pykeepalived on both nodes and, in a second lab at the same time,
against keepalived 2.2.7 on both nodes (the reference: its numbers are reported, never judged).

    PYK_CHAOS_SEED=1234 PYK_CHAOS_SECONDS=180 python -m tests.lab.chaos     # `make chaos`
    python -m pytest -q -s tests/lab/test_chaos.py                            # ~60 s of faults

Instances (every node `state BACKUP`, both nodes run the same file but for the priorities):

    VI_1  VRRPv3, advert_int 0.2/0.3/0.5 (from the seed)  192.0.2.100  node 1: 200, node 2: 100  preempt
    VI_2  VRRPv2, advert_int 1                            192.0.2.101  node 1: 100, node 2: 200  preempt
    VI_3  VRRPv3, advert_int 0.5/1 (from the seed)        192.0.2.102  node 1: 200, node 2: 100  nopreempt

Faults (one node at a time; each is followed by a wait for convergence and a random gap, so its effect
shows before the next one): SIGKILL of the VRRP child, SIGSTOP of the VRRP child (SIGCONT 3-5 s later),
SIGKILL of the parent and a fresh start 0.2-1 s later (as systemd's Restart= would; KillMode=process leaves
the children alone), SIGSTOP/SIGCONT of the parent (2-4 s), a SIGHUP storm (10 in 100 ms), a reload with a
broken config (restored and SIGHUPed again 0.5-1.5 s later), link down/up (2-4 s), 30% packet loss on the
node's egress (3-5 s: tc netem where the kernel has it, else an nftables `numgen random` drop rule), and a
graceful stop (SIGTERM) and start 1-3 s later.

Violations (the run fails on them for pykeepalived):
  * double: a VIP on two nodes for longer than its advert interval; measured from the first sample with
    two holders to the next sample with fewer, the limit is advert_int + 20 ms + that last sample gap.
    Excused: a double that starts while the node's packet loss is on and ends within advert_int + 20 ms +
    one sample of the loss ending (lost adverts make a second master legal under RFC 5798; once adverts
    flow again it must go within an advert interval).
  * missing: a VIP on no node for longer than Master_Down_Interval of the priority-100 backup + 1 s
    (3 * advert_int + Skew_Time + 1 s), from the first empty sample to the next held one. Excused: the
    part of a window during which every node was deliberately down (stopped, killed before its restart, or
    link down) - counting starts when the first node comes back. The plan faults one node at a time, so
    with two nodes nothing is excused today; the rule is there for plans that take every node down.
  * a "Traceback" or "Logging error" in any daemon log;
  * a daemon (parent) that exits by itself, a daemon whose VRRP child is not running or VIPs that do not
    converge (each VIP on exactly one node, the priority-200 node for the preempt instances) within 20 s
    after a fault is over; the daemon is started again (as systemd would) and the run goes on;
  * after the teardown: a process left in the lab's namespaces, a pykeepalived/keepalived process on the
    host that the run started (pids seen, pidfiles under the run's directory, a deleted lab namespace), or
    a lab namespace left behind.

Daemons are started as the README tells users (`-n -l -D -f ... -p -r -c`), without the lab's default
`-G`: this machine has no /dev/log, so they log to the console only; where a syslog socket exists they
log there too (a few hundred lines per run). PYK_CHAOS_TREE=DIR runs the pykeepalived of another checkout
(`git archive HEAD | tar -x -C DIR`), for a stable daemon while this tree is being edited.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil  # type: ignore[import-untyped]

from labkit.lab import NETNS_DIR, Daemon, Lab, LabError, Node, Sample, alive, ensure_tools, netns_inode

Impl = Literal["pykeepalived", "keepalived"]
IMPLS: tuple[Impl, ...] = ("pykeepalived", "keepalived")

KINDS: tuple[str, ...] = (
    "kill_vrrp",
    "stop_vrrp",
    "kill_parent",
    "stop_parent",
    "hup_storm",
    "bad_reload",
    "link_flap",
    "loss",
    "restart",
)
# Seconds a fault lasts (SIGSTOP to SIGCONT, down to up, ...), drawn uniformly from the range.
HOLD: dict[str, tuple[float, float]] = {
    "kill_vrrp": (0.0, 0.0),
    "stop_vrrp": (3.0, 5.0),
    "kill_parent": (0.2, 1.0),
    "stop_parent": (2.0, 4.0),
    "hup_storm": (0.0, 0.0),
    "bad_reload": (0.5, 1.5),
    "link_flap": (2.0, 4.0),
    "loss": (3.0, 5.0),
    "restart": (1.0, 3.0),
}
# Faults after which the node cannot hold a VIP until recovered (for the "every node down" excuse).
OUTAGE = {"kill_parent", "link_flap", "restart"}
SAMPLE_TOLERANCE = 0.020
MISSING_SLACK = 1.0
CONVERGE_TIMEOUT = 20.0
STABLE = 0.5
LOSS_PERCENT = 30


# ---------------------------------------------------------------------------------------------------------
# Scenario


@dataclass(frozen=True)
class Instance:
    name: str
    vrid: int
    version: int
    advert_int: float
    vip: str
    prio: dict[int, int]
    preempt: bool

    def advert_text(self) -> str:
        return f"{self.advert_int:g}"

    def owner(self) -> int:
        """The node with the higher priority (where a preempt instance settles)."""
        return max(self.prio, key=lambda n: self.prio[n])

    def double_limit(self) -> float:
        return self.advert_int + SAMPLE_TOLERANCE

    def missing_limit(self) -> float:
        low = min(self.prio.values())
        return 3 * self.advert_int + (256 - low) / 256 * self.advert_int + MISSING_SLACK


def scenario(rng: random.Random) -> list[Instance]:
    return [
        Instance("VI_1", 51, 3, rng.choice([0.2, 0.3, 0.5]), "192.0.2.100", {1: 200, 2: 100}, True),
        Instance("VI_2", 52, 2, 1.0, "192.0.2.101", {1: 100, 2: 200}, True),
        Instance("VI_3", 53, 3, rng.choice([0.5, 1.0]), "192.0.2.102", {1: 200, 2: 100}, False),
    ]


def config_text(node: int, instances: Sequence[Instance]) -> str:
    out = [f"global_defs {{\n    router_id chaos{node}\n}}\n"]
    for i in instances:
        out.append(
            f"vrrp_instance {i.name} {{\n"
            "    state BACKUP\n"
            "    interface eth0\n"
            f"    virtual_router_id {i.vrid}\n"
            f"    version {i.version}\n"
            f"    priority {i.prio[node]}\n"
            f"    advert_int {i.advert_text()}\n"
            + ("" if i.preempt else "    nopreempt\n")
            + f"    virtual_ipaddress {{\n        {i.vip}/24\n    }}\n}}\n"
        )
    return "".join(out)


# Rejected by `pykeepalived -t` and `keepalived -t` (exit 5): unbalanced braces, VRID and priority out of range.
BROKEN_TAIL = """vrrp_instance VI_BROKEN {
    interface eth0
    virtual_router_id 300
    priority 900
    virtual_ipaddress {
        192.0.2.200/24
"""


@dataclass(frozen=True)
class Fault:
    index: int
    kind: str
    node: int
    hold: float
    gap: float

    def describe(self) -> str:
        held = f" for {self.hold:.2f}s" if self.hold else ""
        return f"#{self.index} {self.kind} node {self.node}{held}"


def plan(rng: random.Random, seconds: float, nodes: int = 2) -> list[Fault]:
    """Faults in shuffled rounds (every kind once per round, so a short run still sees each), until their
    nominal time (hold + ~2.5 s to recover + gap) fills `seconds`."""
    faults: list[Fault] = []
    total = 0.0
    while total < seconds:
        kinds = list(KINDS)
        rng.shuffle(kinds)
        for kind in kinds:
            if total >= seconds:
                break
            lo, hi = HOLD[kind]
            f = Fault(
                len(faults) + 1, kind, rng.randint(1, nodes), round(rng.uniform(lo, hi), 2), rng.uniform(0.5, 1.5)
            )
            faults.append(f)
            total += f.hold + 2.5 + f.gap
    return faults


# ---------------------------------------------------------------------------------------------------------
# Sampling every VIP with one netlink dump per node


class MultiSampler:
    """Like lab.Sampler, for several addresses at once: one RTM_GETADDR dump per node every `interval`."""

    def __init__(self, lab: Lab, vips: Sequence[str], interval: float = 0.01) -> None:
        self.lab = lab
        self.vips = list(vips)
        self.packed = {v: socket.inet_pton(socket.AF_INET, v) for v in vips}
        self.interval = interval
        self._samples: dict[str, list[Sample]] = {v: [] for v in vips}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"chaos-sampler-{lab.tag}", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> MultiSampler:
        for n in self.lab.nodes:
            _ = n.reader
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                have = {n.index: n.reader.packed(socket.AF_INET) for n in self.lab.nodes}
                t1 = time.monotonic()
                with self._lock:
                    for v, raw in self.packed.items():
                        holders = tuple(i for i, addrs in have.items() if raw in addrs)
                        self._samples[v].append(Sample((t0 + t1) / 2, holders))
                next_at = max(next_at + self.interval, t1)
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as e:
            if not self._stop.is_set():
                self.error = e

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def samples(self, vip: str) -> list[Sample]:
        if self.error is not None:
            raise LabError(f"the chaos sampler failed: {self.error!r}") from self.error
        with self._lock:
            return list(self._samples[vip])

    def latest(self) -> dict[str, tuple[int, ...]]:
        with self._lock:
            return {v: s[-1].holders for v, s in self._samples.items() if s}

    def gaps(self) -> tuple[float, float]:
        ts = [s.t for s in self.samples(self.vips[0])]
        d = sorted(b - a for a, b in itertools.pairwise(ts))
        return (d[len(d) // 2], d[-1]) if d else (0.0, 0.0)


# ---------------------------------------------------------------------------------------------------------
# What happened


@dataclass
class Injected:
    fault: Fault
    t0: float  # the fault's first action
    t1: float = 0.0  # its recovery action done (SIGCONT, link up, start, ...)
    settled: float = 0.0  # converged again (0: never)
    outage: tuple[float, float] | None = None  # the node could hold no VIP in this interval
    loss: tuple[float, float] | None = None  # packet loss on the node's egress in this interval
    notes: list[str] = field(default_factory=list)


@dataclass
class Window:
    instance: Instance
    kind: Literal["double", "missing"]
    start: float  # first bad sample
    last_bad: float
    end: float  # first good sample after it (the last sample if none)
    resolved: bool
    limit: float  # the allowed duration, the closing sample gap included
    fault: Injected | None = None
    excused: str = ""
    counted: float = 0.0  # the duration judged (after an "every node down" excuse)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def violation(self) -> bool:
        return not self.excused and self.counted > self.limit


def windows(samples: Sequence[Sample], inst: Instance, since: float, until: float) -> list[Window]:
    """Runs of samples in [since, until] with two holders or none."""
    out: list[Window] = []
    cur: Window | None = None
    for s in samples:
        if s.t < since or s.t > until:
            continue
        kind: Literal["double", "missing"] | None = (
            "double" if len(s.holders) > 1 else "missing" if not s.holders else None
        )
        if cur is not None and kind != cur.kind:
            cur.end, cur.resolved = s.t, True
            out.append(cur)
            cur = None
        if kind is not None:
            if cur is None:
                cur = Window(inst, kind, s.t, s.t, s.t, False, 0.0)
            cur.last_bad = s.t
    if cur is not None:
        cur.end = cur.last_bad
        out.append(cur)
    return out


def judge(w: Window, record: Sequence[Injected], nodes: Sequence[int]) -> None:
    """Attribute the window to the last fault injected before it started, apply the excuses, set the limit."""
    before = [r for r in record if r.t0 <= w.start]
    w.fault = before[-1] if before else None
    closing_gap = w.end - w.last_bad
    w.counted = w.duration
    if w.kind == "double":
        w.limit = w.instance.double_limit() + closing_gap
        for r in record:
            if r.loss is not None and r.loss[0] <= w.start <= r.loss[1] and w.duration > w.limit:
                if w.end - r.loss[1] <= w.instance.double_limit() + closing_gap:
                    w.excused = f"packet loss on node {r.fault.node} ({r.fault.describe()})"
                else:
                    w.counted = w.end - r.loss[1]
        return
    w.limit = w.instance.missing_limit() + closing_gap
    # Every node deliberately down: count from the end of the last such interval that overlaps the window.
    for a, b in all_down(record, nodes):
        if a < w.end and b > w.start:
            w.counted = min(w.counted, w.end - max(w.start, b))
            w.excused = "every node down" if w.counted <= w.limit else ""


def all_down(record: Sequence[Injected], nodes: Sequence[int]) -> list[tuple[float, float]]:
    """Intervals during which every node had an outage fault on."""
    per_node = {n: [r.outage for r in record if r.outage is not None and r.fault.node == n] for n in nodes}
    out: list[tuple[float, float]] = []
    first, *rest = nodes
    for a, b in per_node[first]:
        spans = [(a, b)]
        for n in rest:
            spans = [(max(x, c), min(y, d)) for x, y in spans for c, d in per_node[n] if max(x, c) < min(y, d)]
        out += spans
    return out


@dataclass
class Result:
    impl: Impl
    seed: int
    instances: list[Instance]
    record: list[Injected] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # other violations (logs, exits, convergence, leaks)
    notes: list[str] = field(default_factory=list)
    sample_gaps: tuple[float, float] = (0.0, 0.0)
    seconds: float = 0.0
    samples: int = 0
    workdir: Path | None = None

    def violations(self) -> list[str]:
        out = [
            f"{w.kind} {w.instance.name} {w.instance.vip}: {w.duration:.3f}s"
            + (f" (counted {w.counted:.3f}s)" if w.counted != w.duration else "")
            + f" > {w.limit:.3f}s at +{w.start - self.t_origin():.2f}s"
            + ("" if w.resolved else " (still at the end)")
            + f" after {w.fault.fault.describe() if w.fault else 'the start'}"
            for w in self.windows
            if w.violation
        ]
        return out + self.problems

    def t_origin(self) -> float:
        return self.record[0].t0 if self.record else 0.0


# ---------------------------------------------------------------------------------------------------------
# Running the faults


def _ns_inode_of(pid: int) -> int | None:
    try:
        m = re.fullmatch(r"net:\[(\d+)\]", os.readlink(f"/proc/{pid}/ns/net"))
    except OSError:
        return None
    return int(m.group(1)) if m else None


def start_daemon(node: Node, impl: Impl, config: str, name: str) -> Daemon:
    """Node.pykeepalived / Node.keepalived without the lab's `-G` (see the module docstring)."""
    d = Daemon(node, impl, config, node.lab.workdir / f"n{node.index}-{impl}-{name}")
    d.argv = [a for a in d.argv if a != "-G"]
    tree = os.environ.get("PYK_CHAOS_TREE")
    if impl == "pykeepalived" and tree:
        # Another checkout's daemon (e.g. `git archive HEAD` unpacked) while this tree is being edited.
        d.cwd = Path(tree)
        assert d.env is not None
        d.env["PYTHONPATH"] = tree
    node.procs.append(d)
    d.start()
    return d


class Loss:
    """30% loss on a node's egress: tc netem where the kernel has it, else an nftables rule."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.how = ""

    def on(self) -> None:
        res = self.node.run(
            ["tc", "qdisc", "add", "dev", self.node.ifname, "root", "netem", "loss", f"{LOSS_PERCENT}%"],
            check=False,
        )
        if res.returncode == 0:
            self.how = "netem"
            return
        ensure_nft()
        rules = (
            "table inet pykchaos {\n  chain out {\n    type filter hook output priority 0; policy accept;\n"
            f'    oifname "{self.node.ifname}" numgen random mod 100 < {LOSS_PERCENT} drop\n  }}\n}}\n'
        )
        self.node.run(["nft", "-f", "-"], input=rules)
        self.how = "nft"

    def off(self) -> None:
        if self.how == "netem":
            self.node.run(["tc", "qdisc", "del", "dev", self.node.ifname, "root"], check=False)
        elif self.how == "nft":
            self.node.run(["nft", "delete", "table", "inet", "pykchaos"], check=False)
        self.how = ""


def ensure_nft() -> None:
    if shutil.which("nft") is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nftables"], env=env, check=True, stdout=subprocess.DEVNULL)


class ChaosRun:
    """One implementation on both nodes of `lab`, driven through `faults`."""

    def __init__(
        self,
        lab: Lab,
        impl: Impl,
        seed: int,
        instances: list[Instance],
        faults: Sequence[Fault],
        *,
        budget: float,
        log: Callable[[str], None] = print,
    ) -> None:
        self.lab = lab
        self.impl = impl
        self.instances = instances
        self.faults = list(faults)
        self.budget = budget
        self.result = Result(impl, seed, instances, workdir=lab.workdir)
        self._log = log
        self.configs = {n.index: config_text(n.index, instances) for n in lab.nodes}
        self.daemons: dict[int, Daemon] = {}
        self.generations: list[Daemon] = []
        self.sampler = MultiSampler(lab, [i.vip for i in instances])
        self.stopped: set[int] = set()  # pids we SIGSTOPped and have not continued
        self.losses: list[Loss] = []
        self.down_links: set[int] = set()
        self.seen_pids: set[int] = set()
        self.expect_down: set[int] = set()  # nodes whose daemon is down on purpose

    def log(self, text: str) -> None:
        self._log(f"[{self.impl}] {text}")

    # -- daemons

    def start(self, n: int) -> Daemon:
        d = self.daemons.get(n)
        if d is None:
            d = start_daemon(self.lab.node(n), self.impl, self.configs[n], "chaos")
            self.daemons[n] = d
            self.generations.append(d)
        else:
            d.start()
        return d

    def child(self, n: int) -> int | None:
        """The VRRP child's pid from its pidfile, if it runs in node n's namespace."""
        pid = self.daemons[n].pid_of("vrrp")
        if pid is None or not alive(pid) or _ns_inode_of(pid) != netns_inode(self.lab.node(n).netns):
            return None
        self.seen_pids.add(pid)
        return pid

    def signal_pid(self, n: int, pid: int, sig: int) -> bool:
        # Only a process in node n's namespace is ever signalled (a pidfile's pid may have been reused).
        if not alive(pid) or _ns_inode_of(pid) != netns_inode(self.lab.node(n).netns):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            return True
        return False

    def track(self) -> None:
        for d in self.generations:
            self.seen_pids |= d.family() | d.seen

    # -- convergence

    def converged(self) -> bool:
        latest = self.sampler.latest()
        for inst in self.instances:
            holders = latest.get(inst.vip, ())
            if len(holders) != 1:
                return False
            if inst.preempt and holders != (inst.owner(),):
                return False
        return True

    def converge(self, after: str, timeout: float = CONVERGE_TIMEOUT) -> float:
        """Wait until every daemon and VRRP child runs and every VIP sits on its node for STABLE seconds.
        A daemon that exited is a problem: it is started again (as systemd would). Returns the time it was
        reached, 0.0 after `timeout` (a problem too)."""
        deadline = time.monotonic() + timeout
        stable_since: float | None = None
        restarts = 0
        while time.monotonic() < deadline:
            for n, d in self.daemons.items():
                if n in self.expect_down or d.running() or restarts >= 3:
                    continue
                restarts += 1
                code = d.popen.returncode if d.popen is not None else None
                tail = " | ".join(d.log_text().strip().splitlines()[-2:])
                self.problem(f"node {n} {self.impl} exited (status {code}) after {after}: {tail}")
                time.sleep(1.0)
                self.start(n)
            ok = all(self.child(n) is not None for n in self.daemons) and self.converged()
            now = time.monotonic()
            if not ok:
                stable_since = None
            elif stable_since is None:
                stable_since = now
            elif now - stable_since >= STABLE:
                self.track()
                return stable_since
            time.sleep(0.02)
        state = self.sampler.latest()
        children = {n: self.child(n) for n in self.daemons}
        self.problem(f"no convergence within {timeout:.0f}s after {after}: holders {state}, vrrp children {children}")
        self.track()
        return 0.0

    def problem(self, text: str) -> None:
        self.log(f"PROBLEM: {text}")
        self.result.problems.append(text)

    # -- faults

    def inject(self, f: Fault) -> Injected:
        node = self.lab.node(f.node)
        d = self.daemons[f.node]
        rec = Injected(f, time.monotonic())
        if f.kind in ("kill_vrrp", "stop_vrrp"):
            pid = self.child(f.node)
            if pid is None:
                rec.notes.append("no VRRP child running: skipped")
                return rec
            rec.t0 = time.monotonic()
            if f.kind == "kill_vrrp":
                self.signal_pid(f.node, pid, signal.SIGKILL)
            else:
                self.signal_pid(f.node, pid, signal.SIGSTOP)
                self.stopped.add(pid)
                time.sleep(f.hold)
                if not self.signal_pid(f.node, pid, signal.SIGCONT):
                    rec.notes.append("the stopped child was gone before SIGCONT")
                self.stopped.discard(pid)
        elif f.kind == "kill_parent":
            self.expect_down.add(f.node)
            if self.send(d, signal.SIGKILL, rec):
                d.wait(5.0)
            time.sleep(f.hold)
            self.start(f.node)
            self.expect_down.discard(f.node)
            rec.outage = (rec.t0, time.monotonic())
        elif f.kind == "stop_parent":
            if self.send(d, signal.SIGSTOP, rec):
                self.stopped.add(d.pid)
                time.sleep(f.hold)
                self.send(d, signal.SIGCONT, rec)
                self.stopped.discard(d.pid)
        elif f.kind == "hup_storm":
            for _ in range(10):
                self.send(d, signal.SIGHUP, rec)
                time.sleep(0.01)
        elif f.kind == "bad_reload":
            d.config.write_text(self.configs[f.node] + BROKEN_TAIL)
            self.send(d, signal.SIGHUP, rec)
            time.sleep(f.hold)
            d.config.write_text(self.configs[f.node])
            self.send(d, signal.SIGHUP, rec)
        elif f.kind == "link_flap":
            node.link_down()
            self.down_links.add(f.node)
            time.sleep(f.hold)
            node.link_up()
            self.down_links.discard(f.node)
            rec.outage = (rec.t0, time.monotonic())
        elif f.kind == "loss":
            loss = Loss(node)
            self.losses.append(loss)
            loss.on()
            rec.notes.append(f"loss by {loss.how}")
            time.sleep(f.hold)
            loss.off()
            self.losses.remove(loss)
            rec.loss = (rec.t0, time.monotonic())
        elif f.kind == "restart":
            self.expect_down.add(f.node)
            code = d.stop()
            if code != 0:
                self.problem(f"node {f.node} {self.impl}: graceful stop ended with status {code} ({f.describe()})")
            time.sleep(f.hold)
            self.start(f.node)
            self.expect_down.discard(f.node)
            rec.outage = (rec.t0, time.monotonic())
        else:
            raise ValueError(f.kind)
        rec.t1 = time.monotonic()
        return rec

    def send(self, d: Daemon, sig: int, rec: Injected) -> bool:
        """A signal to the daemon's main process; a note (and False) when it is not running any more."""
        if not d.running():
            rec.notes.append(f"{signal.Signals(sig).name}: the daemon was not running")
            return False
        d.signal(sig)
        return True

    def undo(self) -> None:
        """Leave nothing stopped, lossy or down (also when the run failed half-way)."""
        for pid in list(self.stopped):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.stopped.clear()
        for loss in self.losses:
            with contextlib.suppress(Exception):
                loss.off()
        for n in self.down_links:
            with contextlib.suppress(Exception):
                self.lab.node(n).link_up()

    def run(self) -> Result:
        res = self.result
        try:
            self.sampler.start()
            for n in (1, 2):
                self.start(n)
            if not self.converge("the start", timeout=30.0):
                return res
            started = time.monotonic()
            for f in self.faults:
                if time.monotonic() - started > self.budget:
                    res.notes.append(f"stopped after {len(res.record)} faults: over the {self.budget:.0f}s cap")
                    break
                rec = self.inject(f)
                res.record.append(rec)
                rec.settled = self.converge(f.describe())
                extra = f" ({'; '.join(rec.notes)})" if rec.notes else ""
                took = f"converged {rec.settled - rec.t1:+.2f}s" if rec.settled else "did not converge"
                self.log(f"+{rec.t0 - started:6.2f}s {f.describe()}: {took}{extra}")
                time.sleep(f.gap)
            until = time.monotonic()
        finally:
            self.undo()
            self.sampler.stop()
        res.seconds = until - started
        origin = res.record[0].t0 if res.record else started
        for inst in self.instances:
            samples = self.sampler.samples(inst.vip)
            res.samples = len(samples)
            for w in windows(samples, inst, origin, until):
                judge(w, res.record, [n.index for n in self.lab.nodes])
                res.windows.append(w)
        res.sample_gaps = self.sampler.gaps()
        return res

    def check_logs(self) -> None:
        for d in self.generations:
            text = d.log_text()
            for m in re.finditer(r"Traceback|Logging error", text):
                line_no = text.count("\n", 0, m.start()) + 1
                self.problem(f"{m.group(0)!r} in {d.log}:{line_no}")
                break

    def finish(self) -> None:
        """Stop the daemons gracefully (as a user would), so their shutdown paths run too, then read the
        logs; the lab's teardown kills what is left."""
        self.track()
        for n, d in self.daemons.items():
            if d.running():
                code = d.stop()
                if code != 0:
                    self.problem(f"node {n} {self.impl}: final stop ended with status {code}")
        self.check_logs()


# ---------------------------------------------------------------------------------------------------------
# Leaks


def leaks(lab: Lab, seen: set[int]) -> list[str]:
    """After lab.close(): processes or namespaces the run left behind."""
    out: list[str] = []
    for name in lab.namespaces():
        if (NETNS_DIR / name).exists():
            out.append(f"namespace {name} left")
    me = os.getpid()
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            if p.pid == me:
                continue
            cmd = " ".join(p.info["cmdline"] or [])
            ns = _ns_inode_of(p.pid)
            in_lab = ns is not None and ns in lab.inodes
            ours = p.pid in seen and re.search(r"keepalived|haparent|pyka_", f"{p.info['name']} {cmd}") is not None
            files = str(lab.workdir) in cmd
            if not (in_lab or ours or files):
                with contextlib.suppress(psutil.Error):
                    files = any(str(lab.workdir) in f.path for f in p.open_files())
            if (in_lab or ours or files) and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"process {p.pid} ({p.info['name']}: {cmd[:100]}) left after the teardown")
        except psutil.Error:
            continue
    return out


# ---------------------------------------------------------------------------------------------------------
# The whole run: both implementations at once, in two labs


@dataclass
class Settings:
    seed: int
    seconds: float

    @classmethod
    def from_env(cls, default_seconds: float) -> Settings:
        seed_text = os.environ.get("PYK_CHAOS_SEED", "")
        seed = int(seed_text) if seed_text else random.SystemRandom().randrange(1, 1_000_000)
        seconds = float(os.environ.get("PYK_CHAOS_SECONDS", "") or default_seconds)
        return cls(seed, seconds)


def run_chaos(labs: dict[Impl, Lab], settings: Settings, log: Callable[[str], None] = print) -> dict[Impl, Result]:
    """Run the seed's plan on every lab at once (one thread each); close the labs, check for leaks."""
    rng = random.Random(settings.seed)
    instances = scenario(rng)
    faults = plan(rng, settings.seconds)
    log(f"chaos: seed {settings.seed} (PYK_CHAOS_SEED={settings.seed} to repeat), {settings.seconds:.0f}s of faults")
    for i in instances:
        log(
            f"  {i.name}: VRRPv{i.version} advert_int {i.advert_text()} {i.vip} priorities {i.prio} "
            f"{'preempt' if i.preempt else 'nopreempt'}; double > {i.double_limit():.3f}s, "
            f"missing > {i.missing_limit():.3f}s (+ the closing sample gap)"
        )
    log("  plan: " + ", ".join(f.describe() for f in faults))
    runs = {
        impl: ChaosRun(lab, impl, settings.seed, instances, faults, budget=1.5 * settings.seconds, log=log)
        for impl, lab in labs.items()
    }
    errors: dict[Impl, BaseException] = {}

    def body(run: ChaosRun) -> None:
        try:
            run.run()
            run.finish()
        except BaseException as e:  # reported after both threads are done
            errors[run.impl] = e

    threads = [threading.Thread(target=body, args=(r,), name=f"chaos-{r.impl}") for r in runs.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for impl, run in runs.items():
        run.track()
        lab = labs[impl]
        try:
            lab.close()
        except LabError as e:
            run.result.problems.append(f"teardown: {e}")
        for leak in leaks(lab, run.seen_pids):
            run.problem(leak)
    if errors:
        impl, err = next(iter(errors.items()))
        raise RuntimeError(f"the {impl} chaos run failed: {err!r}") from err
    return {impl: run.result for impl, run in runs.items()}


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def table(results: dict[Impl, Result]) -> str:
    """Per fault kind: how many were injected, the longest double and missing windows attributed to them,
    and how many windows broke the rules (excused ones in brackets, not counted)."""
    impls = list(results)
    head = f"{'fault':<12}" + "".join(
        f" | {impl[:12]:>12} {'n':>3} {'double':>7} {'missing':>7} {'viol':>4}" for impl in impls
    )
    lines = [head, "-" * len(head)]
    for kind in KINDS:
        row = f"{kind:<12}"
        for impl in impls:
            res = results[impl]
            n = sum(1 for r in res.record if r.fault.kind == kind)
            ws = [w for w in res.windows if (w.fault.fault.kind if w.fault else "(start)") == kind]
            dbl = max((w.duration for w in ws if w.kind == "double"), default=None)
            mis = max((w.duration for w in ws if w.kind == "missing"), default=None)
            viol = sum(1 for w in ws if w.violation)
            exc = sum(1 for w in ws if w.excused)
            v = f"{viol}" + (f"[{exc}]" if exc else "")
            row += f" | {'':>12} {n:>3} {_ms(dbl):>7} {_ms(mis):>7} {v:>4}"
        lines.append(row)
    for impl in impls:
        res = results[impl]
        med, worst = res.sample_gaps
        lines.append(
            f"{impl}: {len(res.record)} faults in {res.seconds:.0f}s, {res.samples} samples per VIP "
            f"(gap median {med * 1000:.1f} ms, max {worst * 1000:.1f} ms), {len(res.violations())} violations"
        )
    return "\n".join(lines)


def report(results: dict[Impl, Result]) -> str:
    out = [table(results)]
    for impl, res in results.items():
        origin = res.t_origin()
        bad = res.violations()
        out.append(f"{impl}: {'no violations' if not bad else f'{len(bad)} violations'} (seed {res.seed})")
        out += [f"  - {v}" for v in bad]
        for w in res.windows:
            if w.excused:
                out.append(
                    f"  excused {w.kind} {w.instance.name} {w.duration:.3f}s at +{w.start - origin:.2f}s: {w.excused}"
                )
        out += [f"  note: {n}" for n in res.notes]
    return "\n".join(out)


@contextlib.contextmanager
def labs_for(impls: Sequence[Impl], workdir: Path) -> Iterator[dict[Impl, Lab]]:
    labs: dict[Impl, Lab] = {}
    try:
        for impl in impls:
            labs[impl] = Lab(2, workdir=workdir / impl).open()
        yield labs
    finally:
        for lab in labs.values():
            with contextlib.suppress(Exception):
                lab.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", choices=IMPLS, help="run one implementation only")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("the chaos test needs root (network namespaces)", file=sys.stderr)
        return 2
    ensure_tools("ip", "keepalived")
    settings = Settings.from_env(180.0)
    workdir = Path(tempfile.mkdtemp(prefix=f"pyk-chaos-{settings.seed}-"))
    impls: Sequence[Impl] = (args.only,) if args.only else IMPLS
    with labs_for(impls, workdir) as labs:
        results = run_chaos(labs, settings)
    print(report(results))
    failed = bool(results.get("pykeepalived") and results["pykeepalived"].violations())
    print(f"logs in {workdir}" + ("" if failed else " (removed)"))
    if not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
