"""Wake the agent the moment a container exits: inotify on the monitor's exit directory.

conmon writes a file named after the container into its exit directory when the container's
process ends. Watching that directory turns exit detection from polling into an event. When
inotify is unavailable the agent falls back to polling (``active`` stays False).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("berth.agent")

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")


class ExitWatcher:
    def __init__(self, directory: Path, on_exit: Callable[[str], None]) -> None:
        self.directory = directory
        self.on_exit = on_exit
        self.active = False
        self._fd = -1

    def start(self) -> None:
        libc_name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1")
            mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
            if libc.inotify_add_watch(fd, os.fsencode(self.directory), mask) < 0:
                os.close(fd)
                raise OSError(ctypes.get_errno(), "inotify_add_watch")
        except (OSError, AttributeError) as e:
            log.warning("exit watch unavailable (%s); polling instead", e)
            return
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._read)
        self.active = True

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        offset = 0
        while offset + _EVENT.size <= len(data):
            _wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
            raw = data[offset + _EVENT.size: offset + _EVENT.size + length]
            offset += _EVENT.size + length
            name = raw.split(b"\0", 1)[0].decode(errors="replace")
            if name:
                self.on_exit(name)

    def stop(self) -> None:
        if self._fd >= 0:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
            self.active = False
