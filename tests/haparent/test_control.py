"""The control socket and pykeepalivedctl against the real daemon: status, reload with its
result, dumps on stdout, exit codes; a client that never reads, 100 at once, garbage and
oversized requests, an unprivileged user: none of them delays the parent or gets a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import pytest

from haparent import ctl
from haparent.control import MAX_REQUEST, ControlServer, Request, parse_request
from labkit.lab import wait_for
from tests.haparent.daemon_util import ROOT, Daemon
from watchdog.protocol import Json

MakeDaemon = Callable[..., Daemon]


def run_ctl(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haparent.ctl", "--socket", str(d.control_socket), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def started(d: Daemon) -> Daemon:
    d.start()
    d.wait_ready()
    wait_for("the control socket", d.control_socket.exists, 5)
    return d


def raw(d: Daemon, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(d.control_socket))
        s.sendall(data)
        out = b""
        while not out.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_status_json_and_plain(daemon: MakeDaemon) -> None:
    d = started(daemon())
    mode = os.stat(d.control_socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    r = run_ctl(d, "status", "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["ok"] and status["pid"] == d.pid("parent") and status["config_file"] == str(d.config)
    roles = {c["role"]: c for c in status["children"]}
    assert roles["vrrp"]["pid"] == d.pid("vrrp") and roles["vrrp"]["phase"] == "running"
    assert roles["checker"]["pid"] == d.pid("checker") and roles["vrrp"]["restarts"] == 0
    # VI_1's interface does not exist here: reported (FAULT), not in the running instances' dump
    assert status["vrrp"] == [] and roles["vrrp"]["reported"]["VI_1"]["state"] == "FAULT"
    assert status["checker"]["virtual_servers"][0]["vs"]
    assert status["missing"] == []
    plain = run_ctl(d, "status")
    assert plain.returncode == 0 and "VI_1" in plain.stdout and "CHILD" in plain.stdout
    print("\n" + plain.stdout)


def test_restarts_and_last_exit_are_counted(daemon: MakeDaemon) -> None:
    d = started(daemon())
    vrrp = d.pid("vrrp")
    assert vrrp is not None
    os.kill(vrrp, signal.SIGKILL)
    wait_for("a new VRRP child", lambda: d.pid("vrrp") not in (None, vrrp), 10)
    status = json.loads(run_ctl(d, "status", "--json").stdout)
    child = next(c for c in status["children"] if c["role"] == "vrrp")
    assert child["restarts"] == 1 and child["last_exit"] == "killed by SIGKILL"


def test_reload_says_how_it_went(daemon: MakeDaemon) -> None:
    d = started(daemon())
    r = run_ctl(d, "reload")
    assert r.returncode == 0 and "reload complete" in r.stdout
    good = d.config.read_text()
    d.config.write_text(good + "vrrp_instance VI_2 {\n  virtual_router_id 300\n}\n")
    r = run_ctl(d, "reload")
    assert r.returncode == 1
    assert f"{d.config}:" in r.stderr and "virtual router id" in r.stderr and "reload failed" in r.stderr
    status = json.loads(run_ctl(d, "status", "--json").stdout)
    assert f"{d.config}:" in status["last_reload_error"]
    d.config.write_text(good)
    assert run_ctl(d, "reload").returncode == 0


def test_dumps_on_stdout(daemon: MakeDaemon) -> None:
    d = started(daemon())
    data = run_ctl(d, "dump", "data")
    assert data.returncode == 0 and "pykeepalived parent process" in data.stdout and "VRRP child" in data.stdout
    js = run_ctl(d, "dump", "json")
    assert js.returncode == 0 and json.loads(js.stdout) == []  # VI_1 waits for its interface
    checker = run_ctl(d, "dump", "json", "--child", "checker")
    assert checker.returncode == 0 and json.loads(checker.stdout)["virtual_servers"]
    assert run_ctl(d, "dump", "stats").returncode == 0
    assert not list(d.dir.glob("pykeepalived*.data"))  # nothing in $TMPDIR


def test_exit_codes_without_a_daemon() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "haparent.ctl", "--socket", "/nonexistent/ctl.sock", "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 1 and "not running" in r.stderr and "Traceback" not in r.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "haparent.ctl", "frobnicate"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert usage.returncode == 2


def test_bad_clients_never_delay_the_parent(daemon: MakeDaemon) -> None:
    d = started(daemon())
    parent, vrrp, checker = d.pid("parent"), d.pid("vrrp"), d.pid("checker")
    # garbage, oversized, unknown: an error each, never a traceback
    assert json.loads(raw(d, b"not json\n"))["ok"] is False
    assert json.loads(raw(d, b"x" * (MAX_REQUEST + 10)))["ok"] is False
    assert "unknown command" in json.loads(raw(d, b'{"cmd": "explode"}\n'))["error"]
    # one that connects and never sends nor reads, and 100 at once asking for a status
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(d.control_socket))
    results: list[bool] = []

    def ask() -> None:
        results.append(json.loads(raw(d, b'{"cmd": "status"}\n', timeout=20))["ok"])

    threads = [threading.Thread(target=ask) for _ in range(100)]
    started_at = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    took = time.monotonic() - started_at
    silent.close()
    print(f"\n100 concurrent status requests answered in {took:.2f} s")
    assert results.count(True) == 100
    # the heartbeat timeout is 1 s in these tests: a delayed loop would have killed a child
    assert (d.pid("parent"), d.pid("vrrp"), d.pid("checker")) == (parent, vrrp, checker)
    assert "hung" not in d.log_text() and "Traceback" not in d.log_text()


def test_an_unprivileged_user_cannot_connect(daemon: MakeDaemon) -> None:
    d = started(daemon())
    os.chmod(d.dir, 0o755)  # even with the directory open, the socket (0600) and SO_PEERCRED refuse
    probe = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('refused')\n"
    )
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    r = subprocess.run(
        [*nobody, "/usr/bin/python3", "-c", probe, str(d.control_socket)], capture_output=True, text=True
    )
    assert r.stdout.strip() == "refused", r.stdout + r.stderr


def test_the_socket_directory_must_be_ours() -> None:
    base = tempfile.mkdtemp(prefix="pk-ctl-")
    os.chmod(base, 0o777)
    with pytest.raises(OSError, match="writable by others"):
        ControlServer(os.path.join(base, "ctl.sock"), time.monotonic)
    os.rmdir(base)


def test_requests_parse() -> None:
    assert parse_request(b'{"cmd": "dump", "what": "data"}') == Request("dump", {"what": "data"})
    assert isinstance(parse_request(b"[1, 2]"), str)
    assert isinstance(parse_request(b'{"cmd": 3}'), str)


def test_render_status_is_readable() -> None:
    status: dict[str, Json] = {
        "version": "0.1.0",
        "pid": 1,
        "status": "Running",
        "config_file": "/k.conf",
        "config_age": 75.0,
        "reloads": 2,
        "last_reload_error": None,
        "children": [
            {"role": "vrrp", "phase": "running", "pid": 9, "uptime": 3700, "restarts": 1, "heartbeat_age": 0.2}
        ],
        "vrrp": [
            {
                "data": {
                    "iname": "VI_1",
                    "state_name": "MASTER",
                    "effective_priority": 140,
                    "base_priority": 150,
                    "vrid": 51,
                    "ifp_ifname": "eth0",
                    "master_saddr": "192.0.2.11",
                    "adver_int": 1.0,
                    "vips": ["192.0.2.100/24"],
                }
            }
        ],
        "missing": [],
    }
    text = ctl.render_status(status)
    assert "VI_1" in text and "140/150" in text and "1h01m" in text and "192.0.2.100/24" in text


def test_one_request_per_connection(daemon: MakeDaemon) -> None:
    d = started(daemon())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(d.control_socket))
        s.sendall(b'{"cmd": "status"}\n{"cmd": "reload"}\n')
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.count(b"\n") == 1 and json.loads(answer)["ok"]
    assert d.notify.kinds().count("RELOADING") == 0  # the second line was not a request
