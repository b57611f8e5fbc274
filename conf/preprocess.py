"""From config files to logical lines: includes, comments, `@` conditionals, `$`
parameters and `~SEQ`/`~LST` repetition (keepalived.conf(5), DESCRIPTION and
ADVANCED CONFIGURATION).

The order is keepalived's: comments go first, `include` is recognised before any
conditional or parameter processing, then `@ID`, then `$NAME=` definitions, `~SEQ`/`~LST`,
and substitution. Substitution happens at use time and is recursive; a multi-line
parameter expands into lines that are processed one after the other, so definitions
inside it take effect before the lines that follow them (the man page's nested
`$VS`/`$RS` example).

Where keepalived has no limits we set them (conf/limits.py), so that a cycle is an error,
not a hang, and a huge file a diagnostic, not a host out of memory.

Only regular, non-executable files are read, as keepalived reads them: a FIFO, a device,
a socket or a directory is skipped with keepalived's words, checked before it is opened
(opening a FIFO blocks until a writer comes).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from conf.diagnostics import Diagnostics, Location, location_base
from conf.lexer import LexError, split_words, strip_comment
from conf.limits import (
    MAX_CONFIG_BYTES,
    MAX_EXPANSION_DEPTH,
    MAX_INCLUDE_DEPTH,
    MAX_LINE_CHARS,
    MAX_REPEAT_LINES,
    ConfigTooLarge,
)

INCLUDE_KEYWORDS = {
    "include": frozenset(),
    "includer": frozenset({"readable"}),
    "includem": frozenset({"match"}),
    "includew": frozenset({"wildcard_match"}),
    "includeb": frozenset({"brace_match"}),
    "includea": frozenset({"readable", "match", "wildcard_match", "brace_match"}),
}
INCLUDE_CHECKS = INCLUDE_KEYWORDS["includea"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DEFINITION = re.compile(rf"\$({_NAME})=(.*)\Z", re.DOTALL)
_CONDITIONAL = re.compile(r"@(\^?)(\S+)(?:\s+(.*))?\Z", re.DOTALL)
_BRACED_USE = re.compile(rf"\$\{{({_NAME})(?:\s+([^}}]*))?\}}")
_BARE_USE = re.compile(rf"\$({_NAME})(?=\s|\Z)")
_REPEAT = re.compile(r"~(SEQx?|LST)\(")
_SPECIAL_START = "@$~"


class LogicalLine(NamedTuple):
    text: str
    location: Location


# Constructors without their Python-level __new__: one of each per config line.
_new_location = functools.partial(int.__new__, Location)  # with location_base(file) | line
_new_line = functools.partial(tuple.__new__, LogicalLine)


class _TooDeep(Exception):
    pass


def _randint(lo: int, hi: int) -> int:
    """${_RANDOM}: the random module is imported on its first use only (rare in a configuration,
    and the daemon would otherwise hold it for good)."""
    import random  # noqa: PLC0415

    return random.randint(lo, hi)


@dataclass
class Preprocessor:
    """Turns a config file into logical lines. One instance reads one configuration."""

    config_id: str
    diags: Diagnostics
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    all_config: bool = False  # -e/--all-config: every include check on
    rand: Callable[[int, int], int] = _randint
    params: dict[str, list[str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # every file read, in order
    _include_checks: frozenset[str] = frozenset()
    _stack: list[str] = field(default_factory=list)
    _repeat_lines: int = 0
    _bytes_read: int = 0

    def __post_init__(self) -> None:
        if self.all_config:
            self._include_checks = INCLUDE_CHECKS

    # ---- files -----------------------------------------------------------------------

    def lines(self, path: str) -> Iterator[LogicalLine]:
        """The logical lines of the configuration whose main file is `path`."""
        if not os.path.exists(path):
            self.diags.fatal(f"configuration file '{path}' not found")
            return
        yield from self._file(path, None)

    def _file(self, path: str, where: Location | None, strict: bool = False) -> Iterator[LogicalLine]:
        """Read one file; `where` is the including line (None: the main file), `strict`
        makes a file that is skipped an error (include_check readable)."""
        real = os.path.realpath(path)
        if real in self._stack:
            chain = " -> ".join([*self._stack[self._stack.index(real) :], real])
            self.diags.error(f"include cycle: {chain}", where)
            return
        if len(self._stack) >= MAX_INCLUDE_DEPTH:
            self.diags.error(f"includes nested deeper than {MAX_INCLUDE_DEPTH} files at '{path}'", where)
            return
        text = self._read(path, where, strict)
        if text is None:
            return
        self.files.append(path)
        self._stack.append(real)
        saved_checks = self._include_checks  # include_check is per file, as in keepalived
        try:
            yield from self._physical_lines(path, text)
        finally:
            self._include_checks = saved_checks
            self._stack.pop()

    def _read(self, path: str, where: Location | None, strict: bool) -> str | None:
        """The file's text, or None when it is skipped (with a diagnostic). The only place
        conf/ opens a configuration file."""
        try:
            # stat() follows symlinks, as keepalived's check_glob_file() does; the type
            # is checked before open() because opening a FIFO blocks until a writer comes.
            problem = not_regular(path, os.stat(path).st_mode)
            if problem is None and where is not None and not os.access(path, os.R_OK):
                problem = f"include '{path}' is not readable"
            if problem is not None:
                self._skipped(problem, where, strict)
                return None
            # O_NONBLOCK anyway, and fstat() again: a FIFO swapped in since stat() must
            # not block either (O_NONBLOCK changes nothing for a regular file).
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                problem = not_regular(path, st.st_mode)
                if problem is not None:
                    self._skipped(problem, where, strict)
                    return None
                budget = MAX_CONFIG_BYTES - self._bytes_read
                if st.st_size > budget:
                    raise ConfigTooLarge(self._too_many_bytes(path), where)
                data = _read_at_most(fd, budget + 1)
            finally:
                os.close(fd)
        except OSError as e:
            self.diags.fatal(f"cannot read '{path}': {e.strerror or e}", where)
            return None
        self._bytes_read += len(data)
        if self._bytes_read > MAX_CONFIG_BYTES:  # it grew after fstat()
            raise ConfigTooLarge(self._too_many_bytes(path), where)
        # Garbage must end in a clean error, never a decode exception.
        return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")

    def _too_many_bytes(self, path: str) -> str:
        return f"more than {MAX_CONFIG_BYTES} bytes in all with '{path}'"

    def _skipped(self, message: str, where: Location | None, strict: bool) -> None:
        if where is None:
            self.diags.fatal(message)  # no main file: nothing to run (keepalived stops too)
        elif strict:
            self.diags.error(message, where)
        else:
            self.diags.warning(message, where)

    def _physical_lines(self, path: str, content: str) -> Iterator[LogicalLine]:
        raw_lines = _split_lines(content)
        base = location_base(path)
        number = 0
        for raw in raw_lines:
            number += 1
            if len(raw) <= MAX_LINE_CHARS and "#" not in raw and "!" not in raw:
                text = raw.rstrip()  # most lines: no comment to cut
            else:
                text = self._text(raw, path, number)
            loc: Location = _new_location(base | number)
            if text.endswith("\\"):
                # A trailing backslash continues the line (multi-line $NAME= definitions).
                text, number = self._continued(text, raw_lines, path, number)
            s = text.strip()
            if not s:
                continue
            if s.startswith("include"):
                first = s.split(None, 1)[0]
                if first in INCLUDE_KEYWORDS:
                    yield from self._include(first, s, path, loc)
                    continue
            if s[0] in _SPECIAL_START or "$" in s or "\n" in s or s.startswith("include_check"):
                yield from self._line(text, loc, 0)
            else:
                yield _new_line((s, loc))  # the common case: nothing to expand

    def _text(self, raw: str, path: str, number: int) -> str:
        """A physical line without its comment and trailing blanks."""
        if len(raw) > MAX_LINE_CHARS:
            self.diags.error(
                f"line longer than {MAX_LINE_CHARS} characters ignored (keepalived reads lines of at most 1023)",
                Location(path, number),
            )
            return ""
        return strip_comment(raw).rstrip()

    def _continued(self, text: str, raw_lines: Iterator[str], path: str, number: int) -> tuple[str, int]:
        """`text` ends in a backslash: join the lines that follow it; the last line's number."""
        parts = []
        while text.endswith("\\"):
            parts.append(text[:-1].rstrip())
            raw = next(raw_lines, None)
            if raw is None:
                text = ""
                break
            number += 1
            text = self._text(raw, path, number)
        return "\n".join([*parts, text]), number

    # ---- include -----------------------------------------------------------------------

    def _include(self, keyword: str, text: str, path: str, loc: Location) -> Iterator[LogicalLine]:
        rest = text.strip()[len(keyword) :].strip()
        if rest[:1] in ("'", '"'):
            try:
                words = split_words(rest)
            except LexError as e:
                self.diags.reset(str(e), loc)
                words = e.words
            rest = words[0] if words else ""
        else:
            rest = rest.split(None, 1)[0] if rest else ""  # braces are part of the pattern
        if not rest:
            self.diags.reset(f"'{keyword}' needs a file name", loc)
            return
        checks = self._include_checks | INCLUDE_KEYWORDS[keyword]
        pattern = rest
        base = os.path.dirname(os.path.abspath(path))
        matched: list[str] = []
        for alternative in expand_braces(pattern):
            full = alternative if os.path.isabs(alternative) else os.path.join(base, alternative)
            found = sorted(glob.glob(full))
            if not found and not glob.has_magic(full) and os.path.exists(full):
                found = [full]
            if not found and "brace_match" in checks and alternative != pattern:
                self.diags.error(f"include '{pattern}': '{alternative}' matches no file", loc)
            if not found and "wildcard_match" in checks and glob.has_magic(alternative):
                self.diags.error(f"include '{pattern}': wildcard '{alternative}' matches no file", loc)
            matched.extend(found)
        if not matched:
            if "match" in checks:
                self.diags.error(f"include '{pattern}' matches no file", loc)
            else:
                # keepalived's plain `include` is silent here; a typo deserves a word.
                self.diags.warning(f"include '{pattern}' matches no file", loc)
        for name in matched:
            yield from self._file(name, loc, strict="readable" in checks)

    # ---- one logical line ----------------------------------------------------------------

    def _line(self, text: str, loc: Location, depth: int) -> Iterator[LogicalLine]:
        if depth > MAX_EXPANSION_DEPTH:
            self.diags.error(f"parameter or repetition expansion deeper than {MAX_EXPANSION_DEPTH} levels", loc)
            return
        s = text.strip()
        if not s:
            return
        if s.startswith("@"):
            m = _CONDITIONAL.match(s)
            if m is None:
                return
            negate, ident, rest = m.group(1) == "^", m.group(2), m.group(3) or ""
            if (ident == self.config_id) == negate:
                return
            s = rest.strip()
            if not s:
                return
        m = _DEFINITION.match(s)
        if m is not None:
            value = [v.strip() for v in m.group(2).split("\n")]
            self.params[m.group(1)] = [v for v in value if v] if len(value) > 1 else value
            return
        if "\n" in s:
            for part in s.split("\n"):
                yield from self._line(part, loc, depth + 1)
            return
        m = _REPEAT.match(s)
        if m is not None:
            yield from self._repeat(s, m, loc, depth)
            return
        if "$" in s:
            try:
                substituted = self._substitute(s, loc)
            except _TooDeep:
                self.diags.error(f"parameter expansion deeper than {MAX_EXPANSION_DEPTH} levels", loc)
                return
            if substituted != s:
                yield from self._line(substituted, loc, depth + 1)
                return
        if s.split(None, 1)[0] == "include_check":
            self._set_include_checks(s, loc)
        yield LogicalLine(s, loc)

    def _set_include_checks(self, s: str, loc: Location) -> None:
        """global_defs `include_check [+|-]CHECK ...` changes the checks from here on."""
        words = s.split()[1:]
        if not words:
            self._include_checks = INCLUDE_CHECKS
            return
        checks = set() if words[0][:1] not in "+-" else set(self._include_checks)
        for w in words:
            op, name = (w[0], w[1:]) if w[:1] in "+-" else ("+", w)
            if name not in INCLUDE_CHECKS:
                continue  # the keyword's own converter reports it
            if op == "-":
                checks.discard(name)
            else:
                checks.add(name)
        self._include_checks = frozenset(checks)

    # ---- $parameters ----------------------------------------------------------------------

    def _substitute(self, s: str, loc: Location) -> str:
        """One pass of substitution; multi-line values are inserted unexpanded, one per
        line, so they are processed line by line by the caller."""

        def braced(m: re.Match[str]) -> str:
            name, arg = m.group(1), (m.group(2) or "").strip()
            value = self._builtin(name, arg, loc)
            if value is not None:
                return value
            if name in self.params and not arg:
                return "\n".join(self.params[name])
            return m.group(0)

        def bare(m: re.Match[str]) -> str:
            name = m.group(1)
            value = self._builtin(name, "", loc)
            if value is not None:
                return value
            if name in self.params:
                return "\n".join(self.params[name])
            return m.group(0)

        out = _BRACED_USE.sub(braced, s)
        out = _BARE_USE.sub(bare, out)
        if len(out) > 1_000_000:
            raise _TooDeep
        return out

    def _builtin(self, name: str, arg: str, loc: Location) -> str | None:
        """keepalived's predefined parameters (man page, "Pre-defined definitions")."""
        if name == "_PWD":
            return os.path.dirname(os.path.abspath(loc.file))
        if name == "_INSTANCE":
            return self.config_id
        if name == "_HASH":
            return "#"
        if name == "_BANG":
            return "!"
        if name == "_ENV":
            return self.env.get(arg, "")
        if name == "_RANDOM":
            bounds = arg.split()
            try:
                lo = int(bounds[0]) if bounds else 0
                hi = int(bounds[1]) if len(bounds) > 1 else 32767
            except ValueError:
                self.diags.reset(f"bad ${{_RANDOM {arg}}}: MIN and MAX must be integers; using 0 32767", loc)
                lo, hi = 0, 32767
            if lo > hi:
                lo, hi = hi, lo
            return str(self.rand(lo, hi))
        return None

    # ---- ~SEQ / ~LST ------------------------------------------------------------------------

    def _repeat(self, s: str, m: re.Match[str], loc: Location, depth: int) -> Iterator[LogicalLine]:
        kind = m.group(1)
        close = _matching_paren(s, m.end() - 1)
        if close < 0:
            self.diags.reset(f"~{kind}( without its ')': line ignored", loc)
            return
        spec = s[m.end() : close]
        rest = s[close + 1 :].strip()
        if "$" in spec:
            try:
                spec = self._substitute(spec, loc)
            except _TooDeep:
                self.diags.error("parameter expansion too deep in repetition", loc)
                return
        try:
            bindings = _seq_bindings(kind, spec) if kind.startswith("SEQ") else _lst_bindings(spec)
        except ValueError as e:
            self.diags.reset(f"~{kind}({spec}): {e}; line ignored", loc)
            return
        self._repeat_lines += len(bindings)
        if self._repeat_lines > MAX_REPEAT_LINES:
            self.diags.error(f"~SEQ/~LST repetition makes more than {MAX_REPEAT_LINES} lines", loc)
            return
        for binding in bindings:
            for name, value in binding:
                self.params[name] = [value]
            yield from self._line(rest, loc, depth + 1)


