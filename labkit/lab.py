"""A virtual LAN in network namespaces for the VRRP tests, the interop tests, the demo and the benchmark.

One "switch" namespace holds a bridge (br0); each node namespace holds eth0, one end of a veth pair whose
other end (p<i>) is a port of that bridge. Node i (1-based) has 192.0.2.(10+i)/24, 2001:db8::(10+i)/64 and
the link-local fe80::ff:fe00:i (EUI-64 of its MAC 02:00:00:00:00:i). `Lab.pair()` builds the other layout the
tests use: two nodes whose interfaces are va and vb, with 192.0.2.1 / .2, 2001:db8::1 / ::2 and fixed link-local
addresses fe80::1 / fe80::2 (no EUI-64 address at all). Namespace names carry the test process's pid and a
counter, so concurrent runs never collide; interface names live inside those private namespaces and can be fixed
(eth0, br0, p1, ...).

Everything a lab starts is killed when it closes (also when the test failed or was interrupted): the
processes it launched, their process groups, and then any process at all whose network namespace is one of
the lab's. `cleanup_stale()` removes what a killed run left behind.

VIP ownership is read over a raw rtnetlink socket opened inside each node namespace (one RTM_GETADDR dump,
well under a millisecond), so a background `Sampler` can record who holds a VIP every 10 ms.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ipaddress
import itertools
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, TypeVar

ROOT = Path(__file__).resolve().parents[1]
NETNS_DIR = Path("/run/netns")
# Every namespace a lab makes is named PREFIX<pid>-<counter>-<role>; cleanup_stale() relies on it.
PREFIX = "pklab-"
BRIDGE = "br0"
NODE_IF = "eth0"
VRRP_FILTER = "ip proto 112 or ip6 proto 112"

T = TypeVar("T")
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_counter = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003

# Debian packages that provide the tools the lab runs.
TOOL_PACKAGES = {"ip": "iproute2", "keepalived": "keepalived", "tcpdump": "tcpdump", "tshark": "tshark"}


class LabError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------------------
# Small helpers


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, step: float = 0.01) -> T:
    """Poll `probe` until it returns something truthy; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def ensure_tools(*tools: str) -> None:
    """Install the Debian packages of the missing tools (CI machines start without tcpdump/tshark)."""
    missing = sorted({TOOL_PACKAGES[t] for t in tools if shutil.which(t) is None})
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=True, stdout=subprocess.DEVNULL)


def _ip(args: Sequence[str], *, netns: str | None = None, batch: Iterable[str] = ()) -> None:
    """Run `ip`, optionally in a namespace and with a batch of commands on stdin (one process for many)."""
    argv = ["ip"] + (["-n", netns] if netns else [])
    lines = list(batch)
    if lines:
        argv += ["-batch", "-"]
    argv += list(args)
    res = subprocess.run(argv, input="\n".join(lines) + "\n" if lines else None, capture_output=True, text=True)
    if res.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}\n" + "\n".join(lines))


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Call `fn` in a thread that entered `netns`: setns(2) moves only the calling thread, so the rest of
    the process (pytest) stays where it is, and a socket opened there stays bound to that namespace."""
    out: list[T] = []
    err: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd, netns)
            finally:
                os.close(fd)
            out.append(fn())
        except BaseException as e:
            err.append(e)

    t = threading.Thread(target=body, name=f"netns-{netns}")
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns({what}): {os.strerror(e)}")


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the block with this thread in `netns` and come back, also on failure. Sockets opened in the block
    stay in `netns`; processes started in it too (unless they enter a namespace of their own). For a single
    call, `in_netns` leaves the calling thread alone."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target, netns)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home, "the thread's own namespace")
    finally:
        os.close(home)


def _write_sysctls(netns: str, values: dict[str, str]) -> None:
    # /proc/sys/net shows the namespace of the task that opens it, so a thread inside `netns` will do.
    def write() -> None:
        for key, value in values.items():
            Path("/proc/sys", key.replace(".", "/")).write_text(value)

    in_netns(netns, write)


def netns_inode(netns: str) -> int:
    return os.stat(NETNS_DIR / netns).st_ino


def _netns_of(pid: int) -> int | None:
    try:
        m = re.fullmatch(r"net:\[(\d+)\]", os.readlink(f"/proc/{pid}/ns/net"))
    except OSError:
        return None
    return int(m.group(1)) if m else None


def pids_in_netns(inodes: Collection[int]) -> list[int]:
    """Every process whose network namespace is one of `inodes` (what must be gone after a teardown)."""
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        if _netns_of(int(entry.name)) in inodes:
            found.append(int(entry.name))
    return found


def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, session) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3])


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for whoever adopted it."""
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z"


