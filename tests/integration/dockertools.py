"""The real docker CLI and docker-py, pointed at a test daemon's Docker socket."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.integration.daemon import Daemon

# Debian's docker.io client (API 1.41), which scripts/setup.sh installs for the tests; any
# other docker on PATH otherwise.
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")


def scratch_dir(prefix: str) -> Path:
    """A private temporary dir, removed when the test run ends (docker configs hold tokens)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


_CONFIG_DIR = scratch_dir("berth-docker-config-")


def docker_cli() -> str:
    assert DOCKER, "the docker CLI is missing: scripts/setup.sh (BERTH_WITH_TEST_TOOLS=1) " \
                   "installs Debian's docker.io"
    return DOCKER


def docker_env(d: Daemon, config: Path | None = None) -> dict[str, str]:
    """DOCKER_HOST at the daemon; a config dir of the test's own (no user's settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=d.docker_host, DOCKER_CONFIG=str(config or _CONFIG_DIR),
               DOCKER_BUILDKIT="0", DOCKER_CLI_HINTS="false")
    return env


def docker(d: Daemon, *args: str, check: bool = True, input: str | None = None,
           timeout: float = 120, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([docker_cli(), *args], env=docker_env(d, config), capture_output=True,
                         text=True, input=input, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {res.returncode}\n"
                             f"stdout: {res.stdout}\nstderr: {res.stderr}")
    return res


def docker_json(d: Daemon, *args: str) -> Any:
    return json.loads(docker(d, *args).stdout)


def dockerpy(d: Daemon, **kwargs: Any) -> Any:
    import docker as docker_sdk

    return docker_sdk.DockerClient(base_url=d.docker_host, timeout=120, **kwargs)
