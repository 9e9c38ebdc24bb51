"""Label selectors in Kubernetes' grammar, parsed once and then matched against many objects.

    app=web,tier!=db,env in (prod,staging),env notin (dev),gpu,!legacy

A selector is requirements joined by ',' (all must hold): ``key`` (the label exists),
``!key`` (it does not), ``key=value`` / ``key==value``, ``key!=value`` (true also when the
label is absent, as in Kubernetes), ``key in (v1,v2)``, ``key notin (v1,v2)`` (true also when
absent). Blanks around tokens are ignored. An empty selector selects everything.

Keys are what a Berth label key may be (every Kubernetes key is one): 1-253 letters, digits,
'.', '_', '/', '-', starting with a letter or digit. Values are empty or up to 255 letters,
digits and '.', '_', '-', '/', ':', '@', '+', '~' (Kubernetes' values, plus what image labels
hold: versions, URLs, e-mail addresses). Anything else is refused with a message naming the
problem and its position (0-based character offset into the selector).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidArgument

MAX_LENGTH = 4096
MAX_REQUIREMENTS = 64
MAX_VALUES = 100

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,252}")  # as specs.LABEL_KEY_RE
_VALUE = re.compile(r"[A-Za-z0-9._/:@+~-]{1,255}")
_SPECIAL = frozenset("=!(),<> \t\r\n")
_BLANK = frozenset(" \t\r\n")

EXISTS, NOT_EXISTS, EQUALS, NOT_EQUALS, IN, NOT_IN = "exists", "!", "=", "!=", "in", "notin"


class SelectorError(InvalidArgument):
    """A selector that does not parse; the message names the problem and where."""

    def __init__(self, problem: str, position: int) -> None:
        super().__init__(f"invalid selector: {problem} at position {position}")
        self.position = position


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # one of EXISTS, NOT_EXISTS, EQUALS, NOT_EQUALS, IN, NOT_IN
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == EXISTS:
            return present
        if self.op == NOT_EXISTS:
            return not present
        value = labels.get(self.key)
        if self.op in (EQUALS, IN):
            return present and value in self.values
        return not present or value not in self.values  # NOT_EQUALS, NOT_IN

    def __str__(self) -> str:
        if self.op == EXISTS:
            return self.key
        if self.op == NOT_EXISTS:
            return "!" + self.key
        if self.op in (EQUALS, NOT_EQUALS):
            return f"{self.key}{self.op}{self.values[0]}"
        return f"{self.key} {self.op} ({','.join(self.values)})"


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def sql(self, label: Callable[[str], Any]) -> Any:
        """The selector as a SQL condition; ``label(key)`` gives the SQL expression of one
        label's (string) value, NULL when the object lacks it."""
        from sqlalchemy import and_, or_, true

        clauses = []
        for r in self.requirements:
            value = label(r.key)
            if r.op == EXISTS:
                clauses.append(value.is_not(None))
            elif r.op == NOT_EXISTS:
                clauses.append(value.is_(None))
            elif r.op in (EQUALS, IN):
                clauses.append(value.in_(r.values))
            else:
                clauses.append(or_(value.is_(None), value.not_in(r.values)))
        return and_(true(), *clauses)


# -- parsing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "(", ")", ",", "=", "==", "!=", "!", "end", or an unsupported operator
    text: str
    pos: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _BLANK:
            i += 1
        elif c in "(),":
            out.append(_Token(c, c, i))
            i += 1
        elif c == "=":
            op = "==" if text.startswith("==", i) else "="
            out.append(_Token(op, op, i))
            i += len(op)
        elif c == "!":
            op = "!=" if text.startswith("!=", i) else "!"
            out.append(_Token(op, op, i))
            i += len(op)
        elif c in "<>":
            raise SelectorError(f"unsupported operator {c!r} (use =, ==, !=, in, notin)", i)
        else:
            start = i
            while i < n and text[i] not in _SPECIAL:
                i += 1
            out.append(_Token("word", text[start:i], start))
    out.append(_Token("end", "", n))
    return out


def _describe(tok: _Token) -> str:
    return "the end of the selector" if tok.kind == "end" else repr(tok.text)


