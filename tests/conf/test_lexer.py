"""Word splitting and comments (keepalived.conf(5): DESCRIPTION, Quoted strings)."""

from __future__ import annotations

import pytest

from conf.lexer import LexError, Quoted, is_close, is_open, split_words, strip_comment


def texts(line: str) -> list[str]:
    return [str(w) for w in split_words(line)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("priority 100 # the backup", "priority 100 "),
        ("priority 100 ! old style", "priority 100 "),
        ('script "echo # not a comment" # comment', 'script "echo # not a comment" '),
        ("script 'a ! b'", "script 'a ! b'"),
        ('x "a \\" # b" # c', 'x "a \\" # b" '),
        ("# whole line", ""),
    ],
)
def test_strip_comment(line: str, expected: str) -> None:
    assert strip_comment(line) == expected


def test_man_page_quote_examples() -> None:
    # keepalived.conf(5): 'abcd" efg h jkl "mnop' is one word, 'abcd "efg h jkl" mnop' three.
    assert texts('abcd" efg h jkl "mnop') == ["abcd efg h jkl mnop"]
    assert texts('abcd "efg h jkl" mnop') == ["abcd", "efg h jkl", "mnop"]


def test_script_with_nested_quotes_is_one_word() -> None:
    line = "script \"/bin/bash -c '[[ -f /etc/keepalived/down ]]' && exit 1 || exit 0\""
    assert texts(line) == ["script", "/bin/bash -c '[[ -f /etc/keepalived/down ]]' && exit 1 || exit 0"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"a\\tb"', "a\tb"),
        ('"\\x41\\102"', "AB"),
        ('"\\cA"', "\x01"),
        ('"\\"q\\""', '"q"'),
        ('"\\\\"', "\\"),
        ('"\\E"', "\x1b"),
    ],
)
def test_escapes_inside_quotes(line: str, expected: str) -> None:
    assert texts(line) == [expected]


def test_braces_are_words_unless_quoted() -> None:
    words = split_words("vrrp_instance VI_1{")
    assert words == ["vrrp_instance", "VI_1", "{"] and is_open(words[2])
    words = split_words('auth_pass "{" }')
    assert words[1] == "{" and isinstance(words[1], Quoted) and not is_open(words[1])
    assert is_close(words[2]) and not is_close(Quoted("}"))


def test_unterminated_quote_keeps_the_words() -> None:
    with pytest.raises(LexError) as e:
        split_words('notify "/bin/x arg')
    assert e.value.words == ["notify", "/bin/x arg"]