def not_regular(path: str, mode: int) -> str | None:
    """Why a file is not read as configuration, in keepalived's words (check_glob_file),
    or None: only regular files without any execute bit are."""
    if stat.S_ISDIR(mode):
        shown = path if path.endswith("/") else path + "/"  # glob(GLOB_MARK) marks directories
        return f"Configuration file '{shown}' is a directory - skipping"
    if not stat.S_ISREG(mode) or mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        return f"Configuration file '{path}' is not a regular non-executable file - skipping"
    return None


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(limit - size, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# What str.splitlines() splits on, found one line at a time: a big file is not turned
# into a list of millions of strings at once.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


_OTHER_BREAK = re.compile(r"[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _split_lines(text: str) -> Iterator[str]:
    if _OTHER_BREAK.search(text) is not None:
        yield from _split_any_lines(text)
        return
    # The common case, newlines only: str.find is several times faster than the regex.
    find = text.find
    start = 0
    end = find("\n")
    while end >= 0:
        yield text[start:end]
        start = end + 1
        end = find("\n", start)
    if start < len(text):
        yield text[start:]


def _split_any_lines(text: str) -> Iterator[str]:
    start = 0
    for m in _LINE_BREAK.finditer(text):
        yield text[start : m.start()]
        start = m.end()
    if start < len(text):
        yield text[start:]


def _matching_paren(s: str, open_index: int) -> int:
    level = 0
    for i in range(open_index, len(s)):
        if s[i] == "(":
            level += 1
        elif s[i] == ")":
            level -= 1
            if level == 0:
                return i
    return -1


def _split_top(spec: str) -> list[str]:
    """Split on commas that are not inside {...}."""
    parts: list[str] = []
    cur: list[str] = []
    level = 0
    for c in spec:
        if c == "{":
            level += 1
        elif c == "}":
            level -= 1
        if c == "," and level == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur).strip())
    return parts


