"""The trackers hub on a real loop with real scripts (in tmp dirs), real processes and
keepalived.conf text read by the real parser. vrrp_script intervals are whole seconds, so
these tests take a few seconds each; bounds are generous (2 loaded cores)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

import conf
from conf.model import Config
from vrrp_child.trackers import Trackers, interface_up
from vrrp_child.tracking import ScriptState, TrackStatus, instance_verdict
from watchdog.scripts import ScriptRunner

GOOD, BAD, INIT = ScriptState.GOOD, ScriptState.BAD, ScriptState.INIT
pytestmark = pytest.mark.timeout(90)


def load(tmp_path: Path, scripts: str, track: str, extra: str = "", name: str = "k.conf") -> Config:
    text = f"""
global_defs {{
  script_user root
}}
{scripts}
vrrp_instance VI_1 {{
  interface lo
  virtual_router_id 51
  priority 100
  virtual_ipaddress {{
    192.0.2.100/24
  }}
  {track}
}}
{extra}
"""
    path = tmp_path / name
    path.write_text(text)
    result = conf.load(str(path), interfaces=frozenset({"lo"}))  # lo's loopback flag is not checked then
    assert result.config is not None, result.diagnostics
    return result.config


def vrrp_script(name: str, command: str, **options: object) -> str:
    lines = "\n".join(f"  {k} {v}" for k, v in options.items())
    return f'vrrp_script {name} {{\n  script "{command}"\n{lines}\n}}\n'


def track_scripts(*names: str) -> str:
    return "track_script {\n" + "\n".join(f"    {n}" for n in names) + "\n  }"


class Hub:
    """A Trackers on the running loop, recording every changed() with the status then."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.runner = ScriptRunner(("root",))
        self.calls: list[TrackStatus] = []
        self.trackers = Trackers(self.loop, self.runner, self._changed)
        self.event = asyncio.Event()

    def _changed(self) -> None:
        self.calls.append(self.trackers.status)
        self.event.set()

    async def until(self, pred: Callable[[], bool], timeout: float) -> float:
        """Seconds until pred() holds; fails after timeout."""
        start = self.loop.time()
        while not pred():
            self.event.clear()
            remaining = timeout - (self.loop.time() - start)
            if remaining <= 0:
                raise AssertionError(f"not within {timeout} s; changes: {self.calls}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), min(remaining, 0.1))
        return self.loop.time() - start

    def script(self, name: str) -> ScriptState:
        return self.trackers.status.scripts[name]

    async def close(self) -> None:
        await self.trackers.stop()
        await self.runner.stop()


def run(body: Callable[[Hub], Awaitable[None]]) -> None:
    async def main() -> None:
        hub = Hub()
        try:
            await body(hub)
        finally:
            await hub.close()

    asyncio.run(main())


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


# ---- rise / fall, logs ---------------------------------------------------------------------


def test_rise_fall_sequence_with_keepalived_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rc = tmp_path / "rc"
    rc.write_text("0")
    config = load(
        tmp_path,
        vrrp_script("chk", f"/bin/sh -c 'exit $(cat {rc})'", interval=1, rise=2, fall=2, weight=-10),
        track_scripts("chk"),
    )

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        assert hub.script("chk") is INIT
        # the first result decides at once ("one success is enough")
        assert await hub.until(lambda: hub.script("chk") is GOOD, 5) < 3
        rc.write_text("1")
        # fall 2: two failures in a row, one interval apart
        took = await hub.until(lambda: hub.script("chk") is BAD, 8)
        assert 0.9 < took < 5
        rc.write_text("0")
        took = await hub.until(lambda: hub.script("chk") is GOOD, 8)
        assert 0.9 < took < 5
        # configure() reports once too (the workload computes the first verdicts then)
        assert [c.scripts["chk"] for c in hub.calls] == [INIT, GOOD, BAD, GOOD]

    run(body)
    logs = messages(caplog)
    assert logs.count("VRRP_Script(chk) succeeded") == 2
    assert "Script `chk` now returning 1" in logs
    assert "VRRP_Script(chk) failed (exited with status 1)" in logs
    assert "Script `chk` now returning 0" in logs


def test_hanging_script_is_killed_at_its_timeout_and_counts_as_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    marker = f"pyk-hang-{os.getpid()}"
    config = load(
        tmp_path,
        vrrp_script("hang", f"/bin/bash -c 'exec -a {marker} sleep 60'", interval=2, timeout=1, weight=-3),
        track_scripts("hang"),
    )

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        took = await hub.until(lambda: hub.script("hang") is BAD, 6)
        assert 0.9 < took < 4
        await asyncio.sleep(0.2)
        assert not [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]

    run(body)
    assert "VRRP_Script(hang) timed_out" in messages(caplog)


def test_missing_script_is_reported_once_and_counts_as_failed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    path = tmp_path / "later.sh"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    # the parser disables scripts that are missing at load time (as keepalived does):
    # this one goes missing afterwards
    config = load(tmp_path, vrrp_script("later", str(path), interval=1), track_scripts("later"))
    path.unlink()

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        await hub.until(lambda: hub.script("later") is BAD, 4)
        await asyncio.sleep(2.5)  # two or three more runs that cannot start
        loop = hub.trackers.scripts["later"]
        assert loop.runs == 1  # not spawned again while the file is still missing
        assert hub.script("later") is BAD
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
        await hub.until(lambda: hub.script("later") is GOOD, 4)

    run(body)
    cannot = [m for m in messages(caplog) if m.startswith("VRRP_Script(later) cannot run")]
    assert len(cannot) == 1, messages(caplog)
    assert "VRRP_Script(later) succeeded" in messages(caplog)


# ---- reload --------------------------------------------------------------------------------


def test_reconfigure_keeps_running_scripts_and_their_state(tmp_path: Path) -> None:
    scripts = vrrp_script("bad", "/bin/false", interval=1) + vrrp_script("gone", "/bin/true", interval=1)
    first = load(tmp_path, scripts, track_scripts("bad", "gone"), name="1.conf")
    scripts2 = (
        vrrp_script("bad", "/bin/false", interval=1, weight=-5)  # a new weight: the trackers' business
        + vrrp_script("new", "/bin/true", interval=1)
        + vrrp_script("slower", "/bin/false", interval=3)
    )
    second = load(tmp_path, scripts2, track_scripts("bad", "new", "slower"), name="2.conf")
    scripts3 = vrrp_script("bad", "/bin/false", interval=2)  # a new interval: starts over
    third = load(tmp_path, scripts3, track_scripts("bad"), name="3.conf")

    async def body(hub: Hub) -> None:
        hub.trackers.configure(first)
        await hub.until(lambda: hub.trackers.status.scripts == {"bad": BAD, "gone": GOOD}, 5)
        kept = hub.trackers.scripts["bad"]
        gone = hub.trackers.scripts["gone"]
        hub.trackers.configure(second)
        assert hub.trackers.scripts["bad"] is kept
        assert hub.script("bad") is BAD  # no INIT again after a reload
        assert kept.conf.weight.weight == -5
        assert hub.script("new") is INIT and hub.script("slower") is INIT
        assert "gone" not in hub.trackers.status.scripts
        await asyncio.sleep(0)
        assert gone.task.cancelled() or gone.task.done()
        await hub.until(lambda: hub.script("new") is GOOD and hub.script("slower") is BAD, 5)
        hub.trackers.configure(third)
        assert hub.trackers.scripts["bad"] is not kept
        assert hub.script("bad") is INIT
        assert set(hub.trackers.scripts) == {"bad"}

    run(body)


def test_only_tracked_scripts_run(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        vrrp_script("used", "/bin/true", interval=1) + vrrp_script("unused", "/bin/true", interval=1),
        track_scripts("used"),
    )

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        assert set(hub.trackers.scripts) == {"used"}

    run(body)


# ---- changed(), ready(), interfaces --------------------------------------------------------


def test_changed_is_coalesced_per_loop_pass(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "",
        "track_interface {\n    pyk-a\n    pyk-b\n    pyk-c weight 10\n  }",
    )

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        assert hub.trackers.interfaces() == {"pyk-a", "pyk-b", "pyk-c"}
        # interfaces that do not exist start down
        assert hub.trackers.status.interfaces == {"pyk-a": False, "pyk-b": False, "pyk-c": False}
        await asyncio.sleep(0.05)
        hub.calls.clear()
        for name in ("pyk-a", "pyk-b", "pyk-c"):
            hub.trackers.set_interface(name, True)
        hub.trackers.set_interface("pyk-b", False)
        hub.trackers.set_interface("not-tracked", True)
        assert hub.calls == []  # not from inside the callers' pass
        await asyncio.sleep(0.05)
        assert len(hub.calls) == 1
        assert hub.calls[0].interfaces == {"pyk-a": True, "pyk-b": False, "pyk-c": True}
        hub.trackers.set_interface("pyk-a", True)  # no change: no call
        await asyncio.sleep(0.05)
        assert len(hub.calls) == 1

    run(body)


def test_interface_state_from_the_kernel() -> None:
    assert interface_up("lo") is True
    assert interface_up("pyk-no-such") is False


def test_instances_wait_for_unweighted_scripts_only(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        vrrp_script("slow", "/bin/sh -c 'sleep 1.5'", interval=5)
        + vrrp_script("weighted", "/bin/sh -c 'sleep 30'", interval=40, timeout=35, weight=-5),
        track_scripts("slow", "weighted"),
    )

    inst = next(iter(config.vrrp_instance.values()))

    async def body(hub: Hub) -> None:
        def waiting() -> tuple[str, ...]:
            return tuple(instance_verdict(inst, hub.trackers.status).waiting)

        hub.trackers.configure(config)
        assert waiting() == ("slow",)
        took = await hub.until(lambda: not waiting(), 5)
        assert took > 1.2
        assert hub.script("weighted") is INIT  # still running; a weighted INIT does not hold anyone

    run(body)


def test_stop_terminates_running_scripts(tmp_path: Path) -> None:
    marker = f"pyk-stop-{os.getpid()}"
    config = load(
        tmp_path,
        vrrp_script("hang", f"/bin/bash -c 'exec -a {marker} sleep 60'", interval=60, timeout=60),
        track_scripts("hang"),
    )

    def running() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        await hub.until(lambda: bool(running()), 3)
        await hub.trackers.stop()
        await asyncio.sleep(0.3)
        assert running() == []
        assert hub.trackers.scripts == {}

    run(body)


def test_dump_uses_keepalived_layout(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        vrrp_script("chk_true", "/bin/true", interval=1, weight="4 reverse", rise=2),
        track_scripts("chk_true"),
    )

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        before = hub.trackers.dump()
        assert "   Init state = INIT\n" in before
        await hub.until(lambda: hub.script("chk_true") is GOOD, 5)
        text = hub.trackers.dump()
        true = os.path.realpath(shutil.which("true") or "")
        assert text.startswith("------< VRRP Scripts >------\n VRRP Script = chk_true\n")
        for line in (
            f"   Command = '{true}'",
            "   Interval = 1 sec",
            "   Timeout = 0 sec",
            "   Weight = 4 reverse",
            "   Rise = 2",
            "   Fall = 1",
            "   Result = 2",
            "   Status = GOOD",
            "   Script uid:gid = 0:0",
            "     VI_1, weight 4 reverse",
            "   State = idle",
        ):
            assert line + "\n" in text

    run(body)


# ---- the seeds' scripts, as written ----------------------------------------------------------


def test_seed_bash_script_is_split_as_keepalived_splits_it(tmp_path: Path) -> None:
    # keepalived splits the quoted command on spaces outside single quotes, without a
    # shell: bash runs only `[[ -f FILE ]]` (with `&&` as $0 and the rest as $1...), so
    # the script FAILS while the file is absent and SUCCEEDS while it exists -- the
    # opposite of what it seems to say. keepalived 2.2.7 does the same (measured).
    down = tmp_path / "down"
    command = f"/bin/bash -c '[[ -f {down} ]]' && exit 1 || exit 0"
    config = load(tmp_path, vrrp_script("chk_seed", command, interval=1), track_scripts("chk_seed"))
    script = config.vrrp_script["chk_seed"].script
    assert script is not None
    assert script.argv == ("/bin/bash", "-c", f"[[ -f {down} ]]", "&&", "exit", "1", "||", "exit", "0")

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        await hub.until(lambda: hub.script("chk_seed") is BAD, 5)  # file absent: failed
        down.write_text("")
        await hub.until(lambda: hub.script("chk_seed") is GOOD, 5)  # file present: succeeded

    run(body)


@pytest.mark.skipif(shutil.which("killall") is None, reason="killall (psmisc) is not installed")
def test_seed_killall_script(tmp_path: Path) -> None:
    if any(p.info["name"] == "haproxy" for p in psutil.process_iter(["name"])):
        pytest.skip("a real haproxy runs here")
    config = load(tmp_path, vrrp_script("chk_haproxy", "killall -0 haproxy", interval=1), track_scripts("chk_haproxy"))
    fake = tmp_path / "haproxy"
    shutil.copy("/bin/sleep", fake)

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        await hub.until(lambda: hub.script("chk_haproxy") is BAD, 5)
        proc = subprocess.Popen([str(fake), "60"])
        try:
            await hub.until(lambda: hub.script("chk_haproxy") is GOOD, 5)
        finally:
            proc.kill()
            proc.wait()
        await hub.until(lambda: hub.script("chk_haproxy") is BAD, 5)

    run(body)


# ---- files and processes, through their watchers ------------------------------------------


def test_track_file_values_reach_the_status(tmp_path: Path) -> None:
    pytest.importorskip("watchdog.trackfile")
    value = tmp_path / "value"
    created = tmp_path / "created"
    extra = f"""
track_file tf {{
  file "{value}"
  weight 3
}}
track_file made {{
  file "{created}"
  init_file 7
}}
"""
    config = load(tmp_path, extra, "track_file {\n    tf\n    made weight 0\n  }")
    value.write_text("-3\n")

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        assert hub.trackers.status.files == {"tf": -3, "made": 7}  # init_file wrote 7
        assert created.read_text().strip() == "7"
        value.write_text("5\n")
        await hub.until(lambda: hub.trackers.status.files["tf"] == 5, 5)
        value.unlink()  # a file that goes away reads as 0
        await hub.until(lambda: hub.trackers.status.files["tf"] == 0, 5)
        assert "------< VRRP Track files >------\n Track file = made\n" in hub.trackers.dump()

    run(body)


def test_track_process_quorum_reaches_the_status(tmp_path: Path) -> None:
    pytest.importorskip("vrrp_child.track_process")
    name = f"pyktp{os.getpid() % 100000}"
    fake = tmp_path / name
    shutil.copy("/bin/sleep", fake)
    extra = f"""
vrrp_track_process tp {{
  process {name}
  quorum 1
}}
"""
    config = load(tmp_path, extra, "track_process {\n    tp\n  }")

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        assert hub.trackers.status.processes == {"tp": False}
        proc = subprocess.Popen([str(fake), "60"])
        try:
            await hub.until(lambda: hub.trackers.status.processes["tp"], 5)
        finally:
            proc.kill()
            proc.wait()
        await hub.until(lambda: not hub.trackers.status.processes["tp"], 5)

    run(body)


def test_overrunning_script_skips_runs_as_keepalived(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # timeout defaults to interval: each run ends just after its tick, which is skipped
    caplog.set_level(logging.INFO)
    config = load(tmp_path, vrrp_script("slow", "/bin/sleep 60", interval=1), track_scripts("slow"))

    async def body(hub: Hub) -> None:
        hub.trackers.configure(config)
        await asyncio.sleep(4.5)
        assert 2 <= hub.trackers.scripts["slow"].runs <= 3  # every other second
        assert hub.script("slow") is BAD

    run(body)
    assert "Track script slow is already running, expect idle - skipping run" in messages(caplog)
    assert "VRRP_Script(slow) timed_out" in messages(caplog)
