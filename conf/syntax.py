"""The block structure of a configuration: statements, each a keyword with its
arguments and, optionally, a `{ ... }` block of statements.

keepalived accepts the opening brace on the keyword's line or on a line of its own, and
blocks may open and close on one line (`authentication { auth_type PASS` ... `}`), so
braces are read as tokens, and a statement is the words of one logical line up to a
brace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from conf.diagnostics import Diagnostics, Location
from conf.lexer import LexError, split_words
from conf.preprocess import LogicalLine


class Stmt(NamedTuple):
    """One statement (a NamedTuple: there is one per config line, so it must be cheap)."""

    keyword: str
    args: tuple[str, ...]
    location: Location
    block: tuple[Stmt, ...] | None = None  # None: the keyword has no { } block

    @property
    def words(self) -> tuple[str, ...]:
        return (self.keyword, *self.args)


@dataclass
class _Open:
    keyword: str
    args: tuple[str, ...]
    location: Location
    children: list[Stmt] = field(default_factory=list)
    discard: bool = False  # a `{` with no keyword: read to its `}` and drop

    def close(self) -> Stmt:
        return Stmt(self.keyword, self.args, self.location, tuple(self.children))


def parse_statements(lines: Iterable[LogicalLine], diags: Diagnostics) -> tuple[Stmt, ...]:
    """The top-level statements. Brace errors are reported and repaired the way
    keepalived repairs them, so that parsing always yields a tree."""
    root = _Open("", (), Location("", 0))
    stack = [root]
    # A statement whose line ended without a brace: it takes a block if the next line
    # starts with "{" (the brace on a line of its own).
    pending: tuple[str, tuple[str, ...], Location] | None = None
    for text, loc in lines:
        try:
            words = split_words(text)
        except LexError as e:
            diags.reset(f"{e}; closing it at the end of the line", loc)
            words = e.words
        i, n = 0, len(words)
        if pending is not None and not (n and words[0].is_open):
            stack[-1].children.append(Stmt(*pending))
            pending = None
        while i < n:
            word = words[i]
            i += 1
            if word.is_close:
                if len(stack) == 1:
                    diags.reset("extra '}' ignored", loc)
                    continue
                done = stack.pop()
                if not done.discard:
                    stack[-1].children.append(done.close())
                continue
            if word.is_open:
                if pending is not None:
                    stack.append(_Open(*pending))
                    pending = None
                else:
                    diags.reset("'{' without a keyword before it: block ignored", loc)
                    stack.append(_Open("{", (), loc, discard=True))
                continue
            j = i
            while j < n and not words[j].is_open and not words[j].is_close:
                j += 1
            args = tuple(w.text for w in words[i:j])
            i = j
            if i < n and words[i].is_open:
                i += 1
                stack.append(_Open(word.text, args, loc))
            elif i < n:
                stack[-1].children.append(Stmt(word.text, args, loc))
            else:
                pending = (word.text, args, loc)
    if pending is not None:
        stack[-1].children.append(Stmt(*pending))
    while len(stack) > 1:
        done = stack.pop()
        what = f"'{done.keyword}' block" if not done.discard else "block"
        diags.reset(f"missing '}}' for the {what} opened here", done.location)
        if not done.discard:
            stack[-1].children.append(done.close())
    return tuple(root.children)
