"""/v1/volumes: named volumes that outlive the containers that use them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from berth.api import views
from berth.api.deps import Services, context, services
from berth.api.listing import PAGED, SelectorParam, paged, paging
from berth.service.context import Context
from berth.service.filters import parse_filters
from berth.service.paging import PageRequest
from berth.service.selectors import parse_selector
from berth.service.specs import VolumeCreate
from berth.service.volumes import VOLUME_SORT
from berth.store.models import Volume

router = APIRouter(prefix="/v1/volumes", tags=["volumes"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
Page = Annotated[PageRequest, Depends(paging(VOLUME_SORT))]


def _view(svc: Services, vol: Volume) -> dict:
    return views.volume(vol, str(svc.volumes.data_dir(vol.project_id, vol.name)))


@router.post("", status_code=201)
def create(body: VolumeCreate, svc: Svc, ctx: Ctx) -> dict:
    return _view(svc, svc.volumes.create(ctx, body))


@router.get("", response_model=list[dict[str, Any]], responses=PAGED)
def list_volumes(svc: Svc, ctx: Ctx, page: Page,
                 filter: Annotated[list[str] | None, Query()] = None,
                 selector: SelectorParam = None, all_projects: bool = False) -> Any:
    """By name; all_projects=true (admins): every project's, each showing its project_id
    (the marker is then "project/name")."""
    filters = parse_filters(filter, {"label", "name"})
    vols = svc.volumes.list(ctx, filters, selector=parse_selector(selector), page=page,
                            all_projects=ctx.all_projects)
    return paged(vols, lambda v: _view(svc, v))


@router.get("/{name}")
def inspect(name: str, svc: Svc, ctx: Ctx) -> dict:
    return _view(svc, svc.volumes.get(ctx, name))


@router.delete("/{name}", status_code=204)
def remove(name: str, svc: Svc, ctx: Ctx) -> None:
    svc.volumes.remove(ctx, name)


@router.post("/prune")
def prune(svc: Svc, ctx: Ctx, filter: Annotated[list[str] | None, Query()] = None) -> dict:
    """Remove the volumes no container uses (filter: label=K[=V], label!=K[=V])."""
    return {"removed": svc.volumes.prune(ctx, parse_filters(filter, {"label", "label!"}))}
