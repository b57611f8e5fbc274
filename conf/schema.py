"""The machinery that turns statements into the typed, immutable model.

Each config block is a frozen dataclass deriving from `Block`; each of its keywords is a
field declared with `kw(converter, default, ...)`. The field name is the keyword (so
`--print-config` keys are keepalived's keywords), the converter turns the statement's
arguments or sub-block into the value, and `Block.finish` checks what needs more than
one keyword, resetting bad values the way keepalived does. One table, read from the
dataclass, is therefore the keyword list, the defaults and the JSON schema at once.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, Self, TypeVar

from conf.diagnostics import Diagnostics, Location
from conf.modelclass import store
from conf.syntax import Stmt

KW = "pykeepalived.keyword"

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """An immutable mapping that compares and hashes by value (named blocks)."""

    __slots__ = ("_d",)

    def __init__(self, items: Mapping[K, V] | Sequence[tuple[K, V]] = ()) -> None:
        self._d: dict[K, V] = dict(items)

    def __getitem__(self, key: K) -> V:
        return self._d[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._d == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._d.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"


EMPTY: FrozenMap[Any, Any] = FrozenMap()


class Locations(Mapping[str, Location]):
    """Where each keyword of a block was given (keyword, or `keyword:name` for a named
    block, -> Location), and where the block itself starts (`at`: `Block.location`).
    There is one per block, so it is compact: the keywords are a tuple shared by the
    blocks that give the same keywords in the same order (a real server's `weight` and
    `TCP_CHECK`), the locations one int of 64 bits each (a Location is an int below
    2**64; the block's own first, plus one, 0 when it has none), from which a Location
    is made when one is asked for. A real server keeps 104 bytes for its line and its two
    keywords', where its Location, a Locations and a tuple of Locations kept 216 (a
    Location is 56 bytes). Lookups scan the keywords (a handful)."""

    __slots__ = ("_keys", "_packed")

    def __init__(self, keys: tuple[str, ...] = (), values: Iterable[Location] = (), at: Location | None = None) -> None:
        self._keys = keys
        packed = 0 if at is None else at + 1
        shift = _BITS
        for loc in values:
            packed |= loc << shift
            shift += _BITS
        self._packed = packed

    @property
    def at(self) -> Location | None:
        """Where the block starts."""
        start = self._packed & _MASK
        return _location(start - 1) if start else None

    def placed(self, at: Location | None) -> Locations:
        """The same keywords' locations, for a block that starts at `at`."""
        new = Locations(self._keys)
        new._packed = self._packed & ~_MASK | (0 if at is None else at + 1)
        return new

    def __getitem__(self, key: str) -> Location:
        try:
            index = self._keys.index(key) + 1
        except ValueError:
            raise KeyError(key) from None
        return _location(self._packed >> index * _BITS & _MASK)

    def __contains__(self, key: object) -> bool:
        return key in self._keys  # Mapping's would raise and catch a KeyError for a missing one

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __hash__(self) -> int:  # equal by value as any Mapping (`at` aside); hashable, to be a field's default
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return f"Locations({dict(self)!r})"

    def __reduce__(self) -> tuple[type[Locations], tuple[tuple[str, ...], tuple[Location, ...], Location | None]]:
        # By Location, which pickles by file name: the packed numbers are this process's.
        return Locations, (self._keys, tuple(self.values()), self.at)


_BITS = 64
_MASK = (1 << _BITS) - 1
_location: Callable[[int], Location] = functools.partial(int.__new__, Location)
NO_LOCATIONS = Locations()


def _locations(locs: dict[str, Location], at: Location | None, ctx: Context) -> Locations:
    """`locs` as Locations, its keyword tuple shared through a table that lives as long as the load."""
    if not locs:
        return NO_LOCATIONS if at is None else Locations((), (), at)
    keys = tuple(locs)
    shared: dict[tuple[str, ...], tuple[str, ...]] = ctx.settings.setdefault("location_keys", {})
    return Locations(shared.setdefault(keys, keys), locs.values(), at)


def fold_location(values: dict[str, Any]) -> None:
    """A block's values as a model object stores them: its `location` in its Locations
    (`Block.location` reads it there)."""
    if "location" in values:
        at = values.pop("location")
        values["locations"] = values.get("locations", NO_LOCATIONS).placed(at)


class ConfigValueError(ValueError):
    """A statement whose value cannot be used; the message says why."""


