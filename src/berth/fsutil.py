"""Resolve and read paths inside a directory tree as if it were the root of the filesystem.

A container's rootfs belongs to whoever built the image: its symlinks may point anywhere. These
helpers give chroot semantics without chroot (like Go's securejoin): ``..`` stops at the root,
absolute symlinks are re-rooted, and the result is always a path under the root.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from berth.errors import UnsafeContent

MAX_SYMLINK_HOPS = 40  # the kernel's own limit (MAXSYMLINKS)


def _components(path: str) -> list[str]:
    if "\x00" in path:
        raise UnsafeContent(f"path contains a NUL byte: {path!r}")
    return [c for c in path.split("/") if c not in ("", ".")]


def relative_in_root(root: Path, path: str, follow_final: bool,
                     escape: Callable[[str], Exception] | None = None) -> list[str]:
    """The components, relative to root, that ``path`` resolves to under chroot semantics.
    With ``escape``, leaving the root (a ".." above it, an absolute symlink) raises
    ``escape(how)`` instead of being clamped at the root (a build context has no "/")."""
    pending = _components(path)
    resolved: list[str] = []
    hops = 0
    while pending:
        comp = pending.pop(0)
        if comp == "..":
            if resolved:  # ".." at the root stays at the root
                resolved.pop()
            elif escape is not None:
                raise escape("'..' or a symlink")
            continue
        if not pending and not follow_final:
            resolved.append(comp)
            break
        candidate = root.joinpath(*resolved, comp)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            # Missing parts resolve lexically; whoever creates them later must check again.
            resolved.append(comp)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(comp)
            continue
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise UnsafeContent(f"too many levels of symbolic links resolving {path!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            if escape is not None:
                raise escape(f"the symlink {'/'.join([*resolved, comp])} -> {target}")
            resolved = []  # absolute links are re-rooted at root
        pending = _components(target) + pending
    return resolved


def resolve_in_root(root: Path, path: str, *, follow_final: bool = True) -> Path:
    """Resolve ``path`` with ``root`` as ``/``; the result is always under ``root``."""
    return Path(root).joinpath(*relative_in_root(Path(root), path, follow_final))


def read_file_in_root(root: Path, path: str, max_bytes: int = 1 << 20) -> bytes | None:
    """Read a regular file inside ``root``; None if it does not exist.

    The path is resolved first, then opened one component at a time with O_NOFOLLOW relative
    to directory fds, so a symlink swapped in after resolution cannot redirect the read.
    """
    parts = relative_in_root(Path(root), path, follow_final=True)
    if not parts:
        raise UnsafeContent(f"{path!r} is a directory, not a file")
    dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for comp in parts[:-1]:
            try:
                nfd = os.open(comp, dir_flags, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as exc:  # ELOOP: a symlink appeared after resolution
                raise UnsafeContent(f"cannot open {path!r} safely: {exc.strerror}") from None
            os.close(fd)
            fd = nfd
        try:
            ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                          dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UnsafeContent(f"cannot open {path!r} safely: {exc.strerror}") from None
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            os.close(ffd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeContent(f"{path!r} is not a regular file")
            raise UnsafeContent(f"{path!r} is larger than {max_bytes} bytes")
        with os.fdopen(ffd, "rb") as f:
            data = f.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise UnsafeContent(f"{path!r} is larger than {max_bytes} bytes")
            return data
    finally:
        os.close(fd)
