"""A container's log files when its log has a size limit: the current one and those kept.

conmon bounds the log itself (--log-size-max): when the file would grow past the limit it
makes a new, empty file and renames it over the old path, dropping the old content. That
holds with berthd down. To keep older files (max_files > 1) Berth hard-links each current
file as ``ctr.log.<n>`` as soon as it appears, so the rename only takes one of its names
away; the oldest links beyond the limit are removed. An inotify watch on the container's
directory makes "as soon as" a matter of milliseconds; while berthd is down no new file is
linked, so output written then may be dropped at the next rotation, never more than the
limit allows.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from berth.inotify import IN_CREATE, IN_IGNORED, IN_MOVED_TO, Inotify

log = logging.getLogger("berth.runtime")

KEEP_FILE = "log-keep"  # beside the log: how many files to keep (read back after a restart)
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


def write_keep_file(directory: Path, max_files: int) -> None:
    path = directory / KEEP_FILE
    if max_files > 1:
        path.write_text(f"{max_files}\n")
    else:
        path.unlink(missing_ok=True)


def read_keep_file(directory: Path) -> int:
    try:
        value = (directory / KEEP_FILE).read_text().strip()
    except FileNotFoundError:
        return 1
    return int(value) if value.isdigit() else 1


class LogKeeper:
    """One thread with an inotify watch per container directory whose log keeps files."""

    def __init__(self, log_name: str) -> None:
        self.log_name = log_name
        self._lock = threading.Lock()
        self._inotify: Inotify | None = None
        self._dirs: dict[int, tuple[Path, int]] = {}  # watch -> (container dir, max_files)
        self._failed = False

    def keep(self, directory: Path, max_files: int) -> None:
        """Watch ``directory`` for new log files from now on (idempotent)."""
        with self._lock:
            inotify = self._start()
            if inotify is not None:
                try:
                    wd = inotify.watch(directory, IN_CREATE | IN_MOVED_TO)
                    self._dirs[wd] = (directory, max_files)
                except OSError as e:
                    log.warning("cannot watch %s for log rotation: %s", directory, e)
        link_current(directory / self.log_name, max_files)

    def _start(self) -> Inotify | None:
        if self._inotify is None and not self._failed:
            try:
                self._inotify = Inotify()
            except OSError as e:
                self._failed = True
                log.warning("log files beyond the current one cannot be kept: %s", e)
                return None
            threading.Thread(target=self._run, args=(self._inotify,), daemon=True,
                             name="log-keeper").start()
        return self._inotify

    def _run(self, inotify: Inotify) -> None:
        while True:
            try:
                events = inotify.read()
            except OSError as e:
                log.warning("log keeper stopped: %s", e)
                return
            for event in events:
                with self._lock:
                    if event.mask & IN_IGNORED:
                        self._dirs.pop(event.wd, None)
                        continue
                    watched = self._dirs.get(event.wd)
                if watched is not None and event.name == self.log_name:
                    try:
                        link_current(watched[0] / self.log_name, watched[1])
                    except OSError as e:  # e.g. the container is being removed
                        log.debug("keeping a log file of %s: %s", watched[0], e)
