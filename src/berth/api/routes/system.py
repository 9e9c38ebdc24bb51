"""/v1/info and /v1/events."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from berth.api.deps import Services, context, services
from berth.service.context import Context

router = APIRouter(prefix="/v1", tags=["system"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]


@router.get("/info")
def info(svc: Svc, ctx: Ctx) -> dict[str, Any]:
    rows = svc.containers.list(ctx, all_=True)
    counts = {"containers": len(rows),
              "running": sum(r.status == "running" for r in rows),
              "paused": sum(r.status == "paused" for r in rows),
              "stopped": sum(r.status not in ("running", "paused") for r in rows)}
    public = {k: v for k, v in svc.info.items() if k != "tmp"}
    return {**public, **counts, "images": len(svc.images.list(ctx)),
            "project": ctx.project_id}


@router.get("/events")
async def events(svc: Svc, ctx: Ctx, type: str | None = None) -> StreamingResponse:
    queue = svc.hub.subscribe()

    async def body() -> Any:
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if event.get("project_id") != ctx.project_id:
                    continue
                if type and event.get("type") != type:
                    continue
                yield f"data: {json.dumps(event)}\n\n".encode()
        finally:
            svc.hub.unsubscribe(queue)

    return StreamingResponse(body(), media_type="text/event-stream")
