"""Volumes through the Docker API: the real docker CLI and docker-py against berthd."""

from __future__ import annotations

import json

import pytest
from docker.errors import NotFound as DockerNotFound

from tests.integration.daemon import Daemon
from tests.integration.dockertenants import config_as, docker_as, dockerpy_as, member_token
from tests.integration.dockertools import docker, docker_json, dockerpy

pytestmark = pytest.mark.integration


def _names(d: Daemon, *filters: str) -> list[str]:
    args = [a for f in filters for a in ("--filter", f)]
    out = docker(d, "volume", "ls", "--format", "{{.Name}}", *args).stdout
    return sorted(out.split())


def test_create_list_inspect_remove_prune_with_labels(daemon: Daemon) -> None:
    d = daemon
    assert docker(d, "volume", "create", "--label", "team=a", "--label", "tier", "va") \
        .stdout.strip() == "va"
    docker(d, "volume", "create", "--label", "team=b", "vb")
    anon = docker(d, "volume", "create").stdout.strip()
    assert len(anon) == 64
    assert {"va", "vb", anon} <= set(_names(d))
    assert _names(d, "label=team=a") == ["va"]
    assert _names(d, "label=team") == ["va", "vb"]
    assert _names(d, "label=tier", "name=v") == ["va"]
    assert _names(d, "driver=local", "name=vb") == ["vb"]
    [info] = docker_json(d, "volume", "inspect", "va")
    assert info["Name"] == "va" and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"team": "a", "tier": ""}
    assert info["Mountpoint"].endswith("/va/_data")  # the admin sees the host path
    assert info["CreatedAt"].endswith("Z")
    # Creating an existing volume answers it, as Docker does.
    assert docker(d, "volume", "create", "va").stdout.strip() == "va"

    res = docker(d, "volume", "prune", "--force", "--filter", "label=team=b")
    assert "vb" in res.stdout and "va" not in res.stdout
    assert "vb" not in _names(d)
    docker(d, "volume", "rm", "va", anon)
    assert not {"va", anon} & set(_names(d))
    res = docker(d, "volume", "inspect", "va", check=False)
    assert res.returncode != 0 and "no such volume" in res.stderr.lower()
    docker(d, "volume", "rm", "--force", "never-was")  # force: missing is fine
    res = docker(d, "volume", "rm", "never-was", check=False)
    assert res.returncode != 0 and "never-was" in res.stderr


def test_in_use_volume_is_refused_with_the_container_id(daemon: Daemon) -> None:
    d = daemon
    box = d.client.containers.create({"image": "busybox", "command": ["true"],
                                      "mounts": [{"type": "volume", "source": "used",
                                                  "target": "/data"}]})
    try:
        res = docker(d, "volume", "rm", "used", check=False)
        assert res.returncode != 0
        assert f"remove used: volume is in use - [{box['id']}]" in res.stderr
        assert "used" in _names(d, "dangling=false")
        assert "used" not in _names(d, "dangling=true")
        out = docker(d, "volume", "prune", "--force").stdout
        assert "used" not in out
        [info] = docker_json(d, "volume", "inspect", "used")
        assert info["Name"] == "used"
    finally:
        d.client.containers.remove(box["id"], force=True)
    docker(d, "volume", "rm", "used")


def test_unsupported_drivers_and_options_are_refused(daemon: Daemon) -> None:
    d = daemon
    res = docker(d, "volume", "create", "--driver", "nfs", "x1", check=False)
    assert res.returncode != 0 and "nfs" in res.stderr and "not supported" in res.stderr
    res = docker(d, "volume", "create", "--opt", "type=nfs", "x2", check=False)
    assert res.returncode != 0 and "type 'nfs' are not supported" in res.stderr
    res = docker(d, "volume", "create", "bad/name", check=False)
    assert res.returncode != 0 and "invalid volume name" in res.stderr
    res = docker(d, "volume", "ls", "--filter", "colour=red", check=False)
    assert res.returncode != 0 and "colour" in res.stderr
    assert not {"x1", "x2"} & set(_names(d))


def test_docker_py_volumes(daemon: Daemon) -> None:
    client = dockerpy(daemon)
    vol = client.volumes.create("pyvol", labels={"made-by": "docker-py"})
    assert vol.name == "pyvol" and vol.attrs["Labels"] == {"made-by": "docker-py"}
    assert [v.name for v in client.volumes.list(filters={"label": "made-by=docker-py"})] == \
        ["pyvol"]
    assert client.volumes.get("pyvol").attrs["Driver"] == "local"
    client.volumes.get("pyvol").remove()
    with pytest.raises(DockerNotFound):
        client.volumes.get("pyvol")
    client.volumes.create("pyvol2")
    pruned = client.volumes.prune()
    assert "pyvol2" in pruned["VolumesDeleted"] and pruned["SpaceReclaimed"] >= 0


def test_another_projects_volume_is_not_found(daemon: Daemon) -> None:
    d = daemon
    docker(d, "volume", "create", "admins-own")
    token = member_token(d, "vol-tenant", "vera")
    member = dockerpy_as(d, token)
    try:
        vol = member.volumes.create("veras")
        assert vol.attrs["Mountpoint"] == ""  # a member never sees host paths
        assert [v.name for v in member.volumes.list()] == ["veras"]
        with pytest.raises(DockerNotFound):
            member.volumes.get("admins-own")
        with pytest.raises(DockerNotFound):
            member.api.remove_volume("admins-own")
        cfg = config_as(token)
        res = docker_as(d, cfg, "volume", "inspect", "admins-own", check=False)
        assert res.returncode != 0 and "no such volume" in res.stderr.lower()
        assert json.loads(docker_as(d, cfg, "volume", "inspect", "veras").stdout)[0][
            "Name"] == "veras"
        assert "veras" not in _names(d)
        member.volumes.get("veras").remove()
    finally:
        docker(d, "volume", "rm", "admins-own")


def test_volumes_from(daemon: Daemon) -> None:
    d = daemon
    docker(d, "create", "--name", "dvf-data", "-v", "/shared", "busybox", "true")
    try:
        docker(d, "run", "--rm", "--volumes-from", "dvf-data", "busybox", "sh", "-c",
               "echo kept > /shared/f")
        docker(d, "create", "--name", "dvf-reader", "--volumes-from", "dvf-data:ro",
               "busybox", "sh", "-c", "cat /shared/f; touch /shared/g || echo ro")
        info = docker_json(d, "inspect", "dvf-reader")[0]
        assert info["HostConfig"]["VolumesFrom"] == ["dvf-data:ro"]
        assert info["HostConfig"]["Binds"] is None  # the other container's, not its own
        assert [m["Destination"] for m in info["Mounts"]] == ["/shared"]
        assert docker(d, "start", "-a", "dvf-reader").stdout.split() == ["kept", "ro"]
    finally:
        docker(d, "rm", "-v", "dvf-reader", "dvf-data", check=False)
