"""Tracked objects of the VRRP family and the lines that refer to them.

keepalived.conf(5), "VRRP script(s)", "Track files" and "VRRP track processes":
`vrrp_script`, `track_file` (deprecated spelling `vrrp_track_file`) and
`vrrp_track_process` blocks; and, inside vrrp_instance and vrrp_sync_group, the
reference lists `track_script`, `track_interface`, `track_file`, `track_process`
and `track_bfd`, each line `NAME [weight N [reverse|noreverse]]`.

A reference keeps `weight`/`reverse` as None when the line does not give them;
`VrrpTop.finish_vrrp` fills them from the tracked object (keepalived: "weight
defaults to the weight configured in the vrrp_script/track_file/vrrp_track_process")
and drops references to names that do not exist, so the VRRP child sees resolved values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self

from conf.diagnostics import Location
from conf.modelclass import model_class
from conf.schema import Block, ConfigValueError, Context, kw, replace
from conf.syntax import Stmt
from conf.values import Flag, Float, Int, Script, ScriptCmd, Str, Words

# Weight ranges of keepalived 2.2.7 (man page and its messages).
SCRIPT_WEIGHT = (-253, 253)
IF_WEIGHT = (-253, 253)
FILE_WEIGHT = (-254, 254)
PROCESS_WEIGHT = (-254, 254)
BFD_WEIGHT = (-253, 253)
FILE_DEF_WEIGHT = (-2147483647, 2147483647)  # weight inside a track_file block


@dataclass(frozen=True)
class Weight:
    """`weight N [reverse]` inside a vrrp_script/track_file/vrrp_track_process block."""

    weight: int
    reverse: bool = False

    @property
    def multiplier(self) -> int:
        """keepalived applies `weight * multiplier`; reverse makes it -1."""
        return -1 if self.reverse else 1


class WeightConv:
    takes_block = False

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.syntax = f"<{lo}..{hi}> [reverse]"

    def __call__(self, stmt: Stmt, ctx: Context) -> Weight:
        args = stmt.args
        if not args:
            raise ConfigValueError("missing value")
        value = Int(self.lo, self.hi).parse(args[0])
        reverse = False
        for extra in args[1:]:
            if extra == "reverse":
                reverse = True
            elif extra in ("noreverse", "no_reverse"):
                reverse = False
            else:
                ctx.diags.reset(f"{stmt.keyword}: unknown option '{extra}'; ignored", stmt.location)
        return Weight(value, reverse)


@model_class
class VrrpScript(Block):
    """`vrrp_script NAME { ... }`. A vrrp_script without `script` is removed (keepalived:
    "No script set for vrrp_script X - removing"). `user` None: global script_user."""

    label: ClassVar[str] = "vrrp_script"

    name: str = ""
    script: Script | None = kw(ScriptCmd())
    interval: int = kw(Int(1, 4294), 1)  # seconds; keepalived 2.2.7 takes whole seconds only
    timeout: int | None = kw(Int(1, 4294))  # None: the script may run for `interval`
    weight: Weight = kw(WeightConv(*SCRIPT_WEIGHT), Weight(0))
    rise: int = kw(Int(1, 2147483647), 1)
    fall: int = kw(Int(1, 2147483647), 1)
    user: tuple[str, ...] | None = kw(Words(1, 2, "USERNAME [GROUPNAME]"))
    init_fail: bool = kw(Flag(), False)

    @property
    def effective_timeout(self) -> int:
        return self.timeout if self.timeout is not None else self.interval


@dataclass(frozen=True)
class InitFile:
    """`init_file [VALUE] [overwrite]` of a track_file."""

    value: int = 0
    overwrite: bool = False


class InitFileConv:
    takes_block = False
    syntax = "[VALUE] [overwrite]"

    def __call__(self, stmt: Stmt, ctx: Context) -> InitFile:
        value, overwrite = 0, False
        for word in stmt.args:
            if word == "overwrite":
                overwrite = True
            else:
                value = Int(-2147483648, 2147483647).parse(word)
        return InitFile(value, overwrite)


@model_class
class TrackFile(Block):
    """`track_file NAME { file PATH; weight N [reverse]; init_file [VALUE] [overwrite] }`.
    One without `file` is ignored, as keepalived does."""

    label: ClassVar[str] = "track_file"

    name: str = ""
    file: str | None = kw(Str())  # one word: quote a path with spaces
    weight: Weight = kw(WeightConv(*FILE_DEF_WEIGHT), Weight(1))
    init_file: InitFile | None = kw(InitFileConv())


class ParamMatch:
    """`param_match [initial|partial]`; alone it means "exactly the parameters given", so
    with no parameters after `process NAME` the command must have none (keepalived.conf(5))."""

    takes_block = False
    syntax = "[initial|partial]"

    def __call__(self, stmt: Stmt, ctx: Context) -> str:
        if not stmt.args:
            return "exact"
        if len(stmt.args) != 1 or stmt.args[0] not in ("initial", "partial"):
            raise ConfigValueError(f"'{' '.join(stmt.args)}' is not initial|partial")
        return stmt.args[0]


class ProcessArgs:
    """`process NAME [PARAM...]`: the first word is the process name as is (quotes removed)."""

    takes_block = False
    syntax = "<STRING>|<QUOTED_STRING> [<STRING>|<QUOTED_STRING> ...]"

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[str, ...]:
        if not stmt.args:
            raise ConfigValueError("missing process name")
        return tuple(stmt.args)


@model_class
class TrackProcess(Block):
    """`vrrp_track_process NAME { ... }`. One without `process` is ignored (keepalived:
    "track process 'X' process name not specified")."""

    label: ClassVar[str] = "vrrp_track_process"

    name: str = ""
    process: tuple[str, ...] = kw(ProcessArgs(), ())  # name, then the parameters to match
    param_match: str | None = kw(ParamMatch())  # None: the parameters given (if any) exactly; "exact": alone
    weight: Weight = kw(WeightConv(*PROCESS_WEIGHT), Weight(1))
    quorum: int = kw(Int(1, 65535), 1)
    quorum_max: int | None = kw(Int(0, 65535))  # None: no upper limit
    fork_delay: float | None = kw(Float(0, 4294))
    terminate_delay: float | None = kw(Float(0, 4294))
    delay: float | None = kw(Float(0, 4294))  # sets both fork_delay and terminate_delay
    full_command: bool = kw(Flag(), False)

    @property
    def effective_fork_delay(self) -> float:
        return self.fork_delay if self.fork_delay is not None else (self.delay or 0.0)

    @property
    def effective_terminate_delay(self) -> float:
        return self.terminate_delay if self.terminate_delay is not None else (self.delay or 0.0)

    def finish(self, ctx: Context) -> Self:
        block = self
        if block.quorum_max == 0 and "quorum" not in block.locations:
            # `quorum_max 0` alone: up only while no matching process runs (keepalived sets quorum 0).
            return replace(block, quorum=0)
        if block.quorum_max is not None and block.quorum_max < block.quorum:
            ctx.diags.reset(
                f"vrrp_track_process {self.name}: quorum_max {block.quorum_max} is less than quorum "
                f"{block.quorum}; quorum_max ignored",
                self.where("quorum_max"),
            )
            block = replace(block, quorum_max=None)
        return block


@dataclass(frozen=True)
class TrackRef:
    """One line of a track_* list: `NAME [weight N [reverse|noreverse]]`.

    After `finish_vrrp`, `weight` and `reverse` are always set (from the line, else
    from the tracked object; track_interface defaults to weight 0)."""

    name: str
    weight: int | None = None
    reverse: bool | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    @property
    def multiplier(self) -> int:
        return -1 if self.reverse else 1


class TrackList:
    """A `{ NAME [weight N [reverse|noreverse]] ... }` block: a tuple of TrackRef.

    A weight out of range is ignored (the object's own weight is used), as keepalived
    does; a name listed twice keeps its first line ("duplicate track_script X - ignoring")."""

    takes_block = True

    def __init__(self, what: str, lo: int, hi: int) -> None:
        self.what, self.lo, self.hi = what, lo, hi
        self.syntax = f"{{ NAME [weight <{lo}..{hi}> [reverse|noreverse]] ... }}"

    def __call__(self, stmt: Stmt, ctx: Context) -> tuple[TrackRef, ...]:
        if stmt.block is None:
            raise ConfigValueError("needs a { } block")
        if stmt.args:
            ctx.diags.reset(f"'{stmt.keyword}': '{' '.join(stmt.args)}' ignored before the block", stmt.location)
        out: list[TrackRef] = []
        seen: set[str] = set()
        for line in stmt.block:
            ref = self.item(line, ctx)
            if ref is None:
                continue
            if ref.name in seen:
                ctx.diags.reset(f"duplicate {self.what} {ref.name}; ignored", line.location)
                continue
            seen.add(ref.name)
            out.append(ref)
        return tuple(out)

    def item(self, line: Stmt, ctx: Context) -> TrackRef | None:
        if line.block is not None:
            ctx.diags.reset(f"unexpected {{ }} block after '{line.keyword}' in {self.what}; ignored", line.location)
            return None
        words = line.args
        weight: int | None = None
        reverse: bool | None = None
        i = 0
        while i < len(words):
            w = words[i]
            if w == "weight":
                if i + 1 >= len(words):
                    ctx.diags.reset(f"{self.what} {line.keyword}: 'weight' needs a value; ignored", line.location)
                    break
                try:
                    weight = Int(self.lo, self.hi).parse(words[i + 1])
                except ConfigValueError:
                    ctx.diags.reset(
                        f"{self.what} {line.keyword}: weight must be between [{self.lo}..{self.hi}] "
                        "inclusive; weight ignored",
                        line.location,
                    )
                i += 2
            elif w == "reverse":
                reverse = True
                i += 1
            elif w in ("noreverse", "no_reverse"):
                reverse = False
                i += 1
            else:
                ctx.diags.reset(f"{self.what} {line.keyword}: unknown option '{w}'; ignored", line.location)
                i += 1
        return TrackRef(line.keyword, weight, reverse, line.location)


TRACK_SCRIPT = TrackList("track_script", *SCRIPT_WEIGHT)
TRACK_INTERFACE = TrackList("track_interface", *IF_WEIGHT)
TRACK_FILE = TrackList("track_file", *FILE_WEIGHT)
TRACK_PROCESS = TrackList("track_process", *PROCESS_WEIGHT)
TRACK_BFD = TrackList("track_bfd", *BFD_WEIGHT)
BFD_UNSUPPORTED = "BFD is not implemented"


class Weighted(Protocol):
    """A tracked object: vrrp_script, track_file, vrrp_track_process."""

    @property
    def weight(self) -> Weight: ...


def resolve_refs(
    refs: tuple[TrackRef, ...],
    known: Mapping[str, Weighted] | None,
    what: str,
    owner: str,
    ctx: Context,
    *,
    silent: frozenset[str] = frozenset(),
) -> tuple[TrackRef, ...]:
    """Fill weight/reverse from the tracked objects in `known` (name -> object with a
    `weight: Weight`), dropping names that do not exist (quietly for those in `silent`). `known` None: track_interface
    (weight 0, not reversed, by default)."""
    out: list[TrackRef] = []
    changed = False
    for given in refs:
        ref = given
        if known is None:
            if ref.weight is None or ref.reverse is None:
                ref = TrackRef(ref.name, ref.weight or 0, bool(ref.reverse), ref.location)
                changed = True
            out.append(ref)
            continue
        obj = known.get(ref.name)
        if obj is None and ref.name in silent:
            changed = True  # disabled by the script security check, which said so
            continue
        if obj is None:
            ctx.diags.reset(f"({owner}) {what} {ref.name} not found, ignoring", ref.location)
            changed = True
            continue
        if ref.weight is None or ref.reverse is None:
            default: Weight = obj.weight
            ref = TrackRef(
                ref.name,
                default.weight if ref.weight is None else ref.weight,
                default.reverse if ref.reverse is None else ref.reverse,
                ref.location,
            )
            changed = True
        out.append(ref)
    return tuple(out) if changed else refs