def _number(text: str) -> int:
    t = text.strip().lower()
    neg = t.startswith("-")
    t = t.lstrip("+-")
    value = int(t, 16) if t.startswith("0x") else int(t, 10)
    return -value if neg else value


def _seq_bindings(kind: str, spec: str) -> list[list[tuple[str, str]]]:
    """~SEQ(var, start, step, end): step and start may be left out (man page)."""
    args = _split_top(spec)
    if not args or not re.fullmatch(_NAME, args[0]):
        raise ValueError("the first argument must be a parameter name")
    nums = [_number(a) for a in args[1:]]
    if len(nums) == 1:
        end = nums[0]
        start = 1 if end > 0 else -1
        step = 1 if end >= start else -1
    elif len(nums) == 2:
        start, end = nums
        step = 1 if end >= start else -1
    elif len(nums) == 3:
        start, step, end = nums
    else:
        raise ValueError("expected (var, [start,] [step,] end)")
    if step == 0:
        raise ValueError("step must not be 0")
    count = (end - start) // step + 1
    if count <= 0:
        return []
    if count > MAX_REPEAT_LINES:
        raise ValueError(f"more than {MAX_REPEAT_LINES} values")
    fmt = "x" if kind == "SEQx" else "d"
    return [[(args[0], format(start + k * step, fmt))] for k in range(count)]


