"""Parsing ``WWW-Authenticate`` (RFC 7235) strictly: a registry's challenge decides where
credentials go, so anything malformed is refused rather than guessed at."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

MAX_HEADER = 8 << 10
MAX_CHALLENGES = 8
MAX_PARAMS = 16
_TCHAR = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")


class ChallengeError(ValueError):
    """The header does not follow the grammar (or is too big)."""


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer", ...
    params: dict[str, str] = field(default_factory=dict)  # names lower case

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> list[str]:
        """A challenge's scope parameter may hold several space-separated scopes."""
        return self.params.get("scope", "").split()


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while not self.at_end() and self.text[self.pos] in _TCHAR:
            self.pos += 1
        return self.text[start:self.pos]

    def quoted(self) -> str:
        self.pos += 1  # the opening quote
        out = []
        while True:
            if self.at_end():
                raise ChallengeError("unterminated quoted string")
            c = self.text[self.pos]
            self.pos += 1
            if c == '"':
                return "".join(out)
            if c == "\\":
                if self.at_end():
                    raise ChallengeError("unterminated escape")
                c = self.text[self.pos]
                self.pos += 1
            if ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F:
                raise ChallengeError("control character in quoted string")
            out.append(c)

    def param_follows(self) -> bool:
        """True when the next thing is ``name=`` (a parameter, not the next challenge)."""
        save = self.pos
        try:
            if not self.token():
                return False
            self.skip_ws()
            return self.peek() == "="
        finally:
            self.pos = save


def parse_challenges(values: list[str]) -> list[Challenge]:
    """All challenges in the given header values (a response may repeat the header)."""
    text = ", ".join(values)
    if len(text) > MAX_HEADER:
        raise ChallengeError("WWW-Authenticate header is too long")
    r = _Reader(text)
    out: list[Challenge] = []
    while True:
        while r.peek() in (" ", "\t", ",") and not r.at_end():
            r.pos += 1
        if r.at_end():
            return out
        scheme = r.token()
        if not scheme:
            raise ChallengeError(f"expected an auth scheme at offset {r.pos}")
        if len(out) >= MAX_CHALLENGES:
            raise ChallengeError("too many challenges")
        params: dict[str, str] = {}
        r.skip_ws()
        while r.param_follows():
            name = r.token().lower()
            r.skip_ws()
            r.pos += 1  # "="
            r.skip_ws()
            value = r.quoted() if r.peek() == '"' else r.token()
            if name in params:
                raise ChallengeError(f"parameter {name!r} repeated")
            if len(params) >= MAX_PARAMS:
                raise ChallengeError("too many parameters")
            params[name] = value
            r.skip_ws()
            if r.at_end():
                break
            if r.peek() != ",":
                raise ChallengeError(f"unexpected {r.peek()!r} at offset {r.pos}")
            r.pos += 1
            r.skip_ws()
        out.append(Challenge(scheme.lower(), params))
