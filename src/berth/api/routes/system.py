"""/v1/info and /v1/events."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from berth.api.deps import Services, context, services
from berth.api.eventfeed import feed, time_window
from berth.api.listing import SelectorParam
from berth.api.views import build_cache_entry
from berth.service import diskuse
from berth.service.context import Context
from berth.service.events import EVENT_TYPES, MAX_OBJECTS, event_filter

KEEPALIVE = 15.0  # seconds between comments on a quiet event stream
router = APIRouter(prefix="/v1", tags=["system"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]


@router.get("/info")
def info(svc: Svc, ctx: Ctx) -> dict[str, Any]:
    counts = svc.containers.counts(ctx)
    # The host's paths, pid and uid layout are the operator's business, not a tenant's.
    hidden = {"tmp"} if ctx.is_admin else {"tmp", "root", "run_root", "pid", "userns_base"}
    public = {k: v for k, v in svc.info.items() if k not in hidden}
    return {**public, **counts, "images": svc.images.count(ctx),
            "project": ctx.project_id}


@router.get("/system/df")
def system_df(svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """What the project's images, containers, volumes and build cache take on disk: a
    summary per kind (total, active, size, reclaimable) and each object. Walks directories:
    not cheap."""
    use = diskuse.measure(ctx, svc.containers, svc.images, svc.volumes, svc.quotas,
                          svc.builds.cache if svc.builds is not None else None)
    return {
        "summary": use.summary(),
        "images": [{"id": image.id, "tags": tags, "size": image.size, "containers": users}
                   for image, tags, users in use.images],
        "containers": [{"id": row.id, "name": row.name, "image": row.image_ref,
                        "status": row.status, "size": size} for row, size, _ in use.containers],
        "volumes": [{"name": vol.name, "size": size, "containers": users}
                    for vol, size, users in use.volumes],
        "build_cache": [build_cache_entry(e) for e in use.build_cache],
    }


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(svc: Svc, ctx: Ctx,
                 type: Annotated[list[str] | None, Query(
                     max_length=len(EVENT_TYPES),
                     description="container, image, volume or network (repeat for "
                                 "several)")] = None,
                 object: Annotated[list[str] | None, Query(
                     max_length=MAX_OBJECTS,
                     description="an id, id prefix or name (repeat for several)")] = None,
                 action: Annotated[list[str] | None, Query(
                     max_length=MAX_OBJECTS,
                     description="die, start, pull, ... (repeat for several)")] = None,
                 since: Annotated[str | None, Query(
                     description="replay the events since then (unix seconds, RFC 3339, or "
                                 "a duration before now: 10m); only the recent ones are "
                                 "kept")] = None,
                 until: Annotated[str | None, Query(
                     description="end the stream then (same forms)")] = None,
                 selector: SelectorParam = None,
                 all_projects: bool = False) -> StreamingResponse:
    """Server-sent events, one JSON object per ``data:`` line, as things happen: the caller's
    project's (admins with all_projects=true: every project's), filtered by type, object,
    action and the labels of the object (selector); since replays, until ends the stream."""
    wanted = event_filter(ctx, type, object, selector, action)  # bad input: 400 first
    start, end = time_window(since, until)

    async def body() -> Any:
        async for event in feed(svc.hub, start, end, idle=KEEPALIVE):
            if event is None:
                yield b": keep-alive\n\n"
            elif wanted.matches(event):
                yield f"data: {json.dumps(event)}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream")
