"""The agent: makes this host's containers match the store, level-triggered.

For each container it (1) observes what really runs, (2) carries out queued actions in order,
(3) converges: restart policies, auto-remove. Every step re-reads the store and the host, so a
crash at any point is repaired by running the same code again: actions left "running" by a
killed daemon are simply carried out again (each handler is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from berth.agent import policy
from berth.agent.actions import HANDLERS
from berth.agent.exitwatch import ExitWatcher
from berth.agent.health import HealthMonitor
from berth.agent.netops import NetOps
from berth.agent.ops import LIVE, ContainerOps
from berth.errors import BerthError, NotModified, out_of_space
from berth.image.layers import LayerStore
from berth.runtime.base import RuntimeBackend
from berth.service.hub import Hub
from berth.service.idmaps import IdMaps
from berth.store.db import Store
from berth.store.models import Action, Container

log = logging.getLogger("berth.agent")

SWEEP_WITH_WATCH = 30.0  # seconds between full sweeps when exits arrive by inotify
SWEEP_POLLING = 1.0
ADOPT_AT_ONCE = 32  # containers reconciled together when the agent starts
# Observed states that need nothing more when nothing on the host says otherwise.
SETTLED = frozenset({"exited", "created", "dead"})
Outcome = tuple[str, int, dict[str, Any]]  # error message, status, result


class Agent:
    def __init__(self, store: Store, hub: Hub, backend: RuntimeBackend, layers: LayerStore,
                 host: str, idmaps: IdMaps, volumes_root: Path,
                 fresh_boot: bool = False, net: NetOps | None = None) -> None:
        self.ops = ContainerOps(store, hub, backend, layers, idmaps, volumes_root, net)
        self.host = host
        self.fresh_boot = fresh_boot
        self._dirty: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._watcher: ExitWatcher | None = None
        self.ready = asyncio.Event()
        self.health = HealthMonitor(self.ops, host)  # runs the health checks of this host

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
                self.health.sync(cid)
            except Exception as e:  # one container's failure must never stop the agent
                if out_of_space(e):  # the sweep tries again once there is room: no traceback
                    log.warning("reconcile %s: the disk is full (%s)", cid[:12], e)
                else:
                    log.exception("reconcile %s failed", cid[:12])
            await self.ops.hub.changed()
        self._tasks.pop(cid, None)

    async def run(self) -> None:
        """Adopt everything, then keep watching."""
        self.ops.layers.cleanup_incomplete()
        traces = set(await self.ops.run(self.ops.backend.list_ids))
        ids = await self.ops.run(self._needing_adoption, traces)
        # A few at a time: the api shares this loop and must keep answering meanwhile.
        gate = asyncio.Semaphore(ADOPT_AT_ONCE)

        async def adopt(cid: str) -> None:
            async with gate:
                await self.reconcile(cid)
                self.health.sync(cid)

        await asyncio.gather(*(adopt(cid) for cid in ids), return_exceptions=True)
        await self._sync_network()
        self.ready.set()
        await self.ops.hub.changed()
        await self.ops.run(self.ops.backend.start_watching)
        watch_dir = self.ops.backend.exit_watch_dir()
        if watch_dir is not None:
            self._watcher = ExitWatcher(watch_dir, self.kick)
            self._watcher.start()
        period = SWEEP_WITH_WATCH if self._watcher and self._watcher.active else SWEEP_POLLING
        while True:  # a safety net: exits normally arrive through the watcher at once
            await asyncio.sleep(period)
            with self.ops.store.session() as s:
                live = s.scalars(select(Container.id).where(
                    Container.host == self.host, Container.status.in_(LIVE))).all()
            for cid in live:
                self.kick(cid)
            if self.ops.net is not None:
                self.ops.net.request_sync()

    async def _sync_network(self) -> None:
        """Rules, bridges and DNS as the store says (after a restart: as it was)."""
        if self.ops.net is None:
            return
        try:
            await self.ops.net.sync()
        except Exception:  # the sweep tries again; containers keep running meanwhile
            log.exception("network sync failed")

    def _needing_adoption(self, traces: set[str]) -> set[str]:
        """Containers a restarted agent must look at: any with traces on the host, queued
        actions, a process it should have, or a restart policy. A container that stopped
        for good, with nothing left on the host, needs nothing (a store may hold thousands)."""
        with self.ops.store.session() as s:
            if self.fresh_boot:
                _forget_manual_stops(s)
            rows = s.execute(select(Container.id, Container.desired, Container.status,
                                    Container.spec).where(Container.host == self.host)).all()
            queued = set(s.scalars(select(Action.container_id).where(
                Action.kind == "container", Action.state.in_(("pending", "running")))))
        ids = set(traces) | queued
        for cid, desired, status, spec in rows:
            restart = (spec.get("restart_policy") or {}).get("name", "no")
            if (desired not in ("stopped", "created") or status not in SETTLED
                    or restart != "no" or spec.get("auto_remove")):
                ids.add(cid)
        return ids

    def stop(self) -> None:
        self.health.stop()
        if self._watcher is not None:
            self._watcher.stop()
        for timer in self._timers.values():
            timer.cancel()

    # -- one container -------------------------------------------------------------------

    async def reconcile(self, cid: str) -> None:
        ops = self.ops
        row = ops.load(cid)
        if row is None:
            # Traces on the host with no row: a remove that crashed after deleting the row.
            if cid in await ops.run(self.ops.backend.list_ids):
                await ops.run(self.ops.backend.delete, cid)
            return
        if row.host != self.host:
            return
        await ops.observe(row)
        pending = ops.pending(cid)
        current: Container | None = None
        for i, act in enumerate(pending):
            outcome = await self._carry_out(act)
            current = ops.load(cid)
            if current is None:  # removed or rolled back: later actions cannot run
                self._fail(pending[i + 1:], outcome)
                return
        current = current or ops.load(cid)  # as the last action or the observation left it
        if current is not None:
            await self._converge(current)

    async def _carry_out(self, act: Action) -> Outcome:
        """Run one action and record its outcome in its row."""
        resumed = act.state == "running"
        with self.ops.store.session() as s:
            s.get(Action, act.id).state = "running"
        state, message, status, result = "success", "", 0, {}
        try:
            result = await HANDLERS[act.action](self.ops, act) or {}
        except NotModified as e:
            if not resumed:  # a re-run after a crash that finds the work done succeeded
                state, message, status = "error", e.message, e.status
        except BerthError as e:
            state, message, status = "error", e.message, e.status
            result = getattr(e, "result", {})
        except Exception as e:  # a full disk, or a bug: record it, never leave it hanging
            if full := out_of_space(e):
                log.warning("action %s on %s: %s", act.action, act.container_id[:12], e)
                state, message, status = "error", full.message, full.status
            else:
                log.exception("action %s on %s failed", act.action, act.container_id[:12])
                state, message, status = "error", f"internal error: {e}", 500
        with self.ops.store.session() as s:
            rec = s.get(Action, act.id)
            rec.state, rec.message, rec.error_status = state, message, status
            rec.result, rec.finished_at = result, time.time()
        await self.ops.hub.changed()
        return message, status, result

    def _fail(self, actions: list[Action], outcome: Outcome) -> None:
        message, status, result = outcome
        with self.ops.store.session() as s:
            for act in actions:
                rec = s.get(Action, act.id)
                rec.state, rec.finished_at = "error", time.time()
                rec.message = message or "the container no longer exists"
                rec.error_status, rec.result = status or 409, result

    async def _converge(self, row: Container) -> None:
        ops = self.ops
        if row.desired == "removed":
            return
        if row.status == "created" and row.error and row.spec.get("auto_remove"):
            await ops.auto_remove(row)  # `run --rm` whose start failed: nothing to keep
            return
        if row.status != "exited":
            return
        if row.desired == "running" and not row.stopped_by_user and policy.should_restart(row):
            due = (row.finished_at or 0) + policy.backoff(row)
            if time.time() < due:
                self.kick_later(row.id, due - time.time())
                return
            ops.save(row.id, restart_count=row.restart_count + 1)
            try:
                await ops.launch(ops.load(row.id))
            except BerthError as e:
                log.warning("restart of %s failed: %s", row.name, e.message)
                ops.save(row.id, finished_at=time.time())
                self.kick_later(row.id, policy.backoff(ops.load(row.id)))
            return
        if row.spec.get("auto_remove"):
            await ops.auto_remove(row)


def _forget_manual_stops(s: Any) -> None:
    """After a reboot, "always" restarts even containers the user had stopped (Docker)."""
    for row in s.scalars(select(Container)):
        if row.spec.get("restart_policy", {}).get("name") == "always":
            row.stopped_by_user = False
