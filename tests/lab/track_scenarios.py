"""Helpers of the VRRP tracking scenarios (test_vrrp_track.py): configuration text, a notify FIFO
reader, the service process a `killall -0` check looks for, and the VIP timeline check.

The configurations are what the users' own look like (keepalived.conf(5) vrrp_script, track_script,
track_interface, notify*) with VRRPv3 and advert_int 0.2 so that a test takes seconds: Master_Down_Interval
3 * 0.2 + Skew_Time, 0.72 s for the backup at priority 98 (RFC 5798 section 6.1), which keepalived 2.2.7
accepts as well.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from labkit.lab import Daemon, Lab, Node, Proc, Sample, Sampler, longest_overlap, wait_for

Kind = Literal["pykeepalived", "keepalived"]

VIP = "192.0.2.100"
VIP2 = "192.0.2.101"
ADVERT_INT = 0.2
MASTER_PRIO = 100
BACKUP_PRIO = 98
# A preemption hands over between the new master's advert and the old master's VIP removal: both may
# hold the VIP for an advert's transit; 0.15 s on a loaded 2-core machine would still mean a late removal.
MAX_OVERLAP = 0.15


def skew(prio: int) -> float:
    """RFC 5798 section 6.1 Skew_Time with advert_int ADVERT_INT."""
    return (256 - prio) * ADVERT_INT / 256


def master_down(prio: int) -> float:
    return 3 * ADVERT_INT + skew(prio)


def instance(
    name: str = "VI_1",
    *,
    vrid: int = 51,
    prio: int = MASTER_PRIO,
    vip: str = VIP,
    extra: Sequence[str] = (),
) -> str:
    """A `state BACKUP` VRRPv3 instance on eth0; `extra` lines go in its body as they are."""
    body = [
        "    state BACKUP",
        "    interface eth0",
        f"    virtual_router_id {vrid}",
        f"    priority {prio}",
        "    version 3",
        f"    advert_int {ADVERT_INT}",
        *(f"    {line}" for line in extra),
        "    virtual_ipaddress {",
        f"        {vip}/24",
        "    }",
    ]
    return f"vrrp_instance {name} {{\n" + "\n".join(body) + "\n}\n"


def vrrp_script(name: str, script: str, *, weight: int, interval: int = 1, extra: Sequence[str] = ()) -> str:
    """A vrrp_script block; `script` is put inside double quotes as written (keepalived splits it)."""
    lines = [f'    script "{script}"', f"    interval {interval}", f"    weight {weight}", *(f"    {x}" for x in extra)]
    return f"vrrp_script {name} {{\n" + "\n".join(lines) + "\n}\n"


def config(node: int, *blocks: str, global_extra: Sequence[str] = ("script_user root",)) -> str:
    """global_defs (router_id, by default `script_user root`: the scripts live in the test's tmp dir and
    there is no keepalived_script user), then the blocks."""
    lines = [f"    router_id node{node}", *(f"    {x}" for x in global_extra)]
    return "global_defs {\n" + "\n".join(lines) + "\n}\n" + "".join(blocks)


def track(kind: str, *names: str) -> list[str]:
    """`track_script { ... }` / `track_interface { ... }` lines for instance(extra=)."""
    return [f"{kind} {{", *(f"    {n}" for n in names), "}"]


def start(node: Node, kind: Kind, text: str) -> Daemon:
    return node.keepalived(text) if kind == "keepalived" else node.pykeepalived(text)


def mark(d: Daemon) -> int:
    return len(d.log_text())


def dump_data(d: Daemon, want: str, timeout: float = 5.0) -> str:
    """SIGUSR1 (keepalived's "dump the configuration and state") and the data file it writes in $TMPDIR,
    the daemon's directory: keepalived.data for both. Waits until the file matches the regex
    `want` (the file is rewritten, not appended: an old one is removed first)."""
    path = d.workdir / "keepalived.data"
    path.unlink(missing_ok=True)
    d.signal(signal.SIGUSR1)
    rx = re.compile(want)

    def probe() -> str | None:
        text = path.read_text(errors="replace") if path.exists() else ""
        return text if rx.search(text) else None

    try:
        return wait_for(f"/{want}/ in {path.name}", probe, timeout, 0.05)
    except AssertionError:
        text = path.read_text(errors="replace") if path.exists() else "(no file)"
        raise AssertionError(f"/{want}/ not in {path}:\n{text[-3000:]}") from None


_PYK_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ", re.M)


def logged_at(d: Daemon, pattern: str, since: int = 0) -> float:
    """When pykeepalived logged the first line matching `pattern` after character `since`, on the
    time.monotonic() clock (its log stamps are local wall-clock time to the millisecond)."""
    if d.kind != "pykeepalived":
        raise ValueError("only pykeepalived's log has millisecond stamps")
    text = d.log_text()
    m = re.compile(pattern).search(text, since)
    if m is None:
        raise AssertionError(f"/{pattern}/ not in {d.log}")
    line_start = text.rfind("\n", 0, m.start()) + 1
    stamp = _PYK_STAMP.match(text, line_start)
    if stamp is None:
        raise AssertionError(f"no time stamp on {text[line_start : m.end()]!r}")
    wall = time.mktime(time.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S")) + int(stamp.group(2)) / 1000
    return wall - (time.time() - time.monotonic())


def add_tracked_link(lab: Lab) -> None:
    """A veth pair `trk`/`trkp` inside every node (both ends up): `ip link set trk down` is a tracked
    interface going down without touching eth0, where the adverts flow."""
    for node in lab.nodes:
        node.ip("link", "add", "trk", "type", "veth", "peer", "name", "trkp")
        node.ip("link", "set", "trkp", "up")
        node.ip("link", "set", "trk", "up")

    def up() -> bool:
        return all(
            link.get("operstate") == "UP" for node in lab.nodes for link in node.ip_json("link", "show", "dev", "trk")
        )

    wait_for("trk up in every node", up, 5.0)


# ---------------------------------------------------------------------------------------------------------
# The "service" a `killall -0 NAME` check looks for


def service_copy(directory: Path, name: str) -> Path:
    """A copy of /bin/sleep under a unique name (at most 15 characters: killall compares the kernel's
    comm, which is cut there)."""
    if len(name) > 15:
        raise ValueError(f"{name!r} is longer than a process name can be")
    path = directory / name
    shutil.copy("/bin/sleep", path)
    path.chmod(0o755)
    return path


def start_service(node: Node, path: Path) -> Proc:
    return node.start([str(path), "1000"], name=path.name)


def processes_running(path: Path) -> list[tuple[int, float]]:
    """(pid, age in seconds) of the live processes whose argv[0] is `path` (anywhere on the host; the
    paths are unique to the test)."""
    found: list[tuple[int, float]] = []
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0]
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if argv0 == os.fsencode(path) and fields[0] != "Z":
            found.append((int(entry.name), uptime - int(fields[19]) / hz))
    return found


# ---------------------------------------------------------------------------------------------------------
# Reading the notify FIFO


class FifoReader:
    """vrrp_notify_fifo lines, read in a thread. The test makes the FIFO and holds it open read-write,
    so it never sees EOF when a daemon closes its end (a restart)."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fifo-{path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            with contextlib.suppress(BlockingIOError):
                buf += os.read(self.fd, 65536)
            *done, buf = buf.split(b"\n")
            with self._lock:
                self._lines += [line.decode(errors="replace") for line in done]

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        os.close(self.fd)


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_lines(what: str, get: Callable[[], list[str]], want: list[str], timeout: float = 8.0) -> list[str]:
    """Wait until `get()` is exactly `want` (lines still coming in after that fail the caller's later
    checks); AssertionError showing both otherwise."""
    try:
        wait_for(what, lambda: get() == want, timeout, 0.05)
    except AssertionError:
        raise AssertionError(f"{what}: want {want}, got {get()}") from None
    return get()


# ---------------------------------------------------------------------------------------------------------
# The VIP timeline


@dataclass
class Timeline:
    """Who holds the VIP, sampled every 10 ms, cut into steady spells: `settle(node)` waits until `node`
    alone holds it and opens a spell there; `act()` closes it before the test changes something.
    `check()`: exactly `node` at every sample of every spell, and no overlap longer than MAX_OVERLAP
    anywhere (between the spells the VIP may be nowhere: a takeover's Master_Down_Interval or Skew_Time)."""

    sampler: Sampler
    spells: list[tuple[int, float, float | None]] = field(default_factory=list)

    @classmethod
    def of(cls, lab: Lab, address: str = VIP) -> Timeline:
        return cls(lab.sampler(address))

    def settle(self, node: int, timeout: float, since: float | None = None) -> float:
        """Wait until `node` alone holds the VIP; returns the seconds from `since` (default: now)."""
        since = time.monotonic() if since is None else since
        first = self.sampler.wait_holders([node], timeout, since=since)
        self.spells.append((node, first.t, None))
        return first.t - since

    def act(self) -> float:
        """Close the open spell; returns the time (the moment of the change that follows)."""
        now = time.monotonic()
        if self.spells and self.spells[-1][2] is None:
            node, start, _ = self.spells[-1]
            self.spells[-1] = (node, start, now)
        return now

    def hold(self, seconds: float) -> None:
        """Let time pass inside the open spell (the check then covers it)."""
        time.sleep(seconds)

    def check(self) -> None:
        self.act()
        samples = self.sampler.samples
        for node, start, end in self.spells:
            spell = [s for s in samples if start <= s.t <= (end if end is not None else s.t)]
            bad = [s for s in spell if s.holders != (node,)]
            assert not bad, f"node {node} was not the only holder at {len(bad)} of {len(spell)} samples: {bad[:5]}"
        first = self.spells[0][1] if self.spells else None
        overlap = longest_overlap(samples, since=first)
        assert overlap < MAX_OVERLAP, f"two holders for {overlap:.3f} s"

    @staticmethod
    def describe(samples: Sequence[Sample]) -> str:
        t0 = samples[0].t if samples else 0.0
        out: list[str] = []
        last: tuple[int, ...] | None = None
        for s in samples:
            if s.holders != last:
                out.append(f"+{s.t - t0:.2f}s {list(s.holders)}")
                last = s.holders
        return ", ".join(out)
