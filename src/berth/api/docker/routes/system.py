"""System: ping, version, info, events, disk usage, registry auth."""

from __future__ import annotations

import os
import platform
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from berth import __version__
from berth.api.docker.app import API_VERSION, MIN_API_VERSION
from berth.api.docker.routes.common import Ctx, Svc

router = APIRouter()


@router.get("/_ping", response_class=PlainTextResponse)
@router.head("/_ping", response_class=PlainTextResponse)
async def ping() -> Response:
    # Unauthenticated, as in dockerd: clients ping to negotiate the version first.
    return PlainTextResponse("OK", headers={"Cache-Control": "no-cache, no-store, "
                                            "must-revalidate", "Pragma": "no-cache"})


def _kernel() -> str:
    return platform.release()


@router.get("/version")
async def version(svc: Svc, ctx: Ctx) -> dict[str, Any]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    components = [{"Name": "Engine", "Version": __version__,
                   "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                               "Os": "linux", "Arch": arch, "KernelVersion": _kernel(),
                               "Runtime": svc.info.get("runtime", "")}}]
    return {"Platform": {"Name": "Berth"}, "Components": components, "Version": __version__,
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
            "GoVersion": f"python{platform.python_version()}", "Os": "linux", "Arch": arch,
            "KernelVersion": _kernel(), "BuildTime": ""}


def cpu_count() -> int:
    return os.cpu_count() or 1
