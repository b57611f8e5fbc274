"""The compact forms the model keeps (issue 15, parser memory): a Location is one int, an
address entry four slots. They must behave as the tuple and dataclass they replace:
equality, hashing, printing, pickling, the values of their properties."""

from __future__ import annotations

import dataclasses
import ipaddress
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from conf.addresses import ADDRESS_LINE, NO_OPTIONS, IpAddressEntry
from conf.diagnostics import Diagnostic, Diagnostics, Location, Severity
from conf.dump import to_jsonable
from conf.schema import Context
from conf.syntax import Stmt
from tests.conf.util import config_of, messages, parse

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ Location


def test_a_location_is_its_file_and_line() -> None:
    loc = Location("/etc/keepalived/keepalived.conf", 12)
    assert (loc.file, loc.line) == ("/etc/keepalived/keepalived.conf", 12)
    assert str(loc) == "/etc/keepalived/keepalived.conf:12"
    assert repr(loc) == "Location(file='/etc/keepalived/keepalived.conf', line=12)"
    assert f"{loc}" == str(loc)


def test_locations_compare_and_hash_by_file_and_line() -> None:
    a, b = Location("a.conf", 3), Location("a.conf", 3)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Location("b.conf", 3) and a != Location("a.conf", 4)
    assert Location("b.conf", 3).file == "b.conf"  # a second file has its own number


def test_every_location_is_true_and_pickles_by_name() -> None:
    assert Location("", 0)  # the root's location: `if location` must not drop it
    loc = Location("x.conf", 4_000_000)
    again = pickle.loads(pickle.dumps(loc))
    assert again == loc and type(again) is Location and str(again) == "x.conf:4000000"
    assert pickle.loads(pickle.dumps(loc)).__reduce__() == (Location, ("x.conf", 4_000_000))


def test_diagnostics_print_file_and_line() -> None:
    d = Diagnostic(Severity.ERROR, "bad", Location("/k.conf", 9))
    assert d.render(test_mode=True) == "/k.conf:9: error: bad"


def test_diagnostics_of_two_files_name_each_file(tmp_path: Path) -> None:
    (tmp_path / "vips.conf").write_text("virtual_ipaddress {\n  10.0.0.1/33 dev eth0\n}\n")
    text = (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  priority 300\n"
        f"  include {tmp_path / 'vips.conf'}\n}}\n"
    )
    result = parse(tmp_path, text)
    main = tmp_path / "keepalived.conf"
    assert any(m.startswith(f"{main}:4: error: priority '300'") for m in messages(result))
    assert f"{tmp_path / 'vips.conf'}:2: error: invalid prefix length in 10.0.0.1/33; using 32" in messages(result)
    inst = config_of(result).vrrp_instance["VI_1"]
    assert inst.where("priority") == Location(str(main), 4)
    assert inst.virtual_ipaddress[0].location == Location(str(tmp_path / "vips.conf"), 2)


# ------------------------------------------------------------------ IpAddressEntry


def entry(text: str, line: int = 7) -> IpAddressEntry:
    words = text.split()
    result = ADDRESS_LINE(Stmt(words[0], tuple(words[1:]), Location("t", line)), Context(Diagnostics()))
    assert isinstance(result, IpAddressEntry)
    return result


def test_a_plain_vip_shares_the_empty_options() -> None:
    vip = entry("10.1.2.3/16 dev eth0")
    assert vip._options is NO_OPTIONS
    assert vip.address == ipaddress.IPv4Interface("10.1.2.3/16")
    assert vip.ip == ipaddress.IPv4Address("10.1.2.3") and vip.prefixlen == 16 and vip.family == 4
    assert vip.dev == "eth0" and vip.location == Location("t", 7)
    assert str(vip) == "10.1.2.3/16" and vip.broadcast is None
    assert not (vip.no_track or vip.use_vmac or vip.home) and vip.scope is None and vip.peer is None


def test_entries_compare_and_hash_by_value_not_by_line() -> None:
    a, b = entry("10.0.0.1/24 dev eth0", 1), entry("10.0.0.1/24 dev eth0", 2)
    assert a == b and hash(a) == hash(b) and a.location != b.location
    assert a == IpAddressEntry(ipaddress.ip_interface("10.0.0.1/24"), dev="eth0")
    assert a != entry("10.0.0.1/25 dev eth0") and a != entry("10.0.0.1/24 dev eth1") and a != entry("10.0.0.1/24")
    assert a != entry("10.0.0.1/24 dev eth0 no_track") and a != "10.0.0.1/24"
    assert len({a, b, entry("10.0.0.2/24 dev eth0")}) == 2


