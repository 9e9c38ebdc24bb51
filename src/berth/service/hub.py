"""Wake-ups between the api and the agent, and waiting for what the agent reports.

The store is the truth; the hub only says "look again". In one process that is an asyncio
condition; a cluster will add a store notification channel behind the same two calls. Waiters
also re-check on a timer, so a lost wake-up costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

RECHECK_SECONDS = 1.0
APPLY_WAIT = 30.0  # the longest a connect waits for the host to follow
# A change the agent makes the host follow: done once it has (None: no agent here).
HostChange = concurrent.futures.Future[None] | None
RECENT_EVENTS = 1000  # kept in memory for replays (docker events --since); never persisted


class Hub:
    """Made inside the daemon's event loop. Its calls may come from worker threads too (sync
    API handlers run there): those are handed over to the loop, as asyncio objects are not
    thread-safe."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Condition()
        self._agent_kick: Callable[[str], None] | None = None
        self._net_changed: Callable[..., None] | None = None
        self._listeners: list[asyncio.Queue[dict[str, Any]]] = []
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)

    def _on_loop(self) -> bool:
        """Whether the caller runs on the hub's event loop (not a worker thread)."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if self._on_loop():
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def attach_agent(self, kick: Callable[[str], None]) -> None:
        self._agent_kick = kick

    def attach_network(self, changed: Callable[..., None]) -> None:
        """changed(owner_id, left, applied): applied is a concurrent future to set once the
        host has followed the change."""
        self._net_changed = changed

    def network_changed(self, owner_id: str | None = None, left: str | None = None
                        ) -> HostChange:
        """Networks or endpoints changed: the agent syncs the host (``owner_id`` joined a
        network, or ``left`` the network with that id). The future is done once it has (None:
        no agent here to wait for)."""
        if self._net_changed is None:
            return None
        applied: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._in_loop(self._net_changed, owner_id, left, applied)
        return applied

    async def applied(self, change: HostChange,
                      timeout: float = APPLY_WAIT) -> None:
        """Wait until the agent has followed a change; past the timeout the change still
        stands and is applied later."""
        if change is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wrap_future(change), timeout)

    def applied_in_thread(self, change: HostChange, timeout: float = APPLY_WAIT) -> None:
        """applied(), for a caller on a worker thread (a plain route); on the loop's own
        thread it returns at once, since waiting there would stop the change itself."""
        if change is not None and not self._on_loop():
            with contextlib.suppress(concurrent.futures.TimeoutError):
                change.result(timeout)

    def kick_agent(self, container_id: str) -> None:
        """Desired state of this container changed: the agent should reconcile it."""
        if self._agent_kick is not None:
            self._in_loop(self._agent_kick, container_id)

    def notify(self) -> None:
        """changed(), callable from any thread (work done outside the loop, a pull say)."""
        self._in_loop(lambda: self._loop.create_task(self.changed()))

    async def changed(self) -> None:
        """Observed state changed somewhere: wake everyone waiting to look again."""
        async with self._changed:
            self._changed.notify_all()

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
        self._in_loop(self._publish, event)

    def _publish(self, event: dict[str, Any]) -> None:
        self._recent.append(event)
        for queue in list(self._listeners):
            if queue.qsize() < 10_000:  # a stalled listener loses events, never memory
                queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listeners.append(queue)
        return queue

    def recent(self) -> list[dict[str, Any]]:
        """The last RECENT_EVENTS events, oldest first (the same objects subscribers get):
        what a stream asking for past events (Docker's ``since``) replays. Call it in the
        loop, after subscribe(), so nothing falls between the replay and the live stream."""
        return list(self._recent)

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        if queue in self._listeners:
            self._listeners.remove(queue)
