"""What every route needs: the daemon's services and the caller's context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Path, Request

from berth.service.context import Context

if TYPE_CHECKING:
    from berth.agent.agent import Agent
    from berth.agent.hostops import HostOps
    from berth.service.builds import BuildService
    from berth.service.commits import CommitService
    from berth.service.containerfs import ContainerFiles
    from berth.service.containers import ContainerService
    from berth.service.credentials import CredentialService
    from berth.service.hub import Hub
    from berth.service.identity import IdentityService
    from berth.service.idmaps import IdMaps
    from berth.service.images import ImageService
    from berth.service.networks import NetworkService
    from berth.service.pods import PodService
    from berth.service.pulls import PullService
    from berth.service.quotas import QuotaService
    from berth.service.registry import RegistryService
    from berth.service.trust import TrustService
    from berth.service.vips import VipServices
    from berth.service.volumes import VolumeService


# An action's id is a store row id: a 64-bit integer (a larger one is a 400, not a 500).
ActionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="an action's id")]


@dataclass
class Services:
    containers: ContainerService
    images: ImageService
    volumes: VolumeService
    hub: Hub
    hostops: HostOps
    commits: CommitService
    registry: RegistryService
    credentials: CredentialService
    trust: TrustService
    identity: IdentityService
    pulls: PullService
    agent: Agent | None
    host: str
    info: dict
    local_root_admin: bool = True  # root on the unix socket acts as the admin
    quotas: QuotaService | None = None
    idmaps: IdMaps | None = None  # each project's user-namespace range
    files: ContainerFiles | None = None  # a container's files: copy in and out, export, diff
    networks: NetworkService | None = None  # Docker networks (recorded, see service/networks)
    builds: BuildService | None = None  # Dockerfile builds
    pods: PodService | None = None  # containers sharing an infra container's namespaces
    vips: VipServices | None = None  # label-selector services and their virtual IPs


async def services(request: Request) -> Services:
    # async: FastAPI runs a plain def dependency in a worker thread, a hop per request for
    # an attribute read.
    return request.app.state.services


def context(request: Request) -> Context:
    """The authenticated caller's context (see api/auth.py)."""
    from berth.api.auth import authenticate, is_write

    return authenticate(request, is_write(request.method, request.scope.get("endpoint")))
