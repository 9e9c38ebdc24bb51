"""RUN: the command in a real Berth container (the project's runtime, limits, security defaults
and user namespace), its output streamed, its changes committed as a layer. The container is
always removed, whatever happens."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from berth.errors import BerthError, InvalidArgument, NotFound
from berth.image.types import LayerRef
from berth.service.context import Context
from berth.service.names import new_id
from berth.service.specs import ContainerCreate

if TYPE_CHECKING:
    from berth.agent.hostops import HostOps
    from berth.image.blobs import BlobStore
    from berth.service.containers import ContainerService
    from berth.service.idmaps import IdMaps

Emit = Callable[[dict[str, Any]], None]
POLL = 0.02
REMOVE_WAIT = 60.0


class Cancelled(BerthError):
    status = 499

    def __init__(self) -> None:
        super().__init__("the build was cancelled")


class StepFailed(InvalidArgument):
    """A RUN that exited non-zero: Docker's words, and the Dockerfile line; ``code`` is the
    command's exit code (the docker CLI exits with it)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RunStep:
    def __init__(self, containers: ContainerService, hostops: HostOps, blobs: BlobStore,
                 idmaps: IdMaps) -> None:
        self.containers, self.hostops, self.blobs, self.idmaps = (containers, hostops, blobs,
                                                                  idmaps)

    def run(self, ctx: Context, image_id: str, argv: list[str], env: list[str], user: str,
            workdir: str, build_id: str, emit: Emit, cancel: threading.Event,
            what: str) -> LayerRef | None:
        req = ContainerCreate(image=image_id, name=f"berth-build-{new_id()[:16]}",
                              entrypoint=argv, env=env, user=user or None,
                              workdir=workdir or None, labels={"berth.build": build_id},
                              network="none", healthcheck={"test": ["NONE"]})
        row, act = self.containers.create(ctx, req, start=True)
        emit({"stream": f" ---> Running in {row.id[:12]}\n"})
        try:
            code, error = self._wait(ctx, row.id, act.id, emit, cancel)
            if error:
                raise InvalidArgument(f"{what}: the build container failed: {error}")
            if code != 0:
                cmd = " ".join(argv)
                raise StepFailed(f"{what}: The command '{cmd}' returned a non-zero code: {code}",
                                 code)
            return self.hostops.commit_changes(row.id, self.blobs,
                                               self.idmaps.for_project(ctx.project_id), False)
        finally:
            self.remove(ctx, row.id)
            emit({"stream": f"Removing intermediate container {row.id[:12]}\n"})

    def _wait(self, ctx: Context, cid: str, action_id: int, emit: Emit,
              cancel: threading.Event) -> tuple[int | None, str]:
        seen = 0
        killed = False
        while True:
            try:
                row = self.containers.get(ctx, cid)
            except NotFound:
                return None, self.containers.action(ctx, action_id).message or "it is gone"
            act = self.containers.action(ctx, action_id)
            seen = self._pump(cid, seen, emit)
            if act.state == "error":
                return None, act.message or "it did not start"
            if act.state == "success" and row.status in ("exited", "dead"):
                self._pump(cid, seen, emit)
                if killed:
                    raise Cancelled()
                return row.exit_code, row.error if row.exit_code is None else ""
            if cancel.is_set() and not killed:
                with contextlib.suppress(BerthError):
                    self.containers.kill(ctx, cid)
                killed = True
            time.sleep(POLL)

    def _pump(self, cid: str, seen: int, emit: Emit) -> int:
        try:
            records = list(self.hostops.backend.read_logs(cid, follow=False))
        except (OSError, BerthError):
            return seen
        for rec in records[seen:]:
            emit({"stream": rec.data.decode("utf-8", "replace")})
        return max(seen, len(records))

    def remove(self, ctx: Context, cid: str) -> None:
        """Remove the container and wait until it is gone (nothing is left behind)."""
        try:
            self.containers.remove(ctx, cid, force=True)
        except NotFound:
            return
        deadline = time.monotonic() + REMOVE_WAIT
        while time.monotonic() < deadline:
            try:
                self.containers.get(ctx, cid)
            except NotFound:
                return
            time.sleep(POLL)