def _lst_bindings(spec: str) -> list[list[tuple[str, str]]]:
    """~LST(var, v1, v2, ...) or ~LST({a, b}, {1, 2}, {3, 4})."""
    args = _split_top(spec)
    if len(args) < 2:
        raise ValueError("expected a variable and at least one value")

    def unbrace(a: str) -> list[str]:
        a = a.strip()
        if a.startswith("{") and a.endswith("}"):
            return [x.strip() for x in a[1:-1].split(",")]
        return [a]

    names = unbrace(args[0])
    for n in names:
        if not re.fullmatch(_NAME, n):
            raise ValueError(f"'{n}' is not a parameter name")
    out = []
    for a in args[1:]:
        values = unbrace(a)
        if len(values) != len(names):
            raise ValueError(f"{{{a}}} has {len(values)} values for {len(names)} variables")
        out.append(list(zip(names, values, strict=True)))
    return out


def expand_braces(pattern: str) -> list[str]:
    """csh-style brace expansion, as glob(GLOB_BRACE) does: a{b,c}d -> abd acd."""
    level = 0
    start = -1
    for i, c in enumerate(pattern):
        if c == "{":
            if level == 0:
                start = i
            level += 1
        elif c == "}" and level > 0:
            level -= 1
            if level == 0:
                inner = pattern[start + 1 : i]
                alternatives = _split_top(inner)
                if len(alternatives) < 2:
                    continue
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for alt in alternatives:
                    out.extend(expand_braces(head + alt + tail))
                return out
    return [pattern]
