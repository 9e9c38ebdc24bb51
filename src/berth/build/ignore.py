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

from berth.errors import InvalidArgument


def _clean(path: str) -> str:
    cleaned = posixpath.normpath(path) if path else "."
    # posixpath keeps a leading "//" (POSIX allows it); Go's Clean does not.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("/") else cleaned


def _translate(pattern: str) -> str:
    """Docker's pattern-to-regex translation (anchored at both ends)."""
    out: list[str] = ["^"]
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        i += 1
        if in_class:  # inside [...]: ranges and "^" keep their meaning
            if ch == "]":
                in_class = False
                out.append(ch)
            elif ch == "\\" and i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(re.escape(ch) if ch in "[&~|\\" else ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # "**/" is "**"
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(r"\\")
        else:
            out.append(re.escape(ch))
    out.append("$")
    return "".join(out)


def _segment_regex(segment: str, lineno: int) -> re.Pattern[str]:
    try:
        return re.compile(_translate(segment), re.DOTALL)
    except re.error as exc:
        raise InvalidArgument(f".dockerignore line {lineno}: bad pattern {segment!r}") from exc


class _Pattern:
    def __init__(self, text: str, exception: bool, lineno: int) -> None:
        self.text = text
        self.exception = exception
        self.regex = _segment_regex(text, lineno)
        self.parts = text.split("/")

    def matches(self, path: str) -> bool:
        """True when the pattern matches ``path`` or one of its parent directories."""
        if self.regex.fullmatch(path):
            return True
        dirs = path.split("/")[:-1]
        return any(self.regex.fullmatch("/".join(dirs[:i])) for i in range(1, len(dirs) + 1))

    def may_match_below(self, dir_parts: list[str]) -> bool:
        """Could this pattern match ``dir``, one of its parents, or something below it?
        Conservative: only a segment that cannot match the directory's says no."""
        for i, name in enumerate(dir_parts):
            if i >= len(self.parts):
                return True  # the pattern matches a parent of dir: re-includes all of it
            part = self.parts[i]
            if "**" in part:
                return True
            try:
                if not re.fullmatch(_translate(part), name, re.DOTALL):
                    return False
            except re.error:
                return True  # a class split by "/": be conservative
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
