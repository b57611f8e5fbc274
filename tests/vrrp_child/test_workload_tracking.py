"""VrrpWorkload on a real loop, in node 1 of a namespace pair (node 2 runs nothing, so our
instances become MASTER after their Master_Down_Interval): trackers into effective priority and
FAULT, a sync group whose member faults, virtual routes and rules that follow MASTER, the dumps.
VRRPv3 with advert_int 0.1: Master_Down_Interval about 0.35 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from conf import load
from labkit.lab import Lab
from tests.vrrp_child.conftest import needs_root
from vrrp_child import fsm
from vrrp_child.workload import VrrpWorkload
from watchdog.protocol import DumpKind, Json

pytestmark = needs_root


def instance(name: str, vrid: int, vip: str, *extra: str) -> str:
    lines = "\n".join(f"    {x}" for x in extra)
    return f"""
vrrp_instance {name} {{
    interface va
    version 3
    virtual_router_id {vrid}
    priority 100
    advert_int 0.1
{lines}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


def flag_script(tmp: Path, name: str, weight: int) -> str:
    """A vrrp_script that fails while the file `name` exists in `tmp`."""
    return f"""
vrrp_script {name} {{
    script "/usr/bin/test ! -e {tmp / name}"
    interval 1
    weight {weight}
}}
"""


def run(
    lab: Lab,
    tmp: Path,
    text: str,
    body: Callable[[VrrpWorkload], Awaitable[None]],
    *,
    resume: dict[str, Json] | None = None,
    reports: dict[str, Json] | None = None,
) -> dict[str, Json]:
    """Start the workload in node 1 with `text` as its configuration (after `resume`, a
    predecessor's reports, as the parent hands them to a respawned child), run `body`, stop it;
    the last state reports."""
    path = tmp / "keepalived.conf"
    path.write_text("global_defs {\n    script_user root\n}\n" + textwrap.dedent(text))
    if reports is None:
        reports = {}

    async def main() -> None:
        result = load(str(path))
        assert result.config is not None, result.diagnostics
        w = VrrpWorkload()
        if resume is not None:
            await w.resume(resume)
        await w.start(result.config, reports.update)
        try:
            await body(w)
        finally:
            await w.stop()

    # the whole loop in the node: interface names resolve in the thread's namespace
    with lab.node(1).inside():
        asyncio.run(main())
    return reports


async def until(what: str, probe: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def state(w: VrrpWorkload, name: str) -> fsm.State:
    return w.instances[name].state


def test_a_failing_weighted_script_lowers_the_priority_and_a_weight_0_one_faults(pair: Lab, tmp_path: Path) -> None:
    text = (
        flag_script(tmp_path, "minus", -30)
        + flag_script(tmp_path, "hard", 0)
        + instance("VI_1", 51, "192.0.2.100", "track_script {", "    minus", "    hard", "}")
    )

    async def body(w: VrrpWorkload) -> None:
        await until("MASTER", lambda: state(w, "VI_1") is fsm.State.MASTER)
        inst = w.instances["VI_1"]
        assert inst.params.priority == 100
        (tmp_path / "minus").touch()
        await until("priority 70", lambda: inst.params.priority == 70, 4.0)
        assert inst.state is fsm.State.MASTER  # a lower priority alone does not give up MASTER
        dump = await w.dump(DumpKind.DATA)
        assert "Effective priority = 70" in dump and "Priority = 100" in dump and "minus" in dump
        (tmp_path / "hard").touch()
        await until("FAULT", lambda: inst.state is fsm.State.FAULT, 4.0)
        assert not pair.node(1).has("192.0.2.100")
        assert "hard" in (inst.fault_reason or "")
        (tmp_path / "hard").unlink()
        (tmp_path / "minus").unlink()
        await until(
            "back to MASTER at 100", lambda: inst.state is fsm.State.MASTER and inst.params.priority == 100, 6.0
        )
        await until("VIP back", lambda: pair.node(1).has("192.0.2.100"), 2.0)

    reports = run(pair, tmp_path, text, body)
    assert isinstance(reports["VI_1"], dict) and reports["VI_1"]["state"] == "STOP"


def test_a_member_fault_takes_its_sync_group_to_fault_and_back(pair: Lab, tmp_path: Path) -> None:
    text = (
        flag_script(tmp_path, "hard", 0)
        + "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
        + instance("VI_1", 51, "192.0.2.100")
        + instance("VI_2", 52, "192.0.2.101", "track_script {", "    hard", "}")
    )

    async def body(w: VrrpWorkload) -> None:
        await until("both MASTER", lambda: w.groups["G1"].state is fsm.State.MASTER)
        assert state(w, "VI_1") is state(w, "VI_2") is fsm.State.MASTER
        (tmp_path / "hard").touch()
        await until("group FAULT", lambda: w.groups["G1"].state is fsm.State.FAULT, 4.0)
        assert state(w, "VI_1") is fsm.State.FAULT and not w.instances["VI_1"].own_fault
        await until("VIPs gone", lambda: not pair.node(1).held(["192.0.2.100", "192.0.2.101"]), 2.0)
        dump = await w.dump(DumpKind.DATA)
        assert "VRRP Sync Group = G1, FAULT" in dump and "Fault = sync group G1: VI_2 in FAULT" in dump
        (tmp_path / "hard").unlink()
        await until("group MASTER again", lambda: w.groups["G1"].state is fsm.State.MASTER, 6.0)
        await until("VIPs back", lambda: len(pair.node(1).held(["192.0.2.100", "192.0.2.101"])) == 2, 2.0)

    run(pair, tmp_path, text, body)


def test_group_state_in_reports_and_json_and_a_respawn_resumes_the_group_as_master(pair: Lab, tmp_path: Path) -> None:
    out = tmp_path / "group-master.out"
    script = tmp_path / "group-master.sh"
    script.write_text(f'#!/bin/sh\necho "$*" >> {out}\n')
    script.chmod(0o755)
    members = "    group {\n        VI_1\n        VI_2\n    }\n"
    group = f'vrrp_sync_group G1 {{\n{members}    notify_master "{script} up"\n}}\n'
    text = group + instance("VI_1", 51, "192.0.2.100") + instance("VI_2", 52, "192.0.2.101")
    live: dict[str, Json] = {}
    seen: dict[str, Json] = {}

    async def first(w: VrrpWorkload) -> None:
        await until("group MASTER", lambda: w.groups["G1"].state is fsm.State.MASTER)
        await until("group master script", out.exists, 3.0)
        dumped = json.loads(await w.dump(DumpKind.JSON))
        # keepalived's array of instances, each with its group's name and state
        assert [(d["data"]["iname"], d["data"]["sync_group"], d["data"]["sync_group_state"]) for d in dumped] == [
            ("VI_1", "G1", "MASTER"),
            ("VI_2", "G1", "MASTER"),
        ]
        seen.update(live)

    reports = run(pair, tmp_path, text, first, reports=live)
    assert seen["group:G1"] == {"state": "MASTER", "members": ["VI_1", "VI_2"]}
    assert reports["group:G1"] == {"state": "STOP", "members": ["VI_1", "VI_2"]}
    assert out.read_text() == "up\n"

    # A respawned child: the parent hands the MASTER reports back; the group resumes without an
    # election (MASTER at once, not after its Master_Down_Interval of 0.35 s) and without
    # running its notify_master again.
    async def second(w: VrrpWorkload) -> None:
        assert w.groups["G1"].state is fsm.State.MASTER
        assert state(w, "VI_1") is state(w, "VI_2") is fsm.State.MASTER
        await until("VIPs", lambda: len(pair.node(1).held(["192.0.2.100", "192.0.2.101"])) == 2, 2.0)
        await asyncio.sleep(0.3)

    run(pair, tmp_path, text, second, resume=seen)
    assert out.read_text() == "up\n"


def test_virtual_routes_and_rules_follow_master(pair: Lab, tmp_path: Path) -> None:
    text = flag_script(tmp_path, "hard", 0) + instance(
        "VI_1",
        51,
        "192.0.2.100",
        "track_script {",
        "    hard",
        "}",
        "virtual_routes {",
        "    198.51.100.0/24 via 192.0.2.2",
        "    203.0.113.0/24 src 192.0.2.100 via 192.0.2.2 table 100",
        "}",
        "virtual_rules {",
        "    from 192.0.2.100 table 100",
        "}",
    )
    node = pair.node(1)

    def routes() -> set[str]:
        return {
            r["dst"] + (f" t{r['table']}" if r.get("table", "main") != "main" else "")
            for r in node.ip_json("route", "show", "table", "all")
        }

    def rules() -> list[object]:
        return [r for r in node.ip_json("rule", "show") if r.get("table") == "100"]

    async def body(w: VrrpWorkload) -> None:
        assert "198.51.100.0/24" not in routes()
        await until("MASTER", lambda: state(w, "VI_1") is fsm.State.MASTER)
        await until("routes", lambda: {"198.51.100.0/24", "203.0.113.0/24 t100"} <= routes(), 2.0)
        assert len(rules()) == 1
        (tmp_path / "hard").touch()
        await until("FAULT", lambda: state(w, "VI_1") is fsm.State.FAULT, 4.0)
        await until("routes gone", lambda: not {"198.51.100.0/24", "203.0.113.0/24 t100"} & routes(), 2.0)
        assert rules() == [] and not node.has("192.0.2.100")
        (tmp_path / "hard").unlink()
        await until("MASTER again", lambda: state(w, "VI_1") is fsm.State.MASTER, 6.0)
        await until("routes again", lambda: {"198.51.100.0/24", "203.0.113.0/24 t100"} <= routes(), 2.0)

    run(pair, tmp_path, text, body)
    assert not {"198.51.100.0/24", "203.0.113.0/24 t100"} & routes() and rules() == []


def test_reload_keeps_states_tracker_results_and_group(pair: Lab, tmp_path: Path) -> None:
    group = """
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
    track_script {
        minus
    }
}
"""
    text = (
        flag_script(tmp_path, "minus", -30)
        + group
        + instance("VI_1", 51, "192.0.2.100")
        + instance("VI_2", 52, "192.0.2.101")
    )
    path = tmp_path / "keepalived.conf"

    async def body(w: VrrpWorkload) -> None:
        await until("group MASTER", lambda: w.groups["G1"].state is fsm.State.MASTER)
        (tmp_path / "minus").touch()
        await until("priority 70", lambda: w.instances["VI_2"].params.priority == 70, 4.0)
        kept = w.instances["VI_1"]
        # the same configuration plus one VIP: nothing restarts, the script's result stays
        new = load(str(path.with_name("new.conf")))
        assert new.config is not None
        await w.reload(new.config)
        assert w.instances["VI_1"] is kept and kept.state is fsm.State.MASTER
        assert kept.params.priority == 70 and w.groups["G1"].state is fsm.State.MASTER
        await until("new VIP", lambda: pair.node(1).has("192.0.2.102"), 2.0)

    path.with_name("new.conf").write_text(
        "global_defs {\n    script_user root\n}\n"
        + text.replace("        192.0.2.100/24\n", "        192.0.2.100/24\n        192.0.2.102/24\n")
    )
    run(pair, tmp_path, text, body)


def test_fifo_lines_for_states_and_priority_changes(pair: Lab, tmp_path: Path) -> None:
    fifo = tmp_path / "vrrp.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # read-write: the writer never sees "no reader"
    got: list[str] = []

    def read() -> list[str]:
        with contextlib.suppress(BlockingIOError):
            got.extend(os.read(fd, 65536).decode().splitlines())
        return got

    text = (
        f"global_defs {{\n    vrrp_notify_fifo {fifo}\n}}\n"
        + flag_script(tmp_path, "minus", -30)
        + instance("VI_1", 51, "192.0.2.100", "notify_priority_changes", "track_script {", "    minus", "}")
    )

    async def body(w: VrrpWorkload) -> None:
        await until("MASTER", lambda: state(w, "VI_1") is fsm.State.MASTER)
        (tmp_path / "minus").touch()
        await until("the priority line", lambda: 'INSTANCE "VI_1" MASTER_PRIORITY 70' in read(), 4.0)

    try:
        run(pair, tmp_path, text, body)
        lines = read()
    finally:
        os.close(fd)
    assert lines[:2] == ['INSTANCE "VI_1" BACKUP 100', 'INSTANCE "VI_1" MASTER 100']
    assert lines[-1] == 'INSTANCE "VI_1" STOP 70'
