"""/v1/containers: lifecycle. Mutations return 202 and an action, or wait with ?wait=true."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from berth.api import views
from berth.api.auth import read_only
from berth.api.deps import ActionId, Services, context, services
from berth.api.listing import PAGED, SelectorParam, paged, paging
from berth.api.routes.streams import MULTIPLEXED, attached_output
from berth.errors import (
    BerthError,
    Conflict,
    InvalidArgument,
    NotFound,
    NotModified,
    RuntimeFailure,
)
from berth.service import diskuse
from berth.service.containers import (
    ACTION_SORT,
    CONTAINER_FILTERS,
    CONTAINER_SORT,
    PRUNE_FILTERS,
)
from berth.service.context import Context
from berth.service.endpoints import network_owner
from berth.service.filters import parse_filters
from berth.service.paging import PageRequest
from berth.service.selectors import parse_selector
from berth.service.specs import ContainerCreate, ContainerUpdate
from berth.store.models import Action

router = APIRouter(prefix="/v1/containers", tags=["containers"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
WAIT_LIMIT = 3600.0
Page = Annotated[PageRequest, Depends(paging(CONTAINER_SORT))]
ActionPage = Annotated[PageRequest, Depends(paging(ACTION_SORT))]
# A mutation answers 202 and its action at once, or (wait=true) its outcome; one that had
# nothing to do (start a running container, stop a stopped one) answers 304.
QUEUED: dict[int | str, dict[str, Any]] = {
    202: {"description": "queued: the action, to poll or wait on"},
    304: {"description": "nothing to do: it is already so (wait=true)"}}
ATTACHED: dict[int | str, dict[str, Any]] = {**QUEUED, 200: {
    "description": "attach=true: the output as multiplexed frames, then an exit frame",
    "content": {MULTIPLEXED: {}}}}


async def _answer(svc: Services, ctx: Context, act: Action, wait: bool,
                  container_ref: str | None = None) -> Any:
    """202 with the action, or wait for it and answer as the outcome deserves."""
    if not wait:
        return JSONResponse({"action": views.action(act)}, status_code=202)
    done = await svc.containers.wait_action(ctx, act.id, WAIT_LIMIT)
    if done is None:
        return JSONResponse({"action": views.action(act)}, status_code=202)
    if done.state == "error":
        if done.error_status == 304:
            raise NotModified(done.message)
        err = BerthError(done.message)
        err.status = done.error_status or RuntimeFailure.status
        err.result = done.result  # type: ignore[attr-defined]
        raise err
    body: dict[str, Any] = {"action": views.action(done)}
    if container_ref is not None and done.action != "remove":
        body["container"] = views.container(svc.containers.get(ctx, container_ref))
    return body


@router.post("", status_code=201, responses=ATTACHED)
async def create(body: ContainerCreate, svc: Svc, ctx: Ctx, start: bool = False,
                 wait: bool = False, attach: bool = False) -> Any:
    """With start&attach: create, start, then stream output and the exit code (one trip).
    With pull=missing|always the image is pulled first: without wait that is a 202 with the
    pull's action, whose result names the container once it is made."""
    if body.pull != "never" and (body.pull == "always" or not await asyncio.to_thread(
            svc.images.has, ctx, body.image)):
        if attach:
            raise InvalidArgument("attach cannot wait for a pull: pull first, or use wait")
        if not wait:
            def create_after() -> dict[str, Any]:
                made, _ = svc.containers.create(ctx, body, start)
                return {"container_id": made.id}

            act = await asyncio.to_thread(svc.pulls.start, ctx, body.image, None, create_after)
            return JSONResponse({"action": views.action(act)}, status_code=202)
        pulled = await svc.pulls.wait(ctx, (await asyncio.to_thread(
            svc.pulls.start, ctx, body.image, None)).id, WAIT_LIMIT)
        if pulled.state != "success":
            err = BerthError(f"pulling {body.image} failed: {pulled.message}")
            err.status = pulled.error_status or RuntimeFailure.status
            raise err
    # The store work (and the quota check's write lock) runs off the event loop.
    row, act = await asyncio.to_thread(svc.containers.create, ctx, body, start)
    if attach:
        if not start:
            raise InvalidArgument("attach needs start=true")
        await _answer(svc, ctx, act, True)
        return attached_output(svc, ctx, row.id)
    if not wait:
        return JSONResponse({"container": views.container(row), "action": views.action(act)},
                            status_code=202)
    answer = await _answer(svc, ctx, act, True, row.id)
    return JSONResponse(answer, status_code=201)


@router.get("", response_model=list[dict[str, Any]], responses=PAGED)
def list_containers(svc: Svc, ctx: Ctx, page: Page, all: bool = False,
                    filter: Annotated[list[str] | None, Query()] = None,
                    selector: SelectorParam = None, all_projects: bool = False,
                    size: bool = False) -> Any:
    """Live containers (all=true: every one), newest first; all_projects=true (admins): every
    project's, each showing its project_id; size=true: what each takes on disk (walked: slow
    with many files)."""
    filters = parse_filters(filter, CONTAINER_FILTERS)
    rows = svc.containers.list(ctx, all_=all, filters=filters, selector=parse_selector(selector),
                               page=page, all_projects=ctx.all_projects)
    owners = {r.id: network_owner(r.spec, r.id) for r in rows} \
        if svc.networks is not None else {}
    nets = svc.networks.states(sorted(set(owners.values()))) if svc.networks else {}
    sizes = diskuse.container_sizes(rows, svc.images, svc.quotas) if size else {}
    return paged(rows, lambda r: views.container(r, nets.get(owners.get(r.id, "")),
                                                 sizes.get(r.id)))


