"""Reading a route or rule line (`ip route`/`ip rule` syntax) by option tables: each
option keyword maps to a reader that takes the option's value words and records them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from conf.diagnostics import Location
from conf.schema import ConfigValueError, Context


class Words:
    """A line being read: its words, the position, and the option values so far (by the
    entry's field name)."""

    __slots__ = ("ctx", "i", "loc", "values", "words")

    def __init__(self, words: Sequence[str], loc: Location, ctx: Context) -> None:
        self.words = words
        self.i = 0
        self.loc = loc
        self.ctx = ctx
        self.values: dict[str, Any] = {}  # field -> value, for the entry's constructor

    def more(self) -> bool:
        return self.i < len(self.words)

    def next(self) -> str:
        self.i += 1
        return self.words[self.i - 1]

    def take(self, after: str) -> str:
        """The value word after the option `after`."""
        if self.i >= len(self.words):
            raise ConfigValueError(f"missing a value after '{after}'")
        return self.next()


Reader = Callable[[Words, str], None]
"""Reads the value of option `word` (already taken) from the line."""


def value(field: str, parse: Callable[[str], object]) -> Reader:
    """An option with one value word."""

    def read(line: Words, word: str) -> None:
        line.values[field] = parse(line.take(word))

    return read


def flag(field: str, setting: object = True) -> Reader:
    """An option without a value."""

    def read(line: Words, word: str) -> None:
        line.values[field] = setting

    return read


def ignore(line: Words, word: str) -> None:
    """An option that changes nothing (`add`, as in `ip route add`)."""


def rejected(why: str) -> Reader:
    def read(line: Words, word: str) -> None:
        raise ConfigValueError(why)

    return read
