"""A minimal inotify(7) binding through libc (the standard library has none).

Used to turn "watch this directory for a file appearing" into an event instead of polling:
the agent's exit watch, and the OCI backend's keeping of rotated log files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from pathlib import Path
from typing import NamedTuple

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_IGNORED = 0x00008000  # the watch is gone (its directory was removed)
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
READ_SIZE = 64 * 1024


class Event(NamedTuple):
    wd: int
    mask: int
    name: str


class Inotify:
    """One inotify instance. Raises OSError when the kernel or libc has none."""

    def __init__(self, nonblocking: bool = False) -> None:
        try:
            self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            init = self._libc.inotify_init1
        except (OSError, AttributeError) as e:
            raise OSError(f"inotify is unavailable: {e}") from e
        fd = init(IN_CLOEXEC | (IN_NONBLOCK if nonblocking else 0))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd: int = fd

    def watch(self, directory: Path, mask: int) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {directory}: {os.strerror(err)}")
        return int(wd)

    def unwatch(self, wd: int) -> None:
        """Stop a watch (its IN_IGNORED event follows); gone already is no error."""
        self._libc.inotify_rm_watch(self.fd, wd)

    def read(self) -> list[Event]:
        """The events waiting (blocks unless nonblocking; then raises BlockingIOError)."""
        return parse_events(os.read(self.fd, READ_SIZE))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def parse_events(data: bytes) -> list[Event]:
    events = []
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
        raw = data[offset + _EVENT.size: offset + _EVENT.size + length]
        offset += _EVENT.size + length
        events.append(Event(wd, mask, raw.split(b"\0", 1)[0].decode(errors="replace")))
    return events
