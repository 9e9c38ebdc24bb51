"""Every refusal becomes {"message": "..."} with the status of its kind; never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from berth.errors import BerthError, OutOfSpace, out_of_space

log = logging.getLogger("berth.api")


class ErrorBody(BaseModel):
    """A refusal: its message names the problem (a failed action adds its result's fields)."""

    model_config = ConfigDict(extra="allow")

    message: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Declared on every route (app.include_router), so the OpenAPI document says what a client
# may get back: schemathesis checks every answer against it.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("bad input: the message names the field and the problem"),
    401: _error("no credentials, or credentials refused"),
    403: _error("the caller's role (or the operator's policy) does not allow it"),
    404: _error("no such object (or project) for this caller"),
    409: _error("the object's state forbids it: name taken, not running, in use"),
    507: _error("the host's disk for Berth's data is full; nothing of the request was kept"),
}


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def validation_message(errors: list[dict]) -> str:
    first = errors[0]
    msg = first.get("msg", "invalid value").removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        return f"unknown field: {_field(first.get('loc', ()))}"
    if first.get("type") == "missing":
        return f"missing field: {_field(first.get('loc', ()))}"
    if first.get("type") == "json_invalid":
        return "malformed JSON body"
    field = _field(first.get("loc", ()))
    return msg if field == "body" else f"{field}: {msg}"


def _openapi_without_422(app: FastAPI) -> None:
    """Invalid input is answered 400 (below), so FastAPI's stock 422 is never sent: the
    document must not promise it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()  # FastAPI keeps it in app.openapi_schema
            for ops in doc.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            schemas = doc.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def install_out_of_space(app: FastAPI, respond: Callable[[OutOfSpace], Response]) -> None:
    """A full disk is answered 507 with a message that names no host path (the handlers of
    Exception itself re-raise, for the server to log a traceback: this is no bug)."""
    from sqlalchemy.exc import OperationalError

    async def full(request: Request, exc: Exception) -> Response:
        found = out_of_space(exc)
        if found is None:
            raise exc  # for the handler of any exception
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return respond(found)

    for kind in (OSError, OperationalError):
        app.add_exception_handler(kind, full)


def install(app: FastAPI) -> None:
    _openapi_without_422(app)

    @app.exception_handler(BerthError)
    async def _berth(_request: Request, exc: BerthError) -> Response:
        if exc.status == 304:
            return Response(status_code=304)
        body = {"message": exc.message}
        body.update(getattr(exc, "result", {}) or {})
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"message": validation_message(list(exc.errors()))},
                            status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code)

    install_out_of_space(app, lambda full: JSONResponse({"message": full.message},
                                                         status_code=full.status))

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return JSONResponse({"message": f"internal error: {type(exc).__name__}: {exc}"},
                            status_code=500)
