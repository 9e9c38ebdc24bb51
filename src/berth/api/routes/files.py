"""/v1/containers/{ref}: its files. Copy out (a tar of a path) and in (a tar extracted into a
directory), a path's stat, the whole root filesystem (export) and its changes (diff)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from berth.api.deps import Services, context, services
from berth.errors import Unsupported
from berth.service.containerfs import ContainerFiles
from berth.service.context import Context
from berth.service.fsdiff import ADDED, DELETED, MODIFIED

router = APIRouter(prefix="/v1/containers", tags=["containers"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
PathParam = Annotated[str, Query(min_length=1, max_length=4096,
                                 description="an absolute path in the container")]
STAT_HEADER = "X-Berth-Path-Stat"
TAR: dict[int | str, dict[str, Any]] = {200: {"content": {"application/x-tar": {}}}}
KINDS = {MODIFIED: "modified", ADDED: "added", DELETED: "deleted"}


def _files(svc: Services) -> ContainerFiles:
    if svc.files is None:
        raise Unsupported("this daemon cannot reach containers' files")
    return svc.files


@router.get("/{ref}/stat")
async def stat_path(ref: str, path: PathParam, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """The path's name, size, mode (Go's os.FileMode bits, as Docker's), mtime and, for a
    symlink, where it leads inside the container."""
    return await _files(svc).stat(ctx, ref, path)


@router.get("/{ref}/archive", response_class=StreamingResponse, responses=TAR)
async def get_archive(ref: str, path: PathParam, svc: Svc, ctx: Ctx) -> StreamingResponse:
    """A tar of the path (a file, or a directory and everything below it), as ``docker cp``
    copies it out; its stat in the X-Berth-Path-Stat header (base64 JSON)."""
    stat, chunks = await _files(svc).archive(ctx, ref, path)
    header = base64.b64encode(json.dumps(stat, separators=(",", ":")).encode()).decode()
    return StreamingResponse(chunks, media_type="application/x-tar",
                             headers={STAT_HEADER: header})


@router.put("/{ref}/archive", status_code=204, response_class=Response)
async def put_archive(ref: str, path: PathParam, request: Request, svc: Svc, ctx: Ctx,
                      no_overwrite_dir_non_dir: bool = False,
                      copy_uid_gid: bool = False) -> Response:
    """Extract the tar in the body into the directory ``path`` (which must exist). Entries
    are owned by the container's root unless copy_uid_gid. A hostile archive (``..``,
    absolute names, device nodes, writes through symlinks) is refused whole."""
    await _files(svc).put_archive(ctx, ref, path, request.stream(),
                                  no_overwrite_dir=no_overwrite_dir_non_dir,
                                  copy_uidgid=copy_uid_gid)
    return Response(status_code=204)


@router.get("/{ref}/export", response_class=StreamingResponse, responses=TAR)
async def export(ref: str, svc: Svc, ctx: Ctx) -> StreamingResponse:
    """A tar of the container's root filesystem (its volumes left out)."""
    return StreamingResponse(await _files(svc).export(ctx, ref), media_type="application/x-tar")


@router.get("/{ref}/changes")
async def changes(ref: str, svc: Svc, ctx: Ctx) -> list[dict[str, str]]:
    """What differs from the image: [{"path", "kind": added|modified|deleted}]."""
    found: list[dict[str, Any]] = await _files(svc).changes(ctx, ref)
    return [{"path": str(c["Path"]), "kind": KINDS[c["Kind"]]} for c in found]