@router.post("/prune")
async def prune(svc: Svc, ctx: Ctx,
                filter: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
    """Remove the project's stopped containers (filters: label=, label!=, until=); answers
    once they are gone, with their ids."""
    rows = await asyncio.to_thread(svc.containers.prunable, ctx,
                                   parse_filters(filter, PRUNE_FILTERS))
    removed = []
    for row in rows:
        try:
            act = await asyncio.to_thread(svc.containers.remove, ctx, row.id)
        except (NotFound, Conflict):  # removed meanwhile, started again, a pod's infra
            continue
        done = await svc.containers.wait_action(ctx, act.id, WAIT_LIMIT)
        if done is not None and done.state == "success":
            removed.append(row.id)
    return {"removed": removed}


@router.get("/{ref}")
def inspect(ref: str, svc: Svc, ctx: Ctx, size: bool = False) -> dict:
    """size=true: with size_rw (its writable layer) and size_root_fs (that and its image)."""
    row = svc.containers.get(ctx, ref)
    owner = network_owner(row.spec, row.id)
    net = svc.networks.states([owner])[owner] if svc.networks is not None else None
    sizes = diskuse.container_sizes([row], svc.images, svc.quotas) if size else {}
    return views.container(row, net, sizes.get(row.id))


@router.get("/{ref}/actions", response_model=list[dict[str, Any]], responses=PAGED)
def actions(ref: str, svc: Svc, ctx: Ctx, page: ActionPage) -> Any:
    """The container's actions log, oldest first (marker: an action id)."""
    return paged(svc.containers.actions(ctx, ref, page), views.action)


@router.get("/{ref}/actions/{action_id}")
async def action(ref: str, action_id: ActionId, svc: Svc, ctx: Ctx, wait: bool = False) -> Any:
    svc.containers.get(ctx, ref)
    act = svc.containers.action(ctx, action_id)
    if wait:
        act = await svc.containers.wait_action(ctx, action_id, WAIT_LIMIT) or act
    return views.action(act)


@router.post("/{ref}/start", responses=ATTACHED)
async def start(ref: str, svc: Svc, ctx: Ctx, wait: bool = False, attach: bool = False) -> Any:
    if attach:  # this run's output only, read from before the start so none is missed
        records = await svc.hostops.logs_from_now(svc.containers.get(ctx, ref).id)
        act = svc.containers.start(ctx, ref)
        await _answer(svc, ctx, act, True)
        return attached_output(svc, ctx, act.container_id, records)
    return await _answer(svc, ctx, svc.containers.start(ctx, ref), wait, ref)


@router.post("/{ref}/stop", responses=QUEUED)
async def stop(ref: str, svc: Svc, ctx: Ctx, timeout: int | None = None,
               signal: str | None = None, wait: bool = False) -> Any:
    return await _answer(svc, ctx, svc.containers.stop(ctx, ref, timeout, signal), wait, ref)


@router.post("/{ref}/restart", responses=QUEUED)
async def restart(ref: str, svc: Svc, ctx: Ctx, timeout: int | None = None,
                  signal: str | None = None, wait: bool = False) -> Any:
    return await _answer(svc, ctx, svc.containers.restart(ctx, ref, timeout, signal), wait,
                         ref)


@router.post("/{ref}/kill", responses=QUEUED)
async def kill(ref: str, svc: Svc, ctx: Ctx, signal: str = "SIGKILL",
               wait: bool = False) -> Any:
    return await _answer(svc, ctx, svc.containers.kill(ctx, ref, signal), wait, ref)


@router.post("/{ref}/pause", responses=QUEUED)
async def pause(ref: str, svc: Svc, ctx: Ctx, wait: bool = False) -> Any:
    return await _answer(svc, ctx, svc.containers.pause(ctx, ref), wait, ref)


@router.post("/{ref}/unpause", responses=QUEUED)
async def unpause(ref: str, svc: Svc, ctx: Ctx, wait: bool = False) -> Any:
    return await _answer(svc, ctx, svc.containers.unpause(ctx, ref), wait, ref)


@router.post("/{ref}/update", responses=QUEUED)
async def update(ref: str, body: ContainerUpdate, svc: Svc, ctx: Ctx,
                 wait: bool = False) -> Any:
    return await _answer(svc, ctx, svc.containers.update(ctx, ref, body), wait, ref)


@router.post("/{ref}/rename")
def rename(ref: str, name: str, svc: Svc, ctx: Ctx) -> dict:
    return views.container(svc.containers.rename(ctx, ref, name))


@router.delete("/{ref}", responses=QUEUED)
async def remove(ref: str, svc: Svc, ctx: Ctx, force: bool = False, volumes: bool = False,
                 wait: bool = False) -> Any:
    return await _answer(svc, ctx, svc.containers.remove(ctx, ref, force, volumes), wait)


@router.post("/{ref}/wait")
@read_only
async def wait_exit(ref: str, svc: Svc, ctx: Ctx, condition: str = "not-running") -> dict:
    result = await svc.containers.wait_exit(ctx, ref, condition)
    return {**result, "exit_code": result["exit_code"] or 0}
