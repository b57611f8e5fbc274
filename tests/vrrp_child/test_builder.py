"""vrrp_child.builder: the instances of a start are built reading each interface from the
kernel once (a lookup dumps the interface's addresses, the VIPs held included: one per
instance made a start with 1,000 VIPs on the node take seconds). In node 1 of a namespace
pair, as test_workload_tracking's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from conf.values import IPAddress
from labkit.lab import Lab
from tests.vrrp_child.test_workload_tracking import instance, run
from vrrp_child.netlink import Interface, Rtnl
from vrrp_child.workload import VrrpWorkload

INSTANCES = 20


def test_a_start_reads_each_interface_once_for_all_its_instances(
    pair: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    real = Rtnl.interface

    def interface(self: Rtnl, name: str, exclude: Iterable[IPAddress] = ()) -> Interface | None:
        looked_up.append(name)
        return real(self, name, exclude)

    monkeypatch.setattr(Rtnl, "interface", interface)
    text = "".join(instance(f"VI_{vrid}", vrid, f"192.0.2.{100 + vrid}") for vrid in range(1, INSTANCES + 1))
    during_start: list[str] = []

    async def body(w: VrrpWorkload) -> None:
        during_start.extend(looked_up)
        assert len(w.instances) == INSTANCES

    run(pair, tmp_path, text, body)
    assert during_start == ["va"]
