"""Word splitting and comments (keepalived.conf(5): DESCRIPTION, Quoted strings)."""

from __future__ import annotations

import pytest

from conf.lexer import LexError, Word, split_words, strip_comment


def texts(line: str) -> list[str]:
    return [w.text for w in split_words(line)]


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
    assert split_words("vrrp_instance VI_1{") == [Word("vrrp_instance"), Word("VI_1"), Word("{")]
    words = split_words('auth_pass "{x}" }')
    assert words[1] == Word("{x}", quoted=True) and not words[1].is_open
    assert words[2].is_close


def test_unterminated_quote_keeps_the_words() -> None:
    with pytest.raises(LexError) as e:
        split_words('notify "/bin/x arg')
    assert [w.text for w in e.value.words] == ["notify", "/bin/x arg"]
