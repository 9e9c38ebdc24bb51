"""Docker's error shape: ``{"message": "..."}`` with Docker's status codes; 304 has no body."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from berth.api.errors import install_out_of_space, validation_message
from berth.errors import BerthError

log = logging.getLogger("berth.api.docker")


def docker_error(status: int, message: str) -> Response:
    if status == 304:
        return Response(status_code=304)
    return JSONResponse({"message": message}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(BerthError)
    async def _berth(_request: Request, exc: BerthError) -> Response:
        return docker_error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return docker_error(400, validation_message(list(exc.errors())))

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return docker_error(404, "page not found")
        if exc.status_code == 405:
            return docker_error(405, "method not allowed")
        return docker_error(exc.status_code, str(exc.detail))

    install_out_of_space(app, lambda full: docker_error(full.status, full.message))

    @app.exception_handler(json.JSONDecodeError)
    async def _json(_request: Request, exc: json.JSONDecodeError) -> Response:
        return docker_error(400, f"malformed JSON body: {exc.msg}")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("docker API %s %s failed", request.method, request.url.path)
        return docker_error(500, f"internal error: {type(exc).__name__}")
