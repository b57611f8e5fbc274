"""`@model_class`: a frozen dataclass of the configuration model, with one shared `__init__`,
`__eq__`, `__hash__` and `__repr__` instead of the ones `dataclasses` writes for each class.

dataclasses generates those four as Python source for every class and compiles it: for the
model's wide classes (global_defs: 120 fields, vrrp_instance: 66, virtual_server: 43, a
route: 41) that code is tens of kilobytes a class, about 0.4 MB in all, kept in the memory
of every process although the daemon hardly calls it (the parser builds blocks with
`schema.construct`). The shared methods read a per-class `_Shape` (field names and
`operator.attrgetter`s) and behave as the generated ones:

- `__init__` takes the same arguments (positional in field order, keyword-only fields
  after) and raises TypeError for an unknown, a repeated or a missing one. Like
  `schema.construct` it stores only the values given (and the default factories'), less
  those that are the default or cannot be told from it: a field left out reads its default
  from the class, where dataclasses puts it. A class with `inline_fields` keeps its values
  inline (`store`, below); a Block its location in its Locations (`_model_prepare`).
- `__eq__`: same class and equal compared fields, else NotImplemented; `__hash__` hashes
  the tuple of the hashed fields (a frozen dataclass's rule), `__repr__` is
  `Name(field=value, ...)` over the shown fields ("..." for a recursive one).

Frozenness (`__setattr__`, `__delattr__`), `__match_args__`, `dataclasses.fields`,
`replace` and pickling are those of dataclasses. mypy sees a frozen dataclass
(`dataclass_transform`). A class defining one of the four methods keeps its own.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import reprlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from itertools import starmap
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")


class _Shape:
    """What the shared methods need to know of one class."""

    __slots__ = ("compared", "defaults", "factories", "hashed", "names", "positional", "prepare", "required", "shown")

    def __init__(self, cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> None:
        init = [f for f in fields if f.init]
        self.positional = tuple(f.name for f in init if not f.kw_only)
        self.names = frozenset(f.name for f in init)
        no_default = dataclasses.MISSING
        self.required = frozenset(f.name for f in init if f.default is no_default and f.default_factory is no_default)
        self.factories = tuple((f.name, f.default_factory) for f in init if f.default_factory is not no_default)
        self.defaults = {f.name: f.default for f in init if f.default is not no_default}
        self.compared = _getter(f.name for f in fields if f.compare)
        self.hashed = _getter(f.name for f in fields if (f.compare if f.hash is None else f.hash))
        self.shown = tuple(f.name for f in fields if f.repr)
        # How the class stores its values, when it says (conf.schema.Block: its location in its Locations).
        self.prepare: Callable[[dict[str, Any]], None] | None = getattr(cls, "_model_prepare", None)


def _getter(names: Iterable[str]) -> Callable[[object], tuple[Any, ...]]:
    """The named attributes of an object as a tuple (attrgetter gives a bare value for one name)."""
    wanted = tuple(names)
    if len(wanted) > 1:
        return attrgetter(*wanted)
    if wanted:
        one = attrgetter(wanted[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


class _Shared:
    """The four methods, written once (every model class gets these very functions)."""

    _model_shape: _Shape

    def __init__(self, *args: Any, **values: Any) -> None:
        shape = self._model_shape
        name = type(self).__qualname__
        if args:
            if len(args) > len(shape.positional):
                given = f"{len(args)} were given"
                raise TypeError(f"{name}() takes {len(shape.positional)} positional arguments but {given}")
            for field_name, value in zip(shape.positional, args, strict=False):
                if field_name in values:
                    raise TypeError(f"{name}() got multiple values for argument '{field_name}'")
                values[field_name] = value
        if not shape.names.issuperset(values):
            raise TypeError(f"{name}() got an unexpected keyword argument '{min(values.keys() - shape.names)}'")
        if not shape.required <= values.keys():
            missing = ", ".join(sorted(shape.required - values.keys()))
            raise TypeError(f"{name}() missing required arguments: {missing}")
        for field_name, factory in shape.factories:
            if field_name not in values:
                values[field_name] = factory()
        # A value that is the class's default is not stored: `replace` passes every field.
        if shape.prepare is not None:
            shape.prepare(values)
        store(self, _not_defaults(values, shape.defaults))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            compared = self._model_shape.compared
            return compared(self) == compared(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._model_shape.hashed(self))

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._model_shape.shown)
        return f"{type(self).__qualname__}({shown})"


_ABSENT = object()
# Types whose equal values cannot be told apart (a float can: 0.0 and -0.0).
_EQUAL_IS_SAME = frozenset({str, int, bytes, ipaddress.IPv4Address, ipaddress.IPv6Address})


def _same(value: object, default: object) -> bool:
    """Whether `value` cannot be told from the class's `default` (equal, of one type)."""
    kind = type(value)
    if kind is not type(default) or value != default:
        return False
    if kind is float:
        return math.copysign(1.0, value) == math.copysign(1.0, default)  # type: ignore[arg-type]
    return kind in _EQUAL_IS_SAME


