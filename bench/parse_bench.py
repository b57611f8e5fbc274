"""Parse benchmark: a generated keepalived.conf with 1,000 vrrp_instances and 10,000
real_servers, parsed by pykeepalived (conf.load) and checked by keepalived -t, side by
side. Goal: pykeepalived under 1 s.

Run: make bench   (or .venv/bin/python bench/parse_bench.py [--instances N] [--real-servers N])
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import conf

RS_PER_VS = 100


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


def time_ours(path: str, runs: int) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        result = conf.load(path, config_id="bench", interfaces=frozenset())
        times.append(time.perf_counter() - t0)
        assert result.config is not None
        count = sum(len(vs.real_server) for vs in result.config.virtual_server)
    return statistics.median(times), count


def time_keepalived(path: str, runs: int) -> float | None:
    if not shutil.which("keepalived"):
        return None
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["keepalived", "-t", "-f", path], capture_output=True, timeout=600)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--real-servers", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "keepalived.conf")
        text = generate(args.instances, args.real_servers)
        Path(path).write_text(text)
        ours, rs = time_ours(path, args.runs)
        theirs = time_keepalived(path, args.runs)
    lines = text.count("\n")
    print(f"config: {args.instances} vrrp_instances, {rs} real_servers, {lines} lines")
    print(f"{'parser':<28}{'median of ' + str(args.runs):>16}")
    print(f"{'pykeepalived conf.load':<28}{ours * 1000:>13.0f} ms")
    if theirs is not None:
        print(f"{'keepalived 2.2.7 -t':<28}{theirs * 1000:>13.0f} ms")
    goal = 1.0
    print(f"goal: under {goal:.0f} s -> {'met' if ours < goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
