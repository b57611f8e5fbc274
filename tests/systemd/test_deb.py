"""The Debian package (`make deb`, contrib/debian) in a Debian bookworm container under systemd 252.

`dpkg -i` of the .deb with no network inside the container (postinst builds /opt/pykeepalived
from the wheels the package carries), `systemctl start` on a small VRRP config that puts a VIP
up, `systemctl reload` onto one with a second VIP, `dpkg -i` again (an upgrade: stopped, venv
rebuilt, started again), `dpkg -r` (service stopped, VIPs gone, venv removed, conffile kept)
and `dpkg -P` (nothing of the package left). The tests run in order on one container, each
from where the previous one left it.

Only `make deb-test` runs them: it builds the package and sets PYKEEPALIVED_DEB (1 for
dist/pykeepalived_<version>_<arch>.deb, or a path); without it they are skipped, so `make test`
does not build packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.systemd.harness import Container
from watchdog.version import VERSION

pytestmark = [
    pytest.mark.systemd,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        os.environ.get("PYKEEPALIVED_DEB", "0") in ("", "0"),
        reason="the Debian package is tested by `make deb-test` (PYKEEPALIVED_DEB)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
SHARE = "/run/pkt-share"  # where the container sees the share_dir fixture
UNIT = "pykeepalived.service"
CONFIG = "/etc/keepalived/keepalived.conf"
IFACE = "pkdeb0"
VIP1 = "192.0.2.200"
VIP2 = "192.0.2.201"
# What the package puts on PATH, as symlinks into the venv postinst builds.
PROGRAMS = {
    "/usr/sbin/pykeepalived": "/opt/pykeepalived/bin/pykeepalived",
    "/usr/sbin/pykeepalivedctl": "/opt/pykeepalived/bin/pykeepalivedctl",
    "/usr/bin/pygenhash": "/opt/pykeepalived/bin/pygenhash",
}
# Where nothing of the package may be left after `dpkg -P`.
CLEAN_DIRS = (
    "/opt",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/share/doc",
    "/usr/share/man",
    "/lib/systemd/system",
    "/etc",
)


def config(*vips: str) -> str:
    addresses = "".join(f"        {v}/24\n" for v in vips)
    return f"""\
global_defs {{
    router_id pkt-deb
}}
vrrp_instance VI_1 {{
    state MASTER
    interface {IFACE}
    virtual_router_id 61
    priority 150
    advert_int 1
    virtual_ipaddress {{
{addresses}    }}
}}
"""


def deb_path() -> Path:
    value = os.environ["PYKEEPALIVED_DEB"]
    if value != "1":
        return Path(value)
    arch = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True).stdout.strip()
    return ROOT / "dist" / f"pykeepalived_{VERSION}_{arch}.deb"


@pytest.fixture(scope="module")
def deb(share_dir: Path) -> str:
    """The .deb as the container sees it (copied into the share, read-only inside)."""
    path = deb_path()
    assert path.is_file(), f"{path} does not exist: run `make deb`"
    (share_dir / "deb").mkdir(exist_ok=True)
    shutil.copy2(path, share_dir / "deb" / path.name)
    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
    return f"{SHARE}/deb/{path.name}"


_failed: list[str] = []


@pytest.fixture(autouse=True)
def in_order(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test goes on from where the previous one left the container: after a failure, skip."""
    if _failed:
        pytest.skip(f"{_failed[0]} failed")
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.passed:
        _failed.append(request.node.name)


def wait_for(what: str, cond: Callable[[], bool], timeout: float, interval: float = 0.2) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - start


def addresses(c: Container) -> str:
    return c.exec("ip", "-o", "-4", "addr", "show", "dev", IFACE).stdout


def has_vip(c: Container, vip: str) -> bool:
    return f" {vip}/24 " in addresses(c)


def prop(c: Container, name: str) -> str:
    return c.exec("systemctl", "show", UNIT, f"--property={name}", "--value").stdout.strip()


def journal(c: Container) -> str:
    res = c.exec("journalctl", "--no-pager", "-o", "short-monotonic", "-n", "60", "-u", UNIT, check=False)
    return f"\n--- journal of {UNIT} ---\n{res.stdout}{res.stderr}"


def leftovers(c: Container) -> list[str]:
    """Files of the package (or made by its scripts) anywhere it could have put them."""
    out = c.exec("find", *CLEAN_DIRS, "(", "-name", "*pykeepalived*", "-o", "-name", "pygenhash", ")", check=False)
    return sorted(out.stdout.split())


def test_install_without_network(container: Container, deb: str) -> None:
    c = container
    # --private-network: nothing but lo (and no interface of ours yet) inside the container.
    links = c.exec("ip", "-o", "link").stdout.splitlines()
    assert len(links) == 1 and ": lo:" in links[0], links
    assert not c.path(CONFIG).exists()
    began = time.monotonic()
    res = c.exec("dpkg", "-i", deb, timeout=300)
    took = time.monotonic() - began
    print(f"dpkg -i took {took:.1f} s")
    assert c.exec("dpkg-query", "-W", "-f=${Status}", "pykeepalived").stdout == "install ok installed", res.stdout
    for link, target in PROGRAMS.items():
        assert os.readlink(c.path(link)) == target
    assert f"pykeepalived v{VERSION}" in c.exec("/usr/sbin/pykeepalived", "--version").stderr
    c.exec("/usr/bin/pygenhash", "--help")
    # The VRRP child's firewall loads Debian's python3-nftables by path, outside the venv.
    c.exec("/opt/pykeepalived/bin/python", "-c", "from vrrp_child.droptable import LibNftables; LibNftables()")
    # The configuration is the administrator's: the package never writes it.
    assert not c.path(CONFIG).exists()
    assert 'DAEMON_ARGS=""' in c.path("/etc/default/pykeepalived").read_text()
    assert "vrrp_instance" in c.path("/usr/share/doc/pykeepalived/keepalived.conf.example").read_text()
    unit = c.exec("systemctl", "cat", UNIT).stdout
    assert "\nExecStart=/usr/sbin/pykeepalived --dont-fork $DAEMON_ARGS\n" in unit, unit
    # Neither enabled nor started: keepalived may run on this machine from the same file.
    assert prop(c, "ActiveState") == "inactive"
    assert c.exec("systemctl", "is-enabled", UNIT, check=False).stdout.strip() == "disabled"


