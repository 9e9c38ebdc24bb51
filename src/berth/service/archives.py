"""Turning a writer of a tar archive (``fn(out)``) into a stream of chunks for a response."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

log = logging.getLogger("berth.images")
CHUNK = 1 << 20


def pipe_stream(write: Callable[[BinaryIO], None]) -> Iterator[bytes]:
    """Run ``write`` in a thread into a pipe and yield what it writes. If the writer fails the
    stream ends with an error (so the client sees a broken transfer, never a short archive
    that looks whole); if the reader goes away the writer stops at its next write."""
    failure: list[BaseException] = []

    def run(wfd: int) -> None:
        try:
            with os.fdopen(wfd, "wb") as out:
                write(out)
        except BrokenPipeError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the reader below
            log.error("writing an archive failed", exc_info=exc)
            failure.append(exc)

    def chunks() -> Iterator[bytes]:
        rfd, wfd = os.pipe()  # made on first read: a stream never read leaks nothing
        thread = threading.Thread(target=run, args=(wfd,), name="archive-writer", daemon=True)
        thread.start()
        try:
            with os.fdopen(rfd, "rb") as src:
                while chunk := src.read(CHUNK):
                    yield chunk
        finally:
            thread.join()
        if failure:
            raise RuntimeError(f"archive incomplete: {failure[0]}")

    return chunks()