def _family_of(pid: int) -> set[int]:
    """pid, its descendants, and every process in its process group or session (keepalived's children)."""
    stats: dict[int, tuple[str, int, int, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (st := _proc_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    family = {pid} | {p for p, st in stats.items() if st[2] == pid or st[3] == pid}
    grew = True
    while grew:
        more = {p for p, st in stats.items() if st[1] in family} - family
        family |= more
        grew = bool(more)
    return family


def _kill_all(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _kill_netns_processes(inodes: Collection[int], timeout: float = 5.0) -> list[int]:
    """SIGKILL everything inside the given namespaces until nothing is left; returns who was killed."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    # An exiting process leaves its namespaces before it is a zombie, so it vanishes from the namespace
    # scan while still running: wait for the killed ones by pid as well.
    while pids := [p for p in pids_in_netns(inodes) if alive(p)] + [p for p in killed if alive(p)]:
        _kill_all(p for p in pids if p not in killed)
        killed.extend(p for p in pids if p not in killed)
        if time.monotonic() > deadline:
            raise LabError(f"processes survive SIGKILL in the lab namespaces: {pids}")
        time.sleep(0.005)
    return killed


def _delete_netns(names: Iterable[str]) -> None:
    names = [n for n in names if (NETNS_DIR / n).exists()]
    if names:
        _ip([], batch=[f"netns del {n}" for n in names])


def cleanup_stale(prefix: str = PREFIX) -> list[str]:
    """Delete the namespaces (and kill their processes) of labs whose test process is dead: a run killed
    with SIGKILL or a lost machine cannot tear down, so the next run does it. Labs of live processes are
    left alone (another pytest may be running)."""
    if not NETNS_DIR.is_dir():
        return []
    stale: list[str] = []
    for name in sorted(os.listdir(NETNS_DIR)):
        m = re.fullmatch(re.escape(prefix) + r"(\d+)-\d+-\w+", name)
        if m and (int(m.group(1)) == os.getpid() or not alive(int(m.group(1)))):
            if int(m.group(1)) == os.getpid() and name in _open_namespaces():
                continue
            stale.append(name)
    if stale:
        inodes = set()
        for name in stale:
            with contextlib.suppress(OSError):
                inodes.add(netns_inode(name))
        _kill_netns_processes(inodes)
        _delete_netns(stale)
    return stale


# ---------------------------------------------------------------------------------------------------------
# Reading addresses: a raw rtnetlink socket per namespace (no fork, no asyncio: callable from any thread)

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFLA_IFNAME = 3
_NLMSG = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_IFINFOMSG = struct.Struct("=BxHiII")


@dataclass(frozen=True)
class Address:
    ifindex: int
    ifname: str
    address: IPInterface
    scope: int


class AddressReader:
    """Dumps a namespace's addresses over one netlink socket; a lock makes it safe from several threads."""

    def __init__(self, netns: str) -> None:
        def open_socket() -> socket.socket:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            s.bind((0, 0))
            s.settimeout(5.0)
            return s

        self.netns = netns
        self.sock = in_netns(netns, open_socket)
        self.lock = threading.Lock()
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _dump(self, msg_type: int, body: bytes) -> list[tuple[int, bytes]]:
        with self.lock:
            self.seq += 1
            seq = self.seq
            self.sock.send(_NLMSG.pack(_NLMSG.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            out: list[tuple[int, bytes]] = []
            while True:
                data = self.sock.recv(1 << 16)
                off = 0
                while off + _NLMSG.size <= len(data):
                    length, mtype, _flags, mseq, _pid = _NLMSG.unpack_from(data, off)
                    if length < _NLMSG.size:
                        raise LabError(f"bad netlink message length {length}")
                    payload = data[off + _NLMSG.size : off + length]
                    off += (length + 3) & ~3
                    if mseq != seq:
                        continue
                    if mtype == NLMSG_DONE:
                        return out
                    if mtype == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", payload)
                        if code:
                            raise OSError(-code, f"netlink dump in {self.netns}: {os.strerror(-code)}")
                        continue
                    out.append((mtype, payload))

    @staticmethod
    def _attrs(payload: bytes, offset: int) -> dict[int, bytes]:
        attrs: dict[int, bytes] = {}
        while offset + 4 <= len(payload):
            alen, atype = struct.unpack_from("=HH", payload, offset)
            if alen < 4:
                break
            attrs[atype & 0x3FFF] = payload[offset + 4 : offset + alen]
            offset += (alen + 3) & ~3
        return attrs

    def links(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for mtype, payload in self._dump(RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            if mtype == RTM_NEWLINK:
                _fam, _type, index, _flags, _change = _IFINFOMSG.unpack_from(payload)
                name = self._attrs(payload, _IFINFOMSG.size).get(IFLA_IFNAME, b"")
                names[index] = name.rstrip(b"\0").decode()
        return names

    def addresses(self, family: int = socket.AF_UNSPEC, *, names: bool = True) -> list[Address]:
        links = self.links() if names else {}
        found: list[Address] = []
        for mtype, payload in self._dump(RTM_GETADDR, _IFADDRMSG.pack(family, 0, 0, 0, 0)):
            if mtype != RTM_NEWADDR:
                continue
            fam, prefixlen, _flags, scope, index = _IFADDRMSG.unpack_from(payload)
            attrs = self._attrs(payload, _IFADDRMSG.size)
            # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links.
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if raw is None or fam not in (socket.AF_INET, socket.AF_INET6):
                continue
            iface = ipaddress.ip_interface((ipaddress.ip_address(raw), prefixlen))
            found.append(Address(index, links.get(index, ""), iface, scope))
        return found

    def packed(self, family: int = socket.AF_UNSPEC) -> set[bytes]:
        """The addresses on every interface but lo (index 1) as packed bytes: no objects built, so
        250 VIPs are checked in well under a millisecond."""
        found: set[bytes] = set()
        for mtype, payload in self._dump(RTM_GETADDR, _IFADDRMSG.pack(family, 0, 0, 0, 0)):
            if mtype == RTM_NEWADDR and _IFADDRMSG.unpack_from(payload)[4] != 1:
                attrs = self._attrs(payload, _IFADDRMSG.size)
                raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
                if raw is not None:
                    found.add(raw)
        return found

    def holds(self, address: IPAddress) -> bool:
        return address.packed in self.packed(socket.AF_INET if address.version == 4 else socket.AF_INET6)


def _as_address(address: str | IPAddress | IPInterface) -> IPAddress:
    if isinstance(address, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return address.ip
    if isinstance(address, str):
        return ipaddress.ip_interface(address).ip
    return address


# ---------------------------------------------------------------------------------------------------------
# Processes


class Proc:
    """A process started in a namespace (through `ip netns exec`, which execs it: the pid is the program's),
    in a session of its own so that its whole process group can be signalled."""

    def __init__(
        self,
        node: Node | None,
        netns: str,
        argv: Sequence[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.node = node
        self.netns = netns
        self.argv = list(argv)
        self.log = log
        self.name = name or Path(argv[0]).name
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self.seen: set[int] = set()
        self.netns_inode = 0

    def start(self) -> Proc:
        if self.running():
            raise LabError(f"{self.name} in {self.netns} is already running")
        self.netns_inode = netns_inode(self.netns)
        with open(self.log, "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self.seen.add(self.popen.pid)
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise LabError(f"{self.name} was never started")
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def _ours(self, pids: Iterable[int]) -> set[int]:
        # Only processes inside the lab's own namespace are ever signalled: a pid seen earlier may have
        # been reused by someone else's process since.
        return {p for p in pids if alive(p) and _netns_of(p) == self.netns_inode}

    def family(self) -> set[int]:
        """The live processes that belong to this one: descendants, process group, session."""
        if self.popen is None:
            return set()
        fam = self._ours(_family_of(self.popen.pid))
        self.seen |= fam
        return fam

    def signal(self, sig: int, *, group: bool = False) -> None:
        """Send `sig` to the main process, or to its whole process group."""
        if self.popen is None or self.popen.poll() is not None:
            raise LabError(f"{self.name} in {self.netns} is not running")
        if group:
            os.killpg(self.popen.pid, sig)
        else:
            self.popen.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        if self.popen is None:
            raise LabError(f"{self.name} was never started")
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the main process (as systemd's KillMode=process does for keepalived), wait for the
        whole family to exit, then SIGKILL whatever is left. Returns the exit status (None if killed)."""
        if self.popen is None:
            return None
        fam = self.family()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        # Children outliving the main process (a crashed parent) must not survive a stop either.
        with contextlib.suppress(AssertionError):
            wait_for(f"{self.name}'s children to exit", lambda: not any(alive(p) for p in fam), 2.0)
        self._kill_rest(fam)
        return self.popen.returncode

    def kill(self) -> None:
        """kill -9 of the whole thing at once: main process, process group and every descendant."""
        if self.popen is None:
            return
        fam = self.family()
        if self.popen.returncode is None:
            # Not reaped yet, so its pid, and with it the process group id, cannot belong to anyone else.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        _kill_all(fam)
        self.popen.wait()
        self._kill_rest(fam)

    def _kill_rest(self, fam: set[int]) -> None:
        rest = self._ours(fam | self.seen)
        _kill_all(rest)
        # Waited for by pid, not by namespace: an exiting process leaves its namespace before it becomes a
        # zombie, and a killed keepalived child can spend a while like that (state D, adopted by init).
        wait_for(f"{self.name} to die", lambda: not any(alive(p) for p in rest | fam), 5.0)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern: str, timeout: float = 10.0, *, since: int = 0) -> re.Match[str]:
        """Wait for a regex to appear in the log (after character offset `since`)."""
        rx = re.compile(pattern)
        return wait_for(f"/{pattern}/ in {self.log}", lambda: rx.search(self.log_text(), since), timeout, 0.02)


class Daemon(Proc):
    """keepalived or pykeepalived in a node: its config, pidfiles and log in a directory of its own."""

    def __init__(
        self,
        node: Node,
        kind: Literal["keepalived", "pykeepalived"],
        config: str,
        workdir: Path,
        args: Sequence[str] = (),
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        self.workdir = workdir
        self.config = workdir / "keepalived.conf"
        self.config.write_text(config)
        self.pidfiles = {w: workdir / f"{w}.pid" for w in ("parent", "vrrp", "checker")}
        # -G: logs go to the console (our log file) only; the test nodes must not flood the host's syslog.
        common = [
            "-n",
            "-l",
            "-D",
            "-G",
            "-f",
            str(self.config),
            "-p",
            str(self.pidfiles["parent"]),
            "-r",
            str(self.pidfiles["vrrp"]),
            "-c",
            str(self.pidfiles["checker"]),
            *args,
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        if kind == "keepalived":
            argv = ["keepalived", *common]
            cwd = workdir
        else:
            # No control socket unless a test asks for one (`args`, later on the line, wins):
            # the default path is shared by every daemon on the host.
            argv = [sys.executable, "-m", "haparent.cli", "--control-socket", "", *common]
            env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            cwd = ROOT
        env["TMPDIR"] = str(workdir)
        super().__init__(node, node.netns, argv, workdir / f"{kind}.log", env=env, cwd=cwd, name=kind)

    def reconfigure(self, config: str) -> None:
        """New config text, then SIGHUP (keepalived's reload)."""
        self.config.write_text(config)
        self.signal(signal.SIGHUP)

    def pid_of(self, which: Literal["parent", "vrrp", "checker"]) -> int | None:
        try:
            text = self.pidfiles[which].read_text().strip()
        except FileNotFoundError:
            return None
        if not text.isdigit():
            return None
        self.seen.add(int(text))
        return int(text)

    def wait_state(self, instance: str, state: str, timeout: float = 10.0, *, since: int = 0) -> None:
        """Wait for keepalived's `(VI_1) Entering MASTER STATE` line (pykeepalived logs the same words)."""
        self.wait_log(rf"\({re.escape(instance)}\) Entering {state} STATE", timeout, since=since)


# ---------------------------------------------------------------------------------------------------------
# Nodes and the lab


@dataclass(frozen=True)
class NodeSpec:
    """How node i is wired and addressed."""

    ifname: str
    mac: str
    ipv4: ipaddress.IPv4Interface
    ipv6: ipaddress.IPv6Interface
    link_local: ipaddress.IPv6Address
    # True: addrgenmode none and `link_local`/64 added by hand; False: the kernel's EUI-64 address of `mac`.
    fixed_link_local: bool = False


def lan_node(index: int) -> NodeSpec:
    """The default layout: eth0, 192.0.2.(10+i)/24, 2001:db8::(10+i)/64, EUI-64 link-local fe80::ff:fe00:i."""
    return NodeSpec(
        ifname=NODE_IF,
        mac=f"02:00:00:00:00:{index:02x}",
        ipv4=ipaddress.IPv4Interface(f"192.0.2.{10 + index}/24"),
        ipv6=ipaddress.IPv6Interface(f"2001:db8::{10 + index:x}/64"),
        # EUI-64 of 02:00:00:00:00:ii: the universal/local bit flipped, ff:fe in the middle.
        link_local=ipaddress.IPv6Address(f"fe80::ff:fe00:{index:x}"),
    )


def pair_node(index: int) -> NodeSpec:
    """The `Lab.pair()` layout: va / vb, 192.0.2.i/24, 2001:db8::i/64 and a fixed fe80::i/64."""
    if not 1 <= index <= 2:
        raise ValueError("a pair has nodes 1 and 2")
    return NodeSpec(
        ifname="va" if index == 1 else "vb",
        mac=f"02:00:00:00:00:{index:02x}",
        ipv4=ipaddress.IPv4Interface(f"192.0.2.{index}/24"),
        ipv6=ipaddress.IPv6Interface(f"2001:db8::{index}/64"),
        link_local=ipaddress.IPv6Address(f"fe80::{index}"),
        fixed_link_local=True,
    )


class Node:
    def __init__(self, lab: Lab, index: int, spec: NodeSpec | None = None) -> None:
        spec = spec or lan_node(index)
        self.lab = lab
        self.index = index
        self.spec = spec
        self.netns = f"{lab.tag}-n{index}"
        self.ifname = spec.ifname
        self.port = f"p{index}"  # the bridge side of the veth, in the switch namespace
        self.mac = spec.mac
        self.ipv4 = spec.ipv4
        self.ipv6 = spec.ipv6
        self.procs: list[Proc] = []
        self.sniffers: list[FrameCapture] = []
        self._reader: AddressReader | None = None
        self._ran = itertools.count(1)

    def __repr__(self) -> str:
        return f"<Node {self.index} {self.netns}>"

    @property
    def reader(self) -> AddressReader:
        if self._reader is None:
            self._reader = AddressReader(self.netns)
        return self._reader

    @property
    def link_local(self) -> ipaddress.IPv6Address:
        """The node's own link-local address on its interface (checked when the lab was built): not any
        link-local address found there, which may be a daemon's VIP."""
        return self.spec.link_local

    def open_socket(self, family: int, type: int, proto: int = 0) -> socket.socket:
        """A socket opened inside the node's namespace (to inject or receive crafted packets)."""
        return in_netns(self.netns, lambda: socket.socket(family, type, proto))

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()` run in the node's namespace (in a thread of its own: this one stays where it is)."""
        return in_netns(self.netns, fn)

    def inside(self) -> contextlib.AbstractContextManager[None]:
        """`with node.inside():` this thread in the node's namespace for the block (see `inside`)."""
        return inside(self.netns)

    def ifindex(self, ifname: str | None = None) -> int:
        name = ifname or self.ifname
        return self.call(lambda: socket.if_nametoindex(name))

    def ip(self, *args: str) -> None:
        """`ip -n NETNS args...`; LabError when it fails."""
        _ip(args, netns=self.netns)

    def ip_json(self, *args: str) -> Any:
        """`ip -n NETNS -j args...`, parsed ([] for no output)."""
        argv = ["ip", "-n", self.netns, "-j", *args]
        res = subprocess.run(argv, capture_output=True, text=True)
        if res.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
        return json.loads(res.stdout) if res.stdout.strip() else []

    def sysctl(self, path: str) -> str:
        """A network sysctl of the node, by its path under /proc/sys/net ("ipv4/conf/all/rp_filter": slashes,
        since interface names may hold dots). OSError when there is no such key."""
        return self.call(lambda: Path("/proc/sys/net", path).read_text().strip())

    def write_sysctl(self, path: str, value: str | int) -> None:
        self.call(lambda: Path("/proc/sys/net", path).write_text(str(value)))

    def sniff(self, ifname: str | None = None) -> FrameCapture:
        """Every frame arriving on the node's interface (or `ifname`) from now on, through an AF_PACKET
        socket: for byte-exact frames without tcpdump. Closed by the lab's teardown if not before."""
        f = FrameCapture(self.netns, ifname or self.ifname)
        self.sniffers.append(f)
        return f

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 30.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion in the node; output captured as text."""
        res = subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True, timeout=timeout, input=input
        )
        if check and res.returncode != 0:
            raise LabError(f"{argv} in {self.netns} exited {res.returncode}: {res.stderr.strip()}")
        return res

    def start(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        """Start a long-running process in the node; stop() or kill() it, or leave it to the teardown."""
        name = name or Path(argv[0]).name
        log = self.lab.workdir / f"n{self.index}-{name}-{next(self._ran)}.log"
        proc = Proc(self, self.netns, argv, log, env=env, cwd=cwd, name=name)
        self.procs.append(proc)
        return proc.start()

    def _daemon(self, kind: Literal["keepalived", "pykeepalived"], config: str, args: Sequence[str]) -> Daemon:
        workdir = self.lab.workdir / f"n{self.index}-{kind}-{next(self._ran)}"
        d = Daemon(self, kind, config, workdir, args)
        self.procs.append(d)
        d.start()
        return d

    def keepalived(self, config: str, *, args: Sequence[str] = ()) -> Daemon:
        """keepalived -n -l -D -G -f CONF -p -r -c in the node, log in the daemon's directory."""
        return self._daemon("keepalived", config, args)

    def pykeepalived(self, config: str, *, args: Sequence[str] = ()) -> Daemon:
        """pykeepalived (this repository's haparent.cli, run by this interpreter) the same way."""
        return self._daemon("pykeepalived", config, args)

    def set_link(self, up: bool, *, side: Literal["node", "switch"] = "node") -> None:
        """Take the node's link down or up: "node" sets eth0 itself (admin down, as `ip link set eth0
        down` on the box); "switch" sets the bridge port, so eth0 stays up but loses carrier (a pulled
        cable)."""
        state = "up" if up else "down"
        if side == "node":
            _ip(["link", "set", self.ifname, state], netns=self.netns)
        else:
            _ip(["link", "set", self.port, state], netns=self.lab.switch)

    def link_down(self, side: Literal["node", "switch"] = "node") -> None:
        self.set_link(False, side=side)

    def link_up(self, side: Literal["node", "switch"] = "node") -> None:
        self.set_link(True, side=side)

    def addresses(self, family: int = socket.AF_UNSPEC) -> list[Address]:
        return self.reader.addresses(family)

    def has(self, address: str | IPAddress | IPInterface) -> bool:
        """Whether the node holds `address` on any interface but lo (VIPs can sit on a VMAC)."""
        return self.reader.holds(_as_address(address))

    def held(self, addresses: Iterable[str | IPAddress | IPInterface]) -> set[IPAddress]:
        """Which of `addresses` the node holds (lo aside), from one netlink dump: for 250 VIPs at once."""
        want = {_as_address(a) for a in addresses}
        have = self.reader.packed()
        return {a for a in want if a.packed in have}

    def add_address(self, address: str, ifname: str | None = None) -> None:
        _ip(["addr", "add", address, "dev", ifname or self.ifname], netns=self.netns)

    def del_address(self, address: str, ifname: str | None = None) -> None:
        _ip(["addr", "del", address, "dev", ifname or self.ifname], netns=self.netns)

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.kill()
        for f in self.sniffers:
            f.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None


_open_labs: weakref.WeakSet[Lab] = weakref.WeakSet()


def _open_namespaces() -> set[str]:
    return {ns for lab in list(_open_labs) for ns in lab.namespaces()}


class Lab:
    """`with Lab(n=2) as lab:` a bridge and n nodes; everything is torn down on exit."""

    def __init__(self, n: int = 2, *, workdir: Path | None = None, spec: Callable[[int], NodeSpec] = lan_node) -> None:
        if not 1 <= n <= 50:
            raise ValueError("a lab has 1 to 50 nodes")
        self.tag = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        self.switch = f"{self.tag}-sw"
        self.bridge = BRIDGE
        self._own_workdir = workdir is None
        self.workdir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="pklab-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = [Node(self, i, spec(i)) for i in range(1, n + 1)]
        self.captures: list[Capture] = []
        self.samplers: list[Sampler] = []
        self.inodes: set[int] = set()
        self.closed = False
        self.setup_seconds = 0.0

    def __repr__(self) -> str:
        return f"<Lab {self.tag} {len(self.nodes)} nodes>"

    @classmethod
    def pair(cls, *, workdir: Path | None = None) -> Lab:
        """Two nodes on the switch with the `pair_node` layout: node 1 on va (192.0.2.1, 2001:db8::1,
        fe80::1), node 2 on vb (.2, ::2, fe80::2). Not opened yet: `with Lab.pair() as lab:`."""
        return cls(2, workdir=workdir, spec=pair_node)

    # -- life cycle

    def __enter__(self) -> Lab:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def namespaces(self) -> list[str]:
        return [self.switch, *(n.netns for n in self.nodes)]

    def open(self) -> Lab:
        started = time.monotonic()
        cleanup_stale()
        _open_labs.add(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - started
        return self

    def _build(self) -> None:
        _ip([], batch=[f"netns add {ns}" for ns in self.namespaces()])
        self.inodes = {netns_inode(ns) for ns in self.namespaces()}
        # No IPv6 on the switch's own interfaces: the bridge must not add MLD/RS noise to captures.
        _write_sysctls(self.switch, {"net.ipv6.conf.default.disable_ipv6": "1", "net.ipv6.conf.all.disable_ipv6": "1"})
        for node in self.nodes:
            # No DAD in the nodes: link-local and 2001:db8:: addresses are usable at once (keepalived's IPv6
            # VRRP needs a non-tentative link-local source).
            _write_sysctls(node.netns, {"net.ipv6.conf.default.accept_dad": "0", "net.ipv6.conf.all.accept_dad": "0"})
        # Snooping off: without a querier the bridge must still flood 224.0.0.18 and ff02::12 everywhere.
        sw = [
            f"link add {BRIDGE} type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
            f"link set {BRIDGE} up",
            "link set lo up",
        ]
        for node in self.nodes:
            sw.append(f"link add {node.port} type veth peer name {node.ifname} netns {node.netns} address {node.mac}")
            sw.append(f"link set {node.port} master {BRIDGE} up")
        _ip([], netns=self.switch, batch=sw)
        for node in self.nodes:
            fixed = node.spec.fixed_link_local
            _ip(
                [],
                netns=node.netns,
                batch=[
                    "link set lo up",
                    *([f"link set {node.ifname} addrgenmode none"] if fixed else []),
                    f"addr add {node.ipv4} dev {node.ifname}",
                    f"addr add {node.ipv6} dev {node.ifname} nodad",
                    *([f"addr add {node.link_local}/64 dev {node.ifname} nodad"] if fixed else []),
                    f"link set {node.ifname} up",
                ],
            )
        # A fixed link-local address is there before the link is: wait for carrier on both ends as well (the
        # bridge forwards on a port only once it saw the carrier come up).
        wait_for("links up", self._links_up, 5.0)
        wait_for("link-local addresses", lambda: all(self._has_link_local(n) for n in self.nodes), 5.0)

    def _links_up(self) -> bool:
        def up(netns: str, names: Collection[str]) -> bool:
            res = subprocess.run(["ip", "-n", netns, "-j", "link", "show"], capture_output=True, text=True)
            state = {link["ifname"]: link.get("operstate") for link in json.loads(res.stdout or "[]")}
            return all(state.get(name) == "UP" for name in names)

        return up(self.switch, [n.port for n in self.nodes]) and all(up(n.netns, [n.ifname]) for n in self.nodes)

    @staticmethod
    def _has_link_local(node: Node) -> bool:
        """The node's recorded link-local address is on its interface (EUI-64 ones come with the link)."""
        return any(
            a.ifname == node.ifname and a.address.ip == node.link_local for a in node.reader.addresses(socket.AF_INET6)
        )

    def close(self) -> None:
        """Stop samplers and captures, kill every process, delete the namespaces. Idempotent."""
        if self.closed:
            return
        self.closed = True
        errors: list[str] = []
        for s in self.samplers:
            with contextlib.suppress(Exception):
                s.stop()
        for c in self.captures:
            with contextlib.suppress(Exception):
                c.stop()
            with contextlib.suppress(Exception):
                c.proc.kill()
        for node in self.nodes:
            node.close()
        try:
            _kill_netns_processes(self.inodes)
        except LabError as e:
            errors.append(str(e))
        try:
            _delete_netns(self.namespaces())
        except LabError as e:
            errors.append(str(e))
        _open_labs.discard(self)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise LabError("; ".join(errors))

    # -- nodes

    def node(self, index: int) -> Node:
        """Node `index`, counted from 1 (node 1 is 192.0.2.11)."""
        if not 1 <= index <= len(self.nodes):
            raise IndexError(f"node {index}: this lab has nodes 1..{len(self.nodes)}")
        return self.nodes[index - 1]

    def isolate(self, index: int, on: bool = True) -> None:
        """Mark node `index`'s bridge port isolated (or not): isolated ports forward to no other isolated
        port, so isolating every node partitions the LAN without touching a link (no carrier loss, no
        FAULT; a split brain)."""
        port = self.node(index).port
        argv = ["bridge", "-n", self.switch, "link", "set", "dev", port, "isolated", "on" if on else "off"]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        if res.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")

    def who_has(self, address: str | IPAddress | IPInterface) -> list[int]:
        """The indices of the nodes holding `address` right now."""
        ip = _as_address(address)
        return [n.index for n in self.nodes if n.reader.holds(ip)]

    def wait_who_has(
        self, address: str | IPAddress | IPInterface, holders: Sequence[int], timeout: float = 10.0
    ) -> float:
        """Wait until exactly `holders` hold `address`; returns the seconds it took."""
        want = sorted(holders)
        started = time.monotonic()
        wait_for(f"{address} held by nodes {want}", lambda: self.who_has(address) == want, timeout)
        return time.monotonic() - started

    def sampler(self, address: str | IPAddress | IPInterface, interval: float = 0.01) -> Sampler:
        """A started background sampler of who_has(address); stop() it or let the teardown do it."""
        s = Sampler(self, address, interval)
        self.samplers.append(s)
        return s.start()

    def capture(
        self, iface: str = BRIDGE, filter: str = VRRP_FILTER, *, node: int | None = None, name: str = "capture"
    ) -> Capture:
        """A started tcpdump on `iface`: the bridge by default (in promiscuous mode it sees unicast between
        nodes too), or an interface of node `node`."""
        netns = self.switch if node is None else self.node(node).netns
        path = self.workdir / f"{name}-{len(self.captures) + 1}.pcap"
        c = Capture(netns, iface, filter, path, self.workdir / f"{name}-{len(self.captures) + 1}.log")
        self.captures.append(c)
        return c.start()

    def processes(self) -> list[int]:
        """Every process now running in one of the lab's namespaces."""
        return [p for p in pids_in_netns(self.inodes) if alive(p)]

    def logs(self, tail: int = 40) -> str:
        """The last lines of every process log (printed by the fixtures when a test fails)."""
        out: list[str] = []
        for node in self.nodes:
            for p in node.procs:
                lines = p.log_text().splitlines()[-tail:]
                out.append(f"----- node {node.index} {p.name} ({p.log})\n" + "\n".join(lines))
        return "\n".join(out)


def _close_open_labs() -> None:
    # A run interrupted outside a `with` block (or a lab the caller forgot) still leaves nothing behind.
    for lab in list(_open_labs):
        with contextlib.suppress(Exception):
            lab.close()


atexit.register(_close_open_labs)


# ---------------------------------------------------------------------------------------------------------
# Sampling VIP ownership


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic() in the middle of the read
    holders: tuple[int, ...]  # node indices holding the address


class Sampler:
    """Records (time, holders) of one address every `interval` seconds in a background thread."""

    def __init__(self, lab: Lab, address: str | IPAddress | IPInterface, interval: float = 0.01) -> None:
        self.lab = lab
        self.address = _as_address(address)
        self.interval = interval
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def __enter__(self) -> Sampler:
        return self if self._thread is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Sampler:
        # Open every node's netlink socket here, not in the first tick, so sample 1 is not late.
        for n in self.lab.nodes:
            _ = n.reader
        self._thread = threading.Thread(target=self._run, name=f"sampler-{self.address}", daemon=True)
        self._thread.start()
        wait_for("the first sample", lambda: self._samples or self.error, 5.0)
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                holders = tuple(self.lab.who_has(self.address))
                t1 = time.monotonic()
                with self._lock:
                    self._samples.append(Sample((t0 + t1) / 2, holders))
                next_at = max(next_at + self.interval, t1)
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as e:
            if not self._stop.is_set():
                self.error = e

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        return self.samples

    @property
    def samples(self) -> list[Sample]:
        if self.error is not None:
            raise LabError(f"the sampler of {self.address} failed: {self.error!r}") from self.error
        with self._lock:
            return list(self._samples)

    def wait(self, predicate: Callable[[tuple[int, ...]], bool], timeout: float, since: float | None = None) -> Sample:
        """The first sample at or after `since` (default: now) whose holders satisfy `predicate`."""
        since = time.monotonic() if since is None else since

        def probe() -> Sample | None:
            return next((s for s in self.samples if s.t >= since and predicate(s.holders)), None)

        return wait_for(f"holders of {self.address} to match", probe, timeout, self.interval / 2)

    def wait_holders(self, holders: Sequence[int], timeout: float, since: float | None = None) -> Sample:
        """The first sample at or after `since` where exactly `holders` hold the address."""
        want = tuple(sorted(holders))
        return self.wait(lambda h: h == want, timeout, since)

    def gaps(self) -> tuple[float, float]:
        """(median, maximum) time between consecutive samples: how fine the record is."""
        ts = [s.t for s in self.samples]
        d = sorted(b - a for a, b in itertools.pairwise(ts))
        return (d[len(d) // 2], d[-1]) if d else (0.0, 0.0)


def holder_violations(
    samples: Sequence[Sample],
    *,
    since: float | None = None,
    until: float | None = None,
    ignore: Collection[int] = (),
    allow_none: bool = False,
) -> list[Sample]:
    """The samples in [since, until] that come after the first one with a holder and do not have exactly
    one holder (with `allow_none`: that have more than one, for windows spanning a failover, where no one
    holds the address for Master_Down_Interval or Skew_Time). `ignore` leaves nodes out (a SIGKILLed
    keepalived leaves its VIPs on its interface)."""
    out: list[Sample] = []
    seen_holder = False
    for s in samples:
        if (since is not None and s.t < since) or (until is not None and s.t > until):
            continue
        holders = [h for h in s.holders if h not in ignore]
        seen_holder = seen_holder or bool(holders)
        if seen_holder and (len(holders) > 1 or (not holders and not allow_none)):
            out.append(s)
    return out


def assert_single_holder(
    samples: Sequence[Sample],
    *,
    since: float | None = None,
    until: float | None = None,
    ignore: Collection[int] = (),
    allow_none: bool = False,
) -> None:
    """Exactly one holder at every sample after the first holder appeared (see holder_violations)."""
    bad = holder_violations(samples, since=since, until=until, ignore=ignore, allow_none=allow_none)
    if bad:
        t0 = samples[0].t if samples else 0.0
        shown = ", ".join(f"+{s.t - t0:.3f}s {list(s.holders)}" for s in bad[:10])
        raise AssertionError(f"{len(bad)} of {len(samples)} samples without exactly one holder: {shown}")


def longest_overlap(
    samples: Sequence[Sample], *, since: float | None = None, until: float | None = None, ignore: Collection[int] = ()
) -> float:
    """The longest time two nodes or more held the address at once, from the first such sample to the next
    sample without (0.0 if never seen). A preemption overlaps for an advert's transit: the new master adds
    its VIPs before the old one hears it (RFC 5798 section 6.4.3), too short to sample reliably."""
    longest = 0.0
    start: float | None = None
    for s in samples:
        if (since is not None and s.t < since) or (until is not None and s.t > until):
            continue
        many = len([h for h in s.holders if h not in ignore]) > 1
        if many and start is None:
            start = s.t
        elif not many and start is not None:
            longest = max(longest, s.t - start)
            start = None
    if start is not None and samples:
        longest = max(longest, samples[-1].t - start)
    return longest


def first_holding(samples: Sequence[Sample], node: int, since: float, *, alone: bool = False) -> Sample | None:
    """The first sample at or after `since` where `node` holds the address (`alone`: and nobody else)."""
    for s in samples:
        if s.t >= since and node in s.holders and (not alone or len(s.holders) == 1):
            return s
    return None


def takeover_seconds(samples: Sequence[Sample], node: int, since: float) -> float:
    """Seconds from `since` (e.g. the moment of the kill) until `node` first held the address."""
    s = first_holding(samples, node, since)
    if s is None:
        raise AssertionError(f"node {node} never took the address after t={since:.3f}")
    return s.t - since


# ---------------------------------------------------------------------------------------------------------
# Captures


class VrrpPacket(TypedDict):
    """One VRRP packet as tshark decodes it."""

    time: float  # epoch seconds of the capture
    family: int  # 4 or 6
    src: str
    dst: str
    ttl: int  # TTL or hop limit
    src_mac: str
    version: int
    type: int  # 1 = advertisement
    vrid: int
    priority: int
    count: int  # address count
    adver_int: int  # v2: seconds; v3: centiseconds
    auth_type: int | None  # v2 only
    auth_string: str | None  # v2 auth_type 1 (PASS)
    checksum: int
    checksum_status: str  # "good", "bad", "unverified", "not present"
    checksum_ok: bool
    addresses: list[str]


_TSHARK_FIELDS = (
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "eth.src",
    "vrrp.version",
    "vrrp.type",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "vrrp.addr_count",
    "vrrp.adver_int",
    "vrrp.short_adver_int",
    "vrrp.auth_type",
    "vrrp.auth_string",
    "vrrp.checksum",
    "vrrp.checksum.status",
    "vrrp.ip_addr",
    "vrrp.ipv6_addr",
)
# Wireshark's proto_checksum_enum_e.
_CHECKSUM_STATUS = {"0": "bad", "1": "good", "2": "unverified", "3": "not present", "4": "illegal"}


def decode_vrrp(pcap: Path, *, v3_checksum_as_v2: bool = False) -> list[VrrpPacket]:
    """Decode a pcap's VRRP packets with tshark. The v3 IPv4 checksum is checked with the pseudo-header
    (RFC 5798 section 5.2.8) unless `v3_checksum_as_v2` (keepalived's vrrp_v3_checksum_as_v2)."""
    argv = [
        "tshark",
        "-n",
        "-r",
        str(pcap),
        "-o",
        f"vrrp.v3_checksum_as_in_v2:{'TRUE' if v3_checksum_as_v2 else 'FALSE'}",
        "-Y",
        "vrrp",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    for f in _TSHARK_FIELDS:
        argv += ["-e", f]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise LabError(f"tshark failed on {pcap}: {res.stderr.strip()}")
    packets: list[VrrpPacket] = []
    for line in res.stdout.splitlines():
        v = dict(zip(_TSHARK_FIELDS, line.split("\t"), strict=False))
        six = bool(v.get("ipv6.src"))
        version = int(v["vrrp.version"])
        status = _CHECKSUM_STATUS.get(v.get("vrrp.checksum.status", ""), v.get("vrrp.checksum.status", ""))
        addrs = v.get("vrrp.ipv6_addr" if six else "vrrp.ip_addr", "")
        packets.append(
            VrrpPacket(
                time=float(v["frame.time_epoch"]),
                family=6 if six else 4,
                src=v["ipv6.src" if six else "ip.src"],
                dst=v["ipv6.dst" if six else "ip.dst"],
                ttl=int(v["ipv6.hlim" if six else "ip.ttl"]),
                src_mac=v.get("eth.src", ""),
                version=version,
                type=int(v["vrrp.type"]),
                vrid=int(v["vrrp.virt_rtr_id"]),
                priority=int(v["vrrp.prio"]),
                count=int(v["vrrp.addr_count"]),
                adver_int=int(v["vrrp.adver_int" if version == 2 else "vrrp.short_adver_int"] or 0),
                auth_type=int(v["vrrp.auth_type"]) if v.get("vrrp.auth_type") else None,
                auth_string=v.get("vrrp.auth_string") or None,
                checksum=int(v["vrrp.checksum"], 16),
                checksum_status=status,
                checksum_ok=status == "good",
                addresses=[a for a in addrs.split(",") if a],
            )
        )
    return packets


class Capture:
    """tcpdump -w into a pcap in the lab's directory; stop() then packets() decodes with tshark."""

    def __init__(self, netns: str, iface: str, filter: str, path: Path, log: Path) -> None:
        self.netns = netns
        self.iface = iface
        self.filter = filter
        self.path = path
        # --immediate-mode: hand each packet over at once (libpcap otherwise holds a ring block for up to
        # 1 s, and tcpdump drops what it has not read when it is stopped); -U: write each packet at once, so a
        # killed capture keeps what it saw; -Z root: Debian's tcpdump would otherwise drop to user tcpdump,
        # who cannot write in a root-only tmp dir.
        argv = ["tcpdump", "-n", "--immediate-mode", "-U", "-Z", "root", "-i", iface, "-w", str(path), filter]
        self.proc = Proc(None, netns, argv, log, name="tcpdump")

    def __enter__(self) -> Capture:
        return self if self.proc.running() else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Capture:
        self.proc.start()
        # tcpdump says "listening on" once the filter is attached: packets after this are in the file.
        try:
            self.proc.wait_log(r"listening on ", timeout=10.0)
        except AssertionError:
            self.proc.kill()
            raise LabError(f"tcpdump did not start: {self.proc.log_text()}") from None
        return self

    def stop(self) -> Path:
        if self.proc.running():
            self.proc.signal(signal.SIGINT)
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.path

    def packets(self, *, v3_checksum_as_v2: bool = False) -> list[VrrpPacket]:
        self.stop()
        return decode_vrrp(self.path, v3_checksum_as_v2=v3_checksum_as_v2)


class FrameCapture:
    """Every frame arriving on an interface of a namespace from the moment it is made (an AF_PACKET socket
    opened there; frames the namespace sends are left out)."""

    def __init__(self, netns: str, ifname: str) -> None:
        def open_socket() -> socket.socket:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            try:
                s.bind((ifname, 0))
            except BaseException:
                s.close()
                raise
            return s

        self.netns = netns
        self.ifname = ifname
        self.sock = in_netns(netns, open_socket)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.setblocking(False)

    def frames(
        self, want: Callable[[bytes], bool], count: int, timeout: float = 5.0, settle: float = 0.0
    ) -> list[bytes]:
        """The frames that `want`, until `count` came (then `settle` seconds more for extras) or `timeout`
        passed."""
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if len(got) >= count:
                if settle <= 0:
                    return got
                deadline, settle = now + settle, 0.0
            if now >= deadline:
                return got
            ready, _, _ = select.select([self.sock], [], [], deadline - now)
            while ready:
                try:
                    frame, addr = self.sock.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] != socket.PACKET_OUTGOING and want(frame):
                    got.append(frame)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> FrameCapture:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
