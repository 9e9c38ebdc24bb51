"""Docker's --sig-proxy: signals sent to an attached, non-TTY `berth run`, `start -a` or
`attach` are sent on to the container, so ctrl-c or a supervisor's SIGTERM reaches it.

The handler sends the kill itself, in the main thread: no thread to start, so an attached run
starts no slower. A signal that comes during a send waits for it, which keeps the order. A
signal during `run`'s create is held until the container is known; if no container comes of
it, the signal is ours again: ctrl-c interrupts the client as it would have.

Not passed on: SIGCHLD, SIGPIPE, SIGURG and SIGWINCH (the client's own business), and the
job-control signals SIGTSTP, SIGTTIN and SIGTTOU, so ctrl-z still suspends the client and a
background client is never stuck re-forwarding SIGTTOU.
"""

from __future__ import annotations

import contextlib
import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

_KEPT = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGPIPE, signal.SIGURG,
         signal.SIGWINCH, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}


def forwarded() -> list[int]:
    """The signals passed on, in number order."""
    return sorted(int(s) for s in signal.valid_signals() if s not in _KEPT)


def signal_name(signum: int) -> str:
    """What the API's kill takes: SIGINT, ..., or the number of a real-time signal."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class SignalProxy:
    """While open, signals to this process go to ``kill(container, name)`` instead; the
    container is named by ``target()`` (at once when known). Failures to send are dropped:
    the container may have exited meanwhile, and its exit is reported anyway."""

    def __init__(self, kill: Callable[[str, str], Any], container: str = "") -> None:
        self._kill = kill
        self._container = container
        self._pending: list[int] = []
        self._sending = False
        self._saved: dict[int, Any] = {}

    def target(self, container: str) -> None:
        self._container = container
        self._send_pending()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._pending.append(signum)
        self._send_pending()

    def _send_pending(self) -> None:
        # A handler may run inside another's send: it only queues, the outer loop sends.
        if self._sending or not self._container:
            return
        self._sending = True
        try:
            while self._pending:
                with contextlib.suppress(Exception):
                    self._kill(self._container, signal_name(self._pending.pop(0)))
        finally:
            self._sending = False

    def __enter__(self) -> SignalProxy:
        for signum in forwarded():
            with contextlib.suppress(OSError, ValueError):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        if not self._container and self._pending:
            signal.raise_signal(self._pending[0])