@dataclass
class Context:
    """What converters and checks may consult while the model is built."""

    diags: Diagnostics
    config_id: str = ""
    # Filled by the loader before the VRRP/LVS blocks are checked.
    interfaces: frozenset[str] | None = None  # None: unknown, do not check
    loopbacks: frozenset[str] = frozenset()  # of those, the loopback ones (IFF_LOOPBACK)
    settings: dict[str, Any] = field(default_factory=dict)


class Converter(Protocol):
    """Turns one statement into a value. `takes_block` says whether it reads
    `stmt.block`; `syntax` is how the man page writes its arguments."""

    @property
    def takes_block(self) -> bool: ...

    @property
    def syntax(self) -> str: ...

    def __call__(self, stmt: Stmt, ctx: Context) -> Any: ...


Many = Literal["", "list", "map", "merge"]


@dataclass(frozen=True)
class KeywordSpec:
    convert: Converter
    keyword: str
    aliases: tuple[str, ...] = ()
    deprecated: tuple[str, ...] = ()  # aliases that are deprecated spellings
    many: Many = ""  # "": last one wins; list: tuple of all; map: by name; merge: blocks joined
    unsupported: str = ""  # parsed and kept, but pykeepalived does not act on it: why


def kw(
    convert: Converter,
    default: Any = None,
    *,
    keyword: str = "",
    aliases: tuple[str, ...] = (),
    deprecated: tuple[str, ...] = (),
    many: Many = "",
    unsupported: str = "",
) -> Any:
    """Declare a keyword field. The keyword is the field name unless `keyword` is given.

    `aliases` are accepted spellings; those also in `deprecated` draw a warning.
    `unsupported` names why pykeepalived parses but does not act on the keyword.
    """
    if many == "list" and default is None:
        default = ()
    if many == "map" and default is None:
        default = EMPTY
    spec = KeywordSpec(convert, keyword, aliases, deprecated, many, unsupported)
    return field(default=default, metadata={KW: spec})


@dataclass(frozen=True)
class Block:
    """A config block. `location` is where it starts; `locations` where each keyword was
    given (for messages about them); neither takes part in comparison."""

    location: Location | None = field(default=None, compare=False, repr=False, kw_only=True)
    locations: Locations = field(default=NO_LOCATIONS, compare=False, repr=False, kw_only=True)

    # Keywords that may appear in the block but are handled elsewhere (for example,
    # include_check, which the preprocessor acts on). Not fields, not unknown.
    passthrough: ClassVar[frozenset[str]] = frozenset()
    # The fields most objects of a class hold, for a class made by the ten thousand (real
    # servers, checkers): stored inline, 8 bytes each (conf/modelclass.py, `store`).
    inline_fields: ClassVar[tuple[str, ...]] = ()
    # parse_block's object is a draft that the enclosing block replaces by a resolved copy
    # (real servers and checkers, by their virtual server): filled the quicker way, a dict.
    draft: ClassVar[bool] = False

    # Model classes fold `location` into `locations` as they store their values.
    _model_prepare: ClassVar[Callable[[dict[str, Any]], None]] = staticmethod(fold_location)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        global block_classes_defined
        block_classes_defined += 1

    def where(self, name: str) -> Location | None:
        """Where keyword `name` was given, else where the block starts."""
        return self.locations.get(name, self.location)

    def finish(self, ctx: Context) -> Self:
        """Checks across keywords of this block; returns self or a corrected copy."""
        return self


class _Start:
    """`Block.location`, where the block starts: read from its Locations, where a model
    object keeps it (a Location of its own was 56 bytes a block). Not a data descriptor:
    the __init__ of a plain dataclass deriving from Block stores `location` in the
    object, and that comes first."""

    def __get__(self, obj: Block | None, owner: type | None = None) -> Location | None:
        return None if obj is None else obj.locations.at  # on the class: the field's default


Block.location = _Start()  # type: ignore[assignment]

B = TypeVar("B", bound=Block)

# How many Block classes have been defined: the keyword families imported on first use
# (conf.values.Deferred) add theirs while the daemon runs, and what was computed over the
# classes known (conf.security's walk) must then be computed again.
block_classes_defined = 0
# The modules that hold such families (filled by Deferred).
DEFERRED_MODULES: set[str] = set()


def import_deferred() -> None:
    """Import every keyword family deferred so far: for what needs to know all the blocks
    (the keyword hints, the man page)."""
    for module in sorted(DEFERRED_MODULES):
        importlib.import_module(module)


_TABLES: dict[type, dict[str, tuple[str, KeywordSpec]]] = {}
_ALL_BLOCKS: dict[str, list[str]] = {}  # keyword -> block class names, for hints


