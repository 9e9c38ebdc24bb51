"""One download per blob per process: concurrent pulls of the same digest share it.

The first caller (the leader) runs the download; later callers for the same blob store and
digest wait for it and hear its byte counts. If the leader fails (its credentials, say), a
waiter tries itself rather than inheriting an error that may not be its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Listener = Callable[[int], None]


class Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def listen(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def report(self, current: int) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(current)


_flights: dict[tuple[str, str], Flight] = {}
_lock = threading.Lock()


def join(key: tuple[str, str]) -> tuple[Flight, bool]:
    """The flight for ``key`` and whether the caller leads it (must run it, then land it)."""
    with _lock:
        flight = _flights.get(key)
        if flight is not None:
            return flight, False
        flight = _flights[key] = Flight()
        return flight, True


def land(key: tuple[str, str], flight: Flight, ok: bool) -> None:
    """The leader is finished: wake the waiters."""
    with _lock:
        if _flights.get(key) is flight:
            del _flights[key]
    flight.ok = ok
    flight.done.set()


def in_flight() -> int:
    """How many downloads are running now (tests check that none leaked)."""
    with _lock:
        return len(_flights)
