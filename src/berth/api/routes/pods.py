"""/v1/pods: containers sharing one network namespace, held by an infra container."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from berth.api import views
from berth.api.deps import Services, context, services
from berth.api.listing import SelectorParam
from berth.errors import Unsupported
from berth.service.context import Context
from berth.service.filters import parse_filters
from berth.service.pods import POD_FILTERS, PodCreate, PodService, PodView
from berth.service.selectors import parse_selector

router = APIRouter(prefix="/v1/pods", tags=["pods"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
Timeout = Annotated[int | None, Query(ge=-1, le=3600)]


def _pods(svc: Services) -> PodService:
    if svc.pods is None:
        raise Unsupported("this daemon has no pods")
    return svc.pods


def pod_view(svc: Services, pod: PodView, nets: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """``nets``: the infra containers' network states, when the caller read them at once."""
    if nets is None:
        nets = svc.networks.states([pod.infra_id]) if svc.networks else {}
    net = nets.get(pod.infra_id)
    return {
        "id": pod.id, "name": pod.name, "project_id": pod.project_id, "labels": pod.labels,
        "hostname": pod.hostname, "shared": ["net", "uts", *pod.shared],
        "created": views.iso(pod.created_at), "status": pod.status,
        "infra_container_id": pod.infra_id,
        "containers": [asdict(m) for m in pod.members],
        "networks": views.networks(net) if net is not None else {},
        "ports": views.ports(net) if net is not None else [],
    }


@router.post("", status_code=201)
async def create(body: PodCreate, svc: Svc, ctx: Ctx, start: bool = False) -> dict:
    pods = _pods(svc)
    pod = await asyncio.to_thread(pods.create, ctx, body)
    if start:
        pod = await pods.start(ctx, pod.id)
    return pod_view(svc, pod)


@router.get("", response_model=list[dict[str, Any]])
def list_pods(svc: Svc, ctx: Ctx, filter: Annotated[list[str] | None, Query()] = None,
              selector: SelectorParam = None) -> Any:
    filters = parse_filters(filter, POD_FILTERS)
    pods = _pods(svc).list(ctx, filters, parse_selector(selector))
    nets = svc.networks.states([p.infra_id for p in pods]) if svc.networks else {}
    return [pod_view(svc, p, nets) for p in pods]


@router.get("/{ref}")
def inspect(ref: str, svc: Svc, ctx: Ctx) -> dict:
    return pod_view(svc, _pods(svc).get(ctx, ref))


@router.post("/{ref}/start")
async def start(ref: str, svc: Svc, ctx: Ctx) -> dict:
    return pod_view(svc, await _pods(svc).start(ctx, ref))


@router.post("/{ref}/stop")
async def stop(ref: str, svc: Svc, ctx: Ctx, timeout: Timeout = None) -> dict:
    return pod_view(svc, await _pods(svc).stop(ctx, ref, timeout))


@router.post("/{ref}/restart")
async def restart(ref: str, svc: Svc, ctx: Ctx, timeout: Timeout = None) -> dict:
    return pod_view(svc, await _pods(svc).restart(ctx, ref, timeout))


@router.delete("/{ref}")
async def remove(ref: str, svc: Svc, ctx: Ctx, force: bool = False) -> dict:
    return {"id": await _pods(svc).remove(ctx, ref, force)}
