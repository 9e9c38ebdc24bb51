"""/v1/services: a name, a label selector and ports; a virtual IP over the ready backends."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from berth.api import views
from berth.api.deps import Services, context, services
from berth.api.listing import SelectorParam
from berth.errors import Unsupported
from berth.service.context import Context
from berth.service.filters import parse_filters
from berth.service.selectors import parse_selector
from berth.service.vips import SERVICE_FILTERS, ServiceCreate, ServiceView, VipServices

router = APIRouter(prefix="/v1/services", tags=["services"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]


def _vips(svc: Services) -> VipServices:
    if svc.vips is None:
        raise Unsupported("this daemon has no services")
    return svc.vips


def service_view(view: ServiceView) -> dict[str, Any]:
    return {"id": view.id, "name": view.name, "project_id": view.project_id,
            "selector": view.selector, "ports": view.ports, "vip": view.vip,
            "labels": view.labels, "created": views.iso(view.created_at),
            "backends": [asdict(b) for b in view.backends]}


@router.post("", status_code=201)
def create(body: ServiceCreate, svc: Svc, ctx: Ctx) -> dict:
    return service_view(_vips(svc).create(ctx, body))


@router.get("", response_model=list[dict[str, Any]])
def list_services(svc: Svc, ctx: Ctx, filter: Annotated[list[str] | None, Query()] = None,
                  selector: SelectorParam = None) -> Any:
    filters = parse_filters(filter, SERVICE_FILTERS)
    return [service_view(v) for v in _vips(svc).list(ctx, filters, parse_selector(selector))]


@router.get("/{ref}")
def inspect(ref: str, svc: Svc, ctx: Ctx) -> dict:
    return service_view(_vips(svc).get(ctx, ref))


@router.delete("/{ref}")
def remove(ref: str, svc: Svc, ctx: Ctx) -> dict:
    return {"id": _vips(svc).remove(ctx, ref)}
