"""Dockerfile variable substitution and word splitting, following Docker's shell lexer.

The builder expands the arguments of ENV, ARG (defaults), LABEL, COPY/ADD, WORKDIR, USER,
EXPOSE, VOLUME, STOPSIGNAL, FROM and the ONBUILD trigger with these rules; it never expands
RUN/CMD/ENTRYPOINT (the shell in the container does). The rules, as in Docker:

* ``$NAME`` and ``${NAME}``; an undefined variable expands to "" (no error);
* ``${NAME:-word}`` / ``${NAME-word}`` default, ``${NAME:+word}`` / ``${NAME+word}``
  alternative, ``${NAME:?msg}`` / ``${NAME?msg}`` error, ``${NAME#pat}``/``##``/``%``/``%%``
  prefix/suffix removal, ``${NAME/pat/rep}`` and ``${NAME//pat/rep}`` replacement; the
  colon forms treat an empty value as unset; ``word`` is itself expanded (nesting works);
* quotes are removed: single-quoted text is literal, double-quoted text still expands ``$``;
* the escape character (``\\`` or the ``# escape=`` one) makes the next character literal
  (so ``\\$HOME`` stays ``$HOME``); inside double quotes it only escapes ``"``, ``$`` and
  itself, as in sh.

Errors (an unterminated quote, ``${}``, an unknown modifier) raise DockerfileError with the
line the caller passes, so they name the Dockerfile line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from berth.build.model import DockerfileError

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _Words:
    """Word splitting as Docker does it: unquoted whitespace separates words, quoted text
    and escaped characters never split, and an empty quoted string makes no word."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_split(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
        return self.words


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, line: int) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.line = line

    def fail(self, message: str) -> DockerfileError:
        return DockerfileError(self.line, f"failed to process {self.text!r}: {message}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def until(self, stop: str, raw_escapes: bool = False) -> tuple[str, list[str]]:
        """Process up to ``stop`` (consumed) or the end of the text when ``stop`` is ""."""
        out: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out), words.result()
            if ch == "$":
                value = self.dollar()
                out.append(value)
                words.add_split(value)  # expansions are split, as in sh
            elif ch == "'":
                value = self.single_quoted()
                out.append(value)
                words.add_raw(value)
            elif ch == '"':
                value = self.double_quoted()
                out.append(value)
                words.add_raw(value)
            else:
                self.next()
                if ch == self.escape:
                    if raw_escapes:  # patterns keep their escapes for the matcher
                        out.append(ch)
                        words.add_raw(ch)
                    ch = self.next()
                    if not ch:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                out.append(ch)
        if stop:
            raise self.fail(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def single_quoted(self) -> str:
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0:
            raise self.fail("unexpected end of statement while looking for matching single-quote")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def double_quoted(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise self.fail(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape:
                nxt = self.peek()
                if not nxt:
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch.isdigit():
            while self.peek().isdigit():
                self.next()
            return self.text[start : self.pos]
        if ch and ch in _SPECIAL_PARAMS:
            return self.next()
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        ch = self.peek()
        if not ch:
            raise self.fail("syntax error: missing '}'")
        if ch in "{}:":
            raise self.fail("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if op == "}":
            return self.env.get(name, "")
        colon = op == ":"
        if colon:
            op = self.next()
        if op in ("-", "+", "?", "#", "%"):
            try:
                word, _ = self.until("}", raw_escapes=op in "#%")
            except DockerfileError:
                if not self.peek():
                    raise self.fail("syntax error: missing '}'") from None
                raise
            return self.modifier(name, op, colon, word)
        if not op:
            raise self.fail("syntax error: missing '}'")
        if op == "/" and not colon:
            return self.replace(name)
        shown = (":" if colon else "") + op
        raise self.fail(f"unsupported modifier ({shown}) in substitution")

    def modifier(self, name: str, op: str, colon: bool, word: str) -> str:
        is_set = name in self.env
        value = self.env.get(name, "")
        unset = not is_set or (colon and value == "")
        if op == "-":
            return word if unset else value
        if op == "+":
            return "" if unset else word
        if op == "?":
            if not is_set:
                raise self.fail(f"{name}: {word or 'is not allowed to be unset'}")
            if colon and value == "":
                raise self.fail(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(op)
        pattern = _pattern_regex(word[1:] if greedy else word)
        # Shortest or longest prefix (#) / suffix (%) that the pattern matches in full.
        cuts = range(len(value) + 1)
        order = reversed(cuts) if greedy == (op == "#") else cuts
        for cut in order:
            part = value[:cut] if op == "#" else value[cut:]
            if pattern.fullmatch(part):
                return value[cut:] if op == "#" else value[:cut]
        return value

    def replace(self, name: str) -> str:
        every = self.peek() == "/"
        if every:
            self.next()
        try:
            pattern, _ = self.until("/", raw_escapes=True)
            replacement, _ = self.until("}", raw_escapes=True)
        except DockerfileError:
            if not self.peek():
                raise self.fail("syntax error: missing '}'") from None
            raise
        value = self.env.get(name, "")
        regex = _pattern_regex(pattern)
        return regex.sub(lambda _m: replacement, value, count=0 if every else 1)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A shell pattern (``*``, ``?``, ``\\`` escapes; no brackets, like Docker) as a regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def expand_word(text: str, env: Mapping[str, str], escape: str = "\\", line: int = 0) -> str:
    """Expand variables and remove quotes, keeping whitespace (Docker's ProcessWord)."""
    return _Lexer(text, env, escape, line).until("")[0]


def expand_words(
    text: str, env: Mapping[str, str], escape: str = "\\", line: int = 0
) -> list[str]:
    """Expand, then split into words on unquoted whitespace (Docker's ProcessWords)."""
    return _Lexer(text, env, escape, line).until("")[1]


def parse_key_values(
    args: Iterable[str], env: Mapping[str, str], escape: str = "\\", line: int = 0
) -> list[tuple[str, str]]:
    """ENV / LABEL items ("key=value" as the parser kept them, quotes included) expanded into
    (key, value) pairs; both sides are expanded, in order (later ENVs in the same
    instruction do not see earlier ones, as in Docker)."""
    pairs: list[tuple[str, str]] = []
    for item in args:
        key, sep, value = item.partition("=")
        if not sep:
            raise DockerfileError(
                line, f"can't find = in {item!r}. Must be of the form: name=value"
            )
        key = expand_word(key, env, escape, line)
        if not key:
            raise DockerfileError(line, f"empty name in {item!r}")
        pairs.append((key, expand_word(value, env, escape, line)))
    return pairs


def parse_arg_decls(
    args: Iterable[str], env: Mapping[str, str], escape: str = "\\", line: int = 0
) -> list[tuple[str, str | None]]:
    """ARG items ("name" or "name=default"): the name as written, the default expanded, or
    None when there is no default (an unset ARG then takes only a --build-arg value)."""
    decls: list[tuple[str, str | None]] = []
    for item in args:
        name, sep, default = item.partition("=")
        if not name:
            raise DockerfileError(line, f"ARG requires a name, got {item!r}")
        decls.append((name, expand_word(default, env, escape, line) if sep else None))
    return decls
