"""The block structure of a configuration: statements, each a keyword with its
arguments and, optionally, a `{ ... }` block of statements.

keepalived accepts the opening brace on the keyword's line or on a line of its own, and
blocks may open and close on one line (`authentication { auth_type PASS` ... `}`), so
braces are read as tokens, and a statement is the words of one logical line up to a
brace.
"""

from __future__ import annotations

import functools
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


_new_stmt = functools.partial(tuple.__new__, Stmt)  # Stmt(...) without its Python-level __new__


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
    tree = _Tree(diags)
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
        if tree.pending is not None and not is_open(words[0]):
            tree.children.append(tree.pending)
            tree.pending = None
        if len(tree.children) >= MAX_BLOCK_STATEMENTS and len(tree.stack) > 1:
            tree.too_many_statements(loc)
        if "{" not in text and "}" not in text:
            # Most lines: one statement, no braces at all.
            tree.pending = _new_stmt((words[0], tuple(words[1:]), loc, None))
        elif len(words) > 1 and text.count("{") == 1 and "}" not in text and is_open(words[-1]):
            # Then `KEYWORD ARGS {`, the one brace opening the statement's block.
            tree.open(_Open(words[0], tuple(words[1:-1]), loc))
        elif len(words) == 1 and is_close(words[0]):
            tree.close(loc)  # and a `}` alone
        else:
            tree.braces(words, loc)
    return tree.finish()


class _Tree:
    """The statements read so far: the blocks still open (the top level first), and
    `pending`, a statement whose line ended without a brace: it takes a block if the
    next line starts with "{" (the brace on a line of its own)."""

    __slots__ = ("children", "diags", "pending", "stack")

    def __init__(self, diags: Diagnostics) -> None:
        root = _Open("", (), Location("", 0))
        self.stack = [root]
        self.children = root.children  # the innermost open block's
        self.pending: Stmt | None = None
        self.diags = diags

    def braces(self, words: list[str], loc: Location) -> None:
        """A line with braces: statements, blocks opened and closed."""
        i, n = 0, len(words)
        while i < n:
            word = words[i]
            i += 1
            if is_close(word):
                self.close(loc)
            elif is_open(word):
                self._open_pending(loc)
            else:
                j = i
                while j < n and not is_open(words[j]) and not is_close(words[j]):
                    j += 1
                args = tuple(words[i:j])
                if j < n and is_open(words[j]):
                    self.open(_Open(word, args, loc))
                    j += 1
                elif j < n:
                    self.children.append(Stmt(word, args, loc))
                else:
                    self.pending = Stmt(word, args, loc)
                i = j

    def open(self, block: _Open) -> None:
        _check_depth(self.stack, block.location)
        self.stack.append(block)
        self.children = block.children

    def _open_pending(self, loc: Location) -> None:
        """A "{" after a statement (on its line or the line before) opens its block."""
        _check_depth(self.stack, loc)
        if self.pending is None:
            self.diags.reset("'{' without a keyword before it: block ignored", loc)
            block = _Open("{", (), loc, discard=True)
        else:
            block = _Open(self.pending.keyword, self.pending.args, self.pending.location)
            self.pending = None
        self.stack.append(block)
        self.children = block.children

    def close(self, loc: Location) -> None:
        if len(self.stack) == 1:
            self.diags.reset("extra '}' ignored", loc)
            return
        done = self.stack.pop()
        self.children = self.stack[-1].children
        if not done.discard:
            self.children.append(done.close())

    def too_many_statements(self, loc: Location) -> None:
        block = self.stack[-1]
        raise ConfigTooLarge(
            f"more than {MAX_BLOCK_STATEMENTS} statements in the '{block.keyword}' block opened at line "
            f"{block.location.line} of '{block.location.file}'",
            loc,
        )

    def finish(self) -> tuple[Stmt, ...]:
        """The top level, with the blocks still open closed (keepalived says so)."""
        if self.pending is not None:
            self.children.append(self.pending)
        stack = self.stack
        while len(stack) > 1:
            done = stack.pop()
            what = f"'{done.keyword}' block" if not done.discard else "block"
            self.diags.reset(f"missing '}}' for the {what} opened here", done.location)
            if not done.discard:
                stack[-1].children.append(done.close())
        return tuple(stack[0].children)


def _check_depth(stack: list[_Open], loc: Location) -> None:
    """Before a block is opened: the stack holds the top level and the open blocks."""
    if len(stack) > MAX_BLOCK_DEPTH:
        raise ConfigTooLarge(f"blocks nested deeper than {MAX_BLOCK_DEPTH} levels", loc)
