"""Checker child benchmark: 10,000 real servers with TCP_CHECK at delay_loop 1 (and
1,000 with HTTP_GET) against listeners on loopback, in a network namespace of its own.

    sudo .venv/bin/python -m bench.checker_bench [--tcp 10000] [--http 1000] [--seconds 20]

For each case it prints the checker's CPU (% of one core, over the measuring window after
a warm-up of 2 delay_loops) and how late checks started (actual start - scheduled start:
median, p99, max), with keepalived side by side when it can run here (without IPVS in
the kernel its checker exits FATAL: "n/a (no IPVS)"). For TCP_CHECK it adds the CPU per
1,000 checks a second beside the floor: the same system calls at the same rate in a
plain loop, with no checker around them (what the kernel alone costs this machine).

The workload runs in this process (the checker child's code, without the parent); the
listeners run in another process so that their CPU is not counted. Kept out of the test
suite on purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NETNS_PREFIX = "pykbench"
PORT_BASE = 20000
PORTS_PER_ADDRESS = 250  # 10,000 servers over 40 addresses (127.0.1.1 ...) x 250 ports


def endpoints(n: int, first_octet: int = 1) -> list[tuple[str, int]]:
    out = []
    for i in range(n):
        a, p = divmod(i, PORTS_PER_ADDRESS)
        out.append((f"127.0.{first_octet + a // 250}.{1 + a % 250}", PORT_BASE + p))
    return out


def config_text(tcp: list[tuple[str, int]], http: list[tuple[str, int]]) -> str:
    parts = []
    if tcp:
        rs = "".join(
            f"    real_server {h} {p} {{\n        TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}\n"
            for h, p in tcp
        )
        parts.append(f"virtual_server 10.255.0.1 80 {{\n    delay_loop 1\n    protocol TCP\n    quorum 1\n{rs}}}\n")
    if http:
        rs = "".join(
            f"    real_server {h} {p} {{\n        HTTP_GET {{\n            url {{\n                path /\n"
            f"                status_code 200\n            }}\n            connect_timeout 3\n        }}\n    }}\n"
            for h, p in http
        )
        parts.append(f"virtual_server 10.255.0.2 80 {{\n    delay_loop 1\n    protocol TCP\n{rs}}}\n")
    return "".join(parts)


# ---------------------------------------------------------------- the listeners process

HTTP_REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def serve(tcp: int, http: int, first: int) -> None:
    """Accept-and-close listeners for TCP servers first .. first+tcp-1, minimal HTTP for
    the HTTP ones."""
    _raise_nofile(tcp + http + 1024)
    from labkit.listeners import AcceptCloseSockets  # noqa: PLC0415 (only the listeners need it)

    async def http_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(HTTP_REPLY)
            await writer.drain()
        except Exception:
            pass
        writer.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        plain = AcceptCloseSockets(loop)
        for h, p in endpoints(first + tcp)[first:]:
            plain.listen(h, p)
        for h, p in endpoints(http, first_octet=100):
            await asyncio.start_server(http_client, h, p, backlog=1024, reuse_address=True)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# ---------------------------------------------------------------- measuring our checker


def _raise_nofile(need: int = 0) -> None:
    """Soft limit up to the hard one, or both up to `need` where that is allowed."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, need)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def measure_pyk(conf: Path, seconds: float, warmup: float, profile: str | None = None) -> dict[str, float]:
    from checker_child.workload import CheckerWorkload  # noqa: PLC0415 (inside the namespace only)
    from conf import load  # noqa: PLC0415

    result = load(str(conf))
    assert result.ok and result.config is not None
    config = result.config

    async def main() -> dict[str, float]:
        wl = CheckerWorkload()
        await wl.start(config, lambda changes: None)
        try:
            await asyncio.sleep(warmup)
            wl.sched.lateness.reset()
            t0, c0, r0 = time.monotonic(), time.process_time(), wl.tallies.results
            s0 = os.times().system
            f0 = wl.tallies.failures
            prof = cProfile.Profile() if profile else None
            if prof is not None:
                prof.enable()
            await asyncio.sleep(seconds)
            t1, c1, r1 = time.monotonic(), time.process_time(), wl.tallies.results
            s1 = os.times().system
            if prof is not None and profile:
                prof.disable()
                prof.dump_stats(profile)
            lat = wl.sched.lateness
            alive = sum(1 for c in wl.checks if c.attempts.is_up)
            return {
                "cpu": 100 * (c1 - c0) / (t1 - t0),
                "sys": 100 * (s1 - s0) / (t1 - t0),  # the kernel's part: sockets, connect, close
                "checks_per_s": (r1 - r0) / (t1 - t0),
                "failed": wl.tallies.failures - f0,
                "p50": lat.percentile(50) * 1000,
                "p99": lat.percentile(99) * 1000,
                "max": lat.max * 1000,
                "checkers": len(wl.checks),
                "up": alive,
            }
        finally:
            await wl.stop()

    return asyncio.run(main())


