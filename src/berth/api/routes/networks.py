"""/v1/networks: the project's bridge networks (and its predefined bridge, host and none), and
the containers on them. The same NetworkService as the Docker API's /networks, native shapes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from berth.api import views
from berth.api.deps import Services, context, services
from berth.api.listing import SelectorParam
from berth.errors import Unsupported
from berth.service.context import Context
from berth.service.filters import parse_filters
from berth.service.networks import NETWORK_FILTERS, NetworkCreate, NetworkService, NetworkView
from berth.service.selectors import parse_selector

router = APIRouter(prefix="/v1/networks", tags=["networks"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
Filters = Annotated[list[str] | None, Query()]
PRUNE_FILTERS = {"label", "label!", "until"}


class NetworkConnect(BaseModel):
    """POST /v1/networks/{ref}/connect."""

    model_config = ConfigDict(extra="forbid")

    container: str = Field(min_length=1, max_length=128)
    aliases: list[str] = Field(default_factory=list, max_length=64)
    ip: str | None = Field(None, max_length=64)  # None: the next free address


class NetworkDisconnect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    container: str = Field(min_length=1, max_length=128)


def _networks(svc: Services) -> NetworkService:
    if svc.networks is None:
        raise Unsupported("this daemon keeps no networks")
    return svc.networks


def network_view(svc: Services, ctx: Context, net: NetworkView, *,
                 containers: bool) -> dict[str, Any]:
    """``containers``: list the members too (inspect; a list would read every container)."""
    pools = (net.ipam or {}).get("config") or [{}]
    out: dict[str, Any] = {
        "id": net.id, "name": net.name, "driver": net.driver, "project_id": net.project_id,
        "labels": dict(net.labels), "options": dict(net.options), "internal": net.internal,
        "subnet": net.subnet, "gateway": net.gateway, "ip_range": pools[0].get("ip_range"),
        "mtu": net.mtu, "created": views.iso(net.created_at), "predefined": net.predefined,
    }
    if containers:
        nets = _networks(svc)
        rows = nets.members(ctx, net)
        states = nets.states([r.id for r, _ in rows])
        members = []
        for row, aliases in rows:
            state = states.get(row.id)
            at = next((a for a in state.attachments if a.network_id == net.id), None) \
                if state is not None else None
            members.append({"id": row.id, "name": row.name, "aliases": aliases,
                            "address": at.address if at else None})
        out["containers"] = members
    return out


@router.post("", status_code=201)
def create(body: NetworkCreate, svc: Svc, ctx: Ctx) -> dict:
    return network_view(svc, ctx, _networks(svc).create(ctx, body), containers=True)


@router.get("", response_model=list[dict[str, Any]])
def list_networks(svc: Svc, ctx: Ctx, filter: Filters = None,
                  selector: SelectorParam = None) -> Any:
    """Predefined first, then by name; filter: name, id, label, driver, type
    (custom|builtin), dangling, scope; selector: the networks' labels."""
    sel = parse_selector(selector)
    nets = _networks(svc).list(ctx, parse_filters(filter, NETWORK_FILTERS))
    return [network_view(svc, ctx, n, containers=False) for n in nets if sel.matches(n.labels)]


@router.post("/prune")
def prune(svc: Svc, ctx: Ctx, filter: Filters = None) -> dict:
    """Remove the custom networks no container names; filter: label, label!, until."""
    return {"removed": _networks(svc).prune(ctx, parse_filters(filter, PRUNE_FILTERS))}


@router.get("/{ref}")
def inspect(ref: str, svc: Svc, ctx: Ctx) -> dict:
    return network_view(svc, ctx, _networks(svc).get(ctx, ref), containers=True)


@router.delete("/{ref}", status_code=204)
def remove(ref: str, svc: Svc, ctx: Ctx) -> None:
    _networks(svc).remove(ctx, ref)


@router.post("/{ref}/connect")
async def connect(ref: str, body: NetworkConnect, svc: Svc, ctx: Ctx) -> dict:
    """Answered once the host has followed: a running container's interface is up."""
    row = await asyncio.to_thread(svc.containers.get, ctx, body.container)
    net, applied = await asyncio.to_thread(_networks(svc).connect, ctx, ref, row,
                                           body.aliases, body.ip)
    await svc.hub.applied(applied)
    return await asyncio.to_thread(network_view, svc, ctx, net, containers=True)


@router.post("/{ref}/disconnect")
async def disconnect(ref: str, body: NetworkDisconnect, svc: Svc, ctx: Ctx) -> dict:
    row = await asyncio.to_thread(svc.containers.get, ctx, body.container)
    net, applied = await asyncio.to_thread(_networks(svc).disconnect, ctx, ref, row)
    await svc.hub.applied(applied)
    return await asyncio.to_thread(network_view, svc, ctx, net, containers=True)
