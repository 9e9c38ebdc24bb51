""".dockerignore: which files of the build context are left out, with Docker's rules.

* One pattern a line; blank lines and lines starting with ``#`` are skipped; surrounding
  whitespace is trimmed.
* Patterns are cleaned like Docker (Go ``path.Clean``): ``./`` and a trailing ``/`` go,
  ``a//b`` and ``a/../b`` are normalised, and a leading ``/`` is dropped (patterns are
  always relative to the context root, so ``/abs`` and ``abs`` mean the same).
* Go ``filepath.Match`` syntax: ``*`` and ``?`` never cross a ``/``, ``[...]`` classes,
  ``\\`` escapes; plus ``**``, which matches any number of directories (zero included).
* ``!pattern`` is an exception that re-includes what it matches; the last matching line
  wins.
* A path is also matched through its parents: a pattern matching ``dir`` excludes
  everything below ``dir``, unless a later exception matches the path (or one of its
  parents). A trailing ``/`` does not restrict a pattern to directories (it is cleaned
  away, as in Docker).

The Dockerfile and ``.dockerignore`` are always sent to the builder even when a pattern
excludes them: this class only answers the question, the caller (the context walker) adds
those two files back.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from berth.errors import InvalidArgument


def _clean(path: str) -> str:
    cleaned = posixpath.normpath(path) if path else "."
    # posixpath keeps a leading "//" (POSIX allows it); Go's Clean does not.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("/") else cleaned


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """Docker's pattern-to-regex translation, one (kind, regex piece) per element: "lit",
    "any" (``?``), "class" (``[...]``), "star" (``*``), "rest" (a final ``**``) and "dirs"
    (``**/`` or an inner ``**``: any number of directories)."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "[":  # inside [...]: ranges and "^" keep their meaning
            piece = [ch]
            while i < n:
                ch = pattern[i]
                i += 1
                if ch == "]":
                    piece.append(ch)
                    break
                if ch == "\\" and i < n:
                    piece.append(re.escape(pattern[i]))
                    i += 1
                else:
                    piece.append(re.escape(ch) if ch in "[&~|\\" else ch)
            out.append(("class", "".join(piece)))
        elif ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # "**/" is "**"
                    i += 1
                out.append(("rest", ".*") if i >= n else ("dirs", "(.*/)?"))
            else:
                out.append(("star", "[^/]*"))
        elif ch == "?":
            out.append(("any", "[^/]"))
        elif ch == "\\":
            out.append(("lit", re.escape(pattern[i]) if i < n else r"\\"))
            i += 1
        else:
            out.append(("lit", re.escape(ch)))
    return out


def _translate(pattern: str) -> str:
    """Docker's pattern-to-regex translation (anchored at both ends)."""
    return "^" + "".join(piece for _, piece in _tokens(pattern)) + "$"


# Above this many stars a backtracking regex can take ages (``*a*a*a*a*b`` against a long
# name is polynomial of that degree): such patterns run on a state-set matcher instead.
_MAX_REGEX_STARS = 2


class _Glob:
    """One pattern's matcher: Python's regex, or for a pattern with many stars a
    simulation of its automaton (linear in the path, whatever the pattern)."""

    def __init__(self, pattern: str) -> None:
        self.regex = re.compile(_translate(pattern), re.DOTALL)  # re.error: a bad pattern
        tokens = _tokens(pattern)
        self.nodes: list[tuple[str, Any]] | None = None
        if sum(kind in _WILD for kind, _ in tokens) > _MAX_REGEX_STARS:
            self.nodes = self._automaton(tokens)

    @staticmethod
    def _automaton(tokens: list[tuple[str, str]]) -> list[tuple[str, Any]] | None:
        nodes: list[tuple[str, Any]] = []
        for kind, piece in _simplify(tokens):
            if kind == "class":
                try:  # a class that only parses with its neighbours: keep the regex
                    one = re.compile(piece, re.DOTALL)
                except re.error:
                    return None
                nodes.append(("class", one))
            elif kind == "lit":
                nodes.append(("lit", re.compile(piece, re.DOTALL)))
            elif kind == "dirs":  # (.*/)?: skip it, or any characters up to a "/"
                nodes += [("dirs", None), ("inside", None)]
            else:
                nodes.append((kind, None))
        return nodes

    @staticmethod
    def _closure(nodes: list[tuple[str, Any]], states: set[int]) -> set[int]:
        """The states reachable without reading a character (a star matching nothing)."""
        todo = list(states)
        while todo:
            i = todo.pop()
            kind = nodes[i][0] if i < len(nodes) else ""
            nxt = [i + 1] if kind in ("star", "rest", "dirs") else []
            if kind == "dirs":
                nxt.append(i + 2)
            for j in nxt:
                if j not in states:
                    states.add(j)
                    todo.append(j)
        return states

    def fullmatch(self, text: str) -> bool:
        return self.match_dirs(text, parents=False)

    def match_dirs(self, text: str, parents: bool) -> bool:
        """Does the pattern match ``text`` (or, with ``parents``, one of its parent
        directories: ``a`` or ``a/b`` of ``a/b/c``)?"""
        if self.nodes is None:
            if self.regex.fullmatch(text):
                return True
            if not parents:
                return False
            dirs = text.split("/")[:-1]
            return any(self.regex.fullmatch("/".join(dirs[:i]))
                       for i in range(1, len(dirs) + 1))
        # One pass: a parent matches when the automaton accepts just before its "/".
        nodes, end = self.nodes, len(self.nodes)
        states = self._closure(nodes, {0})
        for pos, ch in enumerate(text):
            if parents and ch == "/" and pos and end in states:
                return True
            step: set[int] = set()
            for i in states:
                if i == end:
                    continue
                kind, data = nodes[i]
                if kind in ("lit", "class"):
                    if data.fullmatch(ch):
                        step.add(i + 1)
                elif kind == "any" or kind == "star":
                    if ch != "/":
                        step.add(i + 1 if kind == "any" else i)
                elif kind in ("rest", "inside"):
                    step.add(i)
                    if kind == "inside" and ch == "/":
                        step.add(i + 1)
            if not step:
                return False
            states = self._closure(nodes, step)
        return end in states


_WILD = ("star", "rest", "dirs")
# Two neighbouring wildcards that mean one: "rest" is any text, so are "dirs" + "star"
# ((.*/)?[^/]* splits any text at its last "/").
_MERGED = {("star", "star"): "star", ("dirs", "dirs"): "dirs", ("dirs", "star"): "rest",
           ("rest", "star"): "rest", ("rest", "dirs"): "rest", ("star", "rest"): "rest",
           ("dirs", "rest"): "rest", ("rest", "rest"): "rest"}


def _simplify(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Runs of wildcards cut to at most two ("star" "dirs"), so ``*****`` costs one state;
    the automaton only reads the kinds of the wildcards, not their regex pieces."""
    out: list[tuple[str, str]] = []
    for kind, piece in tokens:
        while out and (merged := _MERGED.get((out[-1][0], kind))):
            out.pop()
            kind, piece = merged, ""
        out.append((kind, piece))
    return out


def _segment_regex(segment: str, lineno: int) -> _Glob:
    try:
        return _Glob(segment)
    except re.error as exc:
        raise InvalidArgument(f".dockerignore line {lineno}: bad pattern {segment!r}") from exc


class _Pattern:
    def __init__(self, text: str, exception: bool, lineno: int) -> None:
        self.text = text
        self.exception = exception
        self.glob = _segment_regex(text, lineno)
        self.parts = text.split("/")
        self._part_globs: dict[int, _Glob | None] = {}

    def fullmatch(self, path: str) -> bool:
        return self.glob.fullmatch(path)

    def matches(self, path: str) -> bool:
        """True when the pattern matches ``path`` or one of its parent directories."""
        return self.glob.match_dirs(path, parents=True)

    def _part(self, i: int) -> _Glob | None:
        if i not in self._part_globs:
            try:
                self._part_globs[i] = _Glob(self.parts[i])
            except re.error:
                self._part_globs[i] = None  # a class split by "/": be conservative
        return self._part_globs[i]

    def may_match_below(self, dir_parts: list[str]) -> bool:
        """Could this pattern match ``dir``, one of its parents, or something below it?
        Conservative: only a segment that cannot match the directory's says no."""
        for i, name in enumerate(dir_parts):
            if i >= len(self.parts):
                return True  # the pattern matches a parent of dir: re-includes all of it
            if "**" in self.parts[i]:
                return True
            glob = self._part(i)
            if glob is not None and not glob.fullmatch(name):
                return False
        return True


class DockerIgnore:
    def __init__(self, patterns: list[_Pattern]) -> None:
        self._patterns = patterns
        self._has_exceptions = any(p.exception for p in patterns)

    @classmethod
    def from_text(cls, text: str) -> DockerIgnore:
        patterns: list[_Pattern] = []
        for lineno, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            if exception:
                line = line[1:].strip()
                if not line:
                    raise InvalidArgument(f'.dockerignore line {lineno}: illegal pattern "!"')
            line = _clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
            patterns.append(_Pattern(line, exception, lineno))
        return cls(patterns)

    @property
    def empty(self) -> bool:
        return not self._patterns

    def excluded(self, relpath: str, is_dir: bool = False) -> bool:
        """Is ``relpath`` (relative to the context root, ``/``-separated) left out?
        ``is_dir`` does not change the answer (Docker's rules do not distinguish
        directories); it is accepted so callers can pass what they know."""
        path = _clean(relpath.lstrip("/"))
        if path == ".":
            return False  # the context root itself is never excluded
        excluded = False
        for pattern in self._patterns:
            if pattern.matches(path):
                excluded = not pattern.exception
        return excluded

    def may_contain_included(self, dir_relpath: str) -> bool:
        """For an excluded directory: must the walker still descend into it because an
        exception (``!``) might re-include something below it? False means the whole
        directory can be skipped."""
        if not self._has_exceptions:
            return False
        path = _clean(dir_relpath.lstrip("/"))
        parts = [] if path == "." else path.split("/")
        return any(p.exception and p.may_match_below(parts) for p in self._patterns)
