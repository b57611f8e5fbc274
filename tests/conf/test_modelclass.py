"""conf.modelclass: a model class with the shared methods behaves as the frozen dataclass
it replaces. Each case builds the same class both ways and compares."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conf.modelclass import model_class
from conf.schema import Block, construct
from tests.conf.util import config_of, parse

REQUIRED = object()


def fields_of_base() -> list[tuple[str, str, Any]]:
    """A block's fields of each kind (fresh Field objects: dataclass takes them over)."""
    return [
        ("name", "str", REQUIRED),
        ("port", "int", 80),
        ("tags", "tuple[str, ...]", ()),
        ("hidden", "str", field(default="h", repr=False)),
        ("note", "str", field(default="", compare=False)),
        ("made", "list[int]", field(default_factory=list, compare=False, hash=False)),
    ]


def declare(name: str, bases: tuple[type, ...], fields: list[tuple[str, str, Any]]) -> type:
    """`class NAME(*BASES)` with these annotated fields, undecorated: each twin of a pair is
    declared from the same list and differs only by its decorator."""
    namespace: dict[str, Any] = {"__annotations__": {f: t for f, t, _ in fields}, "__module__": __name__}
    namespace.update({f: default for f, _, default in fields if default is not REQUIRED})
    return types.new_class(name, bases, exec_body=lambda ns: ns.update(namespace))


PlainBase: Any = dataclass(frozen=True)(declare("PlainBase", (Block,), fields_of_base()))
SharedBase: Any = model_class(declare("SharedBase", (Block,), fields_of_base()))
PlainKw: Any = dataclass(frozen=True, kw_only=True)(declare("PlainKw", (PlainBase,), [("extra", "int", 1)]))
SharedKw: Any = model_class(kw_only=True)(declare("SharedKw", (SharedBase,), [("extra", "int", 1)]))
PlainOne: Any = dataclass(frozen=True)(declare("PlainOne", (), [("value", "object", None)]))
SharedOne: Any = model_class(declare("SharedOne", (), [("value", "object", None)]))


# module-level: pickled by reference
PAIRS = [(PlainBase, SharedBase), (PlainKw, SharedKw)]


def same_text(plain: Any, shared: Any) -> str:
    return repr(shared).replace(type(shared).__qualname__, type(plain).__qualname__, 1)


@pytest.mark.parametrize(("plain", "shared"), PAIRS)
def test_init_repr_eq_hash_as_the_generated_ones(plain: Any, shared: Any) -> None:
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = [
        (("a",), {}),
        (("a", 81), {"tags": ("x",)}),
        ((), {"name": "b", "hidden": "x", "note": "n"}),
    ]
    for args, kwargs in calls:
        p, s = plain(*args, **kwargs), shared(*args, **kwargs)
        assert same_text(p, s) == repr(p)
        values = [getattr(p, f.name) for f in dataclasses.fields(p)]
        assert [getattr(s, f.name) for f in dataclasses.fields(s)] == values
        assert s == shared(*args, **kwargs) and hash(s) == hash(shared(*args, **kwargs))
        assert hash(s) == hash(p)  # the same tuple of the same fields
    assert shared("a", note="x") == shared("a", note="y")  # not compared
    assert shared("a") != shared("a", port=81) and shared("a") != shared("b")
    assert shared("a").__eq__(plain("a")) is NotImplemented and shared("a") != "a"


def test_keyword_only_fields_are_keyword_only() -> None:
    assert SharedKw("a", extra=2).extra == 2
    with pytest.raises(TypeError):
        PlainKw("a", 80, (), "h", "", [], 2)
    with pytest.raises(TypeError, match="positional arguments"):
        SharedKw("a", 80, (), "h", "", [], 2)


def test_wrong_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match="missing required arguments: name"):
        SharedBase()
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        SharedBase("a", nope=1)
    with pytest.raises(TypeError, match="multiple values for argument 'name'"):
        SharedBase("a", name="b")


def test_only_the_values_given_are_stored_and_factories_run_per_instance() -> None:
    s = SharedBase("a", tags=("t",))
    assert set(vars(s)) == {"name", "tags", "made"}
    assert s.port == 80 and s.location is None and s.made == [] and s.made is not SharedBase("b").made


def test_frozen_replace_pickle_copy_fields_match_args() -> None:
    s = SharedKw("a", 81, extra=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1
    r = dataclasses.replace(s, port=82)
    assert (r.name, r.port, r.extra) == ("a", 82, 3) and r != s
    for other in (pickle.loads(pickle.dumps(s)), copy.copy(s), copy.deepcopy(s)):
        assert other == s and repr(other) == repr(s)
    assert SharedKw.__match_args__ == PlainKw.__match_args__
    assert [f.name for f in dataclasses.fields(SharedKw)] == [f.name for f in dataclasses.fields(PlainKw)]
    assert construct(SharedBase, {"name": "c"}) == SharedBase("c")


def test_one_field_and_a_recursive_repr() -> None:
    assert hash(SharedOne(5)) == hash(PlainOne(5)) and SharedOne(5) == SharedOne(5)
    loop: list[object] = []
    s, p = SharedOne(loop), PlainOne(loop)
    loop.append(s)
    assert repr(s) == "SharedOne(value=[...])"
    loop[0] = p
    assert repr(p) == "PlainOne(value=[...])"


def test_a_class_with_post_init_is_refused() -> None:
    with pytest.raises(TypeError, match="__post_init__"):

        @model_class
        class Late:
            value: int = 0

            def __post_init__(self) -> None:
                pass


def test_the_model_keeps_no_generated_methods(tmp_path: Path) -> None:
    config = config_of(parse(tmp_path, "global_defs {\n router_id r\n}\n"))
    for cls in (type(config), type(config.global_defs)):
        for name in ("__init__", "__eq__", "__hash__", "__repr__"):
            assert getattr(cls, name) is getattr(SharedBase, name), (cls, name)
