"""Open paths inside a container's root directory fd as the container would see them.

Symlinks are followed with the root as ``/`` and ``..`` stops at it, so nothing outside the
container is ever reached. The kernel does this itself with openat2(RESOLVE_IN_ROOT) (Linux
5.6+; Python has no wrapper, so it is called through ctypes); on older kernels the path is
resolved component by component (fsutil.resolve_in_root) and then opened one component at a
time with O_NOFOLLOW, so a symlink swapped in meanwhile is refused, never followed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from pathlib import Path

from berth.errors import UnsafeContent
from berth.fsutil import resolve_in_root

_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "armv7l": 437, "ppc64le": 437,
                "s390x": 437, "riscv64": 437}.get(platform.machine())
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)
_openat2_works: bool | None = None  # learnt on first use


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def _openat2(root_fd: int, path: str, flags: int) -> int | None:
    """openat2(RESOLVE_IN_ROOT); None when the kernel lacks it."""
    global _openat2_works
    if _SYS_OPENAT2 is None or _openat2_works is False:
        return None
    how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    for _ in range(16):  # EAGAIN: a concurrent rename; the kernel asks to retry
        fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(root_fd),
                           ctypes.c_char_p(os.fsencode(path)), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            _openat2_works = True
            return int(fd)
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EPERM) and _openat2_works is None:
            _openat2_works = False  # no openat2 (or a seccomp filter refuses it)
            return None
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, "the path kept changing while it was resolved", path)


def _fallback(root_fd: int, path: str, flags: int) -> int:
    """Resolve lexically inside the root, then open each component with O_NOFOLLOW."""
    anchor = Path(f"/proc/self/fd/{root_fd}")
    parts = resolve_in_root(anchor, path).relative_to(anchor).parts
    fd = os.dup(root_fd)
    try:
        for comp in parts[:-1]:
            nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        if not parts:
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=fd)
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink appeared after resolution
            raise UnsafeContent(f"{path!r} changed while it was resolved") from None
        raise
    finally:
        os.close(fd)


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """An fd for ``path`` resolved inside ``root_fd`` (every symlink followed, the last one
    too). Raises FileNotFoundError, NotADirectoryError, ... like open(2)."""
    if "\x00" in path:
        raise UnsafeContent(f"path contains a NUL byte: {path!r}")
    fd = _openat2(root_fd, path, flags)
    return fd if fd is not None else _fallback(root_fd, path, flags)


def resolved_path(root_fd: int, path: str) -> str:
    """The absolute path, inside the root, that ``path`` names once every symlink is
    followed (Docker's linkTarget). Only lstat and readlink are used."""
    anchor = Path(f"/proc/self/fd/{root_fd}")
    parts = resolve_in_root(anchor, path).relative_to(anchor).parts
    return "/" + "/".join(parts)
