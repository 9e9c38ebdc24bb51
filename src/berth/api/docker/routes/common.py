"""What the Docker routes share: the caller, JSON bodies, Docker's synchronous answers."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from berth import jsontext
from berth.api.auth import authenticate, is_write
from berth.api.deps import Services, services
from berth.api.docker.hijack import HIJACK, Hijack
from berth.errors import BerthError, InvalidArgument, NotModified, RuntimeFailure
from berth.service.context import Context
from berth.store.models import Action

WAIT_LIMIT = 3600.0


def docker_context(request: Request) -> Context:
    return authenticate(request, is_write(request.method, request.scope.get("endpoint")))


Svc = Annotated[Services, Depends(services)]
Ctx = Annotated[Context, Depends(docker_context)]


def truthy(value: str | None) -> bool:
    """Docker's boolean query parameters: 1/true/True/yes, anything else false."""
    return (value or "").strip().lower() in ("1", "true", "yes")


async def read_json(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object, or a 400 naming what is wrong with it."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise InvalidArgument("request body is empty: expected a JSON object")
        return {}
    try:
        body = jsontext.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"malformed JSON body: {e}") from None
    if body is None and not required:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    return body


def parse_filters(text: str | None) -> dict[str, list[str]]:
    """Docker's ``filters`` query parameter: {"name": ["a"]} or the old {"name": {"a": true}}."""
    if not text:
        return {}
    try:
        raw = jsontext.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArgument(f"invalid filters: {e}") from None
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid filters: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        else:
            raise InvalidArgument(f"invalid filter {key!r}: expected a list of strings")
    return out


def hijack_of(request: Request) -> Hijack:
    hijack = request.scope.get("extensions", {}).get(HIJACK)
    if hijack is None:  # only served on the Docker socket's protocol
        raise InvalidArgument("this endpoint needs a connection that can be hijacked")
    return hijack


class Hijacked(Response):
    """The route took the connection over; there is nothing left to send."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return


async def finish(svc: Services, ctx: Context, act: Action, *, quiet_304: bool = True) -> Action:
    """Wait for an action as Docker's synchronous API does; its failure is raised with the
    status it maps to (304 when there was nothing to do)."""
    done = await svc.containers.wait_action(ctx, act.id, WAIT_LIMIT)
    if done is None:
        raise RuntimeFailure(f"{act.action} did not finish within {int(WAIT_LIMIT)} s")
    if done.state == "error":
        if done.error_status == 304:
            raise NotModified(done.message)
        err = BerthError(done.message)
        err.status = done.error_status or RuntimeFailure.status
        raise err
    return done
