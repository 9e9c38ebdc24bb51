"""System: ping, version, info, events, disk usage, registry auth."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import platform
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from berth import __version__
from berth.api.docker import imageshapes, shapes
from berth.api.docker.app import API_VERSION, MIN_API_VERSION
from berth.api.docker.eventshape import DockerEventFilter, docker_event
from berth.api.docker.routes.common import Ctx, Svc, parse_filters, read_json
from berth.api.docker.routes.volumes import volume_shape
from berth.api.eventfeed import feed, time_window
from berth.api.views import iso
from berth.errors import InvalidArgument
from berth.service import diskuse

router = APIRouter()


@router.get("/_ping", response_class=PlainTextResponse)
@router.head("/_ping", response_class=PlainTextResponse)
async def ping() -> Response:
    # Unauthenticated, as in dockerd: clients ping to negotiate the version first.
    # Builder-Version 1: Berth builds with the classic protocol only, so a docker CLI that
    # has buildx falls back to it instead of asking for BuildKit's session.
    return PlainTextResponse("OK", headers={"Cache-Control": "no-cache, no-store, "
                                            "must-revalidate", "Pragma": "no-cache",
                                            "Builder-Version": "1"})


def _kernel() -> str:
    return platform.release()


@router.get("/version")
async def version(svc: Svc) -> dict[str, Any]:
    # Unauthenticated like /_ping: it is the version handshake (docker-py calls it before a
    # caller can add its token header), and says nothing about any project.
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


# -- info ----------------------------------------------------------------------------------

def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cgroup_version() -> str:
    return "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"


def _daemon_id(host: str) -> str:
    """Stable for a host, in Docker's key-id look (12 groups of 4)."""
    text = base64.b32encode(hashlib.sha256(f"berth/{host}".encode()).digest()[:30]).decode()
    return ":".join(text[i:i + 4] for i in range(0, 48, 4))


@router.get("/info")
def info(svc: Svc, ctx: Ctx) -> dict[str, Any]:
    counts = svc.containers.counts(ctx)  # the caller's project's, as everything here
    runtime = "runc"
    v1 = _cgroup_version() == "1"
    insecure = sorted(svc.registry.config.insecure)
    return {
        "ID": _daemon_id(svc.host), "Containers": counts["containers"],
        "ContainersRunning": counts["running"], "ContainersPaused": counts["paused"],
        "ContainersStopped": counts["stopped"], "Images": svc.images.count(ctx),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"],
                         ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        # The host's paths are the operator's business, not a tenant's (as in /v1/info).
        "DockerRootDir": str(svc.info.get("root", "")) if ctx.is_admin else "",
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": v1, "KernelMemoryTCP": v1,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
        "PidsLimit": True, "OomKillDisable": v1, "IPv4Forwarding": True,
        "BridgeNfIptables": True, "BridgeNfIp6tables": True, "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")), "NGoroutines": threading.active_count(),
        "SystemTime": datetime.now(UTC).isoformat(timespec="microseconds")
        .replace("+00:00", "Z"),
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
        "CgroupVersion": _cgroup_version(), "NEventsListener": 0,
        "KernelVersion": _kernel(), "OperatingSystem": _os_name(), "OSVersion": "",
        "OSType": "linux", "Architecture": platform.machine(), "NCPU": cpu_count(),
        "MemTotal": _mem_total(), "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [],
                           "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": [], "IndexConfigs": {
                               host: {"Name": host, "Mirrors": [], "Secure": False,
                                      "Official": False} for host in insecure},
                           "Mirrors": []},
        "GenericResources": None, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": svc.host, "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__,
        "Runtimes": {runtime: {"path": runtime}}, "DefaultRuntime": runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        # Containers run under their own monitors and outlive the daemon.
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""}, "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=default", "name=userns",
                            "name=no-new-privileges"],
        "DefaultAddressPools": [], "Warnings": [],
    }


# -- events --------------------------------------------------------------------------------

@router.get("/events")
async def events(svc: Svc, ctx: Ctx, since: str | None = None, until: str | None = None,
                 filters: str | None = None) -> StreamingResponse:
    """Docker's event stream: the caller's project's events (replayed from the hub's recent
    ones when ``since`` asks), one JSON object a line, ending at ``until``."""
    wanted = DockerEventFilter.parse(parse_filters(filters))  # 400 before streaming
    start, end = time_window(since, until)

    async def body() -> AsyncIterator[bytes]:
        async for event in feed(svc.hub, start, end):
            if event is None or event.get("project_id") != ctx.project_id:
                continue
            shaped = docker_event(event)
            if wanted.matches(shaped):
                yield (json.dumps(shaped) + "\n").encode()

    return StreamingResponse(body(), media_type="application/json")


# -- disk usage ----------------------------------------------------------------------------

@router.get("/system/df")
def system_df(svc: Svc, ctx: Ctx) -> dict[str, Any]:
    use = diskuse.measure(ctx, svc.containers, svc.images, svc.volumes, svc.quotas,
                          svc.builds.cache if svc.builds is not None else None)
    configs = {image.id: image.config.get("config") or {} for image, _, _ in use.images}
    images = [{**imageshapes.list_item(image, tags), "SharedSize": 0, "Containers": users}
              for image, tags, users in use.images]
    containers = [{**shapes.summary(row, configs.get(row.image_id, {})),
                   "SizeRw": rw, "SizeRootFs": root_fs} for row, rw, root_fs in use.containers]
    volumes = [{**volume_shape(svc, ctx, vol), "UsageData": {"Size": size, "RefCount": users}}
               for vol, size, users in use.volumes]
    cache = [{"ID": e.key, "Parent": "", "Type": "regular", "Description": e.description,
              "InUse": e.in_use, "Shared": e.shared, "Size": e.size,
              "CreatedAt": iso(e.created_at), "LastUsedAt": iso(e.last_used_at),
              "UsageCount": e.usage_count} for e in use.build_cache]
    return {"LayersSize": use.layers_size, "Images": images, "Containers": containers,
            "Volumes": volumes, "BuildCache": cache}


# -- registry login ------------------------------------------------------------------------

@router.post("/auth")
async def auth(request: Request, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """Check the credentials with the registry and keep them for the caller's project."""
    body = await read_json(request)
    if body.get("identitytoken") or body.get("registrytoken"):
        raise InvalidArgument("logging in with a token is not supported: give a username "
                              "and password")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username or not isinstance(password, str):
        raise InvalidArgument("a username and a password are needed")
    server = body.get("serveraddress") or "https://index.docker.io/v1/"
    if not isinstance(server, str):
        raise InvalidArgument("serveraddress: expected a string")
    host = urlsplit(server).netloc if "://" in server else server.split("/", 1)[0]
    await asyncio.to_thread(svc.registry.login, ctx, host, username, password)
    return {"Status": "Login Succeeded", "IdentityToken": ""}
