"""Long image work (pull, push) reported as it goes: one JSON object per line.

The work runs in a thread; its progress callback hands events to the event loop. The response
starts only with the first event, so a refusal that comes before any progress (an unknown
image, bad credentials, a policy that rejects the image) is still an ordinary 4xx. A failure
after that is a last line {"error": message, "status": code}. A client that goes away does not
stop the work (a shared download may serve other callers).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from berth.errors import BerthError

log = logging.getLogger("berth.api")
Work = Callable[[Callable[[dict[str, Any]], None]], dict[str, Any]]
_END = object()


async def progress_response(work: Work) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def report(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def run() -> None:
        try:
            result = work(report)
            loop.call_soon_threadsafe(queue.put_nowait, {"status": "done", **result})
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
        while item is not _END:
            if isinstance(item, BerthError):
                yield _line({"error": item.message, "status": item.status})
            elif isinstance(item, BaseException):
                log.error("image work failed", exc_info=item)
                yield _line({"error": f"internal error: {type(item).__name__}: {item}",
                             "status": 500})
            else:
                yield _line(item)
            item = await queue.get()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"
