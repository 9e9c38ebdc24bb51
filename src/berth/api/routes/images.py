"""/v1/images: list, inspect, history, tag, untag, remove, prune, import, save, commit, and
the offline base image. Registry work (pull, push, sign) is in routes/registries.py."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, BinaryIO, Literal, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from berth.api import views
from berth.api.deps import Services, context, services
from berth.api.listing import PAGED, SelectorParam, paged, paging
from berth.api.spool import spool_body
from berth.errors import InvalidArgument
from berth.service.context import Context
from berth.service.filters import parse_filters
from berth.service.images import IMAGE_FILTERS, IMAGE_PRUNE_FILTERS, IMAGE_SORT
from berth.service.paging import PageRequest
from berth.service.selectors import parse_selector
from berth.store.models import Image

router = APIRouter(prefix="/v1/images", tags=["images"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
MAX_ARCHIVE = 64 * 1024**3
Page = Annotated[PageRequest, Depends(paging(IMAGE_SORT))]


class BuildBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = "busybox"
    tag: str | None = None


class CommitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    container: str = Field(min_length=1, max_length=128)
    reference: str | None = Field(default=None, max_length=512)
    changes: list[str] = Field(default_factory=list, max_length=100)
    message: str = Field(default="", max_length=4096)
    author: str = Field(default="", max_length=512)
    pause: bool = True


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str


@router.get("", response_model=list[dict[str, Any]], responses=PAGED)
def list_images(svc: Svc, ctx: Ctx, page: Page,
                filter: Annotated[list[str] | None, Query()] = None,
                selector: SelectorParam = None, all_projects: bool = False,
                all: bool = False) -> Any:
    """Newest first; all_projects=true (admins): every project's, each showing its
    project_id (the marker is then "project/id"); all=true: build steps' results too (build
    cache, hidden otherwise)."""
    filters = parse_filters(filter, IMAGE_FILTERS)
    items = svc.images.list(ctx, filters, selector=parse_selector(selector), page=page,
                            all_projects=ctx.all_projects, intermediate=all)
    return paged(items, lambda item: views.image(*item))


@router.post("/import", status_code=201)
async def import_tarball(request: Request, svc: Svc, ctx: Ctx,
                         format: Literal["auto", "archive", "rootfs"] = "auto",
                         reference: Annotated[str | None, Query(max_length=512)] = None,
                         change: Annotated[list[str] | None, Query()] = None,
                         message: Annotated[str, Query(max_length=4096)] = "") -> list[dict]:
    """The body is a docker-archive or OCI-layout tarball, whose images are imported, or a
    root filesystem tarball (``docker import``), which becomes a one-layer image named
    ``reference``, with ``change`` applied to its config; optionally gzip'd. auto: an
    archive if a manifest.json or index.json is at the tarball's top."""
    changes = change or []
    if len(changes) > 100 or any(len(c) > 4096 for c in changes):
        raise InvalidArgument("change: at most 100 changes of up to 4096 characters each")
    spool = await spool_body(request, svc.info["tmp"], limit=MAX_ARCHIVE,
                             too_large="tarball larger than 64 GiB",
                             empty="empty body: send an image archive or a root filesystem "
                                   "tarball")
    try:
        imported = await asyncio.to_thread(_import, svc, ctx, cast(BinaryIO, spool), format,
                                           reference, changes, message)
    finally:
        spool.close()
    return [views.image(img, tags) for img, tags in imported]


def _import(svc: Services, ctx: Context, spool: BinaryIO, format: str, reference: str | None,
            changes: list[str], message: str) -> list[tuple[Image, list[str]]]:
    from berth.image.archive import holds_images
    from berth.service.rootfs import import_rootfs

    if format == "auto":
        format = "archive" if holds_images(spool) else "rootfs"
        spool.seek(0)
    if format == "archive":
        if reference or changes or message:
            raise InvalidArgument("an image archive names and configures its own images: a "
                                  "reference, changes and a message apply to a root "
                                  "filesystem tarball")
        return svc.images.import_archive(ctx, spool)
    img = import_rootfs(svc.images, ctx, spool, reference, changes, message)
    return [(img, svc.images.tags_of(ctx, img.id))]


@router.post("/build-base", status_code=201)
async def build_base(body: BuildBase, svc: Svc, ctx: Ctx) -> dict:
    img = await asyncio.to_thread(svc.images.build_base, ctx, body.kind, body.tag)
    return views.image(img, svc.images.tags_of(ctx, img.id))


@router.get("/save", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-tar": {}}}})
def save(svc: Svc, ctx: Ctx, ref: Annotated[list[str], Query(min_length=1)],
         format: str = "docker-archive") -> StreamingResponse:
    """Several images in one docker-archive (``docker save``) or OCI-layout archive."""
    chunks = svc.images.save(ctx, ref, format)
    return StreamingResponse(chunks, media_type="application/x-tar")


@router.post("/commit", status_code=201)
async def commit(body: CommitRequest, svc: Svc, ctx: Ctx) -> dict:
    img = await asyncio.to_thread(svc.commits.commit, ctx, body)
    return views.image(img, svc.images.tags_of(ctx, img.id))


@router.post("/prune")
def prune(svc: Svc, ctx: Ctx, all: bool = False,
          filter: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
    """Drop dangling images (all=true: every image no container uses; filter: until=24h,
    label=K[=V], label!=K[=V]), then collect the host's blobs and layers that no image of any
    project needs any more. Build steps' results are build cache: POST /v1/build/prune."""
    return svc.images.prune(ctx, all, parse_filters(filter, IMAGE_PRUNE_FILTERS))


@router.get("/{ref:path}/history")
def history(ref: str, svc: Svc, ctx: Ctx) -> list[dict[str, Any]]:
    return svc.images.history(ctx, ref)


@router.post("/{ref:path}/untag")
def untag(ref: str, svc: Svc, ctx: Ctx) -> dict[str, str]:
    return {"untagged": svc.images.untag(ctx, ref)}


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
