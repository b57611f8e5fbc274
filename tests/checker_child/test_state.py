"""Real/virtual server state (keepalived's ipwrapper.c rules): pure, no sockets."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import conf
from checker_child.state import (
    Event,
    Log,
    QuorumDown,
    QuorumUp,
    RsDown,
    RsId,
    RsUp,
    RsWeight,
    Servers,
    SorryIn,
    SorryOut,
)
from checker_child.table import Table


def servers(tmp_path: Path, body: str, header: str = "10.0.0.1 80", top: str = "") -> Servers:
    path = tmp_path / "k.conf"
    path.write_text(f"{top}\nvirtual_server {header} {{\n lvs_sched rr\n lvs_method NAT\n protocol TCP\n{body}\n}}\n")
    cfg = conf.load(str(path)).config
    assert cfg is not None
    return Servers(cfg)


def rs(n: int) -> RsId:
    return RsId("10.0.0.1:80 TCP", f"192.168.1.{n}:80")


def weights(t: Table) -> dict[str, int]:
    """{"192.168.1.2": weight} of the single service."""
    (dests,) = t.destinations.values()
    return {str(d.key.address): d.weight for d in dests.values()}


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, Log)]


def logs(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, Log)]


TCP = "TCP_CHECK { connect_timeout 1 }"


def test_no_checkers_always_alive(tmp_path: Path) -> None:
    s = servers(tmp_path, "real_server 192.168.1.2 80 { weight 4 }")
    assert weights(s.table()) == {"192.168.1.2": 4}
    assert s.is_alive(rs(2))


def test_without_alpha_checkers_start_up_and_one_failure_removes(tmp_path: Path) -> None:
    s = servers(tmp_path, f"real_server 192.168.1.2 80 {{ {TCP} }}\nreal_server 192.168.1.3 80 {{ {TCP} }}")
    init = s.initial_events()
    assert kinds(init) == ["QuorumUp"]  # quorum starts down, the real servers bring it up at start
    assert logs(init) == ["Gained quorum 1+0=1 <= 2 for VS [10.0.0.1]:tcp:80"]
    assert isinstance(init[-1], QuorumUp) and init[-1].init and init[-1].smtp_message.startswith("=> Starting with")
    assert weights(s.table()) == {"192.168.1.2": 1, "192.168.1.3": 1}
    assert s.checker_result(rs(2), 0, True) == []  # confirms up: nothing
    ev = s.checker_result(rs(2), 0, False)
    assert kinds(ev) == ["RsDown"]
    assert logs(ev) == ["Removing service [192.168.1.2]:tcp:80 from VS [10.0.0.1]:tcp:80"]
    down = ev[1]
    assert isinstance(down, RsDown) and down.fmt_rs == "[192.168.1.2]:tcp:80" and down.fmt_vs == "[10.0.0.1]:tcp:80"
    assert weights(s.table()) == {"192.168.1.3": 1}
    ev = s.checker_result(rs(2), 0, True)
    assert kinds(ev) == ["RsUp"] and logs(ev) == ["Adding service [192.168.1.2]:tcp:80 to VS [10.0.0.1]:tcp:80"]


def test_alpha_starts_down_and_first_failure_notifies(tmp_path: Path) -> None:
    s = servers(tmp_path, f"alpha\nreal_server 192.168.1.2 80 {{ {TCP} }}")
    assert kinds(s.initial_events()) == []  # no sorry server: no quorum event at start
    assert weights(s.table()) == {}
    # update_svr_checker_state: a first verdict that confirms down runs notify_down once.
    assert kinds(s.checker_result(rs(2), 0, False)) == ["RsDown"]
    assert s.checker_result(rs(2), 0, False) == []
    ev = s.checker_result(rs(2), 0, True)
    assert kinds(ev) == ["RsUp", "QuorumUp"]
    assert weights(s.table()) == {"192.168.1.2": 1}


def test_all_checkers_must_be_up(tmp_path: Path) -> None:
    s = servers(tmp_path, f"real_server 192.168.1.2 80 {{ {TCP}\n {TCP} }}")
    s.initial_events()
    assert kinds(s.checker_result(rs(2), 0, False)) == ["RsDown", "QuorumDown"]
    assert s.checker_result(rs(2), 1, False) == []  # already down
    assert s.checker_result(rs(2), 0, True) == []  # checker 1 still failing
    assert not s.is_alive(rs(2))
    assert kinds(s.checker_result(rs(2), 1, True)) == ["RsUp", "QuorumUp"]


def test_inhibit_on_failure_keeps_weight_zero(tmp_path: Path) -> None:
    s = servers(tmp_path, f"inhibit_on_failure\nreal_server 192.168.1.2 80 {{ weight 3\n {TCP} }}")
    ev = s.checker_result(rs(2), 0, False)
    assert logs(ev)[0] == "Disabling service [192.168.1.2]:tcp:80 of VS [10.0.0.1]:tcp:80"
    assert weights(s.table()) == {"192.168.1.2": 0}
    ev = s.checker_result(rs(2), 0, True)
    assert logs(ev)[0] == "Enabling service [192.168.1.2]:tcp:80 of VS [10.0.0.1]:tcp:80"
    assert weights(s.table()) == {"192.168.1.2": 3}


def test_alpha_inhibit_starts_at_weight_zero(tmp_path: Path) -> None:
    s = servers(tmp_path, f"alpha\ninhibit_on_failure\nreal_server 192.168.1.2 80 {{ {TCP} }}")
    assert weights(s.table()) == {"192.168.1.2": 0}


def test_quorum_with_hysteresis(tmp_path: Path) -> None:
    body = "quorum 2\nhysteresis 1\n" + "\n".join(f"real_server 192.168.1.{n} 80 {{ {TCP} }}" for n in (2, 3, 4))
    s = servers(tmp_path, body)
    assert kinds(s.initial_events()) == ["QuorumUp"]  # 3 >= 2+1
    assert kinds(s.checker_result(rs(2), 0, False)) == ["RsDown"]  # 2: not below 2-1
    assert kinds(s.checker_result(rs(3), 0, False)) == ["RsDown"]  # 1: not below 1
    ev = s.checker_result(rs(4), 0, False)
    assert kinds(ev) == ["RsDown", "QuorumDown"]
    assert "Lost quorum 2-1=1 > 0 for VS [10.0.0.1]:tcp:80" in logs(ev)
    assert kinds(s.checker_result(rs(2), 0, True)) == ["RsUp"]  # 1 < 2+1
    assert kinds(s.checker_result(rs(3), 0, True)) == ["RsUp"]  # 2 < 3
    ev = s.checker_result(rs(4), 0, True)
    assert kinds(ev) == ["RsUp", "QuorumUp"] and "Gained quorum 2+1=3 <= 3 for VS [10.0.0.1]:tcp:80" in logs(ev)
    assert s.quorum_up("10.0.0.1:80 TCP")


def test_sorry_server_replaces_alive_servers(tmp_path: Path) -> None:
    body = "quorum 2\nsorry_server 10.9.9.9 8080\n" + "\n".join(
        f"real_server 192.168.1.{n} 80 {{ {TCP} }}" for n in (2, 3)
    )
    s = servers(tmp_path, body)
    s.initial_events()
    ev = s.checker_result(rs(2), 0, False)
    assert kinds(ev) == ["RsDown", "SorryIn", "QuorumDown"]
    assert "Adding sorry server [10.9.9.9]:tcp:8080 to VS [10.0.0.1]:tcp:80" in logs(ev)
    assert weights(s.table()) == {"10.9.9.9": 1}  # the alive 192.168.1.3 left the pool too
    # a change while the sorry server is in use touches only the state
    assert kinds(s.checker_result(rs(3), 0, False)) == ["RsDown"]
    assert weights(s.table()) == {"10.9.9.9": 1}
    s.checker_result(rs(3), 0, True)
    ev = s.checker_result(rs(2), 0, True)
    assert kinds(ev) == ["RsUp", "SorryOut", "QuorumUp"]
    assert weights(s.table()) == {"192.168.1.2": 1, "192.168.1.3": 1}


def test_sorry_server_inhibit_and_alpha_start(tmp_path: Path) -> None:
    body = f"alpha\nsorry_server 10.9.9.9 8080\nsorry_server_inhibit\nreal_server 192.168.1.2 80 {{ {TCP} }}"
    s = servers(tmp_path, body)
    init = s.initial_events()
    assert kinds(init) == ["SorryIn", "QuorumDown"]
    assert logs(init)[:2] == [
        "Starting with quorum down 1-0=1 > 0 for VS [10.0.0.1]:tcp:80",
        "Enabling sorry server [10.9.9.9]:tcp:8080 to VS [10.0.0.1]:tcp:80",
    ]
    assert weights(s.table()) == {"10.9.9.9": 1}
    s.checker_result(rs(2), 0, True)
    assert weights(s.table()) == {"192.168.1.2": 1, "10.9.9.9": 0}  # kept at weight 0 when not in use


def test_sorry_server_lvs_method(tmp_path: Path) -> None:
    body = f"alpha\nsorry_server 10.9.9.9\nsorry_server_lvs_method DR\nreal_server 192.168.1.2 80 {{ {TCP} }}"
    s = servers(tmp_path, body)
    (dests,) = s.table().destinations.values()
    (d,) = dests.values()
    assert (d.method, d.key.port) == ("DR", 80)


def test_misc_dynamic_weight(tmp_path: Path) -> None:
    s = servers(tmp_path, "real_server 192.168.1.2 80 { weight 5\n MISC_CHECK { misc_path /bin/true\n misc_dynamic } }")
    ev = s.checker_result(rs(2), 0, True, weight=10)
    assert kinds(ev) == ["RsWeight"]
    assert logs(ev) == ["Changing weight from 5 to 10 for active service [192.168.1.2]:tcp:80 of VS [10.0.0.1]:tcp:80"]
    assert isinstance(ev[1], RsWeight) and ev[1].weight == 10
    assert weights(s.table()) == {"192.168.1.2": 10}
    assert s.checker_result(rs(2), 0, True, weight=10) == []


def test_file_check_weight_adds(tmp_path: Path) -> None:
    top = "track_file tf {\n file /tmp/nonexistent-h2\n weight 2\n}\n"
    s = servers(tmp_path, "real_server 192.168.1.2 80 { weight 5\n FILE_CHECK { track_file tf } }", top=top)
    s.checker_result(rs(2), 0, True, weight=6)
    assert weights(s.table()) == {"192.168.1.2": 11}
    s.checker_result(rs(2), 0, True, weight=-2)
    assert weights(s.table()) == {"192.168.1.2": 3}


def test_weight_can_lose_quorum(tmp_path: Path) -> None:
    s = servers(
        tmp_path,
        "quorum 3\nreal_server 192.168.1.2 80 { weight 5\n MISC_CHECK { misc_path /bin/true\n misc_dynamic } }",
    )
    s.initial_events()
    assert kinds(s.checker_result(rs(2), 0, True, weight=1)) == ["RsWeight", "QuorumDown"]


def test_ha_suspend(tmp_path: Path) -> None:
    s = servers(tmp_path, "ha_suspend\nreal_server 192.168.1.2 80 { }")
    assert s.table().services == {}
    assert s.suspended("10.0.0.1:80 TCP")
    s.set_suspended("10.0.0.1:80 TCP", False)
    assert weights(s.table()) == {"192.168.1.2": 1}


def test_reload_keeps_state(tmp_path: Path) -> None:
    s = servers(tmp_path, f"real_server 192.168.1.2 80 {{ {TCP} }}\nreal_server 192.168.1.3 80 {{ {TCP} }}")
    s.initial_events()
    s.checker_result(rs(2), 0, False)
    path = tmp_path / "k2.conf"
    path.write_text(
        "virtual_server 10.0.0.1 80 {\n lvs_sched wrr\n lvs_method NAT\n protocol TCP\n alpha\n"
        f" real_server 192.168.1.2 80 {{ {TCP} }}\n real_server 192.168.1.4 80 {{ {TCP} }}\n}}\n"
    )
    cfg = conf.load(str(path)).config
    assert cfg is not None
    ev = s.reload(cfg)
    assert "service [192.168.1.3]:tcp:80 no longer exist" in logs(ev)
    removed = [e for e in ev if isinstance(e, RsDown)]
    assert [e.rs for e in removed] == [rs(3)] and removed[0].removed
    assert not s.is_alive(rs(2))  # kept its failed checker
    assert not s.is_alive(rs(4))  # new, alpha: down until its checks pass
    t = s.table()
    assert t.services and next(iter(t.services.values())).scheduler == "wrr"
    assert weights(t) == {}


def test_shutdown_with_and_without_omega(tmp_path: Path) -> None:
    s = servers(tmp_path, "omega\nreal_server 192.168.1.2 80 { }")
    s.initial_events()
    ev = s.shutdown()
    assert kinds(ev) == ["RsDown", "QuorumDown"]
    assert logs(ev) == ["Shutting down service [192.168.1.2]:tcp:80 from VS [10.0.0.1]:tcp:80"]
    assert isinstance(ev[1], RsDown) and ev[1].stopping
    assert isinstance(ev[2], QuorumDown) and ev[2].smtp_message == "=> Shutting down <="
    assert s.table() == Table({}, {})
    s = servers(tmp_path, "real_server 192.168.1.2 80 { }")
    assert kinds(s.shutdown()) == []


def test_group_vs_identity_and_format(tmp_path: Path) -> None:
    top = "virtual_server_group G {\n 10.0.0.1-2 80\n}\n"
    s = servers(tmp_path, f"real_server 192.168.1.2 80 {{ {TCP} }}", header="group G", top=top)
    ((name, _),) = s.virtual_servers()
    assert name == "group G TCP"
    ev = s.checker_result(RsId(name, "192.168.1.2:80"), 0, False)
    assert logs(ev)[0] == "Removing service [192.168.1.2]:tcp:80 from VS [G]:0"
    assert [d for d in s.table().destinations.values()] == [{}, {}]


def test_snapshot_and_iteration(tmp_path: Path) -> None:
    s = servers(tmp_path, f"real_server 192.168.1.2 80 {{ weight 2\n {TCP} }}")
    ((rid, vs, real, checkers),) = list(s.real_servers())
    assert rid == rs(2) and real.address == IPv4Address("192.168.1.2") and len(checkers) == 1 and vs.port == 80
    snap = s.snapshot()
    assert snap["10.0.0.1:80 TCP"] == {
        "quorum_up": True,
        "sorry_server_active": False,
        "suspended": False,
        "weight_sum": 2,
        "real_servers": {"192.168.1.2:80": {"alive": True, "weight": 2, "checkers": [{"up": True, "has_run": False}]}},
    }


def test_event_types_exported() -> None:
    assert {RsUp, RsDown, RsWeight, QuorumUp, QuorumDown, SorryIn, SorryOut, Log}


def test_reload_takes_a_new_configured_weight_and_keeps_an_unchanged_one(tmp_path: Path) -> None:
    """A weight set where there was none (the virtual server's, 1) is taken at reload; an
    unchanged weight keeps the effective one (here misc_dynamic's 7)."""
    misc = "MISC_CHECK { misc_path /bin/true misc_dynamic }"
    s = servers(tmp_path, f"real_server 192.168.1.2 80 {{ }}\nreal_server 192.168.1.3 80 {{ {misc} }}")
    s.initial_events()
    s.checker_result(rs(3), 0, True, weight=7)
    path = tmp_path / "k2.conf"
    path.write_text(
        "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n lvs_method NAT\n protocol TCP\n"
        f" real_server 192.168.1.2 80 {{ weight 5 }}\n real_server 192.168.1.3 80 {{ {misc} }}\n}}\n"
    )
    cfg = conf.load(str(path)).config
    assert cfg is not None
    s.reload(cfg)
    assert weights(s.table()) == {"192.168.1.2": 5, "192.168.1.3": 7}


STEPS = st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.none() | st.integers(-5, 300)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_live_weight_is_the_sum_of_the_alive_weights(tmp_path: Path, steps: list[tuple[int, bool, int | None]]) -> None:
    """The running live weight (kept as real servers change) equals adding the alive real
    servers' IPVS weights up, after any sequence of verdicts and misc_dynamic weights, and
    after a reload."""
    misc = "MISC_CHECK {\n  misc_path /bin/true\n  misc_dynamic\n }"
    body = "\n".join(f"real_server 192.168.1.{n} 80 {{\n weight {n}\n {misc}\n}}" for n in range(1, 5))
    s = servers(tmp_path, "quorum 3\nhysteresis 1\n" + body)
    s.initial_events()

    def sums() -> tuple[int, int]:
        """(the kept live weight, the alive real servers' weights added up)"""
        vs: Any = s.snapshot()["10.0.0.1:80 TCP"]
        return vs["weight_sum"], sum(r["weight"] for r in vs["real_servers"].values() if r["alive"])

    for i, up, weight in steps:
        s.checker_result(rs(i + 1), 0, up, weight=weight if up else None)
        kept, added = sums()
        assert kept == added
    cfg = conf.load(str(tmp_path / "k.conf")).config
    assert cfg is not None
    s.reload(cfg)
    kept, added = sums()
    assert kept == added
