"""The Docker-compatible API as an ASGI app, served on its own socket by the hijack-capable
protocol (api/docker/hijack.py).

Paths come versioned (``/v1.41/containers/json``) or not; the version is checked against the
range Berth speaks and kept in the scope for the few answers whose shape depends on it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from berth import __version__
from berth.api.deps import Services
from berth.api.limits import BodyLimit

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
VERSION_KEY = "berth.docker_version"
_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
HEADERS = [(b"api-version", API_VERSION.encode()), (b"docker-experimental", b"false"),
           (b"ostype", b"linux"), (b"server", f"Berth/{__version__} (linux)".encode())]


def version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


class VersionPrefix:
    """Strip ``/vX.Y`` from the path (refusing versions outside the range, as dockerd does)
    and remember it; unversioned paths mean the newest."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            version = API_VERSION
            m = _VERSIONED.match(scope["path"])
            if m:
                version = f"{int(m.group(1))}.{int(m.group(2))}"
                asked = (int(m.group(1)), int(m.group(2)))
                problem = None
                if asked > version_tuple(API_VERSION):
                    problem = (f"client version {version} is too new. Maximum supported API "
                               f"version is {API_VERSION}")
                elif asked < version_tuple(MIN_API_VERSION):
                    problem = (f"client version {version} is too old. Minimum supported API "
                               f"version is {MIN_API_VERSION}, please upgrade your client to "
                               "a newer version")
                if problem and scope["type"] == "http":
                    await _plain_error(send, 400, problem)
                    return
                scope = dict(scope)
                scope["path"] = m.group(3)
                scope["raw_path"] = m.group(3).encode()
            scope[VERSION_KEY] = version
        await self.app(scope, receive, send)


async def _plain_error(send: Any, status: int, message: str) -> None:
    import json

    body = json.dumps({"message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_docker_app(services: Services) -> FastAPI:
    from berth.api.docker import errors, routes

    app = FastAPI(title="Berth Docker Engine API", version=API_VERSION, openapi_url=None,
                  docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.docker = routes.DockerState()
    errors.install(app)
    for router in routes.routers():
        app.include_router(router)
    app.add_middleware(BodyLimit)
    app.add_middleware(VersionPrefix)
    return app
