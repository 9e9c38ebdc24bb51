"""Long image work (pull, push) reported as it goes: one JSON object per line.

The work runs in a thread; its progress callback hands events to the event loop. The response
starts only with the first event, so a refusal that comes before any progress (an unknown
image, bad credentials, a policy that rejects the image) is still an ordinary 4xx. A failure
after that is a last line {"error": message, "status": code}. A client that goes away does not
stop the work (a shared download may serve other callers) unless the caller passes a
``cancel`` event for the work to watch (a build stops, and cleans up, when its client goes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from berth.errors import BerthError, out_of_space

log = logging.getLogger("berth.api")
Work = Callable[[Callable[[dict[str, Any]], None]], dict[str, Any]]
# What a line shows: a progress event (dict), the work's result (Finished) or its failure.
Render = Callable[[Any], list[dict[str, Any]]]
_END = object()


class Finished(dict):  # type: ignore[type-arg]
    """The work's result: the last item of a stream that went well."""


def native_lines(item: Any) -> list[dict[str, Any]]:
    if isinstance(item, Finished):
        return [{"status": "done", **item}]
    if isinstance(item, BaseException) and (full := out_of_space(item)):
        item = full
    if isinstance(item, BerthError):
        return [{"error": item.message, "status": item.status}]
    if isinstance(item, BaseException):
        log.error("image work failed", exc_info=item)
        return [{"error": f"internal error: {type(item).__name__}: {item}", "status": 500}]
    return [item]


async def progress_response(work: Work, render: Render = native_lines,
                            media_type: str = "application/x-ndjson",
                            cancel: threading.Event | None = None) -> StreamingResponse:
    """``render`` turns each item into the lines the client sees (the Docker API has its
    own shapes); ``cancel`` is set if the client goes away before the work ends."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def report(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def run() -> None:
        try:
            result = work(report)
            loop.call_soon_threadsafe(queue.put_nowait, Finished(result))
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the caller
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    task = loop.run_in_executor(None, run)
    first = await queue.get()
    if isinstance(first, BaseException):
        await task
        raise first

    async def lines() -> AsyncIterator[bytes]:
        item = first
        try:
            while item is not _END:
                for line in render(item):
                    yield _line(line)
                item = await queue.get()
        finally:  # the server closes the stream early when the client disconnects
            if item is not _END and cancel is not None:
                cancel.set()

    return StreamingResponse(lines(), media_type=media_type)


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"
