"""The checker child end to end: `pykeepalived -n -l -f conf` in node 1 checks real servers
that are listeners in node 2. A listener killed and restarted takes its real server down
and up (keepalived's log lines, notify scripts writing to files, the data dump on SIGUSR1,
the JSON dump when the parent sends the checker one); SIGHUP with a new real server adds
it and starts its checks."""

from __future__ import annotations

import json
import re
import signal
import stat
import sys
from pathlib import Path

from haparent.specs import CHECKER
from labkit.lab import Lab, Proc, wait_for
from watchdog.protocol import DumpKind

LISTENER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    c.close()
"""


def listener(lab: Lab, port: int) -> Proc:
    return lab.node(2).start([sys.executable, "-c", LISTENER, str(port)], name=f"listener{port}")


def notify_script(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "notify.out"
    path = tmp_path / "notify.sh"
    path.write_text(f'#!/bin/sh\necho "$*" >> {out}\n')
    path.chmod(stat.S_IRWXU)
    return path, out


def read(path: Path) -> str | None:
    """The file's text once it exists and is not empty."""
    return path.read_text() if path.exists() and path.stat().st_size else None


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def config(rs_ip: str, notify: Path, ports: list[int]) -> str:
    servers = "".join(
        f"""
    real_server {rs_ip} {port} {{
        notify_up "{notify} UP {port}"
        notify_down "{notify} DOWN {port}"
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}"""
        for port in ports
    )
    return f"""
global_defs {{
    router_id lab1
}}
virtual_server 192.0.2.100 80 {{
    delay_loop 0.5
    retry 1
    delay_before_retry 0.3
    warmup 0
    protocol TCP
    quorum 1
    quorum_up "{notify} QUORUM_UP"
    quorum_down "{notify} QUORUM_DOWN"
{servers}
}}
"""


def test_checker_child_end_to_end(lab2: Lab, tmp_path: Path) -> None:
    notify, out = notify_script(tmp_path)
    rs_ip = str(lab2.node(2).ipv4.ip)
    srv = listener(lab2, 8081)
    d = lab2.node(1).pykeepalived(config(rs_ip, notify, [8081]))
    rs = f"[{rs_ip}]:tcp:8081"
    vs = "[192.0.2.100]:tcp:80"
    d.wait_log("IPVS is not available in this kernel", timeout=15)
    d.wait_log(rf"TCP connection to {re.escape(rs)} success", timeout=15)

    # the listener dies: down after its retry, notify_down and quorum_down run
    mark = len(d.log_text())
    srv.kill()
    d.wait_log(rf"Check on service \[{rs_ip}\]:tcp:8081 failed after 1 retries\.", timeout=10, since=mark)
    d.wait_log(rf"Removing service \[{rs_ip}\]:tcp:8081 from VS \[192\.0\.2\.100\]:tcp:80", timeout=5, since=mark)
    d.wait_log(r"Lost quorum 1-0=1 > 0 for VS \[192\.0\.2\.100\]:tcp:80", timeout=5, since=mark)
    wait_for("notify_down", lambda: "DOWN 8081" in lines(out), 10)
    wait_for("quorum_down", lambda: "QUORUM_DOWN" in lines(out), 10)

    data = d.workdir / "keepalived_check.data"
    d.signal(signal.SIGUSR1)
    text = wait_for("data dump", lambda: read(data), 10)
    assert "------< Health checkers >------" in text
    assert f"RS = {rs}" in text and "alive = no" in text

    if DumpKind.JSON in CHECKER.dumps:
        jpath = d.workdir / CHECKER.dumps[DumpKind.JSON]
        d.signal(signal.SIGRTMIN + 2)
        doc = json.loads(wait_for("JSON dump", lambda: read(jpath), 10))
        rs_doc = doc["virtual_servers"][0]["real_servers"][0]
        assert rs_doc["alive"] is False and rs_doc["rs"] == rs

    # back: notify_up and quorum_up
    mark = len(d.log_text())
    srv = listener(lab2, 8081)
    d.wait_log(rf"Adding service \[{rs_ip}\]:tcp:8081 to VS \[192\.0\.2\.100\]:tcp:80", timeout=10, since=mark)
    d.wait_log(r"Gained quorum 1\+0=1 <= 1 for VS \[192\.0\.2\.100\]:tcp:80", timeout=5, since=mark)
    wait_for("notify_up", lambda: lines(out)[-2:] in (["UP 8081", "QUORUM_UP"], ["QUORUM_UP", "UP 8081"]), 10)

    # SIGHUP with a second real server: its checks start, the first keeps its state
    srv2 = listener(lab2, 8082)
    mark = len(d.log_text())
    d.reconfigure(config(rs_ip, notify, [8081, 8082]))
    d.wait_log(rf"TCP connection to \[{rs_ip}\]:tcp:8082 success", timeout=15, since=mark)
    data.unlink()
    d.signal(signal.SIGUSR1)
    text = wait_for("data dump", lambda: read(data), 10)
    assert f"RS = [{rs_ip}]:tcp:8082" in text
    assert "alive = no" not in text
    assert "Removing service" not in d.log_text()[mark:]  # the reload did not flap the first one
    assert vs in d.log_text()

    srv2.kill()
    d.wait_log(rf"Removing service \[{rs_ip}\]:tcp:8082", timeout=10, since=mark)
    wait_for("notify_down 8082", lambda: "DOWN 8082" in lines(out), 10)
    assert d.stop() == 0
