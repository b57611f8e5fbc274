"""`make demo`: what pykeepalived does today, on a bundled example config.

Checks the example with `pykeepalived -t` (as keepalived -t would), shows the
normalized configuration it would run (`--print-config`), and shows a compiler-style
error for a typo. The VRRP issue turns this into a two-node failover demo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
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
        vips = ", ".join(str(v["ip"] if isinstance(v, dict) and "ip" in v else v) for v in vi["virtual_ipaddress"])
        print(
            f"vrrp_instance {name}: vrid {vi['virtual_router_id']} priority {vi['priority']} "
            f"on {vi['interface']}, VIPs {vips}"
        )
    for vs in config["virtual_server"]:
        print(f"virtual_server with {len(vs['real_server'])} real servers, lb_algo {vs.get('lb_algo')}")
    print()

    with tempfile.TemporaryDirectory() as d:
        typo = Path(d) / "keepalived.conf"
        typo.write_text(EXAMPLE.read_text().replace("virtual_ipaddress {", "virtual_ipadress {"))
        r = pykeepalived("-t", "-f", str(typo))
        sys.stdout.write(r.stderr)
        print(f"exit status {r.returncode}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
