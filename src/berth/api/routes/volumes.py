"""/v1/volumes: named volumes that outlive the containers that use them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from berth.api import views
from berth.api.deps import Services, context, services
from berth.service.context import Context
from berth.service.filters import parse_filters
from berth.service.specs import VolumeCreate
from berth.store.models import Volume

router = APIRouter(prefix="/v1/volumes", tags=["volumes"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]


def _view(svc: Services, vol: Volume) -> dict:
    return views.volume(vol, str(svc.volumes.data_dir(vol.project_id, vol.name)))


@router.post("", status_code=201)
def create(body: VolumeCreate, svc: Svc, ctx: Ctx) -> dict:
    return _view(svc, svc.volumes.create(ctx, body))


@router.get("")
def list_volumes(svc: Svc, ctx: Ctx,
                 filter: Annotated[list[str] | None, Query()] = None) -> list[dict]:
    filters = parse_filters(filter, {"label", "name"})
    return [_view(svc, v) for v in svc.volumes.list(ctx, filters)]


@router.get("/{name}")
def inspect(name: str, svc: Svc, ctx: Ctx) -> dict:
    return _view(svc, svc.volumes.get(ctx, name))


@router.delete("/{name}", status_code=204)
def remove(name: str, svc: Svc, ctx: Ctx) -> None:
    svc.volumes.remove(ctx, name)


@router.post("/prune")
def prune(svc: Svc, ctx: Ctx) -> dict:
    return {"removed": svc.volumes.prune(ctx)}
