"""POST /v1/build: a tar context in, NDJSON progress out, the image id at the end."""

from __future__ import annotations

import asyncio
import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from berth.api.deps import Services, context, services
from berth.api.progress import progress_response
from berth.api.spool import spool_body
from berth.errors import InvalidArgument, Unsupported
from berth.service.context import Context

router = APIRouter(prefix="/v1", tags=["images"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
MAX_CONTEXT = 16 * 1024**3


def parse_pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise InvalidArgument(f"{what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


@router.post("/build", response_class=StreamingResponse,
             responses={200: {"content": {"application/x-ndjson": {}}}})
async def build(request: Request, svc: Svc, ctx: Ctx,
                tag: Annotated[list[str] | None, Query(max_length=32)] = None,
                dockerfile: Annotated[str, Query(min_length=1, max_length=1024)] = "Dockerfile",
                target: Annotated[str | None, Query(max_length=256)] = None,
                no_cache: bool = False, pull: bool = False,
                build_arg: Annotated[list[str] | None, Query(max_length=64)] = None,
                label: Annotated[list[str] | None, Query(max_length=64)] = None
                ) -> StreamingResponse:
    """The body is the build context: a tar (optionally compressed) holding the Dockerfile.
    Each line is a JSON object: {"stream": text}, {"aux": {"ID": id}}; the last one is
    {"status": "done", "id": ...} or {"error": message, "status": code}."""
    from berth.build.builder import BuildOptions

    ctx.require("member", "building an image")
    if svc.builds is None:
        raise Unsupported("this daemon does not build images")
    opts = BuildOptions(tags=list(tag or []), dockerfile=dockerfile, target=target or None,
                        no_cache=no_cache, pull=pull,
                        build_args=parse_pairs(build_arg, "build_arg"),
                        labels=parse_pairs(label, "label"))
    return await run_build(request, svc, ctx, opts, lambda r: {"id": r.id})


async def run_build(request: Request, svc: Services, ctx: Context, opts: Any,
                    result: Any, render: Any = None,
                    media_type: str = "application/x-ndjson") -> StreamingResponse:
    """Spool and unpack the context, then run the build in a thread, streaming its lines."""
    from berth.build.context import unpack_context

    builds = svc.builds
    assert builds is not None
    spool = await spool_body(request, svc.info["tmp"], limit=MAX_CONTEXT,
                             too_large="build context larger than 16 GiB",
                             empty="empty body: send the build context as a tar")
    try:
        top, dockerfile = await asyncio.to_thread(unpack_context, spool, svc.info["tmp"],
                                                  opts.dockerfile)
    finally:
        spool.close()

    def work(report: Any) -> dict[str, Any]:
        try:
            image = builds.build(ctx, top, dockerfile, opts, report)
            return result(image)
        finally:
            shutil.rmtree(top, ignore_errors=True)

    kwargs: dict[str, Any] = {"media_type": media_type, "cancel": opts.cancel}
    if render is not None:
        kwargs["render"] = render
    return await progress_response(work, **kwargs)


@router.post("/build/prune")
def prune_cache(svc: Svc, ctx: Ctx, all: bool = False,
                filter: Annotated[list[str] | None, Query()] = None,
                keep_storage: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                ) -> dict[str, Any]:
    """Drop the project's build cache: records of steps and the intermediate images only
    they needed (all=true: records of images a build ended at too; those images stay).
    filter: until=24h (not used since), id=PREFIX; keep_storage: keep the most recently
    used, up to that many bytes. {"removed": [keys], "reclaimed": bytes}."""
    from berth.service.buildcache import PRUNE_FILTERS
    from berth.service.filters import parse_filters

    wanted = parse_filters(filter, PRUNE_FILTERS)
    if svc.builds is None:
        return {"removed": [], "reclaimed": 0}
    return svc.builds.cache.prune(ctx, all, wanted, keep_storage)
