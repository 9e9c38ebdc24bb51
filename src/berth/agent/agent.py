"""The agent: makes this host's containers match the store, level-triggered.

For each container it (1) observes what really runs, (2) carries out queued actions in order,
(3) converges: restart policies, auto-remove. Every step re-reads the store and the host, so a
crash at any point is repaired by running the same code again: actions left "running" by a
killed daemon are simply carried out again (each handler is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal as signals
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from berth.agent import specbuild
from berth.agent.exitwatch import ExitWatcher
from berth.errors import BerthError, Conflict, InvalidArgument, NotModified
from berth.image.layers import LayerStore
from berth.image.types import LayerRef
from berth.runtime.base import IdMapping, Observed, RuntimeBackend, Status
from berth.service.hub import Hub
from berth.store.db import Store
from berth.store.models import Action, Container, Image, Volume

log = logging.getLogger("berth.agent")

LIVE = ("running", "paused", "restarting")
SWEEP_WITH_WATCH = 30.0  # seconds between full sweeps when exits arrive by inotify
SWEEP_POLLING = 1.0
STOP_POLL = 0.05
KILL_WAIT = 10.0
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET_AFTER = 0.1, 60.0, 10.0


class Agent:
    def __init__(self, store: Store, hub: Hub, backend: RuntimeBackend, layers: LayerStore,
                 host: str, idmap: IdMapping | None, volumes_root: Path,
                 fresh_boot: bool = False) -> None:
        self.store = store
        self.hub = hub
        self.backend = backend
        self.layers = layers
        self.host = host
        self.idmap = idmap
        self.fresh_boot = fresh_boot
        self.volumes_root = volumes_root
        self._dirty: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._watcher: ExitWatcher | None = None
        self.ready = asyncio.Event()

    # -- scheduling ----------------------------------------------------------------------

    def kick(self, cid: str) -> None:
        """Reconcile this container soon; calls coalesce, one worker per container."""
        self._dirty.add(cid)
        task = self._tasks.get(cid)
        if task is None or task.done():
            self._tasks[cid] = asyncio.get_running_loop().create_task(self._worker(cid))

    def kick_later(self, cid: str, delay: float) -> None:
        old = self._timers.pop(cid, None)
        if old is not None:
            old.cancel()
        self._timers[cid] = asyncio.get_running_loop().call_later(delay, self.kick, cid)

    async def _worker(self, cid: str) -> None:
        while cid in self._dirty:
            self._dirty.discard(cid)
            try:
                await self.reconcile(cid)
            except Exception:  # one container's failure must never stop the agent
                log.exception("reconcile %s failed", cid[:12])
            await self.hub.changed()
        self._tasks.pop(cid, None)

    async def run(self) -> None:
        """Adopt everything, then keep watching."""
        self.layers.cleanup_incomplete()
        with self.store.session() as s:
            ids = set(s.scalars(select(Container.id).where(Container.host == self.host)))
            if self.fresh_boot:
                self._forget_manual_stops(s)
        ids |= set(await asyncio.to_thread(self.backend.list_ids))
        await asyncio.gather(*(self.reconcile(cid) for cid in ids), return_exceptions=True)
        self.ready.set()
        await self.hub.changed()
        watch_dir = self.backend.exit_watch_dir()
        if watch_dir is not None:
            self._watcher = ExitWatcher(watch_dir, self.kick)
            self._watcher.start()
        period = SWEEP_WITH_WATCH if self._watcher and self._watcher.active else SWEEP_POLLING
        while True:
            await asyncio.sleep(period)
            with self.store.session() as s:
                live = s.scalars(select(Container.id).where(
                    Container.host == self.host, Container.status.in_(LIVE))).all()
            for cid in live:
                self.kick(cid)

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        for timer in self._timers.values():
            timer.cancel()

    @staticmethod
    def _forget_manual_stops(s: Any) -> None:
        """After a reboot, "always" restarts even containers the user had stopped (Docker)."""
        for row in s.scalars(select(Container)):
            if row.spec.get("restart_policy", {}).get("name") == "always":
                row.stopped_by_user = False

    # -- one container -------------------------------------------------------------------

    async def reconcile(self, cid: str) -> None:
        row = self._load(cid)
        if row is None:
            # Traces on the host with no row: a remove that crashed after deleting the row.
            if cid in await asyncio.to_thread(self.backend.list_ids):
                await asyncio.to_thread(self.backend.delete, cid)
            return
        if row.host != self.host:
            return
        await self._observe(row)
        pending = self._pending(cid)
        for i, act in enumerate(pending):
            outcome = await self._carry_out(act)
            if self._load(cid) is None:  # removed or rolled back: later actions cannot run
                self._fail(pending[i + 1:], outcome)
                return
        row = self._load(cid)
        if row is not None:
            await self._converge(row)

    def _load(self, cid: str) -> Container | None:
        with self.store.session() as s:
            return s.get(Container, cid)

    def _pending(self, cid: str) -> list[Action]:
        with self.store.session() as s:
            q = select(Action).where(Action.container_id == cid,
                                     Action.state.in_(("pending", "running")))
            return list(s.scalars(q.order_by(Action.id)).all())

    def _save(self, cid: str, **fields: Any) -> Container | None:
        with self.store.session() as s:
            row = s.get(Container, cid)
            if row is None:
                return None
            for key, value in fields.items():
                setattr(row, key, value)
            return row

    def _event(self, row: Container, action: str, **extra: Any) -> None:
        self.hub.publish({"type": "container", "action": action, "id": row.id,
                          "name": row.name, "project_id": row.project_id,
                          "image": row.image_ref, "time": time.time(), **extra})

    async def _observe(self, row: Container) -> Observed | None:
        if row.status == "creating":
            return None
        obs = await asyncio.to_thread(self.backend.state, row.id)
        if row.status in LIVE:
            if obs.status in (Status.RUNNING, Status.PAUSED):
                status = "paused" if obs.status == Status.PAUSED else "running"
                if status != row.status or obs.pid != row.pid:
                    self._save(row.id, status=status, pid=obs.pid)
            elif obs.status == Status.STOPPED:
                await self._record_exit(row, obs)
            else:  # MISSING: the host rebooted or the runtime lost it
                await self._record_exit(row, obs, lost=True)
        return obs

    async def _record_exit(self, row: Container, obs: Observed, lost: bool = False) -> None:
        code = 255 if lost or obs.exit_code is None else obs.exit_code
        error = "the container's process was lost (host reboot?)" if lost else ""
        self._save(row.id, status="exited", pid=0, exit_code=code, oom_killed=obs.oom_killed,
                   finished_at=obs.finished_at or time.time(), error=error)
        await asyncio.to_thread(self.backend.release, row.id)
        if obs.oom_killed:
            self._event(row, "oom")
        self._event(row, "die", exitCode=code)

    # -- actions -------------------------------------------------------------------------

    def _fail(self, actions: list[Action], outcome: tuple[str, int, dict[str, Any]]) -> None:
        message, status, result = outcome
        with self.store.session() as s:
            for act in actions:
                rec = s.get(Action, act.id)
                rec.state, rec.finished_at = "error", time.time()
                rec.message = message or "the container no longer exists"
                rec.error_status, rec.result = status or 409, result

    async def _carry_out(self, act: Action) -> tuple[str, int, dict[str, Any]]:
        """Run one action and record its outcome: (error message, status, result)."""
        resumed = act.state == "running"
        with self.store.session() as s:
            s.get(Action, act.id).state = "running"
        state, message, status, result = "success", "", 0, {}
        try:
            handler = getattr(self, f"_do_{act.action}")
            result = await handler(act) or {}
        except NotModified as e:
            if not resumed:  # a re-run after a crash that finds the work done succeeded
                state, message, status = "error", e.message, e.status
        except BerthError as e:
            state, message, status = "error", e.message, e.status
            result = getattr(e, "result", {})
        except Exception as e:  # a bug: record it rather than leave the action hanging
            log.exception("action %s on %s failed", act.action, act.container_id[:12])
            state, message, status = "error", f"internal error: {e}", 500
        with self.store.session() as s:
            rec = s.get(Action, act.id)
            rec.state, rec.message, rec.error_status = state, message, status
            rec.result, rec.finished_at = result, time.time()
        await self.hub.changed()
        return message, status, result

    def _image(self, row: Container) -> Image:
        with self.store.session() as s:
            image = s.get(Image, (row.project_id, row.image_id))
        if image is None:
            raise Conflict(f"image {row.image_ref} of container {row.name} is gone")
        return image

    def _layer_dirs(self, image: Image) -> list[Path]:
        return [self.layers.ensure(LayerRef(**layer), self.idmap) for layer in image.layers]

    async def _do_create(self, act: Action) -> None:
        row = self._load(act.container_id)
        try:
            image = self._image(row)
            await asyncio.to_thread(self._layer_dirs, image)
            specbuild.build_spec(row.id, row.name, row.spec, image.config, [], self.idmap)
        except BerthError:
            await self._delete_row(row)  # roll back: a create that failed leaves nothing
            raise
        if row.status == "creating":
            self._save(row.id, status="created")
            self._event(row, "create")

    async def _do_start(self, act: Action) -> dict[str, Any] | None:
        row = self._load(act.container_id)
        obs = await asyncio.to_thread(self.backend.state, row.id)
        if obs.status in (Status.RUNNING, Status.PAUSED):
            if row.status in LIVE:
                raise NotModified(f"container {row.name} is already started")
            self._mark_running(row, obs)  # started just before a crash: record it
            return None
        await self._launch(row)
        return None

    async def _launch(self, row: Container) -> None:
        image = self._image(row)
        layers = await asyncio.to_thread(self._layer_dirs, image)
        spec = specbuild.build_spec(row.id, row.name, row.spec, image.config, layers, self.idmap)
        try:  # create releases whatever a previous run left
            await asyncio.to_thread(self.backend.create, spec)
            await asyncio.to_thread(self.backend.start, row.id)
        except BerthError as e:
            await asyncio.to_thread(self.backend.release, row.id)
            code = _exit_code_for(e.message)
            self._save(row.id, error=e.message, exit_code=code,
                       status="exited" if row.started_at else "created")
            if code in (126, 127):
                err = InvalidArgument(e.message)
                err.result = {"exit_code": code}  # type: ignore[attr-defined]
                raise err from None
            raise
        obs = await asyncio.to_thread(self.backend.state, row.id)
        self._mark_running(row, obs)

    def _mark_running(self, row: Container, obs: Observed) -> None:
        self._save(row.id, status="running", pid=obs.pid, started_at=obs.started_at or time.time(),
                   exit_code=None, oom_killed=False, error="", finished_at=None,
                   stopped_by_user=False, desired="running")
        self._event(row, "start")

    async def _do_stop(self, act: Action) -> None:
        row = self._load(act.container_id)
        if row.status not in LIVE:
            self._save(row.id, stopped_by_user=True, desired="stopped")
            raise NotModified(f"container {row.name} is already stopped")
        timeout = specbuild.stop_timeout(row.spec, act.params.get("timeout"))
        await self._stop(row, timeout)
        self._save(row.id, stopped_by_user=True, desired="stopped")
        self._event(row, "stop")

    async def _stop(self, row: Container, timeout: float) -> None:
        sig = specbuild.stop_signal(row.spec, self._image(row).config)
        if timeout < 0:  # Docker: -1 waits for ever
            timeout = float("inf")
        if timeout > 0:
            await self._signal(row, sig)
            if await self._wait_stopped(row.id, timeout):
                await self._observe(self._load(row.id))
                return
        await self._signal(row, signals.SIGKILL)
        await self._wait_stopped(row.id, KILL_WAIT)
        await self._observe(self._load(row.id))

    async def _signal(self, row: Container, sig: int) -> None:
        await asyncio.to_thread(self.backend.kill, row.id, sig)
        current = self._load(row.id)
        if current is not None and current.status == "paused":
            # A frozen process cannot act on a signal: thaw it (as Docker does).
            await asyncio.to_thread(self.backend.resume, row.id)

    async def _wait_stopped(self, cid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            obs = await asyncio.to_thread(self.backend.state, cid)
            if obs.status in (Status.STOPPED, Status.MISSING):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(STOP_POLL)

    async def _do_restart(self, act: Action) -> None:
        row = self._load(act.container_id)
        if row.status in LIVE:
            await self._stop(row, specbuild.stop_timeout(row.spec, act.params.get("timeout")))
        await self._launch(self._load(row.id))
        self._event(row, "restart")

    async def _do_kill(self, act: Action) -> None:
        row = self._load(act.container_id)
        if row.status not in LIVE:
            raise Conflict(f"container {row.name} is not running")
        self._save(row.id, stopped_by_user=True)
        await self._signal(row, int(act.params["signal"]))
        self._event(row, "kill", signal=int(act.params["signal"]))

    async def _do_pause(self, act: Action) -> None:
        row = self._load(act.container_id)
        if row.status == "paused":
            raise Conflict(f"container {row.name} is already paused")
        if row.status != "running":
            raise Conflict(f"container {row.name} is not running")
        await asyncio.to_thread(self.backend.pause, row.id)
        self._save(row.id, status="paused", desired="paused")
        self._event(row, "pause")

    async def _do_unpause(self, act: Action) -> None:
        row = self._load(act.container_id)
        if row.status != "paused":
            raise Conflict(f"container {row.name} is not paused")
        await asyncio.to_thread(self.backend.resume, row.id)
        self._save(row.id, status="running", desired="running")
        self._event(row, "unpause")

    async def _do_update(self, act: Action) -> None:
        row = self._load(act.container_id)
        spec = dict(row.spec)
        spec.update(act.params)
        if spec.get("memory_swap") not in (None, -1) and spec.get("memory") and \
                spec["memory_swap"] < spec["memory"]:
            raise InvalidArgument("memory_swap: must be at least memory (or -1 for unlimited)")
        if spec.get("auto_remove") and spec.get("restart_policy", {}).get("name", "no") != "no":
            raise InvalidArgument("auto_remove and a restart policy cannot be combined")
        if row.status in LIVE:
            await asyncio.to_thread(self.backend.update, row.id, specbuild.resources_from(spec))
        self._save(row.id, spec=spec)
        self._event(row, "update")

    async def _do_remove(self, act: Action) -> dict[str, Any]:
        row = self._load(act.container_id)
        if row.status in LIVE and not act.params.get("force"):
            raise Conflict(f"cannot remove container {row.name}: it is running; stop it first "
                           "or force the removal")
        self._save(row.id, desired="removed")
        if row.status in LIVE:
            await self._signal(row, signals.SIGKILL)
            await self._wait_stopped(row.id, KILL_WAIT)
        await asyncio.to_thread(self.backend.delete, row.id)
        row = self._load(row.id) or row
        await self._delete_row(row, volumes=bool(act.params.get("volumes")))
        return _last_exit(row)

    async def _delete_row(self, row: Container, volumes: bool = False) -> None:
        anonymous = [m["volume"] for m in row.spec.get("mounts", [])
                     if m.get("type") == "volume" and m.get("anonymous")]
        with self.store.session() as s:
            current = s.get(Container, row.id)
            if current is not None:
                s.delete(current)
            if volumes:
                for name in anonymous:
                    vol = s.get(Volume, (row.project_id, name))
                    if vol is not None:
                        s.delete(vol)
        if volumes:
            for name in anonymous:
                shutil.rmtree(self.volumes_root / row.project_id / name, ignore_errors=True)
        self._event(row, "destroy")

    # -- converge ------------------------------------------------------------------------

    async def _converge(self, row: Container) -> None:
        if row.desired == "removed":
            return
        if row.status == "created" and row.error and row.spec.get("auto_remove"):
            await self._auto_remove(row)  # `run --rm` whose start failed: nothing to keep
            return
        if row.status != "exited":
            return
        if row.desired == "running" and not row.stopped_by_user and _should_restart(row):
            delay = _backoff(row)
            due = (row.finished_at or 0) + delay
            now = time.time()
            if now < due:
                self.kick_later(row.id, due - now)
                return
            self._save(row.id, restart_count=row.restart_count + 1)
            try:
                await self._launch(self._load(row.id))
            except BerthError as e:
                log.warning("restart of %s failed: %s", row.name, e.message)
                self._save(row.id, finished_at=time.time())
                self.kick_later(row.id, _backoff(self._load(row.id)))
            return
        if row.spec.get("auto_remove"):
            await self._auto_remove(row)

    async def _auto_remove(self, row: Container) -> None:
        await asyncio.to_thread(self.backend.delete, row.id)
        with self.store.session() as s:  # the exit code outlives the row, for waiters
            s.add(Action(project_id=row.project_id, container_id=row.id, action="remove",
                         params={"auto": True}, request_id="auto-remove", user="agent",
                         state="success", message="", error_status=0,
                         result=_last_exit(row), started_at=time.time(),
                         finished_at=time.time()))
        await self._delete_row(row, volumes=True)


def _last_exit(row: Container) -> dict[str, Any]:
    return {"exit_code": row.exit_code, "oom_killed": row.oom_killed, "error": row.error}


def _should_restart(row: Container) -> bool:
    policy = row.spec.get("restart_policy") or {}
    name, retries = policy.get("name", "no"), int(policy.get("max_retries") or 0)
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        return row.exit_code not in (0, None) and (retries == 0 or row.restart_count < retries)
    return False


def _backoff(row: Container) -> float:
    """Docker's rule: 100 ms doubling on each quick failure, back to 100 ms after 10 s up."""
    ran = (row.finished_at or 0) - (row.started_at or 0)
    if ran >= BACKOFF_RESET_AFTER:
        return BACKOFF_FIRST
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(row.restart_count, 10))


def _exit_code_for(message: str) -> int:
    text = message.lower()
    if "not found" in text or "no such file" in text:
        return 127
    if "permission denied" in text or "not executable" in text or "exec format" in text:
        return 126
    return 125
