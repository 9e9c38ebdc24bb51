"""Registries: pull, push, sign, verify, the project's logins and its signature policy."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from berth.api import views
from berth.api.auth import read_only
from berth.api.deps import ActionId, Services, context, services
from berth.api.progress import progress_response
from berth.errors import InvalidArgument
from berth.service.context import Context

router = APIRouter(tags=["registries"])
Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(context)]
MAX_POLICY = 1 << 20
WAIT_LIMIT = 3600.0


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=512)
    platform: str | None = Field(default=None, max_length=64,
                                 description="os/arch[/variant]; default: this host's")


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: str | None = Field(default=None, max_length=512)
    sign_by: str | None = Field(default=None, max_length=128,
                                description="GPG key fingerprint in the daemon's keyring")
    sign_by_sigstore_key: str | None = Field(default=None, max_length=4096,
                                             description="private key file on the daemon host")


class SignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sign_by: str | None = Field(default=None, max_length=128)
    sign_by_sigstore_key: str | None = Field(default=None, max_length=4096)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str = Field(min_length=1, max_length=255)
    username: str = Field(min_length=1, max_length=4096)
    password: str = Field(min_length=1, max_length=4096)


@router.post("/v1/images/pull", status_code=202,
             responses={200: {"content": {"application/x-ndjson": {}},
                              "description": "with stream=true: progress events, one JSON "
                              "object per line; with wait=true: the finished action"},
                        202: {"description": "the pull's action, to poll or wait on"}})
async def pull(body: PullRequest, svc: Svc, ctx: Ctx, wait: bool = False,
               stream: bool = False) -> Any:
    """A pull is an action: 202 at once (poll GET /v1/actions/{id}), or wait=true for its
    end, or stream=true for per-layer progress as it goes (what `berth pull` shows)."""
    if stream:
        act = await asyncio.to_thread(svc.pulls.record, ctx, body.reference, body.platform)

        def work(report: Any) -> dict[str, Any]:
            done = svc.pulls.run(ctx, act, body.reference, body.platform, report)
            image = done.pop("image")
            return {**done, "action": act.id,
                    "image": views.image(image, svc.images.tags_of(ctx, image.id))}

        return await progress_response(work)
    act = await asyncio.to_thread(svc.pulls.start, ctx, body.reference, body.platform)
    if not wait:
        return JSONResponse({"action": views.action(act)}, status_code=202)
    return _finished(await svc.pulls.wait(ctx, act.id, WAIT_LIMIT))


@router.get("/v1/actions/{action_id}")
async def get_action(action_id: ActionId, svc: Svc, ctx: Ctx, wait: bool = False) -> Any:
    """Any action of the project (a container's or a pull); wait=true: until it ends."""
    if wait:
        act = await svc.pulls.wait(ctx, action_id, WAIT_LIMIT)
        return {"action": views.action(act)}  # reading it succeeded; its state tells the rest
    return {"action": views.action(svc.pulls.action(ctx, action_id))}


def _finished(act: Any) -> JSONResponse:
    """A finished action answers with its outcome's status (an unfinished one: 202)."""
    body = {"action": views.action(act)}
    if act.state == "success":
        return JSONResponse(body, status_code=200)
    if act.state == "error":
        return JSONResponse({**body, "message": act.message}, status_code=act.error_status or 500)
    return JSONResponse(body, status_code=202)


@router.post("/v1/images/{ref:path}/push", response_class=StreamingResponse,
             responses={200: {"content": {"application/x-ndjson": {}},
                              "description": "progress events, one JSON object per line"}})
async def push(ref: str, body: PushRequest, svc: Svc, ctx: Ctx) -> StreamingResponse:
    def work(report: Any) -> dict[str, Any]:
        return svc.registry.push(ctx, ref, body.destination, report, sign_by=body.sign_by,
                                 sigstore_key=body.sign_by_sigstore_key)

    return await progress_response(work)


@router.post("/v1/images/{ref:path}/sign")
def sign(ref: str, body: SignRequest, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    if not body.sign_by and not body.sign_by_sigstore_key:
        raise InvalidArgument("give sign_by (a GPG fingerprint) or sign_by_sigstore_key")
    return svc.registry.sign(ctx, ref, sign_by=body.sign_by,
                             sigstore_key=body.sign_by_sigstore_key)


@router.post("/v1/images/{ref:path}/verify")
@read_only
def verify(ref: str, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """Check an image against the policy in force (host and project), with fresh signatures."""
    return svc.registry.verify(ctx, ref)


@router.get("/v1/registries/logins")
def logins(svc: Svc, ctx: Ctx) -> list[dict[str, Any]]:
    return svc.credentials.list(ctx)


@router.post("/v1/registries/logins", status_code=201)
def login(body: LoginRequest, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """Check the credentials with the registry, then keep them (sealed) for the project."""
    host = svc.registry.login(ctx, body.registry, body.username, body.password)
    return {"registry": host, "username": body.username}


@router.delete("/v1/registries/logins/{registry}", status_code=204)
def logout(registry: str, svc: Svc, ctx: Ctx) -> None:
    svc.credentials.remove(ctx, registry)


@router.get("/v1/signature-policy")
def get_policy(svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """The host's policy and the project's own (both must accept an image)."""
    return svc.trust.describe(ctx)


@router.put("/v1/signature-policy", openapi_extra={"requestBody": {
    "required": True, "description": "a containers-policy.json(5) document",
    "content": {"application/json": {"schema": {"type": "object"}}}}})
async def set_policy(request: Request, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """The body is a containers-policy.json(5) document, parsed as strictly as the spec asks
    (so it is read raw: a duplicated key must not vanish in a JSON decoder first)."""
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_POLICY:
            raise InvalidArgument("policy larger than 1 MiB")
    svc.trust.set_project_policy(ctx, data)
    return svc.trust.describe(ctx)


@router.delete("/v1/signature-policy", status_code=204)
def unset_policy(svc: Svc, ctx: Ctx) -> None:
    svc.trust.set_project_policy(ctx, None)
