"""The docker CLI and docker-py on Berth's images: list, inspect, history, tag, rmi, pull and
push against a loopback registry, save/load, commit, prune, and the refusals.

The registry (Debian's docker-registry) asks for basic auth and berthd holds no login for it:
pushes and pulls work only because the docker CLI / docker-py send X-Registry-Auth, which
Berth uses for that request alone.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import _finish, _require_host
from tests.integration.daemon import Daemon, make_dirs
from tests.integration.dockertools import docker, docker_cli, docker_env, docker_json, dockerpy
from tests.integration.registry import (
    Registry,
    build_image,
    have_registry,
    push_built,
    start_registry,
)

pytestmark = pytest.mark.integration
BUSYBOX = Path("/bin/busybox").read_bytes()


@dataclass
class Env:
    daemon: Daemon
    registry: Registry
    config: Path  # a docker config dir holding the registry's credentials

    def ref(self, name: str) -> str:
        return f"{self.registry.host}/{name}"

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return docker(self.daemon, *args, check=check, config=self.config)

    def pipe(self, *args: str, data: bytes | None = None) -> bytes:
        """docker with binary stdin/stdout (save, load)."""
        res = subprocess.run([docker_cli(), *args], env=docker_env(self.daemon, self.config),
                             input=data, capture_output=True, timeout=120)
        assert res.returncode == 0, res.stderr.decode()
        return res.stdout

    def api(self) -> httpx.Client:
        transport = httpx.HTTPTransport(uds=str(self.daemon.docker_socket))
        return httpx.Client(transport=transport, base_url="http://docker", timeout=60)

    @property
    def auth(self) -> dict[str, str]:
        return {"username": self.registry.username or "",
                "password": self.registry.password or ""}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    _require_host()
    if not have_registry():
        pytest.skip("Debian's docker-registry is not installed (scripts/setup.sh installs it)")
    work = tmp_path_factory.mktemp("dimg")
    registry = start_registry(work / "registry", "basic")
    config = work / "docker-config"
    config.mkdir()
    secret = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": secret}}}))
    root, run = make_dirs()
    d = Daemon(root, run, args=["--insecure-registry", registry.host])
    d.start()
    d.cli("image", "build-base", "busybox")
    try:
        yield Env(d, registry, config)
    finally:
        try:
            _finish(d)
        finally:
            registry.stop()


def _ids(e: Env) -> set[str]:
    return set(e.docker("images", "-q", "--no-trunc").stdout.split())


def test_list_filter_format_inspect_history(env: Env) -> None:
    rows = [json.loads(line) for line in
            env.docker("images", "--format", "{{json .}}").stdout.splitlines()]
    assert [(r["Repository"], r["Tag"]) for r in rows] == [("busybox", "latest")]
    info = docker_json(env.daemon, "image", "inspect", "busybox")[0]
    assert info["Id"].startswith("sha256:") and info["Id"][7:19] == rows[0]["ID"]
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["Os"] == "linux" and info["RootFS"]["Type"] == "layers"
    assert info["RootFS"]["Layers"][0].startswith("sha256:")
    assert info["Config"]["Cmd"] and info["GraphDriver"]["Name"] == "overlay2"
    assert info["Created"].endswith("Z") and info["Size"] > 0
    assert env.docker("images", "-q").stdout.split() == [rows[0]["ID"]]
    assert env.docker("images", "--filter", "reference=busy*", "-q").stdout.strip() == \
        rows[0]["ID"]
    assert env.docker("images", "--filter", "reference=nothing*", "-q").stdout == ""
    assert env.docker("images", "--filter", "dangling=true", "-q").stdout == ""
    res = env.docker("images", "--filter", "colour=blue", check=False)
    assert res.returncode != 0 and "colour" in res.stderr
    hist = env.docker("history", "--no-trunc", "--format", "{{.ID}}|{{.Size}}", "busybox")
    first = hist.stdout.splitlines()[0].split("|")
    assert first[0] == info["Id"]
    res = env.docker("image", "inspect", "no-such-image:1", check=False)
    assert res.returncode != 0 and "no-such-image" in res.stderr


def test_tag_rmi_and_the_in_use_conflict(env: Env) -> None:
    env.docker("tag", "busybox", "team/extra:1")
    env.docker("tag", "busybox", env.ref("deep/name/here:v2"))
    tags = docker_json(env.daemon, "image", "inspect", "busybox")[0]["RepoTags"]
    assert set(tags) == {"busybox:latest", "team/extra:1", env.ref("deep/name/here:v2")}
    info = docker_json(env.daemon, "image", "inspect", env.ref("deep/name/here:v2"))[0]
    assert info["RepoTags"] == tags
    out = env.docker("rmi", "team/extra:1", env.ref("deep/name/here:v2")).stdout
    assert "Untagged: team/extra:1" in out and "Deleted" not in out
    # an image of its own, used by a container: 409 unless forced
    env.docker("tag", "busybox", "lonely:1")
    env.docker("rmi", "busybox")  # lonely:1 still names the image: untag only
    env.daemon.cli("create", "--name", "user-of-lonely", "lonely:1", "true")
    try:
        res = env.docker("rmi", "lonely:1", check=False)
        assert res.returncode != 0
        assert 'unable to remove repository reference "lonely:1" (must force)' in res.stderr
        assert "is using its referenced image" in res.stderr
        out = env.docker("rmi", "-f", "lonely:1").stdout
        assert "Untagged: lonely:1" in out
        assert env.docker("images", "--filter", "dangling=true", "-q").stdout.strip()
    finally:
        env.daemon.cli("rm", "-f", "user-of-lonely")
        env.docker("tag", info["Id"], "busybox:latest")
    assert env.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split() == \
        ["busybox:latest"]


def test_push_rmi_pull_and_run(env: Env) -> None:
    name = env.ref("team/app:v1")
    env.docker("tag", "busybox", name)
    out = env.docker("push", name).stdout
    assert f"The push refers to repository [{env.ref('team/app')}]" in out
    assert "Pushed" in out and "v1: digest: sha256:" in out
    digest = out.split("digest: ")[1].split()[0]
    # the same image under another tag: the registry has its layers already
    env.docker("tag", name, env.ref("team/app:v1b"))
    assert "Layer already exists" in env.docker("push", env.ref("team/app:v1b")).stdout
    env.docker("rmi", name, env.ref("team/app:v1b"))
    res = env.docker("pull", name)
    assert "Pulling from team/app" in res.stdout and f"Digest: {digest}" in res.stdout
    assert f"Status: Downloaded newer image for {name}" in res.stdout
    again = env.docker("pull", name).stdout
    assert f"Status: Image is up to date for {name}" in again
    info = docker_json(env.daemon, "image", "inspect", name)[0]
    assert f"{env.ref('team/app')}@{digest}" in info["RepoDigests"]
    assert env.daemon.cli("run", "--name", "pulled", name, "echo", "from the registry"
                          ).stdout == "from the registry\n"
    env.daemon.cli("rm", "pulled")
    # by digest
    res = env.docker("pull", f"{env.ref('team/app')}@{digest}")
    assert f"Digest: {digest}" in res.stdout
    env.docker("rmi", name)


def test_pull_refusals_are_plain_errors(env: Env) -> None:
    res = env.docker("pull", env.ref("no-such:tag"), check=False)
    assert res.returncode != 0 and "not found" in res.stderr.lower()
    with env.api() as api:
        bad = api.post("/v1.41/images/create", params={"fromImage": "Not Valid!!", "tag": "x"})
        assert bad.status_code == 400 and "invalid reference" in bad.json()["message"]
        none = api.post("/v1.41/images/create", params={"fromImage": env.ref("x"), "tag": ""})
        assert none.status_code == 501 and "every tag" in none.json()["message"]
        garbage = api.post("/v1.41/images/create", params={"fromImage": env.ref("x:1")},
                           headers={"X-Registry-Auth": "%%%not-base64"})
        assert garbage.status_code == 400 and "X-Registry-Auth" in garbage.json()["message"]
        # wrong credentials in the header: the registry's refusal, before any progress
        wrong = base64.urlsafe_b64encode(json.dumps(
            {"username": env.registry.username, "password": "wrong-xyzzy",
             "serveraddress": env.registry.host}).encode()).decode()
        res = api.post("/v1.41/images/create", params={"fromImage": env.ref("team/app:v1")},
                       headers={"X-Registry-Auth": wrong})
        assert res.status_code == 401 and "xyzzy" not in res.text
    # without the header (another docker config) berthd has no credentials to use: the CLI
    # sees a 401 and asks for a login
    res = docker(env.daemon, "pull", env.ref("team/app:v1"), check=False)
    assert res.returncode != 0 and "Please login prior to pull" in res.stdout


def test_save_load_roundtrip(env: Env, tmp_path: Path) -> None:
    env.docker("tag", "busybox", "saved/one:1")
    env.docker("tag", "busybox", "saved/two:2")
    archive = tmp_path / "two.tar"
    env.docker("save", "-o", str(archive), "saved/one:1", "saved/two:2")
    manifest = json.loads(subprocess.run(["tar", "-xOf", str(archive), "manifest.json"],
                                         check=True, capture_output=True).stdout)
    assert sorted(t for m in manifest for t in m["RepoTags"]) == ["saved/one:1", "saved/two:2"]
    env.docker("rmi", "saved/one:1", "saved/two:2")
    out = env.docker("load", "-i", str(archive)).stdout
    assert "Loaded image: saved/one:1" in out and "Loaded image: saved/two:2" in out
    env.docker("rmi", "saved/one:1", "saved/two:2")
    # through a pipe: docker save busybox | docker load
    data = env.pipe("save", "busybox")
    assert len(data) > 100_000
    before = _ids(env)
    assert b"Loaded image: busybox:latest" in env.pipe("load", data=data)
    assert _ids(env) == before


def test_load_of_garbage_is_refused_and_leaves_nothing(env: Env) -> None:
    before = _ids(env)
    with env.api() as api:
        for body in (b"this is not a tarball" * 100, b""):
            res = api.post("/v1.41/images/load", content=body,
                           headers={"Content-Type": "application/x-tar"})
            assert res.status_code == 400 and res.json()["message"]
    res = subprocess.run([docker_cli(), "load"], env=docker_env(env.daemon, env.config),
                         input=b"\0" * 4096, capture_output=True, timeout=60)
    assert res.returncode != 0 and res.stderr
    assert _ids(env) == before


def test_commit_with_changes_then_prune(env: Env) -> None:
    d = env.daemon
    d.cli("run", "--name", "to-commit", "busybox", "sh", "-c", "echo kept > /made-here")
    try:
        out = env.docker("commit", "--change", 'CMD ["echo","x"]', "-c", "ENV A=b",
                         "-m", "a message", "-a", "someone", "to-commit", "committed:1")
        image_id = out.stdout.strip()
        assert image_id.startswith("sha256:")
        info = docker_json(d, "image", "inspect", "committed:1")[0]
        assert info["Id"] == image_id and info["Config"]["Cmd"] == ["echo", "x"]
        assert "A=b" in info["Config"]["Env"] and info["Author"] == "someone"
        assert info["Comment"] == "a message"
        assert len(info["RootFS"]["Layers"]) == 2
        assert d.cli("run", "--name", "c1", "committed:1").stdout == "x\n"
        assert d.cli("run", "--name", "c2", "committed:1", "cat", "/made-here").stdout == \
            "kept\n"
        d.cli("rm", "c1", "c2")
        # docker-py's conf: a Config merged into the image
        c = dockerpy(d)
        made = c.api.commit("to-commit", conf={"Env": ["FROM_CONF=yes please"],
                                               "Labels": {"made": "by-docker-py"}})
        img = c.images.get(made["Id"])
        assert "FROM_CONF=yes please" in img.attrs["Config"]["Env"]
        assert img.labels == {"made": "by-docker-py"} and img.tags == []
        res = env.docker("commit", "-c", "RUN rm -rf /", "to-commit", check=False)
        assert res.returncode != 0 and "RUN" in res.stderr
        res = env.docker("commit", "no-such-container", check=False)
        assert res.returncode != 0 and "no-such-container" in res.stderr
    finally:
        d.cli("rm", "-f", "to-commit")
    # the docker-py commit made a dangling image: prune removes it, keeps the tagged ones
    dangling = env.docker("images", "--filter", "dangling=true", "-q", "--no-trunc")
    assert img.id in dangling.stdout.split()
    out = env.docker("image", "prune", "-f").stdout
    assert f"deleted: {img.id}" in out.lower() and "Total reclaimed space" in out
    assert img.id not in _ids(env) and image_id in _ids(env)
    res = env.docker("image", "prune", "-f", "--filter", "until=soon", check=False)
    assert res.returncode != 0 and "until" in res.stderr
    env.docker("rmi", "committed:1")


def test_search_is_not_available(env: Env) -> None:
    res = env.docker("search", "busybox", check=False)
    assert res.returncode != 0 and "search" in res.stderr and "no search index" in res.stderr


def test_build_pulls_its_base_with_the_clients_credentials(env: Env, tmp_path: Path) -> None:
    """docker build sends every login it has (X-Registry-Config); Berth holds none for this
    registry, so the FROM pull works only with those, for this build alone."""
    base = env.ref("bases/bb:1")
    env.docker("tag", "busybox", base)
    env.docker("push", base)
    env.docker("rmi", base)
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nRUN echo based > /b\n")
    res = env.docker("build", "-t", "onbase:1", str(tmp_path))
    assert f"Pulling {base}" in res.stdout
    assert env.docker("run", "--rm", "onbase:1", "cat", "/b").stdout == "based\n"
    # without the client's credentials the registry refuses the pull
    env.docker("rmi", "onbase:1", base)
    res = docker(env.daemon, "build", "--pull", str(tmp_path), check=False)
    assert res.returncode != 0 and "FROM" in res.stderr


def test_docker_py_images(env: Env) -> None:
    c = dockerpy(env.daemon)
    repo = env.ref("py/app")
    busybox = c.images.get("busybox")
    assert busybox.tag(repo, "t1") is True
    assert f"{repo}:t1" in c.images.get(busybox.id).tags
    lines = list(c.images.push(repo, tag="t1", auth_config=env.auth, stream=True,
                               decode=True))
    aux = [x["aux"] for x in lines if "aux" in x]
    assert aux and aux[0]["Tag"] == "t1" and aux[0]["Digest"].startswith("sha256:")
    assert not [x for x in lines if "error" in x]
    c.images.remove(f"{repo}:t1")
    pulled = c.images.pull(repo, tag="t1", auth_config=env.auth)
    assert pulled.id == busybox.id and f"{repo}:t1" in pulled.tags
    assert {i.id for i in c.images.list()} == {busybox.id}
    assert [i.id for i in c.images.list(filters={"reference": repo})] == [busybox.id]
    # save through docker-py, then load it back after removing the name
    blob = b"".join(c.images.get(f"{repo}:t1").save(named=True))
    c.images.remove(f"{repo}:t1")
    loaded = c.images.load(blob)
    assert [img.id for img in loaded] == [busybox.id]
    assert f"{repo}:t1" in c.images.get(busybox.id).tags
    c.images.remove(f"{repo}:t1")
    with pytest.raises(Exception, match="not found|No such image|no such image"):
        c.images.get("never-made:1")


def test_pull_progress_stream_shape(env: Env, tmp_path: Path) -> None:
    """A fresh image's layers go Pulling fs layer → Downloading → Download complete →
    Pull complete, each under its short digest, then Digest and Status. (Docker shows
    Extracting before Pull complete; Berth unpacks after the pull.)"""
    img = build_image([{"bin/busybox": (BUSYBOX, 0o755)}, {"etc/fresh": os.urandom(300_000)}],
                      label="fresh")
    push_built(env.registry, tmp_path, "fresh/app:1", img)
    c = dockerpy(env.daemon)
    lines = list(c.api.pull(env.ref("fresh/app"), tag="1", stream=True, decode=True,
                            auth_config=env.auth))
    assert lines[0] == {"status": "Pulling from fresh/app", "id": "1"}
    ids = [d[7:19] for d in img.layer_digests()]
    for short in ids:
        seen = [x["status"] for x in lines if x.get("id") == short]
        assert seen[0] == "Pulling fs layer" and seen[-1] == "Pull complete", seen
        assert "Download complete" in seen
    down = [x for x in lines if x.get("status") == "Downloading"]
    assert down and all(x["progressDetail"]["total"] > 0 and x["progress"].startswith("[")
                        for x in down)
    assert lines[-2] == {"status": f"Digest: {img.manifest_digest}"}
    assert lines[-1] == {"status": "Status: Downloaded newer image for "
                                   f"{env.ref('fresh/app:1')}"}
    env.daemon.cli("run", "--name", "fresh", env.ref("fresh/app:1"), "/bin/busybox", "true")
    env.daemon.cli("rm", "fresh")
    env.docker("rmi", env.ref("fresh/app:1"))


def test_import_rootfs_tarball(env: Env, tmp_path: Path) -> None:
    """docker import: a root filesystem tarball (gzip'd here) becomes a one-layer image."""
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(BUSYBOX), 0o755
        tar.addfile(info, io.BytesIO(BUSYBOX))
        note = b"imported\n"
        info = tarfile.TarInfo("etc/note")
        info.size = len(note)
        tar.addfile(info, io.BytesIO(note))
    before = _ids(env)
    image_id = env.pipe("import", "--change", 'CMD ["/bin/busybox","cat","/etc/note"]',
                        "-m", "from a tarball", "-", "imported:1",
                        data=gzip.compress(raw.getvalue())).decode().strip()
    info = docker_json(env.daemon, "image", "inspect", "imported:1")[0]
    assert info["Id"] == image_id and len(info["RootFS"]["Layers"]) == 1
    assert info["Comment"] == "from a tarball"
    assert info["Config"]["Cmd"] == ["/bin/busybox", "cat", "/etc/note"]
    env.daemon.cli("run", "--name", "from-import", "imported:1")
    try:
        assert env.daemon.cli("logs", "from-import").stdout == "imported\n"
    finally:
        env.daemon.cli("rm", "from-import")
    env.docker("rmi", "imported:1")
    # not a tarball, or a bad change: refused, nothing made
    for args, data in ((["-", "junk:1"], b"\x1f\x8bnot gzip at all" * 50),
                       (["-", "junk:1"], os.urandom(5000)),
                       (["--change", "RUN true", "-", "junk:1"], raw.getvalue())):
        res = subprocess.run([docker_cli(), "import", *args], input=data, capture_output=True,
                             env=docker_env(env.daemon, env.config), timeout=60)
        assert res.returncode != 0 and b"Error response from daemon" in res.stderr
    assert _ids(env) == before
