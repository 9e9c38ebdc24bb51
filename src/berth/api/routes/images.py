"""/v1/images: import an archive, build the offline base, tag, list, inspect, remove."""

from __future__ import annotations

import asyncio
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from berth.api import views
from berth.api.deps import Services, context, services
from berth.errors import InvalidArgument
from berth.service.context import Context
from berth.service.filters import parse_filters
from berth.service.images import IMAGE_FILTERS

router = APIRouter(prefix="/v1/images", tags=["images"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
MAX_ARCHIVE = 64 * 1024**3


class BuildBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = "busybox"
    tag: str | None = None


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str


@router.get("")
def list_images(svc: Svc, ctx: Ctx,
                filter: Annotated[list[str] | None, Query()] = None) -> list[dict]:
    filters = parse_filters(filter, IMAGE_FILTERS)
    return [views.image(img, tags) for img, tags in svc.images.list(ctx, filters)]


@router.post("/import", status_code=201)
async def import_archive(request: Request, svc: Svc, ctx: Ctx) -> list[dict]:
    """The body is a docker-archive or OCI-layout tarball (optionally gzip'd)."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024,  # noqa: SIM115
                                          dir=svc.info["tmp"])
    try:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > MAX_ARCHIVE:
                raise InvalidArgument("archive larger than 64 GiB")
            await asyncio.to_thread(spool.write, chunk)
        if total == 0:
            raise InvalidArgument("empty body: send a docker-archive or OCI layout tarball")
        spool.seek(0)
        imported = await asyncio.to_thread(svc.images.import_archive, ctx, spool)
    finally:
        spool.close()
    return [views.image(img, tags) for img, tags in imported]


@router.post("/build-base", status_code=201)
async def build_base(body: BuildBase, svc: Svc, ctx: Ctx) -> dict:
    img = await asyncio.to_thread(svc.images.build_base, ctx, body.kind, body.tag)
    return views.image(img, svc.images.tags_of(ctx, img.id))


@router.get("/{ref:path}/json")
def inspect(ref: str, svc: Svc, ctx: Ctx) -> dict:
    img = svc.images.resolve(ctx, ref)
    return views.image(img, svc.images.tags_of(ctx, img.id))


@router.post("/{ref:path}/tag", status_code=201)
def tag(ref: str, body: TagRequest, svc: Svc, ctx: Ctx) -> dict:
    svc.images.tag(ctx, ref, body.tag)
    img = svc.images.resolve(ctx, body.tag)
    return views.image(img, svc.images.tags_of(ctx, img.id))


@router.delete("/{ref:path}")
def remove(ref: str, svc: Svc, ctx: Ctx, force: bool = False) -> list[dict[str, Any]]:
    return [{"result": line} for line in svc.images.remove(ctx, ref, force)]
