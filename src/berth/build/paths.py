"""Paths inside a root directory that holds hostile content (a build context, an image's view).

Nothing here asks the kernel to follow a symlink: every component is looked at with lstat and
a link's target is resolved by hand, relative to the root. In a build context a link that leads
out of the context is refused; in an image's filesystem it is clamped at the image's "/", as the
container would see it.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from pathlib import Path

from berth.errors import InvalidArgument
from berth.fsutil import relative_in_root

MAX_MATCHES = 100_000
_MAGIC = set("*?[")


class Escape(InvalidArgument):
    """A path (or a symlink on the way) that leads outside its root."""


def split(rel: str) -> list[str]:
    return [p for p in rel.split("/") if p not in ("", ".")]


def resolve(root: str, rel: str, *, clamp: bool, follow_last: bool = True) -> str:
    """``rel`` with every symlink on the way resolved, relative to ``root`` ("" is the root):
    fsutil's walk, refusing (not clamping) an escape unless ``clamp``. Parts that do not
    exist resolve lexically."""
    def escape(how: str) -> Escape:
        return Escape(f"{rel}: leads outside the build context (through {how})")

    return "/".join(relative_in_root(Path(root), rel, follow_last,
                                     None if clamp else escape))


def has_magic(pattern: str) -> bool:
    return any(c in _MAGIC for c in pattern)


def expand(root: str, pattern: str, *, clamp: bool) -> list[str]:
    """The paths a COPY source names: itself, or what its wildcards match (sorted)."""
    if not has_magic(pattern):
        return [resolve(root, pattern, clamp=clamp)]
    found = [""]
    for part in split(pattern):
        nxt: list[str] = []
        for base in found:
            real = resolve(root, base, clamp=clamp) if base else ""
            if part == "..":
                raise Escape(f"{pattern}: outside the build context")
            if not has_magic(part):
                nxt.append(posixpath.join(real, part) if real else part)
                continue
            try:
                names = sorted(os.listdir(os.path.join(root, real)))
            except (FileNotFoundError, NotADirectoryError):
                continue
            nxt.extend(posixpath.join(real, n) if real else n
                       for n in names if fnmatch.fnmatchcase(n, part))
            if len(nxt) > MAX_MATCHES:
                raise InvalidArgument(f"{pattern}: matches more than {MAX_MATCHES} files")
        found = nxt
    return [resolve(root, p, clamp=clamp) for p in found
            if os.path.lexists(os.path.join(root, p))]
