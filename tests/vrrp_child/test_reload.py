"""A VRRP reload (vrrp_child.reload): the plan of the instances is pure; a reload that fails
part-way is rolled back when it can be, and otherwise says exactly what switched. The
failures run on a real loop in node 1 of a namespace pair, as test_workload_tracking's."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from conf import load
from conf.global_defs import GlobalDefs
from conf.model import Config
from conf.vrrp import VrrpInstance
from labkit.lab import Lab
from tests.vrrp_child.test_workload_tracking import instance, run, state, until
from vrrp_child import fsm
from vrrp_child.instance import Instance
from vrrp_child.reload import instance_plan
from vrrp_child.workload import VrrpWorkload
from watchdog.protocol import Json
from watchdog.reload import ReloadFailed, ReloadPlan


def config(tmp_path: Path, text: str, name: str = "k.conf") -> Config:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    result = load(str(path))
    assert result.config is not None, result.diagnostics
    return result.config


def test_the_instance_plan_keeps_what_keeps_its_identity(tmp_path: Path) -> None:
    old = config(
        tmp_path,
        instance("VI_1", 51, "192.0.2.1")
        + instance("VI_2", 52, "192.0.2.2")
        + instance("VI_3", 53, "192.0.2.3")
        + instance("VI_4", 54, "192.0.2.4"),
    )
    new = config(
        tmp_path,
        instance("VI_1", 51, "192.0.2.1")
        + instance("VI_2", 52, "192.0.2.22")  # a VIP more or less: changed in place
        + instance("VI_3", 63, "192.0.2.3")  # another VRID: another instance
        + instance("VI_5", 55, "192.0.2.5"),
        "new.conf",
    )
    p = instance_plan(old.vrrp_instance, new)
    assert p == ReloadPlan(kept=("VI_1",), added=("VI_3", "VI_5"), removed=("VI_3", "VI_4"), changed=("VI_2",))
    assert p.replaced == ("VI_3",)


STATIC = """
static_ipaddress {{
    {address}/24 dev va
}}
"""


def failing(real: Callable[[GlobalDefs], None], bad: GlobalDefs) -> Callable[[GlobalDefs], None]:
    def reopen(gdefs: GlobalDefs) -> None:
        real(gdefs)
        if gdefs == bad:
            raise OSError("cannot open the notify FIFO")

    return reopen


def test_a_reload_whose_second_step_fails_is_rolled_back(
    pair: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = STATIC.format(address="198.51.100.1") + instance("VI_1", 51, "192.0.2.100")
    # the second step (notify FIFOs and SMTP) fails after the first switched the static address
    new = config(
        tmp_path,
        "global_defs {\n    router_id other\n}\n"
        + STATIC.format(address="198.51.100.2")
        + instance("VI_1", 51, "192.0.2.100")
        + instance("VI_2", 52, "192.0.2.101"),
        "new.conf",
    )

    async def body(w: VrrpWorkload) -> None:
        await until("MASTER", lambda: state(w, "VI_1") is fsm.State.MASTER)
        old, kept, reopen = w.config, w.instances["VI_1"], w.notifier.reopen
        monkeypatch.setattr(w.notifier, "reopen", failing(reopen, new.global_defs))
        with pytest.raises(ReloadFailed) as failed:
            await w.reload(new)
        e = failed.value
        assert not e.partial and e.failed == "notify FIFOs and SMTP alerts"
        assert e.rolled_back == ("static addresses, routes and rules", "notify FIFOs and SMTP alerts")
        assert e.log_line().startswith("Reload failed, keeping the running configuration: notify FIFOs")
        # the static address is the old one again, and nothing else moved
        assert pair.node(1).has("198.51.100.1") and not pair.node(1).has("198.51.100.2")
        assert old is not None and w.static_config is old and w.config is old
        assert w.notifier.gdefs == old.global_defs
        assert list(w.instances) == ["VI_1"] and w.instances["VI_1"] is kept and kept.state is fsm.State.MASTER
        # the next reload starts from the running configuration
        monkeypatch.setattr(w.notifier, "reopen", reopen)
        await w.reload(new)
        assert sorted(w.instances) == ["VI_1", "VI_2"] and w.instances["VI_1"] is kept
        await until("new static address", lambda: pair.node(1).has("198.51.100.2"), 2.0)
        assert not pair.node(1).has("198.51.100.1")

    run(pair, tmp_path, text, body)


def test_a_failure_after_instances_were_removed_says_what_switched(
    pair: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        STATIC.format(address="198.51.100.1")
        + instance("VI_1", 51, "192.0.2.100")
        + instance("VI_2", 52, "192.0.2.101")
    )
    new = config(
        tmp_path,
        STATIC.format(address="198.51.100.2")
        + instance("VI_1", 51, "192.0.2.100")
        + instance("VI_3", 53, "192.0.2.103"),
        "new.conf",
    )

    async def body(w: VrrpWorkload) -> None:
        await until("both MASTER", lambda: all(i.state is fsm.State.MASTER for i in w.instances.values()))
        create_instance = w.builder.create

        def create(conf: object) -> None:
            raise RuntimeError("no memory")

        monkeypatch.setattr(w.builder, "create", create)
        with pytest.raises(ReloadFailed) as failed:
            await w.reload(new)
        e = failed.value
        assert e.partial and e.failed == "instances added, GARP pacing, link delays"
        assert e.switched[-2:] == ("instances removed", "instances added, GARP pacing, link delays")
        assert "sync groups" in e.switched and "trackers" in e.switched and not e.rolled_back
        assert "keeping the running configuration" not in e.log_line()
        assert e.log_line().startswith("Reload failed part-way in instances added, GARP pacing, link delays:")
        assert list(w.instances) == ["VI_1"]  # VI_2 has gone, as the log says
        await asyncio.sleep(0.1)
        assert not pair.node(1).has("192.0.2.101")
        # the static address switched, as reported; the next reload starts from what runs
        assert pair.node(1).has("198.51.100.2") and not pair.node(1).has("198.51.100.1")
        assert w.static_config is new
        monkeypatch.setattr(w.builder, "create", create_instance)
        await w.reload(new)
        assert sorted(w.instances) == ["VI_1", "VI_3"]
        await until("VI_3 MASTER", lambda: state(w, "VI_3") is fsm.State.MASTER)
        assert pair.node(1).has("198.51.100.2")

    with caplog.at_level(logging.INFO, logger="pykeepalived_vrrp"):
        run(pair, tmp_path, text, body)
    assert "(VI_2) removed by the reload" in caplog.text


def test_a_sync_group_the_reload_removed_comes_back_with_its_state(
    pair: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
    text = group + instance("VI_1", 51, "192.0.2.100") + instance("VI_2", 52, "192.0.2.101")
    # no group any more, and VI_2 changed: the kept instances' step fails, after the groups'
    new = config(tmp_path, instance("VI_1", 51, "192.0.2.100") + instance("VI_2", 52, "192.0.2.102"), "new.conf")
    reports: dict[str, Json] = {}

    async def body(w: VrrpWorkload) -> None:
        await until("group MASTER", lambda: w.groups["G1"].state is fsm.State.MASTER)
        g1, vi_2 = w.groups["G1"], w.instances["VI_2"]
        real = Instance.reconfigure

        def reconfigure(self: Instance, conf: VrrpInstance) -> None:
            real(self, conf)  # part of the work done, then a failure; the old one is taken back
            if self is vi_2 and conf == new.vrrp_instance["VI_2"]:
                raise RuntimeError("cannot")

        # on the class: an Instance has slots, so no attribute of its own to patch
        monkeypatch.setattr(Instance, "reconfigure", reconfigure)
        with pytest.raises(ReloadFailed) as failed:
            await w.reload(new)
        e = failed.value
        assert not e.partial and e.failed == "instances kept or changed"
        assert e.rolled_back[-2:] == ("sync groups", "instances kept or changed")
        # the group is back as it was, MASTER, its members in it; the parent heard so
        assert w.groups == {"G1": g1} and g1.state is fsm.State.MASTER
        assert w.group_of == {"VI_1": "G1", "VI_2": "G1"}
        assert all(i.in_sync_group and i.state is fsm.State.MASTER for i in w.instances.values())
        assert reports["group:G1"] == {"state": "MASTER", "members": ["VI_1", "VI_2"]}
        assert vi_2.conf is not new.vrrp_instance["VI_2"]
        await asyncio.sleep(0.1)
        assert pair.node(1).has("192.0.2.101") and not pair.node(1).has("192.0.2.102")

    run(pair, tmp_path, text, body, reports=reports)