def test_start_puts_the_vip_up(container: Container) -> None:
    c = container
    # A dummy interface where the kernel has the module; a veth pair where it has not (the
    # development machine's kernel has no dummy driver, and a container cannot load modules).
    if c.exec("ip", "link", "add", IFACE, "type", "dummy", check=False).returncode != 0:
        c.exec("ip", "link", "add", IFACE, "type", "veth", "peer", "name", f"{IFACE}p")
        c.exec("ip", "link", "set", f"{IFACE}p", "up")
    c.exec("ip", "link", "set", IFACE, "up")
    c.exec("ip", "addr", "add", "192.0.2.1/24", "dev", IFACE)
    c.write(CONFIG, config(VIP1))
    began = time.monotonic()
    c.exec("systemctl", "start", UNIT, timeout=60)
    started = time.monotonic() - began
    assert prop(c, "ActiveState") == "active", journal(c)
    try:
        took = wait_for(f"{VIP1} on {IFACE}", lambda: has_vip(c, VIP1), 15)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{addresses(c)}{journal(c)}") from None
    print(f"systemctl start took {started:.2f} s, the VIP was up {took:.2f} s later")


def test_reload_adds_a_vip(container: Container) -> None:
    c = container
    main_pid = prop(c, "MainPID")
    assert has_vip(c, VIP1)
    c.write(CONFIG, config(VIP1, VIP2))
    c.exec("systemctl", "reload", UNIT, timeout=60)
    try:
        took = wait_for(f"{VIP2} on {IFACE} after the reload", lambda: has_vip(c, VIP2), 20)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{addresses(c)}{journal(c)}") from None
    print(f"{VIP2} up {took:.2f} s after systemctl reload")
    assert has_vip(c, VIP1)
    assert (prop(c, "ActiveState"), prop(c, "MainPID"), prop(c, "NRestarts")) == ("active", main_pid, "0")


def test_the_names_monitoring_uses_are_keepalived_s(container: Container) -> None:
    """What rsyslog rules, keepalived-exporter and scripts use, on the installed service: the
    pidfile, the syslog idents in the journal, the dump files a signal writes."""
    c = container
    main_pid = prop(c, "MainPID")
    assert c.path("/run/keepalived.pid").read_text().strip() == main_pid
    idents = c.exec("journalctl", "--no-pager", "-o", "cat", "-t", "Keepalived_vrrp", "-u", UNIT).stdout
    assert "(VI_1) Entering MASTER STATE" in idents
    dump = c.path("/tmp/keepalived.data")
    dump.unlink(missing_ok=True)
    c.sh("kill -s $(/usr/sbin/pykeepalived --signum=DATA) $(cat /run/keepalived.pid)")
    wait_for("/tmp/keepalived.data", dump.exists, 10)
    text = dump.read_text()
    assert " VRRP Instance = VI_1\n" in text and "   State = MASTER\n" in text


def test_upgrade_restarts_the_service(container: Container, deb: str) -> None:
    """`dpkg -i` over the installed package: prerm stops it, postinst rebuilds the venv and starts it."""
    c = container
    main_pid = prop(c, "MainPID")
    began = time.monotonic()
    c.exec("dpkg", "-i", deb, timeout=300)
    print(f"dpkg -i over the installed package took {time.monotonic() - began:.1f} s")
    assert prop(c, "ActiveState") == "active", journal(c)
    assert prop(c, "MainPID") not in ("0", main_pid)
    assert not c.path("/run/pykeepalived.dpkg-restart").exists()
    try:
        wait_for("both VIPs back after the upgrade", lambda: has_vip(c, VIP1) and has_vip(c, VIP2), 15)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{addresses(c)}{journal(c)}") from None


def test_remove_stops_the_service_and_removes_the_venv(container: Container) -> None:
    c = container
    assert prop(c, "ActiveState") == "active"
    began = time.monotonic()
    c.exec("dpkg", "-r", "pykeepalived", timeout=120)
    print(f"dpkg -r took {time.monotonic() - began:.1f} s")
    # Stopped by prerm: the daemon took its VIPs down with it.
    assert not c.exec("pgrep", "-f", "pykeepalived", check=False).stdout.strip()
    assert not has_vip(c, VIP1) and not has_vip(c, VIP2), addresses(c)
    assert not c.path("/opt/pykeepalived").exists()
    assert c.exec("dpkg-query", "-W", "-f=${Status}", "pykeepalived").stdout == "deinstall ok config-files"
    # Conffiles stay until a purge; the configuration stays for good.
    assert leftovers(c) == ["/etc/default/pykeepalived"]
    assert c.path(CONFIG).exists()


def test_purge_leaves_nothing(container: Container) -> None:
    c = container
    c.exec("dpkg", "-P", "pykeepalived", timeout=120)
    assert c.exec("dpkg-query", "-W", "pykeepalived", check=False).returncode != 0
    assert leftovers(c) == []
    assert not c.path("/opt/pykeepalived").exists()
    c.exec("systemctl", "daemon-reload")
    assert prop(c, "LoadState") == "not-found"
    # dpkg -P removes only what is the package's: the administrator's file is still there.
    assert c.path(CONFIG).exists()