def test_the_options_are_read_through_the_entry() -> None:
    e = entry("10.0.0.9/24 brd + dev eth0 scope link label eth0:1 home -nodad no_track use_vmac preferred_lft 30")
    assert e.broadcast == ipaddress.IPv4Address("10.0.0.255") and e.brd == "+"
    assert (e.scope, e.label, e.home, e.nodad, e.no_track, e.use_vmac) == (253, "eth0:1", True, True, True, True)
    assert (e.mngtmpaddr, e.noprefixroute, e.autojoin, e.track_group, e.preferred_lft) == (
        False,
        False,
        False,
        None,
        30,
    )
    assert entry("10.0.0.9/24 brd -").broadcast == ipaddress.IPv4Address("10.0.0.0")
    assert entry("10.0.0.9/24 peer 10.0.0.1").peer == ipaddress.IPv4Address("10.0.0.1")
    built = IpAddressEntry(ipaddress.ip_interface("10.0.0.9/24"), brd="+", dev="eth0", nodad=True)
    assert built.brd == "+" and built.nodad and built.dev == "eth0" and built.location is None


def test_an_ipv6_entry_keeps_its_interface_and_scope() -> None:
    e = entry("fe80::1%eth0/64 dev eth0")
    assert e.family == 6 and e.prefixlen == 64 and str(e) == "fe80::1%eth0/64"
    assert (
        e.address == ipaddress.IPv6Interface("fe80::1%eth0/64")
        and e.ip == ipaddress.IPv6Interface("fe80::1%eth0/64").ip
    )
    assert e != entry("fe80::1/64 dev eth0")


def test_an_entry_is_immutable_and_pickles() -> None:
    e = entry("10.0.0.1/24 dev eth0 label eth0:2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.dev = "eth1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        del e.dev
    again = pickle.loads(pickle.dumps(e))
    assert again == e and again.location == e.location and again.label == "eth0:2"


def test_locations_survive_a_pickle_from_another_process(tmp_path: Path) -> None:
    """The supervisor reads a reload in a forked process: file numbers made there mean
    nothing here, so locations travel by file name (an entry's too)."""
    code = (
        "import pickle, sys\n"
        "from conf.diagnostics import Location\n"
        "from tests.conf.test_compact_model import entry\n"
        "Location('only-in-the-child-1.conf', 1)\n"
        "e = entry('10.0.0.1/24 dev eth0')\n"
        "sys.stdout.buffer.write(pickle.dumps((Location('only-in-the-child-2.conf', 5), e)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, cwd=ROOT).stdout
    loc, e = pickle.loads(out)
    assert str(loc) == "only-in-the-child-2.conf:5"
    assert e.location == Location("t", 7) and str(e.location) == "t:7"


def test_an_entry_prints_and_dumps_as_the_dataclass_did() -> None:
    e = entry("10.0.0.1/24 dev eth0 -nodad")
    assert repr(e) == "IpAddressEntry(IPv4Interface('10.0.0.1/24'), dev='eth0', nodad=True)"
    dumped = to_jsonable(e)
    assert isinstance(dumped, dict)
    assert list(dumped) == [
        "address", "brd", "dev", "scope", "label", "peer", "home", "-nodad", "mngtmpaddr", "noprefixroute",
        "autojoin", "track_group", "preferred_lft", "no_track", "use_vmac",
    ]  # fmt: skip
    assert dumped["address"] == "10.0.0.1/24" and dumped["dev"] == "eth0" and dumped["-nodad"] is True


# ------------------------------------------------------------------ blocks and their locations

LVS = """virtual_server 10.0.0.1 80 {
    delay_loop 6
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.168.0.1 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 192.168.0.2 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 4
        }
    }
    real_server 192.168.0.3 80 {
        TCP_CHECK {
        }
    }
}
"""


def test_blocks_keep_only_the_values_given_and_read_the_others_as_defaults(tmp_path: Path) -> None:
    vs = config_of(parse(tmp_path, LVS)).virtual_server[0]
    first, _, third = vs.real_server
    assert "notify_up" not in vars(first) and first.notify_up is None  # the class's default
    assert vars(first)["weight"] == 2 and first.delay_loop == 6  # given, and inherited from the VS
    assert third.weight == 1 and third.tcp_check[0].connect_timeout == 5  # the VS's weight, its own default
    rebuilt = dataclasses.replace(first)  # through __init__: what is not the class's default
    assert rebuilt == first and hash(rebuilt) == hash(first) and "notify_up" not in vars(rebuilt)
    assert "location" not in vars(first) and first.location == rebuilt.location  # kept in its Locations
    assert pickle.loads(pickle.dumps(vs)) == vs


def test_locations_map_each_keyword_to_its_line(tmp_path: Path) -> None:
    vs = config_of(parse(tmp_path, LVS)).virtual_server[0]
    main = str(tmp_path / "keepalived.conf")
    first, second, third = vs.real_server
    assert first.locations == {"weight": Location(main, 7), "tcp_check": Location(main, 8)}
    assert "weight" in first.locations and "weight" not in third.locations and "alpha" not in first.locations
    assert first.locations.get("weight") == Location(main, 7) and first.locations.get("alpha") is None
    assert list(first.locations) == ["weight", "tcp_check"] and len(third.locations) == 1
    assert first.where("weight") == Location(main, 7) and first.where("alpha") == Location(main, 6)
    with pytest.raises(KeyError):
        first.locations["alpha"]
    # the keyword tuple is shared by the blocks that give the same keywords
    assert first.locations._keys is second.locations._keys
    assert vs.where("lvs_sched") == Location(main, 3) and vs.location == Location(main, 1)
