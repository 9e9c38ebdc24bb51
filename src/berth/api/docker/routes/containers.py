"""Containers: create, list, inspect and the lifecycle, Docker's way (synchronous answers).

A thin layer: the body goes through api/docker/translate.py to the service's request, the
answer through api/docker/shapes.py to Docker's shape; the service does the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from berth.api.auth import read_only
from berth.api.deps import Services
from berth.api.docker import shapes, translate
from berth.api.docker.routes.common import Ctx, Svc, finish, parse_filters, read_json, truthy
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from berth.service import diskuse
from berth.service.containers import CONTAINER_FILTERS
from berth.service.context import Context
from berth.service.specs import ContainerCreate
from berth.store.models import Container

router = APIRouter()
T = TypeVar("T")
LIVE = ("running", "paused", "restarting")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def _no_such_container(e: NotFound, ref: str) -> NotFound:
    if e.message.lower().startswith("no such container"):
        return NotFound(f"No such container: {ref}")
    return e


async def _call(ref: str, fn: Callable[..., T], *args: Any) -> T:
    """A service call off the event loop; its not-found phrased as Docker's clients expect."""
    try:
        return await asyncio.to_thread(fn, *args)
    except NotFound as e:
        raise _no_such_container(e, ref) from None


def _image_configs(svc: Services, ctx: Context) -> Callable[[str], dict[str, Any]]:
    """The image config of an image id, looked up once (empty if the image is gone)."""
    cache: dict[str, dict[str, Any]] = {}

    def config_of(image_id: str) -> dict[str, Any]:
        if image_id not in cache:
            try:
                cache[image_id] = svc.images.resolve(ctx, image_id).config or {}
            except (NotFound, InvalidArgument):
                cache[image_id] = {}
        return cache[image_id]

    return config_of


# -- create ----------------------------------------------------------------------------------


@router.post("/containers/create", status_code=201)
async def create(request: Request, svc: Svc, ctx: Ctx, name: str | None = None,
                 platform: str | None = None) -> Any:
    body = await read_json(request)
    if platform and not platform.startswith("linux"):
        raise InvalidArgument(f"platform {platform!r} is not supported: Berth runs linux")
    req = translate.container_create(body, name)
    req = await _check_networks(svc, ctx, req)
    try:
        await asyncio.to_thread(svc.images.resolve, ctx, req.image)
    except NotFound:  # the CLI pulls on a 404 and tries again
        raise NotFound(f"No such image: {translate.image_ref_for_message(req.image)}") from None
    try:
        row, act = await asyncio.to_thread(svc.containers.create, ctx, req)
    except Conflict as e:
        if req.name and "already in use" in e.message:
            raise await _name_conflict(svc, ctx, req.name) from None
        raise
    await finish(svc, ctx, act)
    return JSONResponse({"Id": row.id, "Warnings": []}, status_code=201)


async def _name_conflict(svc: Services, ctx: Context, name: str) -> Conflict:
    try:
        other = (await asyncio.to_thread(svc.containers.get, ctx, name)).id
    except NotFound:
        other = "(being removed)"
    return Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{other}". You have to remove (or rename) that container to be able to '
                    "reuse that name.")


async def _check_networks(svc: Services, ctx: Context, req: ContainerCreate) -> ContainerCreate:
    """A user-defined network must exist (once Berth has them); it is recorded by name."""
    networks = getattr(svc, "networks", None)
    if networks is None or not req.networks:
        return req
    named: dict[str, list[str]] = {}
    for key, aliases in req.networks.items():
        if key not in translate.BUILTIN_NETWORKS:
            try:
                net = await asyncio.to_thread(networks.get, ctx, key)
            except NotFound as e:
                # Not a 404: the docker CLI takes any 404 from create for a missing image,
                # pulls it and tries again.
                raise InvalidArgument(e.message) from None
            key = getattr(net, "name", None) or key
        named[key] = aliases
    return req.model_copy(update={"networks": named})


# -- list and inspect ------------------------------------------------------------------------


