"""An exec's pipes and terminal, read and written on the event loop (non-blocking
descriptors: a full pipe waits for room instead of stopping the loop or a thread)."""

from __future__ import annotations

import asyncio
import os


async def wait_ready(fd: int, write: bool = False) -> None:
    """Until fd can be read (or written) without blocking."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if write else \
        (loop.add_reader, loop.remove_reader)
    add(fd, _set_once, ready)
    try:
        await ready
    finally:
        remove(fd)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def read_chunk(fd: int) -> bytes:
    """The next output on a non-blocking fd; b"" at its end."""
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            await wait_ready(fd)
        except OSError:  # EIO: a terminal whose other side closed
            return b""


async def write_all(fd: int, data: bytes) -> None:
    """All of data to a non-blocking fd (OSError when its reader has gone)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await wait_ready(fd, write=True)
