"""How the model keeps its values (issue 15, at most 200 bytes per statement): real servers
and checkers inline (their class's shared keys), a block's own line in its Locations, no
value that is the class's default, one object for a number or a name written many times.
None of it may show: equality, hashing, printing, pickling and every location stay as
they were."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from conf.checkers import TcpCheck
from conf.diagnostics import Location
from conf.lvs import RealServer
from conf.modelclass import INLINE, model_class
from conf.schema import NO_LOCATIONS, Block, Locations, evolve, replace
from conf.values import Float, Int, Str
from conf.vrrp_instance import VrrpInstance
from tests.conf.test_compact_model import LVS as BASE_LVS
from tests.conf.util import config_of, parse

ROOT = Path(__file__).resolve().parents[2]

# test_compact_model's virtual server, its first real server with a MISC_CHECK (line 11) too,
# its second with a field that is not inline
LVS = BASE_LVS.replace(
    "            connect_timeout 3\n        }\n",
    "            connect_timeout 3\n        }\n        MISC_CHECK {\n            misc_path /bin/true\n        }\n",
).replace("        weight 3\n", "        weight 3\n        notify_up /bin/true\n")


def _servers(tmp_path: Path) -> tuple[RealServer, RealServer]:
    vs = config_of(parse(tmp_path, LVS)).virtual_server[0]
    first, second, _ = vs.real_server
    return first, second


def test_a_block_keeps_its_line_in_its_locations(tmp_path: Path) -> None:
    first, _ = _servers(tmp_path)
    main = str(tmp_path / "keepalived.conf")
    check = first.tcp_check[0]
    assert first.location == Location(main, 6) and check.location == Location(main, 8)
    assert first.locations.at == first.location and "location" not in vars(check)
    assert first.where("weight") == Location(main, 7) and first.where("alpha") == Location(main, 6)
    # the line is not a keyword: the mapping is the keywords' alone
    assert dict(first.locations) == {
        "weight": Location(main, 7),
        "tcp_check": Location(main, 8),
        "misc_check": Location(main, 11),
    }
    assert first.locations == Locations(first.locations._keys, tuple(first.locations.values()))
    moved = dataclasses.replace(first, location=Location(main, 40))  # through __init__
    assert moved.location == Location(main, 40) and moved.where("weight") == Location(main, 7)
    assert replace(first, location=None).location is None and moved == first


def test_locations_pack_every_line_and_rebuild_them() -> None:
    lines = [Location("a.conf", n) for n in (1, 2, 70000)] + [Location("b.conf", 2**32 - 1)]
    locs = Locations(("w", "x", "y", "z"), lines, at=Location("a.conf", 0))
    assert list(locs.values()) == lines and locs.at == Location("a.conf", 0)
    assert locs["z"].file == "b.conf" and locs["z"].line == 2**32 - 1
    assert locs.placed(None).at is None and locs.placed(None) == locs and hash(locs.placed(None)) == hash(locs)
    assert Locations().at is None and Locations((), (), Location("a.conf", 3)) == NO_LOCATIONS
    again = pickle.loads(pickle.dumps(locs))
    assert again == locs and again.at == locs.at and list(again) == list(locs)


def test_a_block_line_survives_a_pickle_from_another_process(tmp_path: Path) -> None:
    """Packed lines name files by this process's numbers: pickles carry file names."""
    code = (
        "import pickle, sys\n"
        "from conf.diagnostics import Location\n"
        "from conf.schema import Locations\n"
        "Location('only-in-the-child-1.conf', 1)\n"
        "at = Location('only-in-the-child-2.conf', 5)\n"
        "locs = Locations(('weight',), (Location('only-in-the-child-3.conf', 6),), at)\n"
        "sys.stdout.buffer.write(pickle.dumps(locs))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, cwd=ROOT).stdout
    locs = pickle.loads(out)
    assert str(locs.at) == "only-in-the-child-2.conf:5" and str(locs["weight"]) == "only-in-the-child-3.conf:6"


def test_inline_objects_behave_as_before(tmp_path: Path) -> None:
    first, second = _servers(tmp_path)
    assert RealServer in INLINE and TcpCheck in INLINE
    # a field outside inline_fields (notify_up) still works: that object gets a dict of its own
    assert second.notify_up is not None and "notify_up" not in RealServer.inline_fields
    for rs in (first, second):
        again = pickle.loads(pickle.dumps(rs))
        assert again == rs and hash(again) == hash(rs) and repr(again) == repr(rs)
        assert again.location == rs.location and again.locations == rs.locations
        assert dataclasses.replace(rs) == rs and evolve(rs, {}) == rs
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.weight = 3  # type: ignore[misc]
    assert [c.type_name for c in first.checkers] == ["TCP_CHECK", "MISC_CHECK"]
    assert (first.tcp_check[0].seq, first.misc_check[0].seq) == (1, 2)  # numbered within the server


def test_an_inline_class_made_elsewhere_still_works() -> None:
    """A model class with inline_fields, used with a field it does not list."""

    @model_class
    class Probe(Block):
        inline_fields: ClassVar[tuple[str, ...]] = ("locations", "a")
        a: int = 0
        b: str = ""

    one, two = Probe(a=1, b="x"), Probe(a=1, b="x")
    assert (
        one == two
        and hash(one) == hash(two)
        and repr(one) == "test_an_inline_class_made_elsewhere_still_works.<locals>.Probe(a=1, b='x')"
    )
    assert Probe().a == 0 and Probe().b == "" and vars(Probe()) == {}


def test_init_leaves_out_what_is_the_default_and_only_that() -> None:
    @model_class
    class Probe(Block):
        word: str = "BACKUP"
        timer: float = 0.0
        count: int = 1

    kept = Probe(word="".join(["BACK", "UP"]), timer=-0.0, count=1)
    assert vars(kept) == {"timer": -0.0} and repr(kept.timer) == "-0.0"  # -0.0 prints otherwise
    assert vars(Probe(word="MASTER", timer=0.0, count=True)) == {"word": "MASTER", "count": True}


def test_numbers_and_names_read_from_one_text_are_one_object() -> None:
    text = "".join(["3", ".5"])
    assert Float(0, 10).parse(text) is Float(0, 100).parse("3.5")
    assert Int(0, 99999).parse("".join(["80", "80"])) is Int(1, 65535).parse("8080")
    assert Str().parse("".join(["et", "h0"])) is Str().parse("eth0")
    with pytest.raises(ValueError):
        Float(0, 1).parse("3.5")  # the range is still checked on the shared number


def test_a_resolved_vrrp_instance_keeps_only_what_differs(tmp_path: Path) -> None:
    text = "vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 1\n priority 100\n"
    text += " advert_int 1\n virtual_ipaddress {\n  10.0.0.1/24\n }\n}\n"
    inst = config_of(parse(tmp_path, text)).vrrp_instance["VI_1"]
    assert isinstance(inst, VrrpInstance) and inst.advert_int == 1.0 and inst.state == "BACKUP"
    stored = set(vars(inst))
    assert {"advert_int", "state", "mcast_dst_ip"}.isdisjoint(stored), stored  # equal to the defaults
    assert len(stored) <= 10, stored  # a dict of 10 keys: 272 bytes, of 11 to 21: 464
