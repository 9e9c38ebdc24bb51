"""Wake-ups between the api and the agent, and waiting for what the agent reports.

The store is the truth; the hub only says "look again". In one process that is an asyncio
condition; a cluster will add a store notification channel behind the same two calls. Waiters
also re-check on a timer, so a lost wake-up costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

RECHECK_SECONDS = 1.0


class Hub:
    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._agent_kick: Callable[[str], None] | None = None
        self._listeners: list[asyncio.Queue[dict[str, Any]]] = []

    def attach_agent(self, kick: Callable[[str], None]) -> None:
        self._agent_kick = kick

    def kick_agent(self, container_id: str) -> None:
        """Desired state of this container changed: the agent should reconcile it."""
        if self._agent_kick is not None:
            self._agent_kick(container_id)

    async def changed(self) -> None:
        """Observed state changed somewhere: wake everyone waiting to look again."""
        async with self._changed:
            self._changed.notify_all()

    def changed_soon(self) -> None:
        asyncio.get_running_loop().create_task(self.changed())

    async def wait_until(self, check: Callable[[], T | None], timeout: float | None) -> T | None:
        """Call check() after every change until it returns non-None or the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            result = check()
            if result is not None:
                return result
            remaining = RECHECK_SECONDS if deadline is None else min(
                RECHECK_SECONDS, deadline - loop.time())
            if remaining <= 0:
                return None
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    # Events: a stream of what happened, for `berth events` and waiting clients.
    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._listeners):
            if queue.qsize() < 10_000:  # a stalled listener loses events, never memory
                queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listeners.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        if queue in self._listeners:
            self._listeners.remove(queue)
