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
from conf.lexer import LexError, is_close, is_open, split_words
from conf.limits import MAX_BLOCK_DEPTH, MAX_BLOCK_STATEMENTS, MAX_LINES, MAX_WORDS, ConfigTooLarge
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
    keepalived repairs them, so that parsing always yields a tree. ConfigTooLarge when
    a limit of conf/limits.py is crossed."""
    root = _Open("", (), Location("", 0))
    stack = [root]
    children = root.children
    # A statement whose line ended without a brace: it takes a block if the next line
    # starts with "{" (the brace on a line of its own).
    pending: Stmt | None = None
    line_count = word_count = 0
    for text, loc in lines:
        try:
            words = split_words(text)
        except LexError as e:
            diags.reset(f"{e}; closing it at the end of the line", loc)
            words = e.words
        if not words:
            continue
        line_count += 1
        word_count += len(words)
        if line_count > MAX_LINES or word_count > MAX_WORDS:
            what = f"{MAX_LINES} lines" if line_count > MAX_LINES else f"{MAX_WORDS} words"
            raise ConfigTooLarge(f"more than {what} of statements", loc)
        if pending is not None and not is_open(words[0]):
            children.append(pending)
            pending = None
        if len(children) >= MAX_BLOCK_STATEMENTS and len(stack) > 1:
            block = stack[-1]
            raise ConfigTooLarge(
                f"more than {MAX_BLOCK_STATEMENTS} statements in the '{block.keyword}' block opened at line "
                f"{block.location.line} of '{block.location.file}'",
                loc,
            )
        if "{" not in text and "}" not in text:
            # Most lines: one statement, no braces at all.
            pending = Stmt(words[0], tuple(words[1:]), loc)
            continue
        i, n = 0, len(words)
        while i < n:
            word = words[i]
            i += 1
            if is_close(word):
                if len(stack) == 1:
                    diags.reset("extra '}' ignored", loc)
                    continue
                done = stack.pop()
                children = stack[-1].children
                if not done.discard:
                    children.append(done.close())
                continue
            if is_open(word):
                _check_depth(stack, loc)
                if pending is not None:
                    stack.append(_Open(pending.keyword, pending.args, pending.location))
                    pending = None
                else:
                    diags.reset("'{' without a keyword before it: block ignored", loc)
                    stack.append(_Open("{", (), loc, discard=True))
                children = stack[-1].children
                continue
            j = i
            while j < n and not is_open(words[j]) and not is_close(words[j]):
                j += 1
            args = tuple(words[i:j])
            i = j
            if i < n and is_open(words[i]):
                i += 1
                _check_depth(stack, loc)
                stack.append(_Open(word, args, loc))
                children = stack[-1].children
            elif i < n:
                children.append(Stmt(word, args, loc))
            else:
                pending = Stmt(word, args, loc)
    if pending is not None:
        children.append(pending)
    while len(stack) > 1:
        done = stack.pop()
        what = f"'{done.keyword}' block" if not done.discard else "block"
        diags.reset(f"missing '}}' for the {what} opened here", done.location)
        if not done.discard:
            stack[-1].children.append(done.close())
    return tuple(root.children)


def _check_depth(stack: list[_Open], loc: Location) -> None:
    """Before a block is opened: the stack holds the top level and the open blocks."""
    if len(stack) > MAX_BLOCK_DEPTH:
        raise ConfigTooLarge(f"blocks nested deeper than {MAX_BLOCK_DEPTH} levels", loc)
