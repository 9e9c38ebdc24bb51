"""The native API as an ASGI app; its OpenAPI document is served at /v1/openapi.json."""

from __future__ import annotations

from fastapi import FastAPI

from berth import __version__
from berth.api import errors
from berth.api.deps import Services
from berth.api.limits import BodyLimit
from berth.api.routes import (
    builds,
    containers,
    files,
    hosts,
    identity,
    images,
    networks,
    pods,
    quotas,
    registries,
    streams,
    system,
    vips,
    volumes,
)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="Berth", version=__version__, openapi_url="/v1/openapi.json",
                  docs_url=None, redoc_url=None)
    app.state.services = services
    errors.install(app)
    for module in (system, hosts, identity, quotas, containers, files, streams, registries,
                   images, builds, volumes, networks, pods, vips):
        app.include_router(module.router, responses=errors.ERROR_RESPONSES)
    app.add_middleware(BodyLimit)
    return app
