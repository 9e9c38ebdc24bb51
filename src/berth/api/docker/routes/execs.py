"""Exec instances: create, start (hijacked, or detached), inspect, resize.

They live in memory (``app.state.docker.execs``), as in dockerd, scoped to the project that
made them: another project's exec id is unknown (404). Finished ones are forgotten after a
while so that the table cannot grow without bound.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from berth import jsontext
from berth.api.docker.attach import HijackPeer
from berth.api.docker.execrun import ExecInstance, ExecSession
from berth.api.docker.hijack import MULTIPLEXED_STREAM, RAW_STREAM
from berth.api.docker.routes.common import Ctx, Hijacked, Svc, hijack_of, read_json
from berth.api.docker.streamio import parse_size
from berth.api.errors import validation_message
from berth.detachkeys import parse as parse_detach_keys
from berth.errors import Conflict, InvalidArgument, NotFound
from berth.runtime.base import Capability, ExecSpec
from berth.service.context import Context
from berth.service.specs import ExecRequest

router = APIRouter()
log = logging.getLogger("berth.api.docker")
KEEP_FINISHED = 300.0  # seconds a finished exec stays inspectable
KEEP_UNSTARTED = 3600.0  # an exec never started is dropped after this
MAX_EXECS = 4096  # per daemon, live and remembered together


def _table(request: Request) -> dict[str, ExecInstance]:
    return request.app.state.docker.execs


def _prune(table: dict[str, ExecInstance]) -> None:
    now = time.time()
    for eid, inst in list(table.items()):
        finished = inst.finished_at is not None and now - inst.finished_at > KEEP_FINISHED
        stale = not inst.started and now - inst.created_at > KEEP_UNSTARTED
        if finished or stale:
            del table[eid]


def _lookup(request: Request, ctx: Context, eid: str) -> ExecInstance:
    inst = _table(request).get(eid)
    if inst is None or inst.project_id != ctx.project_id:
        raise NotFound(f"No such exec instance: {eid}")
    return inst


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{key}: expected true or false")
    return bool(value)


def _running_container(svc: Svc, ctx: Context, ref: str) -> Any:
    row = svc.containers.get(ctx, ref)
    if row.status == "paused":
        raise Conflict(f"Container {row.id} is paused, unpause the container before exec")
    if row.status not in ("running", "restarting"):
        raise Conflict(f"Container {row.id} is not running")
    return row


@router.post("/containers/{ref}/exec", status_code=201)
async def exec_create(request: Request, ref: str, svc: Svc, ctx: Ctx) -> JSONResponse:
    body = await read_json(request)
    if Capability.EXEC not in svc.containers.capabilities:
        raise InvalidArgument("exec: this host's runtime lacks the 'exec' capability")
    row = _running_container(svc, ctx, ref)
    if _bool(body, "Privileged"):
        raise InvalidArgument("Privileged: Berth does not run privileged exec processes")
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd:
        raise InvalidArgument("No exec command specified")
    keys = body.get("DetachKeys") or ""
    if not isinstance(keys, str):
        raise InvalidArgument("DetachKeys: expected a string")
    parse_detach_keys(keys)  # refused now rather than at start
    try:
        req = ExecRequest(command=cmd, env=body.get("Env") or [],
                          workdir=body.get("WorkingDir") or "", user=body.get("User") or "",
                          tty=_bool(body, "Tty"), stdin=_bool(body, "AttachStdin"))
    except ValidationError as e:
        raise InvalidArgument(validation_message(list(e.errors()))) from None
    size = body.get("ConsoleSize")
    table = _table(request)
    _prune(table)
    if len(table) >= MAX_EXECS:
        raise Conflict(f"too many exec instances ({MAX_EXECS}): let some finish first")
    inst = ExecInstance(
        id=secrets.token_hex(32), project_id=ctx.project_id, container_id=row.id,
        command=req.command, env=req.env, workdir=req.workdir, user=req.user, tty=req.tty,
        stdin=req.stdin, stdout=_bool(body, "AttachStdout"),
        stderr=_bool(body, "AttachStderr"), detach_keys=keys)
    if isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) for n in size) \
            and all(size):
        inst.size = parse_size(str(size[0]), str(size[1]))
    table[inst.id] = inst
    return JSONResponse({"Id": inst.id}, status_code=201)


@router.post("/exec/{eid}/start")
async def exec_start(request: Request, eid: str, svc: Svc, ctx: Ctx) -> Response:
    hijack = hijack_of(request)
    inst = _lookup(request, ctx, eid)
    raw = await hijack.body() if hijack.upgrade else await request.body()
    try:
        body = jsontext.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"malformed JSON body: {e}") from None
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    detach = _bool(body, "Detach")
    if inst.started:
        state = "is already running" if inst.running else "has already run"
        raise Conflict(f"Exec command {eid} {state}")
    row = _running_container(svc, ctx, inst.container_id)
    inst.started = True
    try:
        proc = await svc.hostops.exec(row.id, ExecSpec(
            args=inst.command, env=inst.env, cwd=inst.workdir, user=inst.user, tty=inst.tty,
            group_add=list(row.spec.get("group_add") or [])))
    except BaseException:
        inst.started = False
        raise
    keys = parse_detach_keys(inst.detach_keys)
    if detach:
        await ExecSession(inst, proc, None, keys).run()
        return Response(status_code=200)
    hijack.start(RAW_STREAM if inst.tty else MULTIPLEXED_STREAM)
    peer = HijackPeer(hijack)
    try:
        await ExecSession(inst, proc, peer, keys).run()
    except Exception:  # the answer has begun: nothing else may be sent
        log.exception("exec %s failed", eid[:12])
    finally:
        peer.close()
    return Hijacked()


@router.get("/exec/{eid}/json")
async def exec_inspect(request: Request, eid: str, ctx: Ctx) -> dict[str, Any]:
    return _lookup(request, ctx, eid).inspect()


@router.post("/exec/{eid}/resize")
async def exec_resize(request: Request, eid: str, ctx: Ctx, h: str | None = None,
                      w: str | None = None) -> Response:
    rows, cols = parse_size(h, w)
    inst = _lookup(request, ctx, eid)
    if rows and cols:
        proc = inst.process
        if proc is not None:
            proc.resize(rows, cols)
        elif not inst.started:
            inst.size = (rows, cols)  # applied when it starts
    return Response(status_code=200)
