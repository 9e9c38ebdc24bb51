"""Writing an unpacked layer's files: small ones from a shared pool of threads.

Creating a file costs the filesystem far more than writing a small one, so files up to
SMALL_FILE bytes are written by a few threads at once (the extractor holds at most
PENDING_BYTES of their data). Every write is relative to a directory fd, with O_EXCL and
O_NOFOLLOW: it never writes through anything already there.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from berth.errors import UnsafeContent
from berth.image.tarstream import CHUNK

WRITERS = 8
SMALL_FILE = 1 << 20
PENDING_BYTES = 64 << 20

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def writers() -> ThreadPoolExecutor:
    """One pool for every unpack in the process: layers unpacked side by side share WRITERS
    threads instead of each bringing its own (too many creates at once only queue up)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(WRITERS, thread_name_prefix="unpack-write")
        return _POOL


class Counted:
    """A member's data in chunks, refusing a short read (a truncated layer)."""

    def __init__(self, src: BinaryIO, size: int, name: str) -> None:
        self.src, self.size, self.name = src, size, name

    def __iter__(self) -> Iterator[bytes]:
        written = 0
        while chunk := self.src.read(CHUNK):
            written += len(chunk)
            yield chunk
        if written != self.size:
            raise UnsafeContent(f"corrupt layer: short data for {self.name!r}")


def write_file(parent: int, name: str, chunks: Iterable[bytes],
                meta: tuple[int, int, int, str | None, int]) -> None:
    """Create ``name`` in the directory ``parent`` (an fd this closes) with this data and
    metadata. O_EXCL and O_NOFOLLOW: it never writes through anything already there."""
    uid, gid, mode, caps, mtime = meta
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
    finally:
        os.close(parent)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        # chown clears setuid bits and file capabilities, so it goes first.
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        if caps is not None:
            os.setxattr(fd, "security.capability", caps.encode("utf-8", "surrogateescape"))
        os.utime(fd, ns=(mtime, mtime))
    finally:
        os.close(fd)
