"""The desired IPVS table and the diff between two tables (pure)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conf
from checker_child.table import (
    Destination,
    DestKey,
    Diff,
    Service,
    ServiceKey,
    Table,
    Wanted,
    apply_diff,
    canonical,
    desired_table,
    destination,
    diff,
    real_weight,
    service_keys,
    service_settings,
)
from conf.lvs import NAT, LvsMethod, VirtualServer
from conf.model import Config


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "k.conf"
    path.write_text(text)
    cfg = conf.load(str(path)).config
    assert cfg is not None
    return cfg


VS_BODY = """
    lvs_sched {sched}
    lvs_method {method}
    protocol TCP
    {extra}
    real_server 192.168.1.2 8080 {{ weight 3 }}
"""


def one_vs(  # noqa: PLR0917
    tmp_path: Path,
    header: str = "10.0.0.1 80",
    sched: str = "rr",
    method: str = "NAT",
    extra: str = "",
    prefix: str = "",
) -> tuple[Config, VirtualServer]:
    cfg = load(
        tmp_path,
        prefix + f"virtual_server {header} {{" + VS_BODY.format(sched=sched, method=method, extra=extra) + "}\n",
    )
    return cfg, cfg.virtual_server[0]


def test_address_service(tmp_path: Path) -> None:
    _, vs = one_vs(tmp_path)
    keys = service_keys(vs)
    assert keys == [ServiceKey(4, "TCP", IPv4Address("10.0.0.1"), 80)]
    svc = service_settings(vs, keys[0])
    assert svc == Service(keys[0], "rr", frozenset(), 0, None, None)


def test_fwmark_service_ignores_protocol(tmp_path: Path) -> None:
    cfg = load(tmp_path, "virtual_server fwmark 5 {\n lvs_sched wlc\n lvs_method DR\n real_server 192.168.1.2 { }\n}\n")
    vs = cfg.virtual_server[0]
    assert service_keys(vs) == [ServiceKey(4, fwmark=5)]
    assert str(service_keys(vs)[0]) == "FWM 5"


def test_group_expands_ranges_and_fwmarks(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "virtual_server_group G {\n 10.0.0.1-3 80\n 10.0.1.0/31 443\n fwmark 9\n}\n"
        "virtual_server group G {\n lvs_sched rr\n lvs_method DR\n protocol TCP\n real_server 192.168.1.2 { }\n}\n",
    )
    vs = cfg.virtual_server[0]
    keys = service_keys(vs, cfg.virtual_server_group["G"])
    assert [str(k) for k in keys] == [
        "10.0.0.1:80",
        "10.0.0.2:80",
        "10.0.0.3:80",
        "10.0.1.0:443",
        "10.0.1.1:443",
        "FWM 9",
    ]
    assert service_keys(vs, None) == []  # an unknown group holds nothing
    t = desired_table(
        [(vs, cfg.virtual_server_group["G"], [Wanted(ip_address("192.168.1.2"), None, 1, LvsMethod("DR"))])]
    )
    # DR: the kernel gives a destination its service's port; fwmark: none.
    ports = {str(k): [d.key.port for d in v.values()] for k, v in t.destinations.items()}
    assert ports["10.0.1.1:443"] == [443] and ports["10.0.0.2:80"] == [80] and ports["FWM 9"] == [None]


def test_ipv6_service(tmp_path: Path) -> None:
    _, vs = one_vs(tmp_path, header="2001:db8::1 443", extra="persistence_timeout 50\n persistence_granularity 64")
    key = service_keys(vs)[0]
    assert key == ServiceKey(6, "TCP", IPv6Address("2001:db8::1"), 443)
    assert str(key) == "[2001:db8::1]:443"
    svc = service_settings(vs, key)
    assert svc.persistence_timeout == 50 and svc.netmask == 64 and "persistent" in svc.flags


@pytest.mark.parametrize(
    ("extra", "sched", "flags"),
    [
        ("sh-port\n sh-fallback", "sh", {"flag-1", "flag-2"}),
        ("mh-port", "mh", {"flag-2"}),
        ("flag-3", "rr", {"flag-3"}),
        ("hashed", "sh", set()),  # the kernel's bookkeeping flag: never compared
        ("persistence_timeout", "rr", {"persistent"}),
    ],
)
def test_scheduler_flags(tmp_path: Path, extra: str, sched: str, flags: set[str]) -> None:
    _, vs = one_vs(tmp_path, sched=sched, extra=extra)
    assert service_settings(vs, service_keys(vs)[0]).flags == frozenset(flags)


def test_persistence(tmp_path: Path) -> None:
    _, vs = one_vs(
        tmp_path, extra="persistence_timeout\n persistence_granularity 255.255.255.0\n persistence_engine sip"
    )
    svc = service_settings(vs, service_keys(vs)[0])
    assert (svc.persistence_timeout, svc.netmask, svc.persistence_engine) == (360, 24, "sip")
    _, vs = one_vs(tmp_path, extra="persistence_timeout 10\n persistence_granularity 255.255.255.255")
    assert service_settings(vs, service_keys(vs)[0]).netmask is None  # /32 is the kernel's default


def test_ops_flag(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "virtual_server 10.0.0.1 53 {\n lvs_sched rr\n lvs_method NAT\n protocol UDP\n ops\n"
        " real_server 192.168.1.2 53 { }\n}\n",
    )
    vs = cfg.virtual_server[0]
    assert service_settings(vs, service_keys(vs)[0]).flags == {"onepacket"}


def test_destination_methods() -> None:
    key = ServiceKey(4, "TCP", IPv4Address("10.0.0.1"), 80)
    addr = IPv4Address("192.168.1.2")
    nat = destination(key, Wanted(addr, 8080, 5, NAT, 100, 10))
    assert nat == Destination(DestKey(addr, 8080), 5, "NAT", 100, 10)
    dr = destination(key, Wanted(addr, 8080, 5, LvsMethod("DR")))
    assert dr.key.port == 80 and dr.method == "DR"
    tun = destination(key, Wanted(addr, None, 5, LvsMethod("TUN", "gue", 6080, "remcsum")))
    assert (tun.tunnel_type, tun.tunnel_port, tun.tunnel_remcsum, tun.tunnel_csum) == ("gue", 6080, True, False)
    assert destination(key, Wanted(addr, None, 1, LvsMethod("TUN"))).tunnel_type == "ipip"


def test_real_weight() -> None:
    assert real_weight(-5) == 0 and real_weight(7) == 7 and real_weight(2**40) == 2147483647


def test_weight_change_is_an_edit() -> None:
    key = ServiceKey(4, "TCP", IPv4Address("10.0.0.1"), 80)
    d = Destination(DestKey(IPv4Address("192.168.1.2"), 80), 1)
    old = Table({key: Service(key)}, {key: {d.key: d}})
    new = Table({key: Service(key)}, {key: {d.key: Destination(d.key, 0)}})
    change = diff(old, new)
    assert change == Diff(edit_destinations=((key, Destination(d.key, 0)),))
    assert canonical(apply_diff(old, change)) == canonical(new)


def test_removed_service_takes_its_destinations() -> None:
    key = ServiceKey(4, "TCP", IPv4Address("10.0.0.1"), 80)
    d = Destination(DestKey(IPv4Address("192.168.1.2"), 80), 1)
    old = Table({key: Service(key)}, {key: {d.key: d}})
    change = diff(old, Table())
    assert change == Diff(remove_services=(key,))
    assert apply_diff(old, change) == Table({}, {})


def test_scheduler_change_is_an_edit() -> None:
    key = ServiceKey(4, fwmark=3)
    change = diff(Table({key: Service(key)}, {key: {}}), Table({key: Service(key, "rr")}, {key: {}}))
    assert change == Diff(edit_services=(Service(key, "rr"),))


# ---------------------------------------------------------------- properties

_addrs = st.sampled_from([IPv4Address(f"10.0.0.{i}") for i in range(1, 4)])
_keys = st.one_of(
    st.builds(ServiceKey, st.just(4), st.sampled_from(["TCP", "UDP"]), _addrs, st.sampled_from([80, 443])),
    st.builds(ServiceKey, st.just(4), fwmark=st.integers(1, 3)),
)
_services = st.builds(
    Service,
    st.nothing(),
    st.sampled_from(["wlc", "rr"]),
    st.frozensets(st.sampled_from(["persistent", "flag-1"])),
    st.sampled_from([0, 300]),
)
_dests = st.builds(
    Destination,
    st.builds(
        DestKey, st.sampled_from([IPv4Address(f"192.168.0.{i}") for i in range(1, 5)]), st.sampled_from([None, 80])
    ),
    st.integers(0, 3),
    st.sampled_from(["NAT", "DR", "TUN"]),
)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    keys = draw(st.lists(_keys, max_size=4, unique=True))
    services = {}
    dests = {}
    for k in keys:
        s = draw(
            st.builds(
                Service,
                st.just(k),
                st.sampled_from(["wlc", "rr"]),
                st.frozensets(st.sampled_from(["persistent", "flag-1"])),
                st.sampled_from([0, 300]),
            )
        )
        services[k] = s
        ds = draw(st.lists(_dests, max_size=4, unique_by=lambda d: d.key))
        dests[k] = {d.key: d for d in ds}
    return Table(services, dests)


@settings(max_examples=300, deadline=None)
@given(tables(), tables())
def test_diff_applied_gives_new(old: Table, new: Table) -> None:
    change = diff(old, new)
    assert canonical(apply_diff(old, change)) == canonical(new)
    # minimal: nothing is both removed and added back
    removed = set(change.remove_destinations)
    assert not any((k, d.key) in removed for k, d in change.add_destinations)
    assert not set(change.remove_services) & {s.key for s in change.add_services}


@settings(max_examples=200, deadline=None)
@given(tables())
def test_diff_of_same_is_empty(t: Table) -> None:
    assert not diff(t, t)
    assert diff(t, t) == Diff()
