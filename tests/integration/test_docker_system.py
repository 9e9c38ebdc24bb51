"""System endpoints through the Docker API: info, version, events, disk usage, login."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker.errors import APIError as DockerAPIError

from tests.integration.conftest import _finish, _require_host
from tests.integration.daemon import Daemon, make_dirs
from tests.integration.dockertenants import config_as, dockerpy_as, member_token
from tests.integration.dockertools import (
    docker,
    docker_cli,
    docker_env,
    docker_json,
    dockerpy,
    scratch_dir,
)
from tests.integration.registry import Registry, have_registry, start_registry

pytestmark = pytest.mark.integration


def _events(d: Daemon, since: float, until: float, *filters: str,
            config: Path | None = None) -> list[dict[str, Any]]:
    args = [a for f in filters for a in ("--filter", f)]
    out = docker(d, "events", "--since", f"{since:.9f}", "--until", str(int(until)),
                 "--format", "{{json .}}", *args, config=config).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _later() -> float:
    """An until past every event made so far (the CLI sends whole seconds)."""
    return int(time.time()) + 1


@contextlib.contextmanager
def _container(d: Daemon, **spec: Any) -> Iterator[dict[str, Any]]:
    box = d.client.containers.create({"image": "busybox", "command": ["true"], **spec})
    try:
        yield box
    finally:
        d.client.containers.remove(box["id"], force=True)


def test_info_prints_and_counts_the_projects_containers(daemon: Daemon) -> None:
    d = daemon
    res = docker(d, "info")
    assert "Server Version: " in res.stdout and "Storage Driver: overlay2" in res.stdout
    assert "WARNING" not in res.stdout + res.stderr and "ERROR" not in res.stdout + res.stderr
    before = docker_json(d, "info", "--format", "{{json .}}")
    assert before["OSType"] == "linux" and before["DefaultRuntime"] == "runc"
    assert before["DockerRootDir"] == str(d.root)  # the host's admin sees host paths
    assert before["Images"] >= 1 and before["NCPU"] >= 1 and before["MemTotal"] > 0
    with _container(d):
        after = docker_json(d, "info", "--format", "{{json .}}")
        assert after["Containers"] == before["Containers"] + 1
        assert after["ContainersStopped"] + after["ContainersRunning"] + \
            after["ContainersPaused"] == after["Containers"]
    assert docker_json(d, "info", "--format", "{{json .}}")["Containers"] == \
        before["Containers"]

    member = dockerpy_as(d, member_token(d, "info-tenant", "ines")).info()
    assert member["DockerRootDir"] == "" and str(d.root) not in json.dumps(member)
    assert member["Containers"] == 0 and member["Images"] == 0  # her project's, not the host's


def test_version_and_docker_py_info(daemon: Daemon) -> None:
    d = daemon
    assert docker(d, "version", "--format", "{{.Server.APIVersion}}").stdout.strip() == "1.41"
    client = dockerpy(d)
    assert client.version()["ApiVersion"] == "1.41"
    info = client.info()
    assert info["Name"] and info["ServerVersion"] and "runc" in info["Runtimes"]
    assert "name=userns" in info["SecurityOptions"]
    # the ping recommends the classic builder: a CLI with buildx falls back to it
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(d.docker_socket))) as http:
        for method in ("HEAD", "GET"):
            assert http.request(method, "http://docker/_ping").headers["Builder-Version"] == "1"


def test_events_replay_a_containers_life_and_end_at_until(daemon: Daemon) -> None:
    d = daemon
    since = time.time() - 0.5
    d.cli("run", "--name", "evbox", "busybox", "true")
    cid = d.client.containers.get("evbox")["id"]
    d.client.containers.remove(cid)
    until = _later()
    mine = [e for e in _events(d, since, until) if e["Actor"]["ID"] == cid]
    actions = [e["Action"] for e in mine]
    for action in ("create", "start", "die", "destroy"):
        assert action in actions, actions
    assert actions.index("create") < actions.index("start") < actions.index("die")
    die = next(e for e in mine if e["Action"] == "die")
    assert die["Type"] == "container" and die["Actor"]["Attributes"]["name"] == "evbox"
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
    assert die["Actor"]["Attributes"]["image"] == "busybox" and die["from"] == "busybox"
    assert die["status"] == "die" and die["id"] == cid and die["scope"] == "local"
    assert die["timeNano"] // 10**9 == die["time"]

    only = _events(d, since, until, "container=evbox", "event=die")
    assert [(e["Actor"]["ID"], e["Action"]) for e in only] == [(cid, "die")]
    assert _events(d, since, until, "container=someone-else") == []

    client = dockerpy(d)
    seen = list(client.events(decode=True, since=int(since), until=until,
                              filters={"container": cid}))
    assert [e["Action"] for e in seen] == actions


def test_events_filter_by_type_and_label(daemon: Daemon) -> None:
    d = daemon
    since = time.time() - 0.5
    docker(d, "volume", "create", "--label", "colour=blue", "evvol")
    docker(d, "network", "create", "evnet")
    docker(d, "network", "rm", "evnet")
    docker(d, "volume", "rm", "evvol")
    until = _later()
    vols = _events(d, since, until, "type=volume")
    assert vols and all(e["Type"] == "volume" for e in vols)
    assert [(e["Actor"]["ID"], e["Action"]) for e in vols
            if e["Actor"]["ID"] == "evvol"] == [("evvol", "create"), ("evvol", "destroy")]
    nets = _events(d, since, until, "type=network", "network=evnet")
    assert [e["Action"] for e in nets] == ["create", "destroy"]
    assert nets[0]["Actor"]["Attributes"] == {"name": "evnet", "type": "bridge"}
    assert _events(d, since, until, "type=volume", "volume=evvol", "event=destroy")[0][
        "Actor"]["Attributes"] == {"driver": "local"}


def test_events_stream_live_until_its_end(daemon: Daemon) -> None:
    d = daemon
    start = time.time()
    proc = subprocess.Popen([docker_cli(), "events", "--since", f"{start:.9f}", "--until",
                             str(int(start) + 4), "--filter", "type=volume",
                             "--format", "{{.Actor.ID}} {{.Action}}"],
                            env=docker_env(d), stdout=subprocess.PIPE, text=True)
    try:
        docker(d, "volume", "create", "livevol")
        docker(d, "volume", "rm", "livevol")
        out, _ = proc.communicate(timeout=60)  # it ends by itself at until
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out.splitlines() == ["livevol create", "livevol destroy"]


def test_events_show_only_the_callers_project(daemon: Daemon) -> None:
    d = daemon
    token = member_token(d, "events-tenant", "eve")
    since = time.time() - 0.5
    member = dockerpy_as(d, token)
    member.volumes.create("eves-volume")
    docker(d, "volume", "create", "admins-volume")
    until = _later()
    admin_seen = {e["Actor"]["ID"] for e in _events(d, since, until, "type=volume")}
    member_seen = {e["Actor"]["ID"] for e in _events(d, since, until, "type=volume",
                                                     config=config_as(token))}
    assert "admins-volume" in admin_seen and "eves-volume" not in admin_seen
    assert member_seen == {"eves-volume"}
    member.volumes.get("eves-volume").remove()
    docker(d, "volume", "rm", "admins-volume")


def test_events_bad_input_is_refused(daemon: Daemon) -> None:
    d = daemon
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(d.docker_socket))) as http:
        for query, words in (({"filters": '{"colour": ["red"]}'}, "invalid filter 'colour'"),
                             ({"since": "20", "until": "10"}, "must be before"),
                             ({"since": "yesterday-ish"}, "invalid time"),
                             ({"filters": "[1]"}, "invalid filters")):
            res = http.get("http://docker/v1.41/events", params=query)
            assert res.status_code == 400, (query, res.text)
            assert words in res.json()["message"]


def test_system_df(daemon: Daemon) -> None:
    d = daemon
    with _container(d, mounts=[{"type": "volume", "source": "dfvol", "target": "/data"}]) \
            as box:
        res = docker(d, "system", "df", "-v")
        assert "dfvol" in res.stdout and box["id"][:12] in res.stdout
        assert "busybox" in res.stdout
        usage = dockerpy(d).df()
        [vol] = [v for v in usage["Volumes"] if v["Name"] == "dfvol"]
        assert vol["UsageData"]["RefCount"] == 1 and vol["UsageData"]["Size"] >= 0
        [ctr] = [c for c in usage["Containers"] if c["Id"] == box["id"]]
        assert ctr["Names"] == [f"/{box['name']}"] and ctr["SizeRw"] >= 0
        [img] = [i for i in usage["Images"] if "busybox:latest" in i["RepoTags"]]
        assert ctr["SizeRootFs"] == ctr["SizeRw"] + img["Size"]
        assert img["Containers"] >= 1 and usage["LayersSize"] >= img["Size"] > 0
        assert usage["BuildCache"] == []
        summary = docker(d, "system", "df").stdout
        assert "Local Volumes" in summary and "Images" in summary
    docker(d, "volume", "rm", "dfvol")


def test_ps_and_inspect_with_size_report_the_writable_layer(daemon: Daemon) -> None:
    d = daemon
    api = dockerpy(d).api
    box = api.create_container("busybox", ["sh", "-c", "head -c 3000000 /dev/zero > /big"])
    try:
        api.start(box["Id"])
        assert api.wait(box["Id"])["StatusCode"] == 0
        image = api.inspect_image("busybox")
        [shown] = docker_json(d, "inspect", "-s", box["Id"])
        assert 3_000_000 <= shown["SizeRw"] < 3_200_000
        assert shown["SizeRootFs"] == shown["SizeRw"] + image["Size"]
        assert "SizeRw" not in api.inspect_container(box["Id"])  # walked only when asked for
        [listed] = api.containers(all=True, size=True, filters={"id": box["Id"]})
        assert (listed["SizeRw"], listed["SizeRootFs"]) == (shown["SizeRw"],
                                                           shown["SizeRootFs"])
        assert "SizeRw" not in api.containers(all=True, filters={"id": box["Id"]})[0]
        out = docker(d, "ps", "-a", "-s", "--filter", f"id={box['Id']}").stdout
        assert "SIZE" in out.splitlines()[0] and "3MB (virtual" in out, out
    finally:
        api.remove_container(box["Id"], force=True)


# -- registry login: a daemon of its own, trusting a loopback htpasswd registry --------------

@pytest.fixture(scope="module")
def login_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Registry]]:
    _require_host()
    if not have_registry():
        pytest.skip("Debian's docker-registry is not installed (scripts/setup.sh installs it)")
    registry = start_registry(tmp_path_factory.mktemp("login") / "registry", "basic")
    root, run = make_dirs()
    d = Daemon(root, run, args=["--insecure-registry", registry.host])
    d.start()
    try:
        yield d, registry
    finally:
        try:
            _finish(d)
        finally:
            registry.stop()


def test_docker_login_checks_the_password_with_the_registry(
        login_env: tuple[Daemon, Registry]) -> None:
    d, reg = login_env
    config = scratch_dir("berth-docker-login-")
    bad = docker(d, "login", "-u", reg.username, "--password-stdin", reg.host,
                 input="wrong-password-xyzzy\n", check=False, config=config)
    assert bad.returncode != 0 and "Error response from daemon" in bad.stderr
    assert "xyzzy" not in bad.stdout + bad.stderr
    assert d.client.registries.list() == []
    good = docker(d, "login", "-u", reg.username, "--password-stdin", reg.host,
                  input=reg.password + "\n", config=config)
    assert "Login Succeeded" in good.stdout
    assert [x["registry"] for x in d.client.registries.list()] == [reg.host]
    assert dockerpy(d).login(reg.username, reg.password, registry=f"http://{reg.host}",
                             reauth=True)["Status"] == "Login Succeeded"
    with pytest.raises(DockerAPIError) as err:
        dockerpy(d).login(reg.username, "nope", registry=reg.host, reauth=True)
    assert err.value.status_code == 401
    res = docker(d, "login", "-u", reg.username, "--password-stdin", "127.0.0.1:1",
                 input="x\n", check=False, config=config)
    assert res.returncode != 0 and "Error response from daemon" in res.stderr, res.stderr
    assert "127.0.0.1:1" in res.stderr
