"""Streams and readings served by the host that runs the container (DESIGN principle 6).

The api calls these directly in one process; a cluster puts an HTTP hop in front of the same
functions. Blocking runtime calls run in worker threads; log following is bridged into asyncio
with a bounded queue and stops as soon as the caller goes away.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from berth.errors import Conflict, InvalidArgument
from berth.image.blobs import BlobStore
from berth.image.types import LayerRef
from berth.runtime.base import (
    ExecProcess,
    ExecSpec,
    IdMapping,
    LogRecord,
    RuntimeBackend,
    Status,
)

_DONE = object()


def parse_time(text: str) -> float:
    """RFC 3339 (nanoseconds allowed) or unix seconds -> unix seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    core = text.replace("Z", "+00:00")
    if "." in core:  # Python takes at most microseconds
        head, _, rest = core.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        core = f"{head}.{digits[:6]}{tz}"
    try:
        return datetime.fromisoformat(core).timestamp()
    except ValueError:
        raise InvalidArgument(f"invalid time {text!r}: use RFC 3339 or unix seconds") from None


class HostOps:
    def __init__(self, backend: RuntimeBackend) -> None:
        self.backend = backend

    async def logs(self, cid: str, *, follow: bool = False, tail: int | None = None,
                   since: float | None = None, until: float | None = None,
                   stdout: bool = True, stderr: bool = True) -> AsyncIterator[LogRecord]:
        streams = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}

        def wanted(rec: LogRecord) -> bool:
            if rec.stream not in streams:
                return False
            if since is None and until is None:
                return True
            ts = parse_time(rec.time)
            return (since is None or ts >= since) and (until is None or ts <= until)

        if tail is not None:
            # Read what is there, keep the last lines, then follow from the end.
            records = await asyncio.to_thread(_collect_tail, self.backend, cid, tail, wanted)
            for rec in records:
                yield rec
            if not follow:
                return
            skip = await asyncio.to_thread(_count, self.backend, cid)
        else:
            skip = 0
        async for rec in _bridge(self.backend.read_logs(cid, follow=follow)):
            if skip:
                skip -= 1
                continue
            if until is not None and parse_time(rec.time) > until:
                return
            if wanted(rec):
                yield rec

    async def logs_from_now(self, cid: str) -> AsyncIterator[LogRecord]:
        """The output written after this returns, followed (call it before a start to get
        that run's output, and none of the runs before it)."""
        reader = await asyncio.to_thread(self.backend.read_logs, cid, True, True)
        return _bridge(reader)

    async def exec(self, cid: str, spec: ExecSpec) -> ExecProcess:
        return await asyncio.to_thread(self.backend.exec, cid, spec)

    async def top(self, cid: str, ps_args: list[str] | None = None
                  ) -> tuple[list[str], list[list[str]]]:
        return await asyncio.to_thread(self.backend.top, cid, ps_args)

    async def stats(self, cid: str) -> dict[str, Any]:
        st = await asyncio.to_thread(self.backend.stats, cid)
        return dict(vars(st))

    async def resize(self, cid: str, rows: int, cols: int) -> None:
        if not (0 < rows < 10_000 and 0 < cols < 10_000):
            raise InvalidArgument("resize: rows and cols must be between 1 and 9999")
        await asyncio.to_thread(self.backend.resize, cid, rows, cols)

    def commit_changes(self, cid: str, blobs: BlobStore, idmap: IdMapping | None,
                       freeze: bool) -> LayerRef | None:
        """The container's filesystem changes as a layer blob (None: nothing changed). A
        running container is frozen meanwhile (freeze) so the layer is one moment's state."""
        from berth.image.commit import commit_layer

        upper = self.backend.changes_dir(cid)
        frozen = False
        if freeze and self.backend.state(cid).status == Status.RUNNING:
            self.backend.pause(cid)
            frozen = True
        try:
            return commit_layer(upper, blobs, idmap=idmap)
        finally:
            if frozen:
                self.backend.resume(cid)

    def attach_socket(self, cid: str) -> str:
        path = self.backend.attach_socket(cid)
        if not path.exists():
            raise Conflict("the container has no attach socket: it was not created with "
                           "stdin open or it is not running")
        return str(path)


MAX_PS_ARGS = 32
MAX_PS_ARG_LENGTH = 256


def split_ps_args(text: str | None) -> list[str] | None:
    """The ps_args query parameter: words split at spaces, as docker's (None: not given)."""
    if not text or not text.strip():
        return None
    args = text.split()
    if len(args) > MAX_PS_ARGS:
        raise InvalidArgument(f"ps_args: at most {MAX_PS_ARGS} words")
    for arg in args:
        if len(arg) > MAX_PS_ARG_LENGTH or "\0" in arg:
            raise InvalidArgument(f"ps_args: {arg[:40]!r} is not a ps option")
    return args


def _collect_tail(backend: RuntimeBackend, cid: str, n: int, wanted: Any) -> list[LogRecord]:
    last: collections.deque[LogRecord] = collections.deque(maxlen=max(n, 0) or None)
    if n == 0:
        return []
    for rec in backend.read_logs(cid, follow=False):
        if wanted(rec):
            last.append(rec)
    return list(last)


def _count(backend: RuntimeBackend, cid: str) -> int:
    return sum(1 for _ in backend.read_logs(cid, follow=False))


async def _bridge(gen: Iterator[LogRecord]) -> AsyncIterator[LogRecord]:
    """Run a blocking generator in a thread; stop it when the consumer stops."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in gen:
                if stop.is_set():
                    break
                asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
        except Exception as e:  # surfaced to the consumer below
            asyncio.run_coroutine_threadsafe(queue.put(e), loop).result()
        finally:
            gen.close()  # type: ignore[attr-defined]
            if not stop.is_set():
                asyncio.run_coroutine_threadsafe(queue.put(_DONE), loop)

    thread = threading.Thread(target=pump, name="log-follow", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        while not queue.empty():  # unblock a pump waiting on a full queue
            queue.get_nowait()
