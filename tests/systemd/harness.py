"""A Debian bookworm container whose PID 1 is systemd 252, for testing pykeepalived as a real
`Type=notify` service.

The root filesystem is built once with debootstrap and cached (see `rootfs`); every boot
puts a tmpfs overlay on top of it (`systemd-nspawn --volatile=overlay`), so a run never
writes to the cache. This machine's PID 1 is not systemd, so there is no machined: the
container is started with `--register=no --keep-unit` inside cgroups the harness creates
for it, and driven with `nsenter -t LEADER -a`.

Run `python -m tests.systemd.harness` to build (or check) the cached root filesystem alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

SUITE = "bookworm"
VARIANT = "minbase"
# python3-nftables: a Depends of the Debian package (test_deb.py), and the VRRP child's firewall.
INCLUDE = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "iproute2", "procps", "python3-nftables")
# Bumped whenever `_customize` changes what goes into the cached tree, so the cache is rebuilt.
RECIPE = 1
# The container's python3; the wheels built on the host must match it (setproctitle is compiled).
CONTAINER_PYTHON = (3, 11)

CACHE_ROOT = Path(os.environ.get("PYKEEPALIVED_TEST_CACHE", "/var/cache/pykeepalived-tests"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_PACKAGES = {"debootstrap": "/usr/sbin/debootstrap", "systemd-nspawn": "/usr/bin/systemd-nspawn"}
APT_FOR = {"debootstrap": "debootstrap", "systemd-nspawn": "systemd-container"}
CGROUP_PREFIX = "pykeepalived-test-"

# Timers that would start apt or fsck work at random moments in the middle of a test.
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer")


class HarnessError(RuntimeError):
    """The container could not be built, booted or driven (not a failure of pykeepalived)."""


def log(msg: str) -> None:
    # pytest shows stderr of a failing test; timings of the slow steps are worth seeing.
    print(f"[systemd-harness {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str], *, timeout: float, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{' '.join(argv)}: no answer within {timeout} s") from e
    if check and res.returncode != 0:
        raise HarnessError(f"{' '.join(argv)} exited {res.returncode}:\n{res.stdout}{res.stderr}")
    return res


# ---------------------------------------------------------------- host tools and mirror


def ensure_host_tools() -> None:
    """Install debootstrap and systemd-nspawn through apt when missing (a fresh CI machine)."""
    missing = sorted({APT_FOR[t] for t, path in HOST_PACKAGES.items() if not Path(path).exists()})
    if not missing:
        return
    log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (
        ["apt-get", "update", "-qq"],
        # No recommends: systemd-container recommends libnss-mymachines, which edits nsswitch.conf.
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        res = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600, env=env)
        if res.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} exited {res.returncode}:\n{res.stdout}{res.stderr}")


def _deb822_mirrors(text: str) -> Iterator[str]:
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in para.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split() and SUITE in fields.get("suites", "").split():
            yield from fields.get("uris", "").split()


def _one_line_mirrors(text: str) -> Iterator[str]:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
            yield words[1]


def debian_mirror() -> str:
    """The mirror this machine's apt uses for the suite (debootstrap needs the same reachable one)."""
    if os.environ.get("PYKEEPALIVED_TEST_MIRROR"):
        return os.environ["PYKEEPALIVED_TEST_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        found = _deb822_mirrors(text) if path.suffix == ".sources" else _one_line_mirrors(text)
        if path.suffix in (".sources", ".list") or path.name == "sources.list":
            for uri in found:
                if uri.startswith(("http://", "https://")):
                    return uri
    return DEFAULT_MIRROR


# ---------------------------------------------------------------- the cached root filesystem


def rootfs_key() -> str:
    recipe = {"suite": SUITE, "variant": VARIANT, "include": sorted(INCLUDE), "recipe": RECIPE}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    # Two test runs at once (two checkouts) must not debootstrap into the same place.
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _customize(root: Path) -> None:
    (root / "etc/hostname").write_text("pkt-systemd\n")
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # debootstrap keeps the .debs it installed: 100 MB the container never needs.
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def rootfs() -> Path:
    """The cached root filesystem, built when missing or when INCLUDE/RECIPE changed."""
    ensure_host_tools()
    target = CACHE_ROOT / f"{SUITE}-rootfs"
    stamp = CACHE_ROOT / f"{SUITE}-rootfs.key"
    key = rootfs_key()
    with _cache_lock():
        if target.is_dir() and stamp.is_file() and stamp.read_text().strip() == key:
            return target
        building = CACHE_ROOT / f"{SUITE}-rootfs.building"
        shutil.rmtree(building, ignore_errors=True)
        mirror = debian_mirror()
        log(f"building the {SUITE} root filesystem from {mirror} into {target} (about a minute)")
        started = time.monotonic()
        argv = [
            HOST_PACKAGES["debootstrap"],
            f"--variant={VARIANT}",
            f"--include={','.join(INCLUDE)}",
            SUITE,
            str(building),
            mirror,
        ]
        res = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-30:])
            debootstrap_log = building / "debootstrap/debootstrap.log"
            if debootstrap_log.is_file():
                tail += "\n--- debootstrap.log ---\n" + "\n".join(debootstrap_log.read_text().splitlines()[-30:])
            shutil.rmtree(building, ignore_errors=True)
            raise HarnessError(f"debootstrap exited {res.returncode}:\n{tail}")
        _customize(building)
        stamp.unlink(missing_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
        stamp.write_text(key + "\n")
        log(f"root filesystem built in {time.monotonic() - started:.0f} s")
        return target


# ---------------------------------------------------------------- pykeepalived's wheels

_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
    "build", "dist", "*.egg-info",
)  # fmt: skip


