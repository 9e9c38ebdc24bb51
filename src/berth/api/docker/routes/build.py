"""POST /build: the legacy builder's protocol (``DOCKER_BUILDKIT=0 docker build``, docker-py's
``images.build``, compose ``build:``).

The body is the context tar; the options are query parameters (``buildargs`` and ``labels``
are JSON objects); the answer is Docker's JSON message stream: ``{"stream": text}`` lines, an
``{"aux": {"ID": id}}`` line, and on failure ``{"errorDetail": {...}, "error": message}``.
Options that only tune dockerd's own builder (``rm``, ``forcerm``, ``cachefrom``, ...) are
accepted: Berth always removes its build containers. Those that would change the result in
ways Berth cannot honour are refused by name.
"""

from __future__ import annotations

import json
import platform as host_platform
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from berth import jsontext
from berth.api.docker.imageprogress import error_line
from berth.api.docker.imageshapes import registry_config
from berth.api.docker.routes.common import Ctx, Svc, parse_filters, truthy
from berth.api.progress import Finished
from berth.api.routes.builds import run_build
from berth.build.runstep import StepFailed
from berth.errors import InvalidArgument, Unsupported
from berth.units import fits_int64

router = APIRouter()
STREAM_TYPE = "application/json"
MAX_OPTION = 256 << 10  # bytes of a JSON query option
ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}


def json_map(text: str | None, what: str) -> dict[str, str]:
    """``buildargs`` / ``labels``: a JSON object of strings; a null value (``--build-arg X``
    with X unset on the client) means "not given"."""
    if not text:
        return {}
    if len(text) > MAX_OPTION:
        raise InvalidArgument(f"{what} is too large")
    try:
        doc = jsontext.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArgument(f"invalid {what}: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {what}: expected a JSON object")
    out = {}
    for key, value in doc.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidArgument(f"invalid {what}: {key!r} must be a string")
        out[key] = value
    return out


def _check_platform(value: str | None) -> None:
    if not value:
        return
    arch = ARCHES.get(host_platform.machine(), host_platform.machine())
    parts = value.lower().split("/")
    if parts[0] != "linux" or (len(parts) > 1 and parts[1] != arch):
        raise InvalidArgument(f"cannot build for platform {value!r}: this host builds "
                          f"linux/{arch} only")


class BuildLines:
    """The build's events as dockerd's legacy builder writes them; ``quiet`` (docker build
    -q) keeps only the final image id."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, item: Any) -> list[dict[str, Any]]:
        if isinstance(item, Finished):
            return [{"stream": f"{item['id']}\n"}] if self.quiet else []
        if isinstance(item, BaseException):
            line = error_line(item)
            if isinstance(item, StepFailed) and item.code is not None:
                line["errorDetail"]["code"] = item.code  # the CLI exits with it
            return [line]
        if self.quiet and "stream" in item:
            return []
        return [item]


@router.post("/build", response_class=StreamingResponse,
             responses={200: {"content": {STREAM_TYPE: {}}}})
async def build(request: Request, svc: Svc, ctx: Ctx,
                t: Annotated[list[str] | None, Query(max_length=32)] = None,
                dockerfile: Annotated[str, Query(max_length=1024)] = "Dockerfile",
                target: Annotated[str | None, Query(max_length=256)] = None,
                q: str | None = None, nocache: str | None = None, pull: str | None = None,
                buildargs: str | None = None, labels: str | None = None,
                remote: str | None = None, platform: str | None = None,
                squash: str | None = None, version: str | None = None,
                networkmode: str | None = None, outputs: str | None = None
                ) -> StreamingResponse:
    from berth.build.builder import BuildOptions

    ctx.require("member", "building an image")
    if svc.builds is None:
        raise Unsupported("this daemon does not build images")
    if remote:
        raise Unsupported("building from a remote context (a URL or git repository) is not "
                          "supported: send the context as a tar")
    if version == "2":
        raise Unsupported("BuildKit is not supported by Berth: use the legacy builder "
                          "(DOCKER_BUILDKIT=0)")
    if truthy(squash):
        raise Unsupported("squash is not supported: Berth keeps one layer per step")
    if outputs:
        raise Unsupported("build outputs are a BuildKit feature: the legacy builder "
                          "writes the image to the local store")
    if networkmode not in (None, "", "default", "none"):
        raise Unsupported(f"build network mode {networkmode!r} is not supported: RUN "
                          "steps have no network")
    _check_platform(platform)
    opts = BuildOptions(tags=list(t or []), dockerfile=dockerfile or "Dockerfile",
                        target=target or None, no_cache=truthy(nocache), pull=truthy(pull),
                        build_args=json_map(buildargs, "buildargs"),
                        labels=json_map(labels, "labels"),
                        auths=registry_config(request.headers.get("x-registry-config")))
    return await run_build(request, svc, ctx, opts, lambda image: {"id": image.id},
                           render=BuildLines(truthy(q)), media_type=STREAM_TYPE)


# -- build cache ---------------------------------------------------------------------------

@router.post("/build/prune")
def prune_cache(svc: Svc, ctx: Ctx, filters: str | None = None, all: str | None = None,
                keep_storage: Annotated[str | None, Query(alias="keep-storage")] = None,
                ) -> dict[str, Any]:
    """docker builder prune (and system prune): the project's build cache, see
    service/buildcache.py."""
    wanted = parse_filters(filters)
    keep = _keep_storage(keep_storage)
    if svc.builds is None:
        return {"CachesDeleted": [], "SpaceReclaimed": 0}
    done = svc.builds.cache.prune(ctx, truthy(all), wanted, keep)
    return {"CachesDeleted": done["removed"], "SpaceReclaimed": done["reclaimed"]}


def _keep_storage(text: str | None) -> int:
    value = (text or "0").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or \
            not fits_int64(int(value)):
        shown = text if len(text or "") <= 40 else f"{(text or '')[:40]}..."
        raise InvalidArgument(f"keep-storage {shown!r}: expected a number of bytes")
    return int(value)
