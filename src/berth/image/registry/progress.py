"""Progress events for pulls and pushes: one dict per event, throttled per blob.

Events look like ``{"id": "0123456789ab", "digest": "sha256:...", "status": "downloading",
"current": 1048576, "total": 3145728}``; the caller's callback is never called from two
threads at once, and a failing callback never fails the pull.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

ProgressFn = Callable[[dict[str, Any]], None]
MIN_INTERVAL = 0.25  # seconds between "downloading"/"pushing" events of one blob


class Progress:
    """Serialises calls to the caller's callback."""

    def __init__(self, callback: ProgressFn | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        if self._callback is None:
            return
        with self._lock, contextlib.suppress(Exception):
            self._callback(event)

    def blob(self, digest: str, total: int) -> BlobProgress:
        return BlobProgress(self, digest, total)


class BlobProgress:
    """Events about one blob; byte counts are throttled, status changes always go out."""

    def __init__(self, sink: Progress, digest: str, total: int) -> None:
        self._sink = sink
        self.digest = digest
        self.total = total
        self._last = 0.0
        self._status = "waiting"

    def status(self, status: str, current: int | None = None, **extra: Any) -> None:
        self._status = status
        self._last = time.monotonic()
        self._send(status, self.total if current is None else current, extra)

    def advance(self, current: int, status: str | None = None) -> None:
        now = time.monotonic()
        if status is not None and status != self._status:
            self._status = status
        elif now - self._last < MIN_INTERVAL:
            return
        self._last = now
        self._send(self._status, current, {})

    def _send(self, status: str, current: int, extra: dict[str, Any]) -> None:
        event = {"id": self.digest.split(":", 1)[-1][:12], "digest": self.digest,
                 "status": status, "current": current, "total": self.total, **extra}
        self._sink.emit(event)
