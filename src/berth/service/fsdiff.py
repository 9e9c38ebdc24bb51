"""A container's filesystem changes (``docker diff``), read from its overlay upper dir.

A whiteout (a 0/0 character device) is a deletion; anything else is an addition unless the
image's layers hold the same path, then a modification. A directory that only holds changes
and kept its mode and mtime is left out, as dockerd does. Everything is read relative to
directory fds with O_NOFOLLOW: neither the upper dir nor the layers are trusted.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from berth.errors import InvalidArgument
from berth.image.unpack import DIR_FLAGS, OPAQUE_XATTR

MODIFIED, ADDED, DELETED = 0, 1, 2
MAX_CHANGES = 1_000_000
MAX_DEPTH = 256


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def _opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


@dataclass
class _Lower:
    """The image's layers, topmost first, as directory fds."""

    fds: list[int]

    def lookup(self, parts: list[str]) -> os.stat_result | None:
        """What the layers show at ``parts`` (None: nothing, or deleted by a whiteout)."""
        for fd in self.fds:
            found, hidden = _lookup_one(fd, parts)
            if found is not None:
                return None if _is_whiteout(found) else found
            if hidden:
                return None
        return None


def _lookup_one(layer_fd: int, parts: list[str]) -> tuple[os.stat_result | None, bool]:
    """(the entry in one layer, whether this layer hides the layers below it)."""
    fd = os.dup(layer_fd)
    try:
        for comp in parts[:-1]:
            try:
                st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                return None, False
            if not stat.S_ISDIR(st.st_mode):
                return None, True  # a file or whiteout here hides the whole subtree
            nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
            if _opaque(fd):
                return _stat(fd, parts[-1]), True
        return _stat(fd, parts[-1]), False
    finally:
        os.close(fd)


def _stat(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    return (stat.S_ISDIR(b.st_mode) and a.st_mode == b.st_mode
            and a.st_mtime_ns == b.st_mtime_ns)


def changes(upper: Path, layers: list[Path]) -> list[dict[str, object]]:
    """[{"Path", "Kind"}] for every change in ``upper`` over ``layers`` (lowest first)."""
    out: list[dict[str, object]] = []
    try:
        upper_fd = os.open(upper, DIR_FLAGS)
    except FileNotFoundError:
        return out  # never started: nothing changed
    lower = _Lower([])
    try:
        for layer in reversed(layers):
            lower.fds.append(os.open(layer, DIR_FLAGS))
        _walk(upper_fd, [], lower, out, 0)
    finally:
        os.close(upper_fd)
        for fd in lower.fds:
            os.close(fd)
    return out


def _walk(dir_fd: int, prefix: list[str], lower: _Lower, out: list[dict[str, object]],
          depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"the container's changes nest deeper than {MAX_DEPTH} levels")
    for name in sorted(os.listdir(dir_fd)):
        parts = [*prefix, name]
        path = "/" + "/".join(parts)
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if _is_whiteout(st):
            out.append({"Path": path, "Kind": DELETED})
        else:
            below = lower.lookup(parts)
            if below is None:
                out.append({"Path": path, "Kind": ADDED})
            elif not (stat.S_ISDIR(st.st_mode) and _same_dir(st, below)):
                out.append({"Path": path, "Kind": MODIFIED})
        if len(out) > MAX_CHANGES:
            raise InvalidArgument(f"the container has more than {MAX_CHANGES} changes")
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
            try:  # below an opaque dir the layers are hidden: all of it is new
                _walk(fd, parts, _Lower([]) if _opaque(fd) else lower, out, depth + 1)
            finally:
                os.close(fd)
