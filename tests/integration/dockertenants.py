"""Docker clients acting as a project's member (a token in the Authorization header)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from berth.client import APIError, Client
from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, dockerpy, scratch_dir


def member_token(d: Daemon, project: str, user: str) -> str:
    """A new project with a new member; that member's token (acting in the project)."""
    admin = d.client
    admin.projects.create(project)
    admin.users.create(user)
    admin.projects.set_member(project, user, "member")
    return Client(d.host, project=project).tokens.create(f"{user}-docker", user=user)["token"]


@contextlib.contextmanager
def member_of_new_project(d: Daemon, project: str, user: str) -> Iterator[Client]:
    """A new project with busybox and a member: that member's SDK client. What the test
    leaves of the project's containers and volumes is removed after it."""
    member = Client(d.host, token=member_token(d, project, user))
    Client(d.host, project=project).images.build_base("busybox")
    try:
        yield member
    finally:
        for box in member.containers.list(all=True):
            with contextlib.suppress(APIError):
                member.containers.remove(box["id"], force=True)
        for vol in member.volumes.list():
            with contextlib.suppress(APIError):
                member.volumes.remove(vol["name"])


def dockerpy_as(d: Daemon, token: str) -> Any:
    client = dockerpy(d)
    client.api.headers["Authorization"] = f"Bearer {token}"
    return client


def config_as(token: str) -> Path:
    """A docker CLI config dir whose requests carry the token (config.json HttpHeaders)."""
    path = scratch_dir("berth-docker-member-")
    (path / "config.json").write_text(json.dumps(
        {"HttpHeaders": {"Authorization": f"Bearer {token}"}}))
    return path


def docker_as(d: Daemon, config: Path, *args: str, check: bool = True
              ) -> subprocess.CompletedProcess[str]:
    return docker(d, *args, check=check, config=config)
