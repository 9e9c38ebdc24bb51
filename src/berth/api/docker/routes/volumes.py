"""Volumes: create, list, inspect, remove, prune (local driver only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from berth.api.docker.routes.common import Ctx, Svc, parse_filters, read_json, truthy
from berth.api.errors import validation_message
from berth.api.views import iso
from berth.errors import Conflict, InvalidArgument, NotFound
from berth.service.context import Context
from berth.service.filters import bool_filter
from berth.service.specs import VolumeCreate
from berth.store.models import Volume

router = APIRouter()
LIST_FILTERS = {"name", "label", "dangling", "driver"}
CREATE_FIELDS = {"Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec"}


def volume_shape(svc: Any, ctx: Context, vol: Volume) -> dict[str, Any]:
    # The data directory is a host path: the cloud's admins see it, members do not.
    mountpoint = str(svc.volumes.data_dir(vol.project_id, vol.name)) if ctx.is_admin else ""
    return {"Name": vol.name, "Driver": vol.driver, "Mountpoint": mountpoint,
            "CreatedAt": iso(vol.created_at), "Labels": dict(vol.labels or {}),
            "Scope": "local", "Options": dict(vol.options) if vol.options else None}


@router.post("/volumes/create", status_code=201)
async def create(request: Request, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    body = await read_json(request, required=False)
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field: {unknown[0]}")
    if body.get("Driver") not in (None, "", "local"):
        raise InvalidArgument(f"volume driver {body['Driver']!r} is not supported: only "
                              "'local'")
    if body.get("ClusterVolumeSpec"):
        raise InvalidArgument("cluster volumes are not supported")
    try:
        req = VolumeCreate(name=body.get("Name") or None, labels=body.get("Labels") or {},
                           options=body.get("DriverOpts") or {})
    except ValidationError as e:
        raise InvalidArgument(validation_message(list(e.errors()))) from None
    return volume_shape(svc, ctx, svc.volumes.create(ctx, req))


@router.get("/volumes")
def list_volumes(svc: Svc, ctx: Ctx, filters: str | None = None) -> dict[str, Any]:
    wanted = parse_filters(filters)
    unknown = sorted(set(wanted) - LIST_FILTERS)
    if unknown:
        raise InvalidArgument(f"invalid filter {unknown[0]!r}: use "
                              f"{', '.join(sorted(LIST_FILTERS))}")
    dangling = bool_filter("dangling", wanted["dangling"]) if "dangling" in wanted else None
    vols = svc.volumes.list(ctx, {k: v for k, v in wanted.items() if k in ("name", "label")})
    out = []
    for vol in vols:
        if "driver" in wanted and vol.driver not in wanted["driver"]:
            continue
        if dangling is not None and (not svc.volumes.users(ctx, vol.name)) != dangling:
            continue
        out.append(volume_shape(svc, ctx, vol))
    return {"Volumes": out, "Warnings": []}


@router.get("/volumes/{name}")
def inspect(name: str, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    return volume_shape(svc, ctx, svc.volumes.get(ctx, name))


@router.delete("/volumes/{name}", status_code=204)
def remove(name: str, svc: Svc, ctx: Ctx, force: str | None = None) -> Response:
    try:
        svc.volumes.get(ctx, name)
    except NotFound:
        if truthy(force):  # docker volume rm -f: a missing volume is no error
            return Response(status_code=204)
        raise
    users = svc.volumes.user_ids(ctx, name)
    if users:
        raise Conflict(f"remove {name}: volume is in use - [{', '.join(i for i, _ in users)}]")
    svc.volumes.remove(ctx, name)
    return Response(status_code=204)


@router.post("/volumes/prune")
def prune(svc: Svc, ctx: Ctx, filters: str | None = None) -> dict[str, Any]:
    wanted = parse_filters(filters)
    if "all" in wanted:  # API 1.42's "all": 1.41 always prunes named volumes too
        wanted.pop("all")
    sizes = {vol.name: svc.volumes.size(vol) for vol in svc.volumes.list(ctx)}
    removed = svc.volumes.prune(ctx, wanted)
    return {"VolumesDeleted": removed, "SpaceReclaimed": sum(sizes.get(n, 0) for n in removed)}
