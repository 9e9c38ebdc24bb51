"""Every refusal becomes {"message": "..."} with the status of its kind; never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from berth.errors import BerthError

log = logging.getLogger("berth.api")


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


def install(app: FastAPI) -> None:
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

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return JSONResponse({"message": f"internal error: {type(exc).__name__}: {exc}"},
                            status_code=500)
