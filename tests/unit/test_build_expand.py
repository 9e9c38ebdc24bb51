"""Dockerfile variable substitution, quote removal and word splitting (Docker's lexer)."""

from __future__ import annotations

import pytest

from berth.build.expand import expand_word, expand_words, parse_arg_decls, parse_key_values
from berth.build.model import DockerfileError

ENV = {"A": "alpha", "EMPTY": "", "SP": "a  b", "PATH": "/usr/bin:/bin", "FILE": "x.tar.gz"}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("$A", "alpha"),
        ("${A}", "alpha"),
        ("pre$A.post", "prealpha.post"),
        ("${A}_x", "alpha_x"),
        ("$A_x", ""),  # the name is A_x, undefined
        ("$UNDEFINED", ""),
        ("${UNDEFINED}", ""),
        ("${UNDEFINED:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${UNDEFINED-def}", "def"),
        ("${A:-def}", "alpha"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNDEFINED+alt}", ""),
        ("${UNDEFINED:-${A}-x}", "alpha-x"),  # nested
        ("${UNDEFINED:-$UNDEFINED}", ""),
        ("${UNDEFINED:-a b}", "a b"),
        ("\\$A", "$A"),
        ("\\${A}", "${A}"),
        ("a\\ b", "a b"),
        ("'$A'", "$A"),
        ("'a \\ b'", "a \\ b"),
        ('"$A"', "alpha"),
        ('"\\$A \\"q\\" \\n"', '$A "q" \\n'),
        ('"it\'s"', "it's"),
        ("$", "$"),
        ("a$", "a$"),
        ("$/x", "$/x"),
        ("$1x", "x"),
        ("trailing\\", "trailing"),
        ("${FILE%.gz}", "x.tar"),
        ("${FILE%.*}", "x.tar"),
        ("${FILE%%.*}", "x"),
        ("${FILE#*.}", "tar.gz"),
        ("${FILE##*.}", "gz"),
        ("${PATH/bin/sbin}", "/usr/sbin:/bin"),
        ("${PATH//bin/sbin}", "/usr/sbin:/sbin"),
        ("${SP}", "a  b"),
        ("${A:?must be set}", "alpha"),
    ],
)
def test_expand_word(text: str, want: str) -> None:
    assert expand_word(text, ENV) == want


def test_backtick_escape() -> None:
    assert expand_word("`$A", ENV, escape="`") == "$A"
    assert expand_word("c:\\dir\\$A", ENV, escape="`") == "c:\\dir\\alpha"
    assert expand_word('"`"x`""', ENV, escape="`") == '"x"'


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("'open", "single-quote"),
        ('"open', "double-quote"),
        ("${A", "missing '}'"),
        ("${", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:-x}", "bad substitution"),
        ("${A^^}", "unsupported modifier"),
        ("${UNDEFINED?}", "UNDEFINED: is not allowed to be unset"),
        ("${EMPTY:?need it}", "EMPTY: need it"),
    ],
)
def test_expand_errors(text: str, needle: str) -> None:
    with pytest.raises(DockerfileError) as info:
        expand_word(text, ENV, line=7)
    assert info.value.line == 7
    assert needle in str(info.value)
    assert str(info.value).startswith("Dockerfile line 7: ")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("a b  c", ["a", "b", "c"]),
        ("  a  ", ["a"]),
        ("", []),
        ('"a b" c', ["a b", "c"]),
        ("'a  b'c d", ["a  bc", "d"]),
        ("a\\ b c", ["a b", "c"]),
        ("$SP", ["a", "b"]),  # expansions are split
        ('"$SP"', ["a  b"]),  # unless quoted
        ('"" x', ["x"]),  # an empty quoted string makes no word (as Docker)
        ("$EMPTY x", ["x"]),
        ("80/tcp ${PORT:-8080}", ["80/tcp", "8080"]),
    ],
)
def test_expand_words(text: str, want: list[str]) -> None:
    assert expand_words(text, ENV) == want


def test_parse_key_values() -> None:
    items = ["k=v", 'k2="v 2"', "k3=a\\ b", "$A=${A}x", "empty=", "url=a=b", "legacy=v w  x"]
    assert parse_key_values(items, ENV) == [
        ("k", "v"),
        ("k2", "v 2"),
        ("k3", "a b"),
        ("alpha", "alphax"),
        ("empty", ""),
        ("url", "a=b"),
        ("legacy", "v w  x"),
    ]
    assert parse_key_values(["'$A'='$A'"], ENV) == [("$A", "$A")]
    with pytest.raises(DockerfileError) as info:
        parse_key_values(["novalue"], ENV, line=3)
    assert info.value.line == 3
    with pytest.raises(DockerfileError):
        parse_key_values(["=v"], ENV)


def test_parse_arg_decls() -> None:
    got = parse_arg_decls(["A", "B=1", 'C="two words"', "D=${A}-x", "E="], ENV)
    assert got == [("A", None), ("B", "1"), ("C", "two words"), ("D", "alpha-x"), ("E", "")]
    with pytest.raises(DockerfileError):
        parse_arg_decls(["=x"], ENV)