def _not_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The values that are not the class's default for their field: the others are read
    from the class (a resolved vrrp_instance passes 45 values and keeps 8)."""
    kept = {}
    for name, value in values.items():
        default = defaults.get(name, _ABSENT)
        if value is not default and not _same(value, default):
            kept[name] = value
    return kept


# ---------------------------------------------------------------- storage

# CPython (3.11) keeps an object's attributes in an array of values beside the object,
# keyed by a table of names its class shares, as long as each name is in that table and
# the object's __dict__ is never asked for: 8 bytes a value, where a dict of its own
# takes a 64-byte object and 16 bytes an entry (a real server's 15 values: 464 bytes).
# A class's table takes the names its first objects set, at most 30, and each object's
# array is sized for the names in the table when it is made. So a model class with
# `inline_fields` has its table filled with those names when it is defined (and then
# made as small as it will stay), and its objects are filled through
# object.__setattr__; `dict.update` on a new object's __dict__ would make a dict of its
# own. A name outside the table still works: that object gets a dict.
INLINE: set[type] = set()
_set_attr = object.__setattr__
_consume: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend
_SHARED_KEYS_MAX = 30  # CPython's SHARED_KEYS_MAX_SIZE


def store(obj: object, values: Mapping[str, Any]) -> None:
    """Set the attributes of new model object `obj`: inline for a class with
    `inline_fields`, else in its __dict__ (faster to fill)."""
    if type(obj) in INLINE:
        setter: Callable[[str, Any], None] = _set_attr.__get__(obj)
        _consume(starmap(setter, values.items()))
    else:
        obj.__dict__.update(values)


def _seed(cls: type, names: tuple[str, ...]) -> None:
    """Fill `cls`'s shared table with `names`, then make it as small as it stays: each
    object made takes one of the spare entries the table starts with away (CPython's
    heuristic), and then new objects get arrays of exactly the table's size (plus one)."""
    if len(names) >= _SHARED_KEYS_MAX:
        raise TypeError(f"{cls.__qualname__}: at most {_SHARED_KEYS_MAX - 1} inline fields")
    probe: object = object.__new__(cls)
    for name in names:
        _set_attr(probe, name, None)
    for _ in range(_SHARED_KEYS_MAX):
        _set_attr(object.__new__(cls), names[0], None)
    INLINE.add(cls)


_SHARED = {name: _Shared.__dict__[name] for name in ("__init__", "__eq__", "__hash__", "__repr__")}


@overload
def model_class(cls: type[T], /) -> type[T]: ...


@overload
def model_class(*, kw_only: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True)
def model_class(cls: type[T] | None = None, /, *, kw_only: bool = False) -> Any:
    """`@dataclass(frozen=True)` (or `(frozen=True, kw_only=True)`) with the shared methods."""

    def wrap(cls: type[T]) -> type[T]:
        own = {name for name in _SHARED if cls.__dict__.get(name) is not None}
        if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
            raise TypeError(f"{cls.__qualname__}: @model_class has no __post_init__ or slots; use @dataclass")
        made: Any = dataclasses.dataclass(frozen=True, kw_only=kw_only, init=False, eq=False, repr=False)(cls)
        made._model_shape = _Shape(made, dataclasses.fields(made))
        inline: tuple[str, ...] = getattr(made, "inline_fields", ())
        if inline:
            _seed(made, inline)
        for name, method in _SHARED.items():
            if name not in own:
                setattr(made, name, method)
        return cls

    return wrap if cls is None else wrap(cls)