@router.get("/containers/json")
async def list_containers(svc: Svc, ctx: Ctx, all: str | None = None, limit: int | None = None,
                          size: str | None = None, filters: str | None = None) -> Any:
    wanted = parse_filters(filters)
    unknown = set(wanted) - CONTAINER_FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    show_all = truthy(all) or (limit is not None and limit > 0)
    rows = await asyncio.to_thread(_select, svc, ctx, show_all, wanted)
    if limit is not None and limit > 0:
        rows = rows[:limit]
    config_of = _image_configs(svc, ctx)
    now = time.time()

    def shape() -> list[dict[str, Any]]:
        nets = svc.networks.states([r.id for r in rows]) if svc.networks else {}
        sizes = diskuse.container_sizes(rows, svc.images, svc.quotas) if truthy(size) else {}
        return [shapes.summary(row, config_of(row.image_id), now, nets.get(row.id))
                | _size_fields(sizes.get(row.id)) for row in rows]

    return await asyncio.to_thread(shape)


def _select(svc: Services, ctx: Context, show_all: bool,
            wanted: dict[str, list[str]]) -> list[Container]:
    service_filters = {k: list(v) for k, v in wanted.items()}
    for status in wanted.get("status", []):
        if status not in STATUSES:
            raise InvalidArgument(f"invalid filter 'status={status}'")
    if "created" in wanted.get("status", []):
        service_filters["status"].append("creating")
    if "ancestor" in wanted:  # a name or a short id: also the image id it names
        for ref in wanted["ancestor"]:
            with contextlib.suppress(NotFound, InvalidArgument):
                service_filters["ancestor"].append(svc.images.resolve(ctx, ref).id)
    try:
        return list(svc.containers.list(ctx, all_=show_all, filters=service_filters))
    except NotFound as e:  # before= or since= a container that is not there
        ref = e.message.partition(": ")[2]
        raise _no_such_container(e, ref) from None


@router.get("/containers/{ref}/json")
async def inspect(ref: str, svc: Svc, ctx: Ctx, size: str | None = None) -> Any:
    row = await _call(ref, svc.containers.get, ctx, ref)
    config = await asyncio.to_thread(_image_configs(svc, ctx), row.image_id)
    ids = await asyncio.to_thread(_network_ids, svc, ctx, list(shapes.networks(row.spec)))
    nets = await asyncio.to_thread(svc.networks.states, [row.id]) if svc.networks else {}
    sizes = await asyncio.to_thread(diskuse.container_sizes, [row], svc.images, svc.quotas) \
        if truthy(size) else {}
    return shapes.inspect(row, config, ids, nets.get(row.id)) | _size_fields(sizes.get(row.id))


def _size_fields(size: tuple[int, int] | None) -> dict[str, int]:
    """size=1: SizeRw (the writable layer) and SizeRootFs (that and the image), as docker's."""
    return {} if size is None else {"SizeRw": size[0], "SizeRootFs": size[1]}


def _network_ids(svc: Services, ctx: Context, names: list[str]) -> dict[str, str]:
    """The ids of the networks Berth records (once it records them), by name."""
    networks = getattr(svc, "networks", None)
    found: dict[str, str] = {}
    for name in names if networks is not None else []:
        with contextlib.suppress(BerthError):
            found[name] = getattr(networks.get(ctx, name), "id", "") or ""
    return found


# -- lifecycle -------------------------------------------------------------------------------


@router.post("/containers/{ref}/start", status_code=204)
async def start(ref: str, request: Request, svc: Svc, ctx: Ctx) -> Response:
    body = await read_json(request, required=False)
    if any(not translate.is_zero(v) for v in body.values()):
        raise InvalidArgument("start takes no HostConfig since API 1.24: give it at create")
    await finish(svc, ctx, await _call(ref, svc.containers.start, ctx, ref))
    return Response(status_code=204)


@router.post("/containers/{ref}/stop", status_code=204)
async def stop(ref: str, svc: Svc, ctx: Ctx, t: int | None = None,
               signal: str | None = None) -> Response:
    await finish(svc, ctx, await _call(ref, svc.containers.stop, ctx, ref, t, signal))
    return Response(status_code=204)


@router.post("/containers/{ref}/restart", status_code=204)
async def restart(ref: str, svc: Svc, ctx: Ctx, t: int | None = None,
                  signal: str | None = None) -> Response:
    await finish(svc, ctx, await _call(ref, svc.containers.restart, ctx, ref, t, signal))
    return Response(status_code=204)


