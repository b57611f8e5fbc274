"""pykeepalivedctl status and /metrics in the lab: what they say matches what the lab sees
(who holds the VIP) through a failover, a VRRP child restart and a reload with an error; a
real Prometheus server scrapes the daemon; scraping 10 times a second does not disturb the
adverts."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from labkit.configs import VIP, config, instance
from labkit.lab import ROOT, Daemon, Lab, Node, wait_for

pytestmark = pytest.mark.lab

METRICS_PORT = 9650


def start_node(lab: Lab, index: int, text: str, sockets: Path) -> Daemon:
    """pykeepalived with its own control socket (the default path is one per host) and /metrics."""
    return lab.node(index).pykeepalived(
        text, args=["--control-socket", str(sockets / f"n{index}.sock"), "--metrics-address", str(METRICS_PORT)]
    )


def status(sockets: Path, index: int) -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-m", "haparent.ctl", "--socket", str(sockets / f"n{index}.sock"), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    answer: dict[str, Any] = json.loads(r.stdout)
    return answer


def state_of(answer: dict[str, Any], name: str = "VI_1") -> str | None:
    for inst in answer["vrrp"]:
        if inst["data"]["iname"] == name:
            return str(inst["data"]["state_name"])
    return None


def scrape(node: Node) -> str:
    return node.run(["curl", "-sf", f"http://127.0.0.1:{METRICS_PORT}/metrics"], timeout=10).stdout


@pytest.fixture
def sockets() -> Any:
    path = Path(tempfile.mkdtemp(prefix="pk-st-"))  # short: AF_UNIX paths are limited to 108 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_status_follows_failover_restart_and_a_bad_reload(lab2: Lab, sockets: Path) -> None:
    # node 2 starts once node 1 is MASTER: started together, the two Master_Down_Timers end
    # 0.2 s apart and a slow start of node 1 lets node 2 be MASTER for a moment, which would
    # count in its become_master below
    d = {1: start_node(lab2, 1, config(1, instance(prio=150, state="MASTER")), sockets)}
    lab2.wait_who_has(VIP, [1], timeout=10)
    d[2] = start_node(lab2, 2, config(2, instance(prio=100)), sockets)
    wait_for("node 2's control socket", (sockets / "n2.sock").exists, 10)
    wait_for("node 2 BACKUP", lambda: state_of(status(sockets, 2)) == "BACKUP", 10)
    one = status(sockets, 1)
    assert state_of(one) == "MASTER" and one["vrrp"][0]["data"]["vips"] == [f"{VIP}/24 dev eth0 scope global set"]
    assert set(one["vrrp_trackers"]) == {"interfaces", "files", "processes"} and one["vrrp_scripts"] == {}
    assert one["vrrp_receive_drops"] == 0  # the kernel's drops for a full receive buffer (SO_RXQ_OVFL)
    assert one["vrrp"][0]["data"]["last_transition"] > time.time() - 60
    vrrp_state = 'keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.100/24",vrid="51"} 2.0'
    wait_for("MASTER in /metrics", lambda: vrrp_state in scrape(lab2.node(1)), 5)
    assert "pykeepalived_vrrp_receive_drops_total 0.0" in scrape(lab2.node(1))

    # a VRRP child restart: counted, the instance resumed MASTER
    child = d[1].pid_of("vrrp")
    assert child is not None
    os.kill(child, signal.SIGKILL)
    wait_for("a new child", lambda: d[1].pid_of("vrrp") not in (None, child), 10)
    wait_for("the restart in status", lambda: status(sockets, 1)["children"][1]["restarts"] == 1, 10)
    one = status(sockets, 1)
    vrrp = next(c for c in one["children"] if c["role"] == "vrrp")
    assert vrrp["last_exit"] == "killed by SIGKILL" and state_of(one) == "MASTER"
    wait_for("the restart in /metrics", lambda: 'child_restarts_total{role="vrrp"} 1.0' in scrape(lab2.node(1)), 5)

    # a failover: node 1's daemon is stopped, node 2 says MASTER when it holds the VIP
    d[1].stop()
    lab2.wait_who_has(VIP, [2], timeout=10)
    wait_for("node 2 MASTER", lambda: state_of(status(sockets, 2)) == "MASTER", 5)
    two = status(sockets, 2)
    assert next(i for i in two["vrrp"])["stats"]["become_master"] == 1
    master = 'keepalived_become_master_total{iname="VI_1",intf="eth0",vrid="51"} 1.0'
    wait_for("become_master in /metrics", lambda: master in scrape(lab2.node(2)), 5)

    # a reload with an error: the status says where
    d[2].reconfigure(config(2, instance(prio=100)) + "vrrp_instance BAD {\n    virtual_router_id 999\n}\n")
    wait_for("the reload error", lambda: status(sockets, 2)["last_reload_error"], 10)
    error = status(sockets, 2)["last_reload_error"]
    assert f"{d[2].config}:" in error, error
    wait_for("the failed reload in /metrics", lambda: "pykeepalived_last_reload_ok 0.0" in scrape(lab2.node(2)), 5)


def test_a_real_prometheus_scrapes_the_daemon(lab2: Lab, sockets: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (make installs Debian's package)")
    start_node(lab2, 1, config(1, instance(prio=150, state="MASTER")), sockets)
    node = lab2.node(1)
    lab2.wait_who_has(VIP, [1], timeout=10)
    text = scrape(node)
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    work = lab2.workdir / "prometheus"
    work.mkdir()
    (work / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: pykeepalived\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{METRICS_PORT}']\n"
    )
    node.start(
        [
            "prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            "--web.listen-address=127.0.0.1:9090",
        ],
        name="prometheus",
    )
    query = urllib.parse.quote('keepalived_vrrp_state{iname="VI_1"}')

    def answer() -> list[Any] | None:
        r = node.run(["curl", "-sf", f"http://127.0.0.1:9090/api/v1/query?query={query}"], check=False, timeout=10)
        if r.returncode != 0:
            return None
        result: list[Any] = json.loads(r.stdout)["data"]["result"]
        return result or None

    result = wait_for("prometheus to have keepalived_vrrp_state", answer, 30, 0.5)
    assert result[0]["metric"]["ip_address"] == f"{VIP}/24" and result[0]["value"][1] == "2"


def test_scraping_ten_times_a_second_does_not_disturb_the_adverts(lab2: Lab, sockets: Path) -> None:
    start_node(lab2, 1, config(1, instance(prio=150, state="MASTER", version=3, advert_int="0.2")), sockets)
    node = lab2.node(1)
    lab2.wait_who_has(VIP, [1], timeout=10)
    cap = lab2.capture()
    time.sleep(0.5)
    scraper = node.start(
        [
            "sh",
            "-c",
            f"for i in $(seq 100); do curl -sf -o /dev/null 127.0.0.1:{METRICS_PORT}/metrics; sleep 0.1; done",
        ],
        name="scraper",
    )
    scraper.wait(60)
    time.sleep(0.3)
    packets = cap.packets()
    times = [p["time"] for p in packets if p["src"] == "192.0.2.11"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    print(f"\n{len(times)} adverts during 100 scrapes: longest gap {max(gaps):.3f} s (advert_int 0.2)")
    assert len(times) > 40 and max(gaps) < 0.3
