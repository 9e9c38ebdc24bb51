"""Wake the agent the moment a container exits: inotify on the monitor's exit directory.

conmon writes a file named after the container into its exit directory when the container's
process ends. Watching that directory turns exit detection from polling into an event. When
inotify is unavailable the agent falls back to polling (``active`` stays False).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from berth.inotify import IN_CLOSE_WRITE, IN_CREATE, IN_MOVED_TO, Inotify

log = logging.getLogger("berth.agent")


class ExitWatcher:
    def __init__(self, directory: Path, on_exit: Callable[[str], None]) -> None:
        self.directory = directory
        self.on_exit = on_exit
        self.active = False
        self._inotify: Inotify | None = None

    def start(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            inotify = Inotify(nonblocking=True)
            try:
                inotify.watch(self.directory, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)
            except OSError:
                inotify.close()
                raise
        except OSError as e:
            log.warning("exit watch unavailable (%s); polling instead", e)
            return
        self._inotify = inotify
        asyncio.get_running_loop().add_reader(inotify.fd, self._read)
        self.active = True

    def _read(self) -> None:
        assert self._inotify is not None
        try:
            events = self._inotify.read()
        except BlockingIOError:
            return
        for event in events:
            if event.name:
                self.on_exit(event.name)

    def stop(self) -> None:
        if self._inotify is not None:
            asyncio.get_running_loop().remove_reader(self._inotify.fd)
            self._inotify.close()
            self._inotify = None
            self.active = False
