"""Containers' streams and readings: attach (hijacked and websocket), logs, resize, stats, top."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import Response, StreamingResponse

from berth.agent.hostops import parse_time, split_ps_args
from berth.api.auth import authenticate
from berth.api.deps import Services
from berth.api.docker.attach import AttachOptions, HijackPeer, WebSocketPeer, run_session
from berth.api.docker.hijack import MULTIPLEXED_STREAM, RAW_STREAM
from berth.api.docker.routes.common import Ctx, Hijacked, Svc, hijack_of, truthy
from berth.api.docker.stats import stats_document, zero_stats
from berth.api.docker.streamio import (
    STREAM_IDS,
    docker_timestamp,
    frame,
    parse_size,
    parse_tail,
)
from berth.detachkeys import parse as parse_detach_keys
from berth.errors import BerthError, Conflict, InvalidArgument
from berth.service.context import Context
from berth.store.models import Container

router = APIRouter()
log = logging.getLogger("berth.api.docker")
LIVE = ("running", "paused", "restarting")
FOLLOWABLE = ("created", *LIVE)  # a monitor is writing the log
STATS_INTERVAL = 1.0  # seconds between samples, as dockerd


def _media_type(row: Container) -> str:
    return RAW_STREAM if row.spec.get("tty") else MULTIPLEXED_STREAM


def _attach_options(row: Container, stdin: str | None, stdout: str | None, stderr: str | None,
                    logs: str | None, stream: str | None,
                    detach_keys: str | None) -> AttachOptions:
    return AttachOptions(stdin=truthy(stdin), stdout=truthy(stdout), stderr=truthy(stderr),
                         logs=truthy(logs), stream=truthy(stream),
                         detach_keys=parse_detach_keys(detach_keys),
                         multiplexed=not row.spec.get("tty"))


@router.post("/containers/{ref}/attach")
async def attach(request: Request, ref: str, svc: Svc, ctx: Ctx, stdin: str | None = None,
                 stdout: str | None = None, stderr: str | None = None,
                 logs: str | None = None, stream: str | None = None,
                 detachKeys: str | None = None) -> Response:  # noqa: N803 (Docker's name)
    hijack = hijack_of(request)
    row = svc.containers.get(ctx, ref)
    if row.status == "paused":
        raise Conflict(f"container {row.name} is paused, unpause the container before attach")
    opts = _attach_options(row, stdin, stdout, stderr, logs, stream, detachKeys)
    hijack.start(_media_type(row))
    try:
        await run_session(svc, ctx, row, HijackPeer(hijack), opts)
    except Exception:  # the answer has begun: nothing else may be sent
        log.exception("attach to %s failed", row.id[:12])
        hijack.close()
    return Hijacked()


@router.websocket("/containers/{ref}/attach/ws")
async def attach_ws(ws: WebSocket, ref: str, stdin: str | None = None,
                    stdout: str | None = None, stderr: str | None = None,
                    logs: str | None = None, stream: str | None = None,
                    detachKeys: str | None = None) -> None:  # noqa: N803
    svc: Services = ws.app.state.services
    try:
        ctx = authenticate(ws, write=True)
        row = svc.containers.get(ctx, ref)
        opts = _attach_options(row, stdin, stdout, stderr, logs, stream, detachKeys)
    except BerthError as e:
        await ws.close(code=1008, reason=e.message[:120])
        return
    await ws.accept()
    # Raw bytes both ways, as dockerd's websocket attach (no multiplexing).
    opts = AttachOptions(**{**vars(opts), "multiplexed": False})
    await run_session(svc, ctx, row, WebSocketPeer(ws), opts)


@router.get("/containers/{ref}/logs")
async def logs(ref: str, svc: Svc, ctx: Ctx, follow: str | None = None,
               stdout: str | None = None, stderr: str | None = None,
               since: str | None = None, until: str | None = None,
               timestamps: str | None = None, tail: str | None = None) -> Response:
    row = svc.containers.get(ctx, ref)
    want_out, want_err = truthy(stdout), truthy(stderr)
    if not (want_out or want_err):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    lines = parse_tail(tail)
    start = parse_time(since) if since and since != "0" else None
    end = parse_time(until) if until and until != "0" else None
    stamped, tty = truthy(timestamps), bool(row.spec.get("tty"))
    records = svc.hostops.logs(row.id, follow=truthy(follow) and row.status in FOLLOWABLE,
                               tail=lines, since=start, until=end, stdout=want_out,
                               stderr=want_err)

    async def body() -> Any:
        async for rec in records:
            data = rec.data
            if stamped:
                data = docker_timestamp(rec.time).encode() + b" " + data
            yield data if tty else frame(STREAM_IDS[rec.stream], data)

    return StreamingResponse(body(), media_type=RAW_STREAM if tty else MULTIPLEXED_STREAM)


@router.post("/containers/{ref}/resize")
async def resize(ref: str, svc: Svc, ctx: Ctx, h: str | None = None,
                 w: str | None = None) -> Response:
    rows, cols = parse_size(h, w)
    row = svc.containers.get(ctx, ref)
    if row.status not in FOLLOWABLE:
        raise Conflict(f"Container {row.id} is not running")
    if not row.spec.get("tty"):  # dockerd answers this too: there is no terminal to size
        raise Conflict(f"container {row.name} has no tty to resize")
    await svc.hostops.resize(row.id, rows, cols)
    return Response(status_code=200)


@router.get("/containers/{ref}/top")
async def top(ref: str, svc: Svc, ctx: Ctx, ps_args: str | None = None) -> dict[str, Any]:
    args = split_ps_args(ps_args)
    row = svc.containers.get(ctx, ref)
    if row.status not in LIVE:
        raise Conflict(f"Container {row.id} is not running")
    titles, procs = await svc.hostops.top(row.id, args)
    return {"Titles": titles, "Processes": procs}


@router.get("/containers/{ref}/stats")
async def stats(ref: str, svc: Svc, ctx: Ctx, stream: str | None = None,
                one_shot: Annotated[str | None, Query(alias="one-shot")] = None) -> Response:
    row = svc.containers.get(ctx, ref)
    if stream is None or truthy(stream):
        return StreamingResponse(_stats_stream(svc, ctx, row), media_type="application/json")
    doc = await _sample(svc, row, None)
    if doc is not None and not truthy(one_shot):
        # Two samples a moment apart: clients compute CPU % from cpu_stats - precpu_stats.
        await asyncio.sleep(STATS_INTERVAL)
        doc = await _sample(svc, row, doc) or doc
    return Response(json.dumps(doc or zero_stats(row)), media_type="application/json")


async def _sample(svc: Services, row: Container, previous: dict[str, Any] | None
                  ) -> dict[str, Any] | None:
    """Docker's stats document for a running container, None when it is not running."""
    try:
        raw = await svc.hostops.stats(row.id)
    except BerthError:
        return None
    return stats_document(row, raw, previous)


async def _stats_stream(svc: Services, ctx: Context, row: Container) -> Any:
    previous: dict[str, Any] | None = None
    while True:
        current = svc.containers.get(ctx, row.id)
        doc = await _sample(svc, current, previous) if current.status in LIVE else None
        if doc is None:
            if previous is None:  # never running: one empty document, as dockerd sends
                yield json.dumps(zero_stats(row)).encode() + b"\n"
            return
        yield json.dumps(doc).encode() + b"\n"
        previous = doc
        await asyncio.sleep(STATS_INTERVAL)
