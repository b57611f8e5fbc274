"""`make demo`: what pykeepalived does today, on a bundled example config.

1. Checks the example with `pykeepalived -t` (as keepalived -t would), shows the
   normalized configuration it would run (`--print-config`) and a compiler-style error.
2. Runs the daemon in the foreground: the parent and its VRRP and checker children as
   `ps` shows them, a child killed with SIGKILL and respawned, a SIGHUP reload, a stop.
   (The children's VRRP and health-check work arrives with later issues; the supervision
   is real.) Everything it starts is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "contrib" / "examples" / "keepalived.conf"


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
    return run_daemon()


def wait_for(what: str, probe: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def ps(pids: list[int]) -> None:
    out = subprocess.run(
        ["ps", "-o", "pid,ppid,comm,args", "-p", ",".join(map(str, pids))], capture_output=True, text=True, check=False
    ).stdout
    sys.stdout.write("".join("    " + line + "\n" for line in out.splitlines()))


def run_daemon() -> int:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pid, vrrp, checker, log = tmp / "parent.pid", tmp / "vrrp.pid", tmp / "checkers.pid", tmp / "daemon.log"
        cmd = [
            sys.executable,
            "-m",
            "haparent.cli",
            "-n",
            "-l",
            "-G",
            "-f",
            str(EXAMPLE),
            "-p",
            str(pid),
            "-r",
            str(vrrp),
            "-c",
            str(checker),
        ]
        print("$ pykeepalived -n -l -f contrib/examples/keepalived.conf   (pidfiles in a temp dir)")
        with open(log, "w") as log_file:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for("the children", lambda: read_pid(vrrp) and read_pid(checker))
            print("the parent and its children, as ps shows them:")
            ps([proc.pid, read_pid(vrrp) or 0, read_pid(checker) or 0])

            old = read_pid(vrrp) or 0
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            new = wait_for("a new VRRP child", lambda: (read_pid(vrrp) or old) != old and read_pid(vrrp))
            print(
                f"\nkill -9 {old} (the VRRP child): respawned as pid {new} in {(time.monotonic() - t0) * 1000:.0f} ms"
            )

            t0 = time.monotonic()
            os.kill(proc.pid, signal.SIGHUP)
            wait_for("the reload", lambda: "Reload complete" in log.read_text())
            print(f"kill -HUP {proc.pid} (the parent): 'Reload complete' after {(time.monotonic() - t0) * 1000:.0f} ms")

            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
            print(f"kill -TERM {proc.pid}: the daemon exited with status {proc.returncode}\n")
            print("its log:")
            sys.stdout.write("".join("    " + line + "\n" for line in log.read_text().splitlines()))
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            for path in (vrrp, checker):
                child = read_pid(path)
                if child:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