@router.post("/containers/{ref}/kill", status_code=204)
async def kill(ref: str, svc: Svc, ctx: Ctx, signal: str = "SIGKILL") -> Response:
    act = await _call(ref, svc.containers.kill, ctx, ref, signal or "SIGKILL")
    await finish(svc, ctx, act)
    return Response(status_code=204)


@router.post("/containers/{ref}/pause", status_code=204)
async def pause(ref: str, svc: Svc, ctx: Ctx) -> Response:
    await finish(svc, ctx, await _call(ref, svc.containers.pause, ctx, ref))
    return Response(status_code=204)


@router.post("/containers/{ref}/unpause", status_code=204)
async def unpause(ref: str, svc: Svc, ctx: Ctx) -> Response:
    await finish(svc, ctx, await _call(ref, svc.containers.unpause, ctx, ref))
    return Response(status_code=204)


@router.post("/containers/{ref}/rename", status_code=204)
async def rename(ref: str, svc: Svc, ctx: Ctx, name: str = "") -> Response:
    if not name:
        raise InvalidArgument("name: required (the container's new name)")
    try:
        await _call(ref, svc.containers.rename, ctx, ref, name)
    except Conflict as e:
        if "already in use" in e.message:
            raise await _name_conflict(svc, ctx, name.lstrip("/")) from None
        raise
    return Response(status_code=204)


@router.post("/containers/{ref}/update")
async def update(ref: str, request: Request, svc: Svc, ctx: Ctx) -> Any:
    req = translate.container_update(await read_json(request))
    await finish(svc, ctx, await _call(ref, svc.containers.update, ctx, ref, req))
    return {"Warnings": []}


@router.delete("/containers/{ref}", status_code=204)
async def remove(ref: str, svc: Svc, ctx: Ctx, force: str | None = None, v: str | None = None,
                 link: str | None = None) -> Response:
    if truthy(link):
        raise InvalidArgument("link: links are not supported by Berth")
    row = await _call(ref, svc.containers.get, ctx, ref)
    if row.status in LIVE and not truthy(force):
        raise Conflict(f"You cannot remove a running container {row.id}. Stop the container "
                       "before attempting removal or force remove")
    act = await _call(ref, svc.containers.remove, ctx, row.id, truthy(force), truthy(v))
    await finish(svc, ctx, act)
    return Response(status_code=204)


@router.post("/containers/{ref}/wait")
@read_only
async def wait(ref: str, svc: Svc, ctx: Ctx, condition: str = "not-running") -> Response:
    """Docker answers the headers at once and the exit when it comes: the CLI's attached
    ``run`` waits (next-exit) before it starts the container."""
    task = asyncio.create_task(svc.containers.wait_exit(ctx, ref, condition or "not-running"))
    await asyncio.sleep(0)  # the waiter takes its snapshot of the container now
    if task.done():
        try:
            result = task.result()
        except NotFound as e:
            raise _no_such_container(e, ref) from None
        return JSONResponse(_wait_body(result))

    async def body() -> AsyncIterator[bytes]:
        try:
            result = await task
        finally:
            task.cancel()
        yield json.dumps(_wait_body(result)).encode() + b"\n"

    return StreamingResponse(body(), media_type="application/json")


def _wait_body(result: dict[str, Any] | None) -> dict[str, Any]:
    if result is None:
        return {"StatusCode": -1, "Error": {"Message": "the wait ended before the exit"}}
    return {"StatusCode": result.get("exit_code") or 0, "Error": None}


# -- prune -----------------------------------------------------------------------------------


@router.post("/containers/prune")
async def prune(svc: Svc, ctx: Ctx, filters: str | None = None) -> Any:
    rows = await asyncio.to_thread(svc.containers.prunable, ctx, parse_filters(filters))
    deleted = []
    for row in rows:
        try:
            await finish(svc, ctx, await _call(row.id, svc.containers.remove, ctx, row.id))
        except (NotFound, Conflict):  # removed meanwhile, started again, a pod's infra
            continue
        deleted.append(row.id)
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": 0}
