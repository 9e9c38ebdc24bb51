"""A container's files: ``docker cp`` both ways, ``docker export``, ``docker diff``."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from berth.api.docker.routes.common import Ctx, Svc, truthy
from berth.errors import Unsupported
from berth.service.containerfs import ContainerFiles

router = APIRouter()
STAT_HEADER = "X-Docker-Container-Path-Stat"


def _files(svc: Any) -> ContainerFiles:
    if svc.files is None:
        raise Unsupported("this daemon cannot reach containers' files")
    return svc.files


def _stat_header(stat: dict[str, Any]) -> dict[str, str]:
    raw = json.dumps(stat, separators=(",", ":")).encode()
    return {STAT_HEADER: base64.b64encode(raw).decode()}


@router.head("/containers/{ref}/archive")
async def stat_path(ref: str, svc: Svc, ctx: Ctx, path: str = "") -> Response:
    stat = await _files(svc).stat(ctx, ref, path)
    return Response(status_code=200, headers=_stat_header(stat))


@router.get("/containers/{ref}/archive")
async def get_archive(ref: str, svc: Svc, ctx: Ctx, path: str = "") -> Response:
    stat, chunks = await _files(svc).archive(ctx, ref, path)
    return StreamingResponse(chunks, media_type="application/x-tar",
                             headers=_stat_header(stat))


@router.put("/containers/{ref}/archive")
async def put_archive(ref: str, request: Request, svc: Svc, ctx: Ctx, path: str = "",
                      noOverwriteDirNonDir: str | None = None,  # noqa: N803 - Docker's names
                      copyUIDGID: str | None = None) -> Response:  # noqa: N803
    await _files(svc).put_archive(ctx, ref, path, request.stream(),
                                  no_overwrite_dir=truthy(noOverwriteDirNonDir),
                                  copy_uidgid=truthy(copyUIDGID))
    return Response(status_code=200)


@router.get("/containers/{ref}/export")
async def export(ref: str, svc: Svc, ctx: Ctx) -> Response:
    chunks = await _files(svc).export(ctx, ref)
    return StreamingResponse(chunks, media_type="application/octet-stream")


@router.get("/containers/{ref}/changes")
async def changes(ref: str, svc: Svc, ctx: Ctx) -> list[dict[str, Any]]:
    return await _files(svc).changes(ctx, ref)
