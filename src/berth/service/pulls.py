"""Pulls as actions: the api answers 202 with an action at once and pulls in the background.

Each pull is an ``image`` action (target = the reference) in the project's actions log, like
Zun's container actions: who asked, when, and how it ended. A caller may wait on it
(``?wait=true`` or ``GET /v1/actions/{id}?wait=true``) or follow its progress as a stream.
A daemon killed mid-pull leaves the action "running"; the next start marks it interrupted
(the blobs it left are temp files, cleaned at start, or verified blobs kept for the next pull).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from berth.errors import BerthError
from berth.image.registry import Credentials
from berth.service.context import Context, find_action
from berth.service.hub import Hub
from berth.service.registry import RegistryService
from berth.store.db import Store
from berth.store.models import Action

log = logging.getLogger("berth.pulls")
Report = Callable[[dict[str, Any]], None]


class PullService:
    def __init__(self, store: Store, hub: Hub, registry: RegistryService) -> None:
        self.store = store
        self.hub = hub
        self.registry = registry

    def recover(self) -> int:
        """At start: pulls that were running when the daemon died ended then."""
        with self.store.session() as s:
            left = s.scalars(select(Action).where(Action.kind == "image",
                                                  Action.state.in_(("pending", "running"))))
            n = 0
            for act in left:
                act.state, act.error_status, act.finished_at = "error", 500, time.time()
                act.message = "interrupted: berthd stopped during the pull; pull again"
                n += 1
        return n

    def record(self, ctx: Context, reference: str, platform: str | None) -> Action:
        with self.store.session() as s:
            act = Action(project_id=ctx.project_id, kind="image", target=reference[:512],
                         container_id="", action="pull", params={"platform": platform},
                         request_id=ctx.request_id, user=ctx.user, state="running",
                         message="", error_status=0, result={}, started_at=time.time())
            s.add(act)
        return act

    def run(self, ctx: Context, act: Action, reference: str, platform: str | None,
            report: Report, then: Callable[[], dict[str, Any]] | None = None,
            auth: Credentials | None = None) -> dict[str, Any]:
        """Pull (in the calling thread) and finish the action either way; ``auth``: this
        pull's own credentials (see RegistryService.pull)."""
        try:
            image, info = self.registry.pull(ctx, reference, platform, report, auth)
            if then is not None:
                info = {**info, **then()}
        except BerthError as e:
            self._finish(act.id, "error", e.message, e.status, {})
            raise
        except BaseException as e:
            self._finish(act.id, "error", f"internal error: {type(e).__name__}: {e}", 500, {})
            raise
        result = {"image_id": image.id, **info}
        self._finish(act.id, "success", "", 0, result)
        return {"image": image, **info}

    def start(self, ctx: Context, reference: str, platform: str | None,
              then: Callable[[], dict[str, Any]] | None = None) -> Action:
        """Record the action and pull in a background thread; ``then`` (a create waiting for
        this image, say) runs after a successful pull and its answer joins the result."""
        act = self.record(ctx, reference, platform)

        def work() -> None:
            try:
                self.run(ctx, act, reference, platform, lambda _e: None, then)
            except BerthError as e:  # a refusal: the action holds it, no traceback needed
                log.info("pull %s failed (action %s): %s", reference, act.id, e.message)
            except BaseException:  # noqa: BLE001 - a bug: keep the traceback
                log.exception("pull %s failed (action %s)", reference, act.id)

        threading.Thread(target=work, name=f"pull-{act.id}", daemon=True).start()
        return act

    def _finish(self, action_id: int, state: str, message: str, status: int,
                result: dict[str, Any]) -> None:
        with self.store.session() as s:
            act = s.get(Action, action_id)
            if act is not None:
                act.state, act.message, act.error_status = state, message, status
                act.result, act.finished_at = result, time.time()
        self.hub.notify()

    def action(self, ctx: Context, action_id: int) -> Action:
        return find_action(self.store, ctx, action_id)

    async def wait(self, ctx: Context, action_id: int, timeout: float) -> Action:
        def finished() -> Action | None:
            act = self.action(ctx, action_id)
            return act if act.state in ("success", "error") else None

        return await self.hub.wait_until(finished, timeout) or self.action(ctx, action_id)
