"""Read conmon's k8s-file log: "<RFC3339Nano time> <stdout|stderr> <P|F> <data>" per line.

P marks a partial line (the container wrote no newline yet), F a full one. Partials of one
stream are joined into one record that carries the time of its first piece; when following, a
partial is passed on as soon as nothing more is there to read (a shell prompt has no newline).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from berth.runtime.base import LogRecord

POLL_INTERVAL = 0.1  # the slowest a follower polls when the log is idle
POLL_FAST = 0.01  # right after output: interactive sessions echo keystrokes through the log
IDLE = None  # what _lines yields when it has caught up with the writer
MAX_RECORD = 1 << 20  # a partial line longer than this is flushed as is


class LogLine(NamedTuple):
    time: str
    stream: str
    partial: bool
    data: bytes


def parse_line(line: bytes) -> LogLine | None:
    """One log line (without its trailing newline); None for a malformed one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    tag = parts[2].split(b":", 1)[0]  # newer conmon may append ":"-separated extra tags
    if tag not in (b"P", b"F"):
        return None
    data = parts[3] if len(parts) == 4 else b""
    return LogLine(parts[0].decode("ascii", "replace"), parts[1].decode(), tag == b"P", data)


class RecordJoiner:
    """Feed parsed lines; get complete records. Keeps one pending partial per stream, and
    releases it before a record of the other stream so that output keeps its order."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, bytes]] = {}

    def feed(self, line: LogLine) -> list[LogRecord]:
        out = [LogRecord(time=start, stream=stream, data=data)
               for stream, (start, data) in list(self._pending.items())
               if stream != line.stream]
        for record in out:
            del self._pending[record.stream]
        start, data = self._pending.pop(line.stream, (line.time, b""))
        data += line.data
        if line.partial and len(data) < MAX_RECORD:
            self._pending[line.stream] = (start, data)
            return out
        out.append(LogRecord(time=start, stream=line.stream,
                             data=data if line.partial else data + b"\n"))
        return out

    def flush(self) -> Iterator[LogRecord]:
        """Whatever is pending (the container ended without a final newline)."""
        for stream, (start, data) in sorted(self._pending.items(), key=lambda kv: kv[1][0]):
            yield LogRecord(time=start, stream=stream, data=data)
        self._pending.clear()


def parse_lines(lines: Iterable[bytes | None]) -> Iterator[LogRecord]:
    joiner = RecordJoiner()
    for raw in lines:
        if raw is IDLE:
            yield from joiner.flush()  # caught up: do not hold a partial line back
            continue
        parsed = parse_line(raw.rstrip(b"\n"))
        if parsed is not None:
            yield from joiner.feed(parsed)
    yield from joiner.flush()


def _replaced(path: Path, handle: BinaryIO) -> bool:
    """conmon has begun a new file at path (the log reached its size limit)."""
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:  # removed with its container: the open file is all there is
        return False


def _open_next(finished: BinaryIO, newer: Callable[[int], list[Path]]) -> BinaryIO | None:
    """The file begun after the finished one, when its link is known: a follower slow to
    notice a new file may find that more than one has been begun since."""
    for path in newer(os.fstat(finished.fileno()).st_ino):
        with contextlib.suppress(FileNotFoundError):
            return path.open("rb")
    return None  # not known: the file now at the log's path


def _complete_lines(path: Path, alive: Callable[[], bool], follow: bool, poll: float,
                    newer: Callable[[int], list[Path]],
                    handle: BinaryIO | None) -> Iterator[bytes | None]:
    """Complete lines of the file (handle, when already open); when following, until the
    writer is gone and all is read, with IDLE each time it has caught up, and on into the
    next file when the writer begins one at the same path."""
    buf = b""
    delay = POLL_FAST

    def read_more() -> bytes:
        # Once open, the file stays open: a container removed right after it exits (--rm)
        # takes its log along, and a follower must still read what was written.
        nonlocal handle
        if handle is None:
            try:
                handle = path.open("rb")
            except FileNotFoundError:  # not written yet, or removed with its container
                return b""
        return handle.read()

    try:
        while True:
            chunk = read_more()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            yield from lines
            if chunk:
                delay = POLL_FAST
                continue
            if handle is not None and _replaced(path, handle):
                # The old file is complete once the new one is in place: finish it, go on
                # (before asking whether the writer is alive: it may have exited since).
                buf += handle.read()
                yield from (line for line in buf.split(b"\n") if line)
                buf = b""
                finished, handle = handle, _open_next(handle, newer)
                finished.close()
                continue
            # Check liveness before the final read so that nothing written just before exit
            # is lost.
            if not follow or not alive():
                buf += read_more()
                yield from (line for line in buf.split(b"\n") if line)
                return
            yield IDLE
            time.sleep(delay)
            delay = min(poll, delay * 2)
    finally:
        if handle is not None:
            handle.close()


def _lines(older: list[BinaryIO], current: BinaryIO | None, path: Path,
           alive: Callable[[], bool], follow: bool, poll: float,
           newer: Callable[[int], list[Path]]) -> Iterator[bytes | None]:
    """The older files are no longer written and are read to the end; the last one (at
    path) is read as it grows."""
    try:
        for handle in older:
            for line in handle:
                yield line.rstrip(b"\n")
    except BaseException:  # e.g. the reader went away: _complete_lines never gets current
        if current is not None:
            current.close()
        raise
    finally:
        for handle in older:
            handle.close()
    yield from _complete_lines(path, alive, follow, poll, newer, current)


def _none_known(inode: int) -> list[Path]:
    return []


def read_log_files(paths: list[Path], follow: bool = False,
                   alive: Callable[[], bool] = lambda: False, poll: float = POLL_INTERVAL,
                   newer: Callable[[int], list[Path]] = _none_known,
                   from_end: bool = False) -> Iterator[LogRecord]:
    """A log kept in several files, oldest first; only the last one is still written.
    newer(inode) names the files begun after the one with that inode, oldest first.

    Every file is opened now, before any is read, so that one removed meanwhile (the oldest
    beyond the limit, or all of them with their container) is still read whole if it was
    there when this was called. from_end: only what is written from now on (the reader is
    at the end of the current file when this returns, so a start that follows misses
    nothing and repeats nothing)."""
    older = []
    for path in [] if from_end else paths[:-1]:
        with contextlib.suppress(FileNotFoundError):
            older.append(path.open("rb"))
    current: BinaryIO | None = None
    with contextlib.suppress(FileNotFoundError):
        current = paths[-1].open("rb")
        if from_end:
            current.seek(0, os.SEEK_END)
    return parse_lines(_lines(older, current, paths[-1], alive, follow, poll, newer))


def read_log_file(path: Path, follow: bool = False, alive: Callable[[], bool] = lambda: False,
                  poll: float = POLL_INTERVAL) -> Iterator[LogRecord]:
    return read_log_files([path], follow, alive, poll)
