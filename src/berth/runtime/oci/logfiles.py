"""A container's log files when its log has a size limit: the current one and those kept.

With one file, conmon bounds it alone (--log-size-max): at the limit it begins a new, empty
file at the same path and the old content goes. To keep older files (max_files > 1) Berth
rotates instead, so that nothing between the kept files is lost:

* it hard-links each current file as ``ctr.log.<n>`` the moment it appears (an inotify
  watch on the container's directory), so that a rename over ``ctr.log`` only takes one of
  its names away;
* a file that has reached the limit is rotated through conmon's control fifo (reopen: conmon
  renames a new file over the path) -- checked every CHECK_INTERVAL, so a flood may take a
  file a little past the limit;
* the oldest links beyond max_files are removed.

conmon still gets a limit, the whole budget (max_size x max_files), for the time berthd is
down: then its own rotations drop what no link keeps, and the log stays bounded.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.inotify import IN_CREATE, IN_IGNORED, IN_MOVED_TO, Inotify

log = logging.getLogger("berth.runtime")

KEEP_FILE = "log-keep"  # beside the log: "<max_size> <max_files>" (read back after a restart)
CHECK_INTERVAL = 0.2  # seconds between looks at the watched logs' sizes
_LINKING = threading.Lock()  # the keeper's thread and a create may link at once


def kept(current: Path) -> list[Path]:
    """The links made of past and present files, oldest first (``ctr.log.1``, ...)."""
    prefix = current.name + "."
    found = []
    try:
        with os.scandir(current.parent) as entries:
            for entry in entries:
                suffix = entry.name[len(prefix):]
                if entry.name.startswith(prefix) and suffix.isdigit() and len(suffix) < 12:
                    found.append((int(suffix), Path(entry.path)))
    except FileNotFoundError:
        return []
    return [path for _, path in sorted(found)]


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def link_current(current: Path, max_files: int) -> None:
    """Link the current file if it is not linked yet, then drop the oldest beyond max_files
    (the current one counts)."""
    with _LINKING:
        links = kept(current)
        inode = _inode(current)
        if inode is not None and not any(_inode(p) == inode for p in links):
            number = int(links[-1].name.rsplit(".", 1)[1]) + 1 if links else 1
            link = current.with_name(f"{current.name}.{number}")
            try:
                os.link(current, link, follow_symlinks=False)
                links.append(link)
            except FileNotFoundError:  # rotated again meanwhile: the next event links it
                pass
        for old in links[:-max_files] if max_files > 0 else links:
            old.unlink(missing_ok=True)


def files_in_order(current: Path) -> list[Path]:
    """Every file of the log, oldest first; the current one by its own path (a follower
    watches that path for the next rotation)."""
    links = kept(current)
    inode = _inode(current)
    older = [p for p in links if _inode(p) != inode]
    return [*older, current]


def newer_files(current: Path, inode: int) -> list[Path]:
    """The links of the files begun after the one with this inode, oldest first (the
    current one among them once linked); none when that file is not linked."""
    links = kept(current)
    for i, link in enumerate(links):
        if _inode(link) == inode:
            return links[i + 1:]
    return []


def begin_new_file(current: Path, max_size: int | None, max_files: int) -> None:
    """Before a new monitor starts writing (a container's first start or a restart): it
    counts from zero, so a file already there would let the log grow past the limit. With
    files kept, the old one is kept and a new one begun; with one file, a file at the limit
    is dropped (conmon would drop it at the next write)."""
    if max_size is None:
        return
    try:
        size = current.stat().st_size
    except FileNotFoundError:
        return
    if max_files > 1 and size > 0:
        link_current(current, max_files)
        current.unlink()
    elif size >= max_size:
        current.unlink()


def write_keep_file(directory: Path, max_size: int | None, max_files: int) -> None:
    path = directory / KEEP_FILE
    if max_size is not None and max_files > 1:
        path.write_text(f"{max_size} {max_files}\n")
    else:
        path.unlink(missing_ok=True)


def read_keep_file(directory: Path) -> tuple[int, int] | None:
    """(max_size, max_files) of a log that keeps files; None for one that does not."""
    try:
        words = (directory / KEEP_FILE).read_text().split()
    except FileNotFoundError:
        return None
    if len(words) != 2 or not all(w.isdigit() for w in words):
        return None
    return int(words[0]), int(words[1])


@dataclass
class _Watched:
    directory: Path
    max_size: int
    max_files: int
    asked: bool = False  # conmon was asked for a new file and has not made it yet


class LogKeeper:
    """One thread: links new log files as they appear, rotates full ones, drops the oldest."""

    def __init__(self, log_name: str, reopen: Callable[[Path], bool]) -> None:
        self.log_name = log_name
        self.reopen = reopen  # ask a container's monitor for a new file; False: none listens
        self._lock = threading.Lock()
        self._inotify: Inotify | None = None
        self._watched: dict[int, _Watched] = {}  # inotify watch -> container
        self._failed = False

    def keep(self, directory: Path, max_size: int, max_files: int) -> None:
        """Keep the files of the log in ``directory`` from now on (idempotent)."""
        with self._lock:
            inotify = self._start()
            if inotify is not None:
                try:
                    wd = inotify.watch(directory, IN_CREATE | IN_MOVED_TO)
                    self._watched[wd] = _Watched(directory, max_size, max_files)
                except OSError as e:
                    log.warning("cannot watch %s for log rotation: %s", directory, e)
        link_current(directory / self.log_name, max_files)

    def forget(self, directory: Path) -> None:
        """The container stopped: its log gets no new files until it starts again."""
        with self._lock:
            for wd, watched in list(self._watched.items()):
                if watched.directory == directory and self._inotify is not None:
                    del self._watched[wd]
                    self._inotify.unwatch(wd)

    def _start(self) -> Inotify | None:
        if self._inotify is None and not self._failed:
            try:
                self._inotify = Inotify(nonblocking=True)
            except OSError as e:
                self._failed = True
                log.warning("log files beyond the current one cannot be kept: %s", e)
                return None
            threading.Thread(target=self._run, args=(self._inotify,), daemon=True,
                             name="log-keeper").start()
        return self._inotify

    def _run(self, inotify: Inotify) -> None:
        next_check = time.monotonic()
        while True:
            try:
                select.select([inotify.fd], [], [], max(0.0, next_check - time.monotonic()))
                self._events(inotify)
            except OSError as e:
                log.warning("log keeper stopped: %s", e)
                return
            if time.monotonic() >= next_check:
                self._rotate_full()
                next_check = time.monotonic() + CHECK_INTERVAL

    def _events(self, inotify: Inotify) -> None:
        try:
            events = inotify.read()
        except BlockingIOError:
            return
        for event in events:
            with self._lock:
                if event.mask & IN_IGNORED:  # the container's directory is gone
                    self._watched.pop(event.wd, None)
                    continue
                watched = self._watched.get(event.wd)
            if watched is not None and event.name == self.log_name:
                watched.asked = False  # a new file: whatever was asked is done
                self._quietly(link_current, watched.directory / self.log_name,
                              watched.max_files)

    def _rotate_full(self) -> None:
        with self._lock:
            watched = list(self._watched.values())
        for w in watched:
            current = w.directory / self.log_name
            try:
                size = os.stat(current).st_size
            except FileNotFoundError:
                continue
            if size < w.max_size or w.asked:
                continue
            self._quietly(link_current, current, w.max_files)  # kept before it is replaced
            # Asked once: conmon's new file (an event) says it is done. An inode number
            # would not do: a removed old file's number comes back for a new one.
            w.asked = bool(self._quietly(self.reopen, w.directory))

    @staticmethod
    def _quietly(action: Callable[..., Any], *args: Any) -> Any:
        try:
            return action(*args)
        except OSError as e:  # e.g. the container is being removed
            log.debug("log files of %s: %s", args[0], e)
            return None
