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
from collections.abc import Callable, Iterable, Mapping

from berth.build.model import DockerfileError

_SPECIAL_PARAMS = frozenset("@*#?-$!0")
# What one expansion may produce: more than the largest Dockerfile (1 MiB) is a bomb (ENV
# A=$A$A repeated doubles it each line), not a build.
MAX_EXPANSION = 1 << 20


class _Words:
    """Word splitting as Docker does it: unquoted whitespace separates words, quoted text
    and escaped characters never split, and an empty quoted string makes no word."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word: list[str] = []  # a list: "+=" on a str attribute copies it (quadratic)
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append("".join(self.word))
                self.word = []
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_split(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        if text:
            self.word.append(text)
        self.in_word = True

    def result(self) -> list[str]:
        if self.word:
            self.words.append("".join(self.word))
            self.word = []
        return self.words


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, line: int) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.line = line
        self.budget = MAX_EXPANSION  # characters the expansions may still produce

    def spend(self, size: int) -> None:
        self.budget -= size
        if self.budget < 0:
            raise DockerfileError(self.line, f"expanding {self.text[:60]!r} makes more than "
                                  f"{MAX_EXPANSION} characters")

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
        value = self._dollar()
        self.spend(len(value))
        return value

    def _dollar(self) -> str:
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
        longest = word.startswith(op)
        glob = _Glob(word[1:] if longest else word)
        if op == "#":
            end = glob.prefix(value, longest)
            return value if end is None else value[end:]
        end = glob.reversed().prefix(value[::-1], longest)
        return value if end is None else value[: len(value) - end]

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
        return _Glob(pattern).replace(value, replacement, every, self.spend)


class _Glob:
    """A shell pattern (``*``, ``?``, ``\\`` escapes; no brackets, like Docker) matched
    without backtracking blow-ups: ``*a*a*a*b`` against a long value stays linear.

    The pattern is cut at its ``*`` runs into fixed-length chunks. Since ``*`` matches
    anything, placing every middle chunk at its earliest fit loses no match (what can follow
    an earlier fit is a superset of what can follow a later one): atomic lazy groups do that,
    and only the last chunk's placement decides how long the match is."""

    def __init__(self, pattern: str | list[str]) -> None:
        self.tokens = _glob_tokens(pattern) if isinstance(pattern, str) else pattern
        chunks: list[list[str]] = [[]]
        for tok in self.tokens:
            if tok == "*":
                if chunks[-1] or len(chunks) == 1:  # a run of stars is one star
                    chunks.append([])
            else:
                chunks[-1].append(tok)
        self.chunks = ["".join("." if t == "?" else re.escape(t[-1]) for t in c)
                       for c in chunks]

    def reversed(self) -> _Glob:
        return _Glob(self.tokens[::-1])

    def _regex(self, longest: bool) -> re.Pattern[str]:
        first, *middle, last = self.chunks
        body = first + "".join(f"(?>.*?{c})" for c in middle)
        return re.compile(body + (".*" if longest else ".*?") + last, re.DOTALL)

    def prefix(self, value: str, longest: bool) -> int | None:
        """The length of the shortest (longest) prefix of value the pattern matches."""
        if len(self.chunks) == 1:
            m = re.compile(self.chunks[0], re.DOTALL).match(value)
        else:
            m = self._regex(longest).match(value)
        return m.end() if m else None

    def replace(self, value: str, rep: str, every: bool, spend: Callable[[int], None]
                ) -> str:  # fmt: skip
        """As ``re.sub`` with the plain translation (greedy ``.*``): the leftmost match,
        longest from there; every match when ``every``."""

        def sub(_m: re.Match[str]) -> str:
            spend(len(rep))
            return rep

        if len(self.chunks) == 1:  # fixed length: no backtracking to fear
            return re.compile(self.chunks[0], re.DOTALL).sub(sub, value, count=0 if every else 1)
        first = self.chunks[0]
        start = re.compile(first, re.DOTALL).search(value) if first else None
        if first and start is None:
            return value
        # Only the first fit of the first chunk needs a try: if the pattern matches from a
        # later one, it matches from this one too, reaching at least as far.
        m = self._regex(True).match(value, start.start() if start else 0)
        if m is None:
            return value
        out = value[: m.start()] + sub(m) + value[m.end() :]
        if every and not "".join(self.chunks) and m.end() > m.start():
            out += sub(m)  # only "*": re.sub also replaces the empty match at the end
        return out


def _glob_tokens(pattern: str) -> list[str]:
    """The pattern's tokens: ``*``, ``?``, or ``=c`` for a literal (escaped or plain) c."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "*?":
            out.append(ch)
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append("=" + pattern[i])
        else:
            out.append("=" + ch)
        i += 1
    return out


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
