"""Docker clients acting as a project's member (a token in the Authorization header)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from berth.client import Client
from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, dockerpy, scratch_dir


def member_token(d: Daemon, project: str, user: str) -> str:
    """A new project with a new member; that member's token (acting in the project)."""
    admin = d.client
    admin.projects.create(project)
    admin.users.create(user)
    admin.projects.set_member(project, user, "member")
    return Client(d.host, project=project).tokens.create(f"{user}-docker", user=user)["token"]


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