def keyword_table(cls: type[Block]) -> dict[str, tuple[str, KeywordSpec]]:
    """keyword or alias -> (field name, spec) for a block class (cached)."""
    table = _TABLES.get(cls)
    if table is None:
        table = {}
        for f in dataclasses.fields(cls):
            spec: KeywordSpec | None = f.metadata.get(KW)
            if spec is None:
                continue
            name = spec.keyword or f.name
            spec = dataclasses.replace(spec, keyword=name)
            for word in (name, *spec.aliases):
                table[word] = (f.name, spec)
                _ALL_BLOCKS.setdefault(word, []).append(block_label(cls))
        _TABLES[cls] = table
    return table


def block_label(cls: type[Block]) -> str:
    label: str = getattr(cls, "label", "") or cls.__name__
    return label


def keyword_name(cls: type[Block], field_name: str) -> str:
    for f in dataclasses.fields(cls):
        if f.name == field_name:
            spec: KeywordSpec | None = f.metadata.get(KW)
            return spec.keyword or f.name if spec else f.name
    return field_name


def _default_text(cls: type[Block], field_name: str) -> str:
    for f in dataclasses.fields(cls):
        if f.name == field_name:
            if f.default is None or f.default is dataclasses.MISSING:
                return "ignored"
            if f.default is True or f.default is False:
                return f"using {'on' if f.default else 'off'}"
            if f.default in ((), EMPTY):
                return "ignored"
            return f"using the default ({format_value(f.default)})"
    return "ignored"


def format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _index_all_blocks() -> None:
    """Read the keyword table of every Block class, so hints can name other blocks."""
    import_deferred()
    todo: list[type[Block]] = [Block]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        keyword_table(cls)


def suggest(word: str, known: Sequence[str]) -> str:
    """' (did you mean 'x'?)' for the closest known keyword, or where it belongs, or ''.
    difflib is imported here, for a configuration with an unknown keyword only: it would
    otherwise stay in the daemon's memory for good."""
    import difflib  # noqa: PLC0415

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    lowered = [k for k in known if k.lower() == word.lower()]
    if lowered:
        return f" (did you mean '{lowered[0]}'?)"
    _index_all_blocks()
    for candidate in (word, word.lower()):
        elsewhere = _ALL_BLOCKS.get(candidate)
        if elsewhere:
            return f" ('{candidate}' belongs in {' or '.join(sorted(set(elsewhere)))})"
    return ""


def parse_block(
    cls: type[B],
    stmts: Sequence[Stmt],
    ctx: Context,
    *,
    location: Location | None,
    **preset: Any,
) -> B:
    """Build block `cls` from its statements, report what is wrong, and finish it."""
    table = keyword_table(cls)
    values: dict[str, Any] = {}
    lists: dict[str, list[Any]] = {}
    merged: dict[str, list[Stmt]] = {}
    locs: dict[str, Location] = {}
    maps = False
    for st in stmts:
        entry = table.get(st.keyword)
        if entry is None:
            if st.keyword not in cls.passthrough:
                report_unknown(st, cls, table, ctx)
            continue
        fname, spec = entry
        if spec.unsupported or spec.deprecated:
            _report_spelling(st, spec, ctx)
        if spec.many == "merge":
            merged.setdefault(fname, []).extend(st.block or ())
            locs.setdefault(fname, st.location)
            if st.block is None:
                ctx.diags.reset(f"'{st.keyword}' needs a {{ }} block; ignored", st.location)
            continue
        try:
            conv = spec.convert
            if st.block is not None and not conv.takes_block:
                ctx.diags.reset(f"'{st.keyword}' takes no {{ }} block; the block is ignored", st.location)
            value = conv(st, ctx)  # convert_stmt, inline: this loop runs for every statement
        except ConfigValueError as e:
            ctx.diags.reset(f"{st.keyword}: {e}; {_default_text(cls, fname)}", st.location)
            continue
        if spec.many == "list":
            lists.setdefault(fname, []).append(value)
            locs.setdefault(fname, st.location)
        elif spec.many == "map":
            key, item = value
            bucket = values.setdefault(fname, {})
            maps = True
            if key in bucket:
                ctx.diags.reset(f"{spec.keyword} '{key}' is defined again; this one is ignored", st.location)
                continue
            bucket[key] = item
            locs[f"{fname}:{key}"] = st.location
        else:
            locs[fname] = st.location
            values[fname] = value
    if lists or merged or maps:
        _join(cls, values, lists, merged=merged, merged_at=locs, ctx=ctx)
    values.update(preset)
    values["locations"] = _locations(locs, location, ctx)
    return construct(cls, values).finish(ctx)