def build_wheels(project: Path, dest: Path) -> list[Path]:
    """Wheels of the working tree and of all its dependencies, for an offline install in the container.

    Built from a copy of the tree so setuptools leaves no build/ or egg-info behind in it.
    The host's Python must be the container's (3.11): setproctitle is a compiled wheel.
    """
    if sys.version_info[:2] != CONTAINER_PYTHON:
        raise HarnessError(
            f"the wheels are built with this interpreter (Python {sys.version_info[0]}.{sys.version_info[1]}); "
            f"the container has Python {CONTAINER_PYTHON[0]}.{CONTAINER_PYTHON[1]}"
        )
    src = dest.parent / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(project, src, ignore=_NOT_SOURCE, symlinks=True)
    dest.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(dest), str(src)],
        timeout=600)  # fmt: skip
    shutil.rmtree(src, ignore_errors=True)
    return sorted(dest.glob("*.whl"))


# ---------------------------------------------------------------- cgroups


def _cgroup_roots() -> list[Path]:
    """The hierarchies nspawn looks at: the unified one and, on a hybrid host, name=systemd."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        return [base]
    return [p for p in (base / "unified", base / "systemd") if (p / "cgroup.procs").exists()]


def _procs(cgroup: Path) -> set[int]:
    pids: set[int] = set()
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in procs.read_text().split())
    return pids


def _remove_cgroup(cgroup: Path, timeout: float = 10.0) -> None:
    """Kill whatever is left in the cgroup and remove it, deepest first."""
    if not cgroup.exists():
        return
    kill = cgroup / "cgroup.kill"
    deadline = time.monotonic() + timeout
    while (pids := _procs(cgroup)) and time.monotonic() < deadline:
        if kill.exists():
            with contextlib.suppress(OSError):
                kill.write_text("1")
        else:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for d in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()
    try:
        cgroup.rmdir()
    except OSError as e:
        raise HarnessError(f"cannot remove cgroup {cgroup}: {e} (processes {sorted(_procs(cgroup))})") from e


def remove_stale_cgroups() -> None:
    """Cgroups left by a test run that was itself killed (its pid is in the name)."""
    for root in _cgroup_roots():
        for cg in root.glob(CGROUP_PREFIX + "*"):
            owner = cg.name.removeprefix(CGROUP_PREFIX).split("-")[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(HarnessError):
                    _remove_cgroup(cg)


# ---------------------------------------------------------------- the container


class Container:
    """One booted container: `with Container(rootfs, workdir) as c: c.sh("systemctl ...")`."""

    _booted = 0

    def __init__(self, root: Path, workdir: Path, binds: Sequence[tuple[Path, str]] = ()) -> None:
        self.root = root
        self.workdir = workdir
        self.binds = list(binds)
        Container._booted += 1
        # Unique per run and per container: it names nspawn's lock and propagation directories.
        self.name = f"pkt{os.getpid()}-{Container._booted}"
        self.cgroups = [r / f"{CGROUP_PREFIX}{os.getpid()}-{Container._booted}" for r in _cgroup_roots()]
        self.console = workdir / "console.log"
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def __enter__(self) -> Container:
        try:
            self.boot()
        except BaseException:
            self.shutdown()
            raise
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.shutdown()

    def boot(self, timeout: float = 90.0) -> None:
        remove_stale_cgroups()
        if not self.cgroups:
            raise HarnessError("no cgroup hierarchy found under /sys/fs/cgroup")
        for cg in self.cgroups:
            cg.mkdir()
        argv = [
            HOST_PACKAGES["systemd-nspawn"], "-D", str(self.root), f"--machine={self.name}",
            "--boot", "--register=no", "--keep-unit", "--console=read-only",
            # A tmpfs over the read-only cache: nothing a run does reaches the cached tree.
            "--volatile=overlay",
            # Its own network namespace: VRRP adverts from the daemon stay inside the container.
            "--private-network",
            *(f"--bind-ro={host}:{inside}" for host, inside in self.binds),
        ]  # fmt: skip
        # The shell moves itself into our cgroups before it becomes nspawn, so that with
        # --keep-unit nspawn and the whole container live in cgroups of their own.
        enter = "".join(f"echo $$ > {cg}/cgroup.procs && " for cg in self.cgroups)
        log(f"booting {self.name} (console: {self.console})")
        with open(self.console, "wb") as out:
            self.nspawn = subprocess.Popen(
                ["/bin/sh", "-c", enter + 'exec "$@"', "sh", *argv],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        self.leader = self._wait_leader(deadline)
        self._wait_booted(deadline)
        log(f"{self.name} is up, leader pid {self.leader}")

    def _alive(self) -> bool:
        return self.nspawn is not None and self.nspawn.poll() is None

    def _wait_leader(self, deadline: float) -> int:
        """The container's PID 1: the process in our cgroup that is pid 1 of its own namespace."""
        while time.monotonic() < deadline:
            if not self._alive():
                raise HarnessError(f"systemd-nspawn exited early:\n{self.console_tail()}")
            for pid in sorted(_procs(self.cgroups[0])):
                with contextlib.suppress(OSError):
                    status = Path(f"/proc/{pid}/status").read_text()
                    nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
                    if len(nspid) >= 2 and nspid[-1] == "1":
                        return pid
            time.sleep(0.1)
        raise HarnessError(f"no container PID 1 appeared:\n{self.console_tail()}")

    def _wait_booted(self, deadline: float) -> None:
        state = ""
        while time.monotonic() < deadline:
            if not self._alive():
                raise HarnessError(f"the container stopped while booting:\n{self.console_tail()}")
            # Until systemd's private bus socket exists, systemctl fails at once: retry.
            left = max(1.0, deadline - time.monotonic())
            res = self.sh("systemctl is-system-running --wait", check=False, timeout=left)
            state = res.stdout.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    log("container degraded: " + self.sh("systemctl --failed --no-legend", check=False).stdout)
                return
            time.sleep(0.2)
        raise HarnessError(f"the container did not finish booting (state {state!r}):\n{self.console_tail()}")

    def exec(
        self, *argv: str, check: bool = True, timeout: float = 30.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A command inside the container (all its namespaces, as root)."""
        if not self.leader:
            raise HarnessError("the container is not running")
        return run(["nsenter", "-t", str(self.leader), "-a", "--", *argv], timeout=timeout, check=check, input=input)

    def sh(self, script: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return self.exec("/bin/sh", "-c", script, check=check, timeout=timeout)

    def path(self, inside: str) -> Path:
        """A path inside the container as seen from here (through the leader's root)."""
        return Path(f"/proc/{self.leader}/root") / inside.lstrip("/")

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        p = self.path(inside)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return "(no console output)"
        return "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()[-lines:])

    def shutdown(self, timeout: float = 30.0) -> None:
        """Power the container off, or kill it; then remove its cgroups. Safe to call twice."""
        if self._alive() and self.leader:
            with contextlib.suppress(HarnessError):
                self.sh("systemctl poweroff --no-block", check=False, timeout=10)
            self._wait_nspawn(timeout)
        if self._alive() and self.nspawn is not None:
            log(f"{self.name} did not power off within {timeout} s: killing it")
            # nspawn turns SIGTERM into a clean shutdown request; then no more asking.
            with contextlib.suppress(ProcessLookupError):
                self.nspawn.send_signal(signal.SIGTERM)
            if not self._wait_nspawn(10):
                with contextlib.suppress(ProcessLookupError):
                    self.nspawn.kill()
                self._wait_nspawn(10)
        self.leader = 0
        errors = []
        for cg in self.cgroups:
            try:
                _remove_cgroup(cg)
            except HarnessError as e:
                errors.append(str(e))
        self._unmount_leftovers()
        propagate = Path("/run/systemd/nspawn/propagate") / self.name
        with contextlib.suppress(OSError):
            propagate.rmdir()
        if errors:
            raise HarnessError("\n".join(errors))

    def _wait_nspawn(self, timeout: float) -> bool:
        if self.nspawn is None:
            return True
        try:
            self.nspawn.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _unmount_leftovers(self) -> None:
        # nspawn mounts in its own namespace, so this normally finds nothing; it is here for a
        # nspawn killed halfway, whose mounts could otherwise pin the cache directory.
        with contextlib.suppress(OSError):
            mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()]
            for escaped in reversed(mounts):
                target = escaped.replace("\\040", " ")
                if target.startswith((str(self.root) + "/", str(self.workdir) + "/")) or target == str(self.root):
                    subprocess.run(["umount", "-l", target], check=False, capture_output=True, timeout=30)


if __name__ == "__main__":
    started = time.monotonic()
    path = rootfs()
    print(f"{path} ({rootfs_key()}) ready after {time.monotonic() - started:.1f} s")
