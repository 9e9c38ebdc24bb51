"""The health monitor: runs each running container's health check on this host.

One asyncio task per checked container sleeps for the interval, runs the check through the
runtime's exec in a small thread pool of its own (a hanging check never holds the threads the
agent and the api share), and records the result in the container's row (service/health.py
computes the new state). The agent calls ``sync`` after every reconcile of a container, so
checking starts and stops as the container does; the state lives in the store, so a restarted
daemon resumes checking its adopted containers where the last one left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import update

from berth.agent.ops import LIVE, ContainerOps
from berth.errors import BerthError
from berth.image.runconfig import image_shell
from berth.runtime.base import Capability, ExecProcess, ExecSpec, RuntimeBackend, Status
from berth.service import health
from berth.store.models import Container

log = logging.getLogger("berth.agent.health")

PROBE_WORKERS = 8  # checks running at once on this host; the others wait their turn
POLL = 0.2  # seconds between looks at a check that is still running


class HealthMonitor:
    def __init__(self, ops: ContainerOps, host: str, workers: int = PROBE_WORKERS) -> None:
        self.ops = ops
        self.host = host
        self._enabled = Capability.EXEC in ops.backend.capabilities
        self._tasks: dict[str, tuple[float | None, asyncio.Task[None]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health")
        self._stopping = threading.Event()

    def sync(self, cid: str) -> None:
        """Check the container while it runs with a health check, from its current start on;
        stop checking when it stops, loses its check or is gone."""
        row = self.ops.load(cid) if self._enabled and not self._stopping.is_set() else None
        check = None
        if row is not None and row.host == self.host and row.status in LIVE:
            check = health.resolve(row.spec)
        current = self._tasks.get(cid)
        if check is None or row is None:
            if current is not None:
                current[1].cancel()
                del self._tasks[cid]
            return
        if current is not None and current[0] == row.started_at and not current[1].done():
            return  # already checking this run
        if current is not None:
            current[1].cancel()
        task = asyncio.get_running_loop().create_task(
            self._watch(cid, row.started_at, check, self._argv(row, check)))
        self._tasks[cid] = (row.started_at, task)

    def stop(self) -> None:
        self._stopping.set()
        for _, task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _argv(self, row: Container, check: health.Check) -> list[str]:
        try:
            shell = image_shell(self.ops.image(row).config)
        except BerthError:  # the image is gone: Docker's default shell
            shell = []
        return check.argv(shell)

    async def _watch(self, cid: str, started_at: float | None, check: health.Check,
                     argv: list[str]) -> None:
        loop = asyncio.get_running_loop()
        since = started_at or time.time()
        status = health.STARTING
        while True:
            await asyncio.sleep(check.delay(status, since, time.time()))
            row = self.ops.load(cid)
            if row is None or row.status not in LIVE or row.started_at != started_at:
                return
            status = health.status_of(row.health)
            if row.status != "running":
                continue  # paused: nothing can run in it until it is thawed
            try:
                result = await loop.run_in_executor(
                    self._pool, probe, self.ops.backend, cid, argv, check.timeout,
                    self._stopping)
                if result is not None:
                    status = await self._record(cid, started_at, since, check, result) or status
            except asyncio.CancelledError:
                raise
            except Exception:  # one check's failure must never stop the monitoring
                log.exception("health check of %s failed", cid[:12])

    async def _record(self, cid: str, started_at: float | None, since: float,
                      check: health.Check, result: health.Result) -> str | None:
        """Store the new state if the container still runs the same start of its process
        (a result that comes after it stopped or restarted is dropped); its new status."""
        with self.ops.store.session() as s:
            row = s.get(Container, cid)
            if row is None or row.status not in LIVE or row.started_at != started_at:
                return None
            before = health.status_of(row.health)
            new = health.apply(row.health, result, check, since)
            changed = s.execute(update(Container).where(
                Container.id == cid, Container.status.in_(LIVE),
                _same_start(started_at)).values(health=new),
                execution_options={"synchronize_session": False}).rowcount
        if not changed:
            return None
        if new["status"] not in (before, health.STARTING):  # as Docker: healthy, unhealthy
            self.ops.event(row, f"health_status: {new['status']}")
            if self.ops.net is not None:  # services take it in or leave it out
                self.ops.net.request_sync()
            await self.ops.hub.changed()
        return str(new["status"])


def _same_start(started_at: float | None) -> Any:
    return (Container.started_at.is_(None) if started_at is None
            else Container.started_at == started_at)


def probe(backend: RuntimeBackend, cid: str, argv: list[str], timeout: float,
          stopping: threading.Event) -> health.Result | None:
    """Run one check in the container (a worker thread). None: the container stopped under
    it, so there is nothing to record."""
    start = time.time()
    try:
        proc = backend.exec(cid, ExecSpec(args=argv))
    except BerthError as e:
        if backend.state(cid).status != Status.RUNNING:
            return None
        return health.Result(start, time.time(), -1, e.message)
    try:
        proc.close_stdin()
        output = _Output()
        done = threading.Event()
        reader = threading.Thread(target=_read, args=(proc, output, done), daemon=True,
                                  name="health-output")
        reader.start()
        deadline = time.monotonic() + timeout
        while reader.is_alive() and not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            reader.join(min(left, POLL))
        if reader.is_alive():  # timed out (or the daemon is stopping): the check is ended
            done.set()
            reader.join(POLL * 2)
            if stopping.is_set():
                return None
            return health.Result(start, time.time(), -1,
                                 f"Health check exceeded timeout ({_seconds(timeout)})")
        code = proc.wait()
        text = output.text()
        if code in (126, 127) and not text:  # could not be run: say why, as Docker does
            text = getattr(proc, "runtime_error", lambda: "")()
        return health.Result(start, time.time(), code, text)
    finally:
        proc.close()  # a check still running gets SIGTERM through runc, then runc is killed


class _Output:
    """The first MAX_OUTPUT bytes of stdout and stderr together; the rest is read and
    dropped, so a chatty check never blocks on a full pipe."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = health.MAX_OUTPUT - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        self.data += chunk[:max(room, 0)]

    def text(self) -> str:
        return health.bounded_output(bytes(self.data), self.truncated)


def _read(proc: ExecProcess, out: _Output, done: threading.Event) -> None:
    """Read the check's output to its end, then wait for its exit code."""
    fds = [fd for fd in (proc.fileno_stdout(), proc.fileno_stderr()) if fd is not None]
    with selectors.DefaultSelector() as sel:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and not done.is_set():
            for key, _ in sel.select(POLL):
                chunk = b""
                with contextlib.suppress(OSError):
                    chunk = os.read(key.fd, 65536)
                if chunk:
                    out.add(chunk)
                else:
                    sel.unregister(key.fd)
    if not done.is_set():
        proc.wait()


def _seconds(value: float) -> str:
    """Go's duration text for whole or fractional seconds ("1s", "500ms", "1.5s")."""
    if value < 1:
        return f"{value * 1000:g}ms"
    return f"{value:g}s"