def try_keepalived(conf: Path, seconds: float) -> str:
    """keepalived's checker on the same configuration, if it runs here: its CPU, else why not."""
    exe = shutil.which("keepalived")
    if exe is None:
        return "n/a (not installed)"
    work = Path(tempfile.mkdtemp(prefix="kabench"))
    cmd = [exe, "-n", "-l", "-C", "-D", "-f", str(conf), "-p", str(work / "k.pid"), "-c", str(work / "c.pid")]
    log = open(work / "log", "wb")  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # A large configuration takes keepalived a while to read: wait for the checker to
        # program IPVS (or to give up on it) before measuring.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = (work / "log").read_text(errors="replace")
            if "initialize ipvs" in text.lower() or "IPVS:" in text:
                return "n/a (no IPVS)"
            if proc.poll() is not None:
                return f"n/a (exited {proc.returncode})"
            if "Activating healthchecker" in text or "TCP connection to" in text or "success" in text:
                break
            time.sleep(0.2)
        try:
            child = int((work / "c.pid").read_text())
        except (OSError, ValueError):
            return "n/a (no checker pid)"
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        try:
            c0, t0 = cpu(), time.monotonic()
            time.sleep(seconds)
            return f"{100 * (cpu() - c0) / (time.monotonic() - t0):.1f} % CPU"
        except FileNotFoundError:
            text = (work / "log").read_text(errors="replace")
            return "n/a (no IPVS)" if "ipvs" in text.lower() else "n/a (checker exited)"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def speed_reference() -> str:
    """The machine's speed in this run: keepalived -t on a fixed configuration (10,000
    TCP_CHECK real servers; keepalived's checker cannot run without IPVS, so this is what
    compares runs of different days and loads)."""
    exe = shutil.which("keepalived")
    if exe is None:
        return "no speed reference"
    times = []
    with tempfile.TemporaryDirectory() as d:
        conf = Path(d) / "keepalived.conf"
        conf.write_text(config_text(endpoints(10000), []))
        for _ in range(3):
            t0 = time.perf_counter()
            try:
                subprocess.run([exe, "-t", "-f", str(conf)], capture_output=True, check=False, timeout=60)
            except subprocess.TimeoutExpired:
                return "keepalived -t: over 60 s"
            times.append(time.perf_counter() - t0)
    return f"keepalived -t {1000 * sorted(times)[1]:.0f} ms"


def syscall_floor(targets: list[tuple[str, int]], seconds: float, rate: float = 10000.0) -> dict[str, float]:
    """What the same connects cost with no checker around them: a TCP_CHECK's four system
    calls (socket, connect, one epoll registration, close) at `rate` a second against the
    same listeners, in a plain loop. The checker cannot do better than this on this
    machine, whatever its Python does (issue 15: the kernel's part is most of the CPU)."""
    ep = select.epoll()
    pending: dict[int, socket.socket] = {}
    kind = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
    step, per_step = 0.002, max(1, round(rate * 0.002))
    done = i = 0
    t0, c0 = time.monotonic(), os.times()
    next_at = t0
    while time.monotonic() - t0 < seconds:
        for _ in range(per_step):
            sock = socket.socket(socket.AF_INET, kind)
            sock.connect_ex(targets[i % len(targets)])
            i += 1
            ep.register(sock.fileno(), select.EPOLLOUT)
            pending[sock.fileno()] = sock
        next_at += step  # paced as the checker is: `rate` a second, a batch per 2 ms tick
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for fd, _ in ep.poll(0):
            pending.pop(fd).close()
            done += 1
    c1 = os.times()
    for sock in pending.values():
        sock.close()
    ep.close()
    cpu = c1.user + c1.system - c0.user - c0.system
    return {"per_1k": 1000 * 100 * cpu / done, "sys_per_1k": 1000 * 100 * (c1.system - c0.system) / done}