def check_key(key: str, pos: int) -> str:
    if not _KEY.fullmatch(key):
        raise SelectorError(f"invalid label key {_short(key)}: 1-253 letters, digits, '.', "
                            "'_', '/' or '-', starting with a letter or digit", pos)
    return key


def check_value(value: str, pos: int) -> str:
    if not _VALUE.fullmatch(value):
        raise SelectorError(f"invalid label value {_short(value)}: at most 255 letters, "
                            "digits, '.', '_', '-', '/', ':', '@', '+' or '~'", pos)
    return value


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def selector(self) -> Selector:
        reqs: list[Requirement] = []
        if self.peek().kind == "end":
            return Selector()
        while True:
            if len(reqs) == MAX_REQUIREMENTS:
                raise SelectorError(f"more than {MAX_REQUIREMENTS} requirements",
                                    self.peek().pos)
            reqs.append(self.requirement())
            tok = self.take()
            if tok.kind == "end":
                return Selector(tuple(reqs))
            if tok.kind != ",":
                raise SelectorError(f"expected ',' or the end of the selector, found "
                                    f"{_describe(tok)}", tok.pos)

    def key(self) -> str:
        tok = self.take()
        if tok.kind != "word":
            raise SelectorError(f"expected a label key, found {_describe(tok)}", tok.pos)
        return check_key(tok.text, tok.pos)

    def requirement(self) -> Requirement:
        if self.peek().kind == "!":
            self.take()
            return Requirement(self.key(), NOT_EXISTS)
        key = self.key()
        tok = self.peek()
        if tok.kind in (",", "end"):
            return Requirement(key, EXISTS)
        if tok.kind in ("=", "==", "!="):
            self.take()
            value = self.peek()
            if value.kind in (",", "end"):  # key= : the label's value is empty
                return Requirement(key, NOT_EQUALS if tok.kind == "!=" else EQUALS, ("",))
            self.take()
            if value.kind != "word":
                raise SelectorError(f"expected a value after {tok.text!r}, found "
                                    f"{_describe(value)}", value.pos)
            return Requirement(key, NOT_EQUALS if tok.kind == "!=" else EQUALS,
                               (check_value(value.text, value.pos),))
        if tok.kind == "word" and tok.text in (IN, NOT_IN):
            self.take()
            return Requirement(key, tok.text, self.value_set(tok.text))
        raise SelectorError(f"expected '=', '==', '!=', 'in', 'notin', ',' or the end of the "
                            f"selector after the key {key!r}, found {_describe(tok)}", tok.pos)

    def value_set(self, op: str) -> tuple[str, ...]:
        tok = self.take()
        if tok.kind != "(":
            raise SelectorError(f"expected '(' after {op!r}, found {_describe(tok)}", tok.pos)
        values: list[str] = []
        while True:
            tok = self.take()
            if tok.kind == ")" and not values:
                raise SelectorError(f"the set of values after {op!r} is empty", tok.pos)
            if tok.kind != "word":
                raise SelectorError(f"expected a value, found {_describe(tok)}", tok.pos)
            if len(values) == MAX_VALUES:
                raise SelectorError(f"more than {MAX_VALUES} values in one set", tok.pos)
            values.append(check_value(tok.text, tok.pos))
            tok = self.take()
            if tok.kind == ")":
                return tuple(dict.fromkeys(values))
            if tok.kind != ",":
                raise SelectorError(f"expected ',' or ')' in the set of values, found "
                                    f"{_describe(tok)}", tok.pos)


def from_label_filters(exprs: list[str]) -> Selector | None:
    """Docker's label filters ("key" or "key=value", all must hold) as a selector, so they
    can run in SQL; None when a key is not one a label can have (no label could match it)."""
    reqs = []
    for expr in exprs:
        key, eq, value = expr.partition("=")
        if not _KEY.fullmatch(key):
            return None
        reqs.append(Requirement(key, EQUALS, (value,)) if eq else Requirement(key, EXISTS))
    return Selector(tuple(reqs))


def parse_selector(text: str | None) -> Selector:
    """Parse a selector (None or blank: select everything); raise SelectorError (a 400)."""
    if text is None:
        return Selector()
    if len(text) > MAX_LENGTH:
        raise SelectorError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH)
    return _Parser(text).selector()
