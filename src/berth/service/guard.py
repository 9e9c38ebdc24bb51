"""Content in use vs garbage collection: many writers at once, or one collector alone.

A pull, import or commit writes blobs before the image row that keeps them exists; a collection
running in between would see them as unreferenced. Writers hold the guard shared, a collection
holds it exclusively (writers that arrive meanwhile wait, so a collection is never starved).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ContentGuard:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._collecting = False
        self._waiting_collectors = 0

    @contextmanager
    def using(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._collecting and not self._waiting_collectors)
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextmanager
    def collecting_now(self) -> Iterator[bool]:
        """A collection if no writer is at work (True), else none (False): for a collection
        that may be left to the next one rather than wait behind a long pull."""
        with self._cond:
            free = not self._collecting and self._users == 0 and not self._waiting_collectors
            if free:
                self._collecting = True
        try:
            yield free
        finally:
            if free:
                with self._cond:
                    self._collecting = False
                    self._cond.notify_all()

    @contextmanager
    def collecting(self) -> Iterator[None]:
        with self._cond:
            self._waiting_collectors += 1
            self._cond.wait_for(lambda: not self._collecting and self._users == 0)
            self._waiting_collectors -= 1
            self._collecting = True
        try:
            yield
        finally:
            with self._cond:
                self._collecting = False
                self._cond.notify_all()
