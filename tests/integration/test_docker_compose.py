"""docker-compose (Debian's, on docker-py) brings a multi-service project up against Berth's
Docker socket, its services run, and `down` removes everything it made."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, docker_env

pytestmark = pytest.mark.integration
COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"
PROJECT = "berthdemo"

COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo web is up; echo $$ROLE > /data/role; exec sleep 300"]
    environment:
      ROLE: frontend
    labels:
      tier: web
    volumes:
      - data:/data
  worker:
    image: busybox
    command: ["sh", "-c", "echo worker is up; exec sleep 300"]
    depends_on:
      - web
    volumes:
      - data:/shared:ro
volumes:
  data: {}
"""


def compose(d: Daemon, workdir: Path, *args: str, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([COMPOSE, "-p", PROJECT, *args], cwd=workdir, env=docker_env(d),
                         capture_output=True, text=True, timeout=180)
    if check and res.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)} -> {res.returncode}\n"
                             f"stdout: {res.stdout}\nstderr: {res.stderr}")
    return res


def _project_objects(d: Daemon) -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={PROJECT}"
    return {
        "containers": docker(d, "ps", "-aq", "--filter", label).stdout.split(),
        "networks": docker(d, "network", "ls", "-q", "--filter", label).stdout.split(),
        "volumes": docker(d, "volume", "ls", "-q", "--filter", label).stdout.split(),
    }


def test_compose_up_runs_the_services_and_down_removes_everything(
        daemon: Daemon, tmp_path: Path) -> None:
    assert Path(COMPOSE).exists(), "docker-compose is missing: scripts/setup.sh " \
                                   "(BERTH_WITH_TEST_TOOLS=1) installs Debian's docker-compose"
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    try:
        compose(daemon, tmp_path, "up", "-d")
        made = _project_objects(daemon)
        assert len(made["containers"]) == 2
        assert len(made["networks"]) == 1 and len(made["volumes"]) == 1

        states = {}
        for cid in made["containers"]:
            info = json.loads(docker(daemon, "inspect", cid).stdout)[0]
            service = info["Config"]["Labels"]["com.docker.compose.service"]
            states[service] = info
        assert set(states) == {"web", "worker"}
        assert all(s["State"]["Running"] for s in states.values())
        assert states["web"]["Config"]["Labels"]["tier"] == "web"
        assert "ROLE=frontend" in states["web"]["Config"]["Env"]
        # the shared named volume: written by web, read by worker (mounted read-only there)
        daemon.wait_for(lambda: docker(daemon, "exec", states["worker"]["Id"], "cat",
                                       "/shared/role", check=False).stdout.strip()
                        == "frontend", what="the worker to see web's file")
        assert docker(daemon, "exec", states["worker"]["Id"], "touch", "/shared/x",
                      check=False).returncode != 0

        ps = compose(daemon, tmp_path, "ps").stdout
        assert f"{PROJECT}_web_1" in ps and f"{PROJECT}_worker_1" in ps
        assert ps.count("Up") == 2, ps
        logs = compose(daemon, tmp_path, "logs", "--no-color").stdout
        assert "web is up" in logs and "worker is up" in logs
        assert compose(daemon, tmp_path, "exec", "-T", "web", "cat", "/data/role"
                       ).stdout.strip() == "frontend"

        compose(daemon, tmp_path, "down", "-v")
        assert _project_objects(daemon) == {"containers": [], "networks": [], "volumes": []}
    finally:
        compose(daemon, tmp_path, "down", "-v", "-t", "1", check=False)
