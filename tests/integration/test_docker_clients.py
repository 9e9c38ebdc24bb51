"""Every docker CLI on the machine, not only Debian's 20.10: newer clients send newer shapes
(a 28.x CLI names the default endpoint "default", 20.10 "bridge") while negotiating API 1.41."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker_cli, docker_env

pytestmark = pytest.mark.integration


def _clients() -> list[str]:
    found = [docker_cli()]
    for path in (shutil.which("docker"), "/usr/local/bin/docker"):
        if path and os.path.exists(path) and os.path.realpath(path) not in map(
                os.path.realpath, found):
            found.append(path)
    return found


@pytest.mark.parametrize("cli", _clients())
def test_each_docker_cli_runs_execs_lists_and_builds(daemon: Daemon, cli: str,
                                                     tmp_path: Path) -> None:
    env = docker_env(daemon)  # DOCKER_BUILDKIT=0: the legacy builder's POST /build

    def run(*args: str) -> str:
        res = subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"{cli} {' '.join(args)}: {res.stderr}"
        return res.stdout

    assert run("run", "--rm", "busybox", "echo", "hi") == "hi\n"
    cid = run("run", "-d", "busybox", "sleep", "300").strip()
    try:
        assert run("exec", cid, "cat", "/etc/hostname").strip() == cid[:12]
        assert cid in run("ps", "-q", "--no-trunc").split()
        assert run("inspect", "--format", "{{.State.Running}}", cid).strip() == "true"
    finally:
        run("rm", "-f", cid)
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nRUN echo {len(cli)} > /n\n")
    image = run("build", "-q", str(tmp_path)).strip()
    assert image.startswith("sha256:")
    assert run("run", "--rm", image, "cat", "/n") == f"{len(cli)}\n"
