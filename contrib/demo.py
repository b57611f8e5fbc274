"""`make demo`: what pykeepalived does today, on a bundled example config.

1. Checks the example with `pykeepalived -t` (as keepalived -t would), shows the
   normalized configuration it would run (`--print-config`) and a compiler-style error.
2. Builds a two-node lab in network namespaces (root), runs pykeepalived on both with
   contrib/examples/demo.conf, shows who holds the VIP, kills the VRRP child (the VIP
   stays: the respawned child resumes), kills the master (the VIP moves, with the time it
   took), brings it back, puts it in maintenance with a track_file (the VIP moves away and
   comes back), stops it gracefully. Everything is torn down at the end, also
   on Ctrl-C; it ends by itself well within two minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "contrib" / "examples" / "keepalived.conf"
MAINTENANCE = Path("/run/pykeepalived-demo")  # demo.conf's track_file files


def pykeepalived(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "haparent.cli", *args]
    print("$ pykeepalived " + " ".join(args), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)


def main() -> int:
    r = pykeepalived("-t", "-f", str(EXAMPLE))
    sys.stderr.write(r.stderr)
    print(f"exit status {r.returncode} (0 valid, 4 cannot run, 5 config errors, 6 script security)\n")

    r = pykeepalived("--print-config", "-f", str(EXAMPLE))
    config = json.loads(r.stdout)
    for name, vi in config["vrrp_instance"].items():
        vips = ", ".join(v["address"] for v in vi["virtual_ipaddress"])
        print(
            f"vrrp_instance {name}: vrid {vi['virtual_router_id']} priority {vi['priority']} "
            f"on {vi['interface']}, VIPs {vips}"
        )
    for vs in config["virtual_server"]:
        print(f"virtual_server with {len(vs['real_server'])} real servers, scheduler {vs['lvs_sched']}")
    print()

    with tempfile.TemporaryDirectory() as d:
        typo = Path(d) / "keepalived.conf"
        typo.write_text(EXAMPLE.read_text().replace("virtual_ipaddress {", "virtual_ipadress {"))
        r = pykeepalived("-t", "-f", str(typo))
        sys.stdout.write(r.stderr)
        print(f"exit status {r.returncode}")
    print()
    return run_failover()


def wait_for(what: str, probe: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def run_failover() -> int:
    """Two nodes in network namespaces on one bridge, pykeepalived on each."""
    sys.path.insert(0, str(ROOT))  # failover_steps uses the tests' lab
    vip = "192.0.2.100"
    config = (ROOT / "contrib" / "examples" / "demo.conf").read_text()
    print("Two nodes (network namespaces, 192.0.2.11 and .12 on one bridge), pykeepalived on each,")
    print(f"contrib/examples/demo.conf: VI_1, VIP {vip}, priority 150 on node1 and 100 on node2.\n")
    MAINTENANCE.mkdir(exist_ok=True)
    try:
        return failover_steps(vip, config)
    finally:
        shutil.rmtree(MAINTENANCE, ignore_errors=True)


def failover_steps(vip: str, config: str) -> int:
    from labkit.lab import Lab  # noqa: PLC0415 - the same lab the VRRP tests use; needs the repo on sys.path

    with Lab(n=2) as lab:
        node1 = lab.node(1).pykeepalived(config, args=["-i", "node1"])
        node2 = lab.node(2).pykeepalived(config, args=["-i", "node2"])
        took = lab.wait_who_has(vip, [1], timeout=15)
        print(f"node1 holds {vip} after {took:.2f} s (the election: Master_Down_Interval 3.41 s for priority 150)")

        child = wait_for("node1's VRRP child", lambda: node1.pid_of("vrrp"))
        sampler = lab.sampler(vip)
        os.kill(int(child), signal.SIGKILL)  # type: ignore[call-overload]
        new = wait_for("a new VRRP child", lambda: (node1.pid_of("vrrp") or child) != child and node1.pid_of("vrrp"))
        time.sleep(3)
        samples = sampler.stop()
        kept = all(s.holders == (1,) for s in samples)
        print(
            f"kill -9 node1's VRRP child ({child}): respawned as {new}; the VIP "
            f"{'stayed on node1 at every one of' if kept else 'was NOT kept over'} {len(samples)} samples "
            "(keepalived drops it)"
        )

        t0 = time.monotonic()
        node1.kill()  # SIGKILL of the whole daemon: no priority-0 advert, the VIP is left behind
        lab.wait_who_has(vip, [1, 2], timeout=15)
        print(f"kill -9 node1's daemon: node2 took {vip} over in {time.monotonic() - t0:.2f} s (protocol: 3.61 s)")

        lab.node(1).del_address(f"{vip}/24")  # what a crashed node leaves behind
        node1 = lab.node(1).pykeepalived(config, args=["-i", "node1"])
        took = lab.wait_who_has(vip, [1], timeout=15)
        print(f"node1 back: it preempted {vip} in {took:.2f} s")

        t0 = time.monotonic()
        (MAINTENANCE / "node1.maintenance").write_text("1\n")
        lab.wait_who_has(vip, [2], timeout=15)
        print(
            f"echo 1 > {MAINTENANCE}/node1.maintenance: priority 150 - 60 = 90, node2 (100) took {vip} "
            f"in {time.monotonic() - t0:.2f} s"
        )
        t0 = time.monotonic()
        (MAINTENANCE / "node1.maintenance").write_text("0\n")
        lab.wait_who_has(vip, [1], timeout=15)
        back = time.monotonic() - t0
        print(f"echo 0 > {MAINTENANCE}/node1.maintenance: node1 back at 150, {vip} back in {back:.2f} s")

        t0 = time.monotonic()
        node1.stop()  # SIGTERM: priority-0 advert, VIP released
        lab.wait_who_has(vip, [2], timeout=15)
        print(f"graceful stop of node1: node2 took over in {time.monotonic() - t0:.2f} s (protocol: 0.61 s)\n")
        print("node2's log:")
        # its state changes (the lab runs with -D: the GARP lines per frame are left out here)
        lines = [
            line for line in node2.log_text().splitlines() if "Keepalived_vrrp" in line and "gratuitous ARP" not in line
        ]
        sys.stdout.write("".join("    " + line + "\n" for line in lines[-8:]))
    print("\nlab torn down: no namespace or process left.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
