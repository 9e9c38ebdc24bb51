"""The event stream both APIs serve: past events replayed from the hub's recent ones when a
start time asks, then live ones, ending at an end time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from berth.errors import InvalidArgument
from berth.service.filters import parse_time
from berth.service.hub import Hub


def time_window(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """Docker's since/until (unix seconds, RFC 3339, or a duration before now) as times."""
    now = time.time()
    start = parse_time(since, now) if since else None
    end = parse_time(until, now) if until else None
    if start is not None and end is not None and end < start:
        raise InvalidArgument("`since` time must be before `until` time")
    return start, end


async def feed(hub: Hub, start: float | None, end: float | None,
               idle: float | None = None) -> AsyncIterator[dict[str, Any] | None]:
    """Events from ``start`` (None: from now) until ``end`` (None: for ever); None after
    ``idle`` seconds without one (a keep-alive's moment)."""
    # Subscribing and taking the replay with no await between: nothing missed or sent twice.
    queue = hub.subscribe()
    try:
        for event in hub.recent() if start is not None else []:
            if _within(event, start, end):
                yield event
        loop = asyncio.get_running_loop()
        deadline = None if end is None else loop.time() + (end - time.time())
        while True:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            wait = left if idle is None else idle if left is None else min(left, idle)
            try:
                event = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if idle is not None:
                    yield None
                continue
            if _within(event, start, end):
                yield event
    finally:
        hub.unsubscribe(queue)


def _within(event: dict[str, Any], start: float | None, end: float | None) -> bool:
    when = float(event.get("time") or 0.0)
    return (start is None or when >= start) and (end is None or when <= end)
