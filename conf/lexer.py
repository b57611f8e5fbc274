"""Splitting one logical config line into words, as keepalived does.

Rules (keepalived.conf(5), "Quoted strings" and DESCRIPTION):
- `#` and `!` start a comment anywhere outside quotes.
- Words are separated by whitespace; `"` and `'` quote, the quote characters are
  removed and the whitespace between them kept, so `abcd" efg "h` is one word.
- Inside quotes the shell's escapes work: \\a \\b \\E \\f \\n \\r \\t \\v, \\nnn octal,
  \\xXX hex, \\cC control characters; \\C is C.
- An unquoted `{` or `}` is always a word of its own.
"""

from __future__ import annotations

import re

QUOTES = "\"'"
COMMENT_CHARS = "#!"
BRACES = "{}"

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"


class Quoted(str):
    """A word that was quoted: a quoted "{" is text, never a brace. Unquoted words are
    plain `str` (the common case costs nothing)."""

    __slots__ = ()


def is_open(word: str) -> bool:
    return word == "{" and word.__class__ is str


def is_close(word: str) -> bool:
    return word == "}" and word.__class__ is str


class LexError(ValueError):
    """An unterminated quote; `words` holds the line's words with the quote closed at
    the end of the line, which is what keepalived goes on with."""

    def __init__(self, message: str, words: list[str]) -> None:
        super().__init__(message)
        self.words = words


_FAST_WORDS = re.compile(r"[{}]|[^\s{}]+")


def strip_comment(line: str) -> str:
    """Cut the line at the first `#` or `!` that is not inside quotes."""
    hash_at, bang_at = line.find("#"), line.find("!")
    if hash_at < 0 and bang_at < 0:
        return line
    if '"' not in line and "'" not in line:
        if hash_at < 0 or 0 <= bang_at < hash_at:
            return line[:bang_at]
        return line[:hash_at]
    quote = ""
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and quote:
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in QUOTES:
            quote = c
        elif c in COMMENT_CHARS:
            return line[:i]
        i += 1
    return line


def _escape(line: str, i: int) -> tuple[str, int]:
    """Decode the escape whose backslash is at line[i]; return (text, next index)."""
    if i + 1 >= len(line):
        return "\\", i + 1
    c = line[i + 1]
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], i + 2
    if c in _OCTAL:
        j = i + 1
        while j < len(line) and j < i + 4 and line[j] in _OCTAL:
            j += 1
        return chr(int(line[i + 1 : j], 8) & 0xFF), j
    if c == "x":
        j = i + 2
        while j < len(line) and j < i + 4 and line[j] in _HEX:
            j += 1
        if j == i + 2:
            return "x", j
        return chr(int(line[i + 2 : j], 16)), j
    if c == "c" and i + 2 < len(line):
        return chr(ord(line[i + 2].upper()) ^ 0x40), i + 3
    return c, i + 2


def split_words(line: str) -> list[str]:
    """Split a comment-free line into words (quoted ones as `Quoted`); LexError for an
    unterminated quote."""
    if '"' not in line and "'" not in line:
        # The common case, in one regex: no quotes means no escapes to decode either.
        return _FAST_WORDS.findall(line)
    words: list[str] = []
    buf: list[str] = []
    in_word = False
    quoted = False
    quote = ""
    i = 0
    n = len(line)

    def flush() -> None:
        nonlocal in_word, quoted
        if in_word:
            text = "".join(buf)
            words.append(Quoted(text) if quoted else text)
        buf.clear()
        in_word = False
        quoted = False

    while i < n:
        c = line[i]
        if quote:
            if c == quote:
                quote = ""
                i += 1
            elif c == "\\":
                text, i = _escape(line, i)
                buf.append(text)
            else:
                buf.append(c)
                i += 1
            continue
        if c.isspace():
            flush()
            i += 1
        elif c in QUOTES:
            quote = c
            in_word = True
            quoted = True
            i += 1
        elif c in BRACES:
            flush()
            words.append(c)
            i += 1
        elif c == "\\" and i + 1 < n and line[i + 1] in QUOTES:
            buf.append(line[i + 1])
            in_word = True
            i += 2
        else:
            buf.append(c)
            in_word = True
            i += 1
    flush()
    if quote:
        raise LexError(f"unterminated quote ({quote}) in: {line.strip()}", words)
    return words
