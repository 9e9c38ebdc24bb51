"""Builds through the Docker API's POST /build: the docker CLI's legacy builder
(DOCKER_BUILDKIT=0), docker-py's images.build, docker-compose's `build:`; a client that goes
away stops the build and leaves nothing behind."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, docker_env, dockerpy
from tests.integration.test_build import write

pytestmark = pytest.mark.integration
COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"


def leftovers(d: Daemon) -> list[str]:
    """Build containers still present (Berth names them berth-build-...)."""
    names = docker(d, "ps", "-a", "--format", "{{.Names}}").stdout.split()
    return [n for n in names if n.startswith("berth-build")]


def docker_api(d: Daemon) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(d.docker_socket)),
                        base_url="http://docker", timeout=60)


def context_tar(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def test_docker_cli_build(daemon: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx", {
        "Dockerfile": ("FROM busybox\nARG V=dflt\nCOPY keep.txt /keep.txt\n"
                       "RUN echo $V > /v && ls / > /listing\nCMD [\"cat\", \"/v\"]\n"),
        "keep.txt": "kept\n", "secret.txt": "nope\n", ".dockerignore": "secret.txt\n"})
    res = docker(daemon, "build", "-t", "dk:1", "--build-arg", "V=given", "--label", "team=a",
                 str(ctx))
    assert "Step 1/5 : FROM busybox" in res.stdout
    assert "Step 4/5 : RUN echo $V > /v && ls / > /listing" in res.stdout
    assert "Successfully built" in res.stdout and "Successfully tagged dk:1" in res.stdout
    assert docker(daemon, "run", "--rm", "dk:1").stdout == "given\n"
    assert docker(daemon, "run", "--rm", "dk:1", "cat", "/keep.txt").stdout == "kept\n"
    labels = json.loads(docker(daemon, "inspect", "--format", "{{json .Config.Labels}}",
                               "dk:1").stdout)
    assert labels == {"team": "a"}
    # -q prints the image id alone, and it is the tag's id
    quiet = docker(daemon, "build", "-q", "-t", "dk:2", str(ctx)).stdout.strip()
    assert quiet.startswith("sha256:")
    assert docker(daemon, "inspect", "--format", "{{.Id}}", "dk:2").stdout.strip() == quiet
    # the second build reused every step
    again = docker(daemon, "build", "--build-arg", "V=given", str(ctx)).stdout
    assert again.count("Using cache") == 3
    assert leftovers(daemon) == []


def test_docker_cli_dockerfile_elsewhere_and_stdin(daemon: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx", {"data.txt": "from ctx\n"})
    other = write(tmp_path / "other", {"Build.df": "FROM busybox\nCOPY data.txt /d\n"})
    docker(daemon, "build", "-t", "dk:elsewhere", "-f", str(other / "Build.df"), str(ctx))
    assert docker(daemon, "run", "--rm", "dk:elsewhere", "cat", "/d").stdout == "from ctx\n"
    docker(daemon, "build", "-t", "dk:stdin", "-f", "-", str(ctx),
           input="FROM busybox\nCOPY data.txt /s\n")
    assert docker(daemon, "run", "--rm", "dk:stdin", "cat", "/s").stdout == "from ctx\n"


def test_docker_cli_failing_run_exits_with_its_code(daemon: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo about to fail\nRUN exit 7\n"})
    res = docker(daemon, "build", "--no-cache", str(ctx), check=False)
    assert res.returncode == 7, res
    assert "about to fail" in res.stdout
    assert "returned a non-zero code: 7" in res.stderr and "line 3" in res.stderr
    assert leftovers(daemon) == []
    unknown = write(tmp_path / "u", {"Dockerfile": "FROM busybox\nFROBNICATE\n"})
    res = docker(daemon, "build", str(unknown), check=False)
    assert res.returncode != 0 and "line 2" in res.stderr and "FROBNICATE" in res.stderr.upper()


def test_docker_py_build(daemon: Daemon, tmp_path: Path) -> None:
    import docker as docker_sdk

    ctx = write(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nARG WHO\nRUN echo $WHO > /who\n"})
    client = dockerpy(daemon)
    try:
        image, logs = client.images.build(path=str(ctx), tag="dpy:1",
                                          buildargs={"WHO": "docker-py"}, rm=True)
        assert "dpy:1" in image.tags
        assert any("Step 3/3" in chunk.get("stream", "") for chunk in logs)
        out = client.containers.run("dpy:1", ["cat", "/who"], remove=True)
        assert out == b"docker-py\n"
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 4\n")
        with pytest.raises(docker_sdk.errors.BuildError) as err:
            client.images.build(path=str(ctx))
        assert "returned a non-zero code: 4" in str(err.value)
    finally:
        client.close()
    assert leftovers(daemon) == []


def test_compose_build(daemon: Daemon, tmp_path: Path) -> None:
    write(tmp_path, {
        "docker-compose.yml": ('version: "3.8"\nservices:\n  app:\n    build:\n'
                               '      context: ./app\n      args:\n        FLAVOUR: compose\n'
                               '    image: composebuilt:1\n'),
        "app/Dockerfile": "FROM busybox\nARG FLAVOUR\nRUN echo $FLAVOUR > /flavour\n"})
    res = subprocess.run([COMPOSE, "-p", "buildproj", "build"], cwd=tmp_path,
                         env=docker_env(daemon), capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res
    assert docker(daemon, "run", "--rm", "composebuilt:1", "cat", "/flavour").stdout \
        == "compose\n"


def test_disconnect_cancels_the_build(daemon: Daemon) -> None:
    body = context_tar({"Dockerfile": "FROM busybox\nRUN echo started; sleep 120\n"})
    with docker_api(daemon) as api, api.stream(
            "POST", "/v1.41/build", params={"t": "never:1", "nocache": "1"}, content=body,
            headers={"Content-Type": "application/x-tar"}) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if "started" in line:
                break
        assert leftovers(daemon) != []  # the RUN container is there now
    deadline = time.monotonic() + 60
    while leftovers(daemon) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(daemon) == []
    assert docker(daemon, "images", "-q", "never:1").stdout.strip() == ""


def test_refusals(daemon: Daemon) -> None:
    with docker_api(daemon) as api:
        bad = io.BytesIO()
        with tarfile.open(fileobj=bad, mode="w") as tf:
            info = tarfile.TarInfo("../escape")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
        cases = [
            ({}, bad.getvalue(), "../escape"),
            ({"version": "2"}, context_tar({"Dockerfile": "FROM busybox\n"}), "BuildKit"),
            ({"remote": "https://example.com/x.git"}, b"", "remote"),
            ({"buildargs": "[1]"}, context_tar({"Dockerfile": "FROM busybox\n"}), "buildargs"),
            ({"dockerfile": "../Dockerfile"}, context_tar({"Dockerfile": "FROM busybox\n"}),
             "inside the context"),
            ({"platform": "linux/s390x"}, context_tar({"Dockerfile": "FROM busybox\n"}),
             "s390x"),
        ]
        for params, body, words in cases:
            resp = api.post("/v1.41/build", params=params, content=body,
                            headers={"Content-Type": "application/x-tar"})
            # 501 for what Berth does not implement (BuildKit, remote contexts)
            assert 400 <= resp.status_code < 500 or resp.status_code == 501, \
                (params, resp.status_code, resp.text)
            assert words in resp.json()["message"], (params, resp.text)
    assert leftovers(daemon) == []