def start_listeners(tcp: int, http: int) -> list[subprocess.Popen[str]]:
    """The listeners, in as many processes as the open files limit asks (it cannot be
    raised here: 50,000 listeners take three)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per = max(1000, hard - 2048)
    procs: list[subprocess.Popen[str]] = []
    first = 0
    while first < tcp or not procs:
        n = min(per, tcp - first)
        cmd = [sys.executable, "-m", "bench.checker_bench", "--serve", "--tcp", str(n), "--first", str(first)]
        cmd += ["--http", str(http if not procs else 0)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
        first += n
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("the listeners did not start")
    return procs


def inner(args: argparse.Namespace) -> None:
    """Inside the namespace: listeners, then each case."""
    _raise_nofile()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    cases = []
    if args.tcp:
        cases.append(("TCP_CHECK", args.tcp, 0))
    if args.http:
        cases.append(("HTTP_GET", 0, args.http))
    listeners = start_listeners(args.tcp, args.http)
    try:
        print(
            f"{'case':<24}{'servers':>8}{'checks/s':>10}{'CPU %':>8}{'sys %':>7}{'late p50 ms':>13}{'p99 ms':>9}"
            f"{'max ms':>9}{'load':>6}   keepalived"
        )
        for name, tcp, http in cases:
            with tempfile.TemporaryDirectory() as d:
                conf = Path(d) / "keepalived.conf"
                conf.write_text(config_text(endpoints(tcp), endpoints(http, first_octet=100)))
                m = measure_pyk(conf, args.seconds, args.warmup, args.profile)
                load = os.getloadavg()[0]  # the machine is shared: how busy it was while we measured
                floor = syscall_floor(endpoints(tcp), min(args.seconds, 5.0)) if tcp else None
                ka = try_keepalived(conf, args.seconds) if not args.no_keepalived else "skipped"
                ref = speed_reference()
                n = tcp or http
                print(
                    f"{name + ' delay_loop 1':<24}{n:>8}{m['checks_per_s']:>10.0f}{m['cpu']:>8.1f}{m['sys']:>7.1f}"
                    f"{m['p50']:>13.2f}{m['p99']:>9.2f}{m['max']:>9.1f}{load:>6.2f}   {ka}; {ref}"
                )
                if floor is not None and m["checks_per_s"]:
                    per_1k, sys_1k = (1000 * m[k] / m["checks_per_s"] for k in ("cpu", "sys"))
                    print(
                        f"   CPU per 1,000 checks/s: {per_1k:.2f} % of a core ({sys_1k:.2f} kernel);"
                        f" the same system calls with no checker: {floor['per_1k']:.2f}"
                        f" ({floor['sys_per_1k']:.2f} kernel)"
                    )
                if m["up"] != m["checkers"] or m["failed"]:
                    print(f"   note: {m['checkers'] - m['up']} checkers down, {m['failed']:.0f} failed checks")
    finally:
        for proc in listeners:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tcp", type=int, default=10000)
    p.add_argument("--http", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--no-keepalived", action="store_true")
    p.add_argument(
        "--profile", metavar="FILE", help="cProfile the measuring window into FILE (its CPU figure is then inflated)"
    )
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.tcp, args.http, args.first)
        return
    if args.inner:
        inner(args)
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root (a network namespace of its own)")
    ns = f"{NETNS_PREFIX}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        argv = [a for a in sys.argv[1:]]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "bench.checker_bench", "--inner", *argv],
            check=False,
            env=env,
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    main()
