"""/v1/quotas: the caller's project's limits beside its usage; the cloud's admins set them.

The project is the caller's (``X-Berth-Project`` picks another). -1 means unlimited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from berth.api.deps import Services, context, services
from berth.errors import Unsupported
from berth.service.context import Context, Forbidden
from berth.service.quotas import MAX_LIMIT, QuotaService

router = APIRouter(prefix="/v1/quotas", tags=["quotas"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]


def _limit(resource: str, what: str) -> object:
    return Field(None, ge=-1, le=MAX_LIMIT[resource], description=f"{what}; -1: unlimited")


class QuotaUpdate(BaseModel):
    """New limits; a resource left out keeps its limit."""

    model_config = ConfigDict(extra="forbid")

    containers: StrictInt | None = _limit("containers", "how many containers")
    vcpus: StrictInt | None = _limit("vcpus", "the sum of the containers' CPUs (a container "
                                     "without a CPU limit counts 1)")
    memory: StrictInt | None = _limit("memory", "bytes: the sum of the containers' memory "
                                      "limits (every container must then set one)")
    disk: StrictInt | None = _limit("disk", "bytes of writable layers and volumes, measured "
                                    "on the host at each create (not reserved)")
    volumes: StrictInt | None = _limit("volumes", "how many volumes")
    images: StrictInt | None = _limit("images", "bytes: the sum of the project's image sizes")


class QuotaUse(BaseModel):
    limit: int = Field(description="-1: unlimited")
    in_use: int | float = Field(description="bytes, a count, or CPUs (vcpus)")


def _quotas(svc: Services) -> QuotaService:
    if svc.quotas is None:
        raise Unsupported("this daemon keeps no quotas")
    return svc.quotas


@router.get("")
def get_quotas(svc: Svc, ctx: Ctx) -> dict[str, QuotaUse]:
    return {k: QuotaUse(**v) for k, v in _quotas(svc).report(ctx.project_id).items()}


@router.put("")
def set_quotas(body: QuotaUpdate, svc: Svc, ctx: Ctx) -> dict[str, QuotaUse]:
    if not ctx.is_admin:
        raise Forbidden("only the cloud's admins set quotas")
    quotas = _quotas(svc)
    quotas.set_limits(ctx.project_id, body.model_dump(exclude_none=True))
    return {k: QuotaUse(**v) for k, v in quotas.report(ctx.project_id).items()}
