"""net_namespace and -s/--namespace: the whole daemon runs inside the namespace (its VIPs
land there, never on the host), with keepalived's pidfile and ident naming."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conf import load
from conf.model import Config
from haparent import namespace
from haparent.cli import parse_args
from haparent.options import Options

ROOT = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent(text))
    result = load(str(path))
    assert result.config is not None
    return result.config


def test_no_namespace_keeps_the_options(tmp_path: Path) -> None:
    opts = Options()
    assert namespace.resolve(opts, config(tmp_path, "global_defs {\n}\n")) is opts


def test_net_namespace_moves_pidfiles_and_ident(tmp_path: Path) -> None:
    # keepalived: /run/keepalived/NAME/keepalived.pid seen from the host, ident Keepalived_NAME
    opts = namespace.resolve(Options(), config(tmp_path, "net_namespace blue\n"))
    assert opts.namespace == "blue"
    assert opts.ident_suffix == "_blue"
    assert opts.pid_file == "/run/keepalived/blue/keepalived.pid"
    assert opts.vrrp_pid_file == "/run/keepalived/blue/vrrp.pid"
    assert opts.checkers_pid_file == "/run/keepalived/blue/checkers.pid"


def test_command_line_namespace_wins_and_named_pidfiles_stay(tmp_path: Path) -> None:
    opts, _ = parse_args(["-s", "red", "-p", "/tmp/x.pid"])
    opts = namespace.resolve(opts, config(tmp_path, "net_namespace blue\ninstance one\n"))
    assert opts.namespace == "red"
    assert opts.ident_suffix == "_red_one"
    assert opts.pid_file == "/tmp/x.pid"  # named with -p: keepalived keeps it
    assert opts.vrrp_pid_file == "/run/keepalived/red/vrrp_one.pid"


def test_instance_and_use_pid_dir(tmp_path: Path) -> None:
    opts = namespace.resolve(Options(), config(tmp_path, "instance one\n"))
    assert (opts.namespace, opts.ident_suffix) == (None, "_one")
    assert opts.pid_file == "/run/keepalived/keepalived_one.pid"
    opts = namespace.resolve(Options(), config(tmp_path, "use_pid_dir\n"))
    assert opts.pid_file == "/run/keepalived/keepalived.pid"
    assert opts.ident_suffix == ""


def daemon(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "haparent.cli", "-n", "-l", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def test_missing_namespace_stops_the_daemon_with_keepalived_words(tmp_path: Path) -> None:
    name = f"pyk12missing{uuid.uuid4().hex[:6]}"
    path = tmp_path / "keepalived.conf"
    path.write_text(f"net_namespace {name}\nvrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 5\n}}\n")
    proc = daemon("-f", str(path), "-p", str(tmp_path / "p.pid"))
    out, _ = proc.communicate(timeout=30)
    # keepalived 2.2.7 logs these two lines and exits 0; we exit 1 so that it is not read as success
    assert proc.returncode == 1, out
    assert f"Failed to open /run/netns/{name}" in out
    assert f"Unable to set network namespace {name} - exiting" in out


def test_config_test_warns_of_a_missing_namespace(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text("net_namespace pyk12nothere\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-m", "haparent.cli", "-t", "-f", str(path)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0  # as keepalived -t
    assert "network namespace pyk12nothere does not exist" in run.stderr


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    name = f"pyk12ns{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        # a veth pair inside (this kernel has no dummy driver); the peer makes eth0's carrier up
        ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        ip("-n", name, "link", "set", "eth1", "up")
        ip("-n", name, "link", "set", "eth0", "up")
        ip("-n", name, "addr", "add", "198.51.100.2/24", "dev", "eth0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


VRRP = """
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 77
    priority 255
    advert_int 1
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


def wait_for_vip(name: str, vip: str, proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vip in ip("-n", name, "-4", "addr", "show"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    out, _ = proc.communicate()
    pytest.fail(f"no {vip} in {name}:\n{out}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


@pytest.mark.parametrize("how", ["config", "command line"])
def test_the_vip_goes_into_the_namespace_never_on_the_host(tmp_path: Path, netns: str, how: str) -> None:
    vip = "198.51.100.77" if how == "config" else "198.51.100.78"
    text = VRRP.format(vip=vip)
    args: list[str] = []
    if how == "config":
        text = f"net_namespace {netns}\n" + text
    else:
        args = ["-s", netns]
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    proc = daemon("-f", str(path), *args)
    try:
        wait_for_vip(netns, vip, proc)
        assert vip not in ip("-4", "addr", "show")  # the host's interfaces are untouched
        # keepalived's naming: pidfiles in a directory per namespace, ident with the name
        pidfile = Path(f"/run/keepalived/{netns}/keepalived.pid")
        assert pidfile.read_text().strip() == str(proc.pid)
        assert Path(f"/run/keepalived/{netns}/vrrp.pid").exists()
    finally:
        out = stop(proc)
    assert f"Keepalived_{netns}[" in out
    assert f"Keepalived_vrrp_{netns}[" in out
    assert proc.returncode == 0, out
    assert vip not in ip("-n", netns, "-4", "addr", "show")  # released on stop, as usual
    assert not Path(f"/run/keepalived/{netns}").exists()