def _join(
    cls: type[Block],
    values: dict[str, Any],
    lists: dict[str, list[Any]],
    *,
    merged: dict[str, list[Stmt]],
    merged_at: Mapping[str, Location],  # where each merged keyword first stood
    ctx: Context,
) -> None:
    """Into `values`: the repeated keywords as tuples, the merged blocks converted, maps frozen."""
    for fname, items in lists.items():
        values[fname] = tuple(items)
    table = keyword_table(cls)
    for fname, block_stmts in merged.items():
        spec = table[keyword_name(cls, fname)][1]
        values[fname] = spec.convert(Stmt(spec.keyword, (), merged_at[fname], tuple(block_stmts)), ctx)
    for fname, value in list(values.items()):
        if isinstance(value, dict):
            values[fname] = FrozenMap(value)


@dataclass(frozen=True)
class _Fields:
    required: frozenset[str]


_FIELDS: dict[type, _Fields | None] = {}


def construct(cls: type[B], values: dict[str, Any]) -> B:
    """`cls(**values)`, without its generated __init__ where that only stores the values:
    a frozen dataclass sets each field through object.__setattr__, which for a model of
    20,000 real servers and checkers was a fifth of the reading time.

    Only the values given are stored: a field left out reads its default from the class
    (a dataclass field's default is a class attribute). A class with `inline_fields`
    keeps them inline (conf/modelclass.py, `store`: 8 bytes a value), unless it is a
    `draft`, which its virtual server replaces: a dict is quicker to fill."""
    info = _FIELDS.get(cls, _UNKNOWN)
    if info is _UNKNOWN:
        info = _FIELDS[cls] = _fields_of(cls)
    if info is None or not info.required <= values.keys():
        return cls(**values)  # let __init__ say what is wrong
    block: B = _new(cls)
    if cls.draft:
        block.__dict__.update(values)
    else:
        store(block, values)
    return block


def evolve(obj: B, changes: Mapping[str, Any]) -> B:
    """A copy of block `obj` with `changes`, its values stored as its class stores them
    (inline for a class with `inline_fields`, drafts included: the copy is the resolved
    object): `dataclasses.replace` is too slow for the VS -> RS -> checker cascade over
    tens of thousands of servers. Only for values already checked."""
    new: B = _new(type(obj))
    values = {**vars(obj), **changes}
    if "location" in changes:
        fold_location(values)
    store(new, values)
    return new


_new = object.__new__


def _fields_of(cls: type) -> _Fields | None:
    """The required fields of a block class whose __init__ does nothing but store them
    (None: not such a class)."""
    if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        return None
    fields = dataclasses.fields(cls)
    if any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields):
        return None
    return _Fields(frozenset(f.name for f in fields if f.default is dataclasses.MISSING))


_UNKNOWN = _Fields(frozenset())


def convert_stmt(spec: KeywordSpec, st: Stmt, ctx: Context) -> Any:
    conv = spec.convert
    if conv.takes_block:
        return conv(st, ctx)
    if st.block is not None:
        ctx.diags.reset(f"'{st.keyword}' takes no {{ }} block; the block is ignored", st.location)
    return conv(st, ctx)


def _report_spelling(st: Stmt, spec: KeywordSpec, ctx: Context) -> None:
    if st.keyword in spec.deprecated:
        ctx.diags.warning(f"'{st.keyword}' is deprecated; use '{spec.keyword}'", st.location)
    if spec.unsupported:
        ctx.diags.note(
            f"'{st.keyword}' is parsed but not implemented by pykeepalived ({spec.unsupported})", st.location
        )


def report_unknown(st: Stmt, cls: type[Block], table: Mapping[str, Any], ctx: Context) -> None:
    hint = suggest(st.keyword, list(table))
    where = block_label(cls)
    ctx.diags.reset(f"unknown keyword '{st.keyword}' in {where}{hint}; ignored", st.location)


def each_block_field(cls: type[Block]) -> Iterator[tuple[str, KeywordSpec]]:
    for f in dataclasses.fields(cls):
        spec: KeywordSpec | None = f.metadata.get(KW)
        if spec is not None:
            yield f.name, spec


def replace(block: B, **changes: Any) -> B:
    """dataclasses.replace that keeps the locations. For a model class (@model_class:
    its __init__ only stores), the copy stores what the block stores and the changes,
    as `evolve` does, rather than every field."""
    shape = getattr(block, "_model_shape", None)
    if shape is None or not shape.names.issuperset(changes):
        return dataclasses.replace(block, **changes)  # not a model class, or let it say what is wrong
    return evolve(block, changes)
