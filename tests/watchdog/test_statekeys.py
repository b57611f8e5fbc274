"""The state keys both sides of the pipe build and read back (watchdog.statekeys)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from haparent.specs import checker_summary, vrrp_summary
from watchdog.protocol import Json
from watchdog.statekeys import KeyKind, StateKey, group_key, kind_of, parse_key, real_server_key
from watchdog.status import degraded

# keepalived.conf names are single words; a virtual server's name is its header
_word = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1).filter(
    lambda w: not w.startswith("!") and "->" not in w
)


def test_the_wire_form_is_unchanged() -> None:
    assert group_key("G1") == "group:G1"
    assert real_server_key("10.0.0.1 80", "10.0.0.2 80") == "10.0.0.1 80 -> 10.0.0.2 80"


def test_each_kind_is_read_back() -> None:
    assert parse_key("VI_1") == StateKey(KeyKind.NAME, "VI_1")
    assert parse_key("group:G1") == StateKey(KeyKind.GROUP, "G1")
    assert parse_key("fwmark 7 -> 10.0.0.2 80") == StateKey(KeyKind.REAL_SERVER, "fwmark 7", "10.0.0.2 80")
    (condition,) = degraded("socket:VI_1", "no socket")
    assert kind_of(condition) is KeyKind.CONDITION


@given(_word.filter(lambda w: not w.startswith("group:")))
def test_names_round_trip(name: str) -> None:
    assert parse_key(name) == StateKey(KeyKind.NAME, name)
    assert parse_key(group_key(name)) == StateKey(KeyKind.GROUP, name)
    assert parse_key(name).text == name


@given(st.lists(_word, min_size=1, max_size=3).map(" ".join), _word)
def test_real_servers_round_trip(vs: str, rs: str) -> None:
    key = parse_key(real_server_key(vs, rs))
    assert (key.kind, key.name, key.real_server) == (KeyKind.REAL_SERVER, vs, rs)
    assert key.text == real_server_key(vs, rs)


@given(
    st.one_of(
        st.text(), st.sampled_from(["group:", "a -> b", " -> ", "!x"]).flatmap(lambda p: st.text().map(p.__add__))
    )
)
def test_kind_of_is_parse_keys_kind(text: str) -> None:
    assert kind_of(text) is parse_key(text).kind


def test_summaries_read_the_kinds() -> None:
    vrrp: dict[str, Json] = {"VI_1": {"state": "MASTER"}, "group:G": {"state": "MASTER"}, **degraded("x", "y")}
    assert vrrp_summary(vrrp) == "1 MASTER; degraded: y"
    checker: dict[str, Json] = {
        "10.0.0.1 80": {"state": "QUORUM_DOWN"},
        real_server_key("10.0.0.1 80", "10.0.0.2 80"): {"state": "UP"},
        real_server_key("10.0.0.1 80", "10.0.0.3 80"): {"state": "DOWN"},
    }
    assert checker_summary(checker) == "1/2 real servers up, 1 virtual servers below quorum"
