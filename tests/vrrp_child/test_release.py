"""vrrp_child.release: the parent's priority-0 adverts for the instances of a hung or dead
VRRP child read each interface once, not once per instance (seconds of the parent's loop for
1,000 instances). In node 1 of a namespace pair (interface va, 192.0.2.1/24)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

from conf import load
from conf.values import IPAddress
from labkit.lab import Lab
from tests.vrrp_child.test_workload_tracking import instance
from vrrp_child.netlink import Interface, Rtnl
from vrrp_child.release import announce_stop


class CountingRtnl(Rtnl):
    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[str] = []

    def interface(self, name: str, exclude: Iterable[IPAddress] = ()) -> Interface | None:
        self.looked_up.append(name)
        return super().interface(name, exclude)


def test_announce_stop_reads_each_interface_once(pair: Lab, tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(textwrap.dedent("".join(instance(f"VI_{v}", v, f"192.0.2.{100 + v}") for v in range(1, 11))))
    result = load(str(path))
    assert result.config is not None, result.diagnostics
    with pair.node(1).inside():  # the netlink socket in the node's namespace
        rtnl = CountingRtnl()
        with rtnl:
            errors = announce_stop(list(result.config.vrrp_instance.values()), rtnl)
    assert errors == []
    assert rtnl.looked_up == ["va"]
