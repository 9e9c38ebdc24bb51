"""/v1/hosts: the hosts that run containers (one, until clusters), for the cloud's admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from berth.api.deps import Services, context, services
from berth.errors import NotFound
from berth.service.context import Context, Forbidden

router = APIRouter(prefix="/v1/hosts", tags=["hosts"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]


def _host(svc: Services) -> dict[str, Any]:
    info = svc.info
    return {"name": svc.host, "runtime": info.get("runtime"), "version": info.get("version"),
            "capabilities": info.get("capabilities", []), "store": info.get("store"),
            "userns_base": info.get("userns_base"),
            "containers": svc.containers.host_count(svc.host), "state": "up"}


def _admin(ctx: Context) -> None:
    if not ctx.is_admin:
        raise Forbidden("hosts are for the cloud's admins")


@router.get("")
def list_hosts(svc: Svc, ctx: Ctx) -> list[dict[str, Any]]:
    _admin(ctx)
    return [_host(svc)]


@router.get("/{name}")
def get_host(name: str, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    _admin(ctx)
    if name != svc.host:
        raise NotFound(f"no such host: {name}")
    return _host(svc)
