"""Networks through the Docker API: recorded and shown (no connectivity yet), per project."""

from __future__ import annotations

import json
import time

import pytest
from docker.errors import APIError as DockerAPIError
from docker.errors import NotFound as DockerNotFound

from tests.integration.daemon import Daemon
from tests.integration.dockertenants import config_as, docker_as, dockerpy_as, member_token
from tests.integration.dockertools import docker, docker_json, dockerpy

pytestmark = pytest.mark.integration
PREDEFINED = ["bridge", "host", "none"]


def _names(d: Daemon, *filters: str) -> list[str]:
    args = [a for f in filters for a in ("--filter", f)]
    return sorted(docker(d, "network", "ls", "--format", "{{.Name}}", *args).stdout.split())


def test_predefined_networks_exist_and_cannot_be_removed(daemon: Daemon) -> None:
    d = daemon
    assert _names(d) == PREDEFINED
    assert _names(d, "type=builtin") == PREDEFINED
    drivers = docker(d, "network", "ls", "--format", "{{.Name}}={{.Driver}}").stdout.split()
    assert sorted(drivers) == ["bridge=bridge", "host=host", "none=null"]
    for name in PREDEFINED:
        res = docker(d, "network", "rm", name, check=False)
        assert res.returncode != 0
        assert f"{name} is a pre-defined network and cannot be removed" in res.stderr
    res = docker(d, "network", "create", "bridge", check=False)
    assert res.returncode != 0 and "predefined bridge network" in res.stderr
    [bridge] = docker_json(d, "network", "inspect", "bridge")
    assert bridge["Driver"] == "bridge" and bridge["Scope"] == "local"
    # The id names it too, in full or by a prefix.
    assert docker_json(d, "network", "inspect", bridge["Id"][:10])[0]["Name"] == "bridge"


def test_create_inspect_list_remove(daemon: Daemon) -> None:
    d = daemon
    net_id = docker(d, "network", "create", "--label", "team=a", "--subnet", "10.77.0.0/24",
                    "--gateway", "10.77.0.1", "--internal", "--attachable", "--opt",
                    "com.docker.network.driver.mtu=1400", "frontend").stdout.strip()
    assert len(net_id) == 64
    try:
        [net] = docker_json(d, "network", "inspect", "frontend")
        assert net["Id"] == net_id and net["Name"] == "frontend"
        assert net["Driver"] == "bridge" and net["Internal"] and net["Attachable"]
        assert net["Labels"] == {"team": "a"}
        assert net["Options"] == {"com.docker.network.driver.mtu": "1400"}
        assert net["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]
        assert net["Containers"] == {}
        assert docker_json(d, "network", "inspect", net_id[:12])[0]["Name"] == "frontend"
        assert _names(d, "label=team=a") == ["frontend"]
        assert _names(d, "type=custom") == ["frontend"]
        assert _names(d, "name=front") == ["frontend"]
        assert _names(d, f"id={net_id[:8]}") == ["frontend"]
        assert _names(d, "driver=bridge") == ["bridge", "frontend"]

        res = docker(d, "network", "create", "frontend", check=False)
        assert res.returncode != 0 and "network with name frontend already exists" in res.stderr
    finally:
        docker(d, "network", "rm", "frontend")
    assert _names(d) == PREDEFINED
    res = docker(d, "network", "inspect", "frontend", check=False)
    assert res.returncode != 0 and "No such network: frontend" in res.stderr
    with pytest.raises(DockerNotFound, match="network frontend not found"):
        dockerpy(d).api.inspect_network("frontend")


def test_bad_networks_are_refused(daemon: Daemon) -> None:
    d = daemon
    for args, words in ((["-d", "overlay", "n1"], "overlay"),
                        (["--subnet", "10.0.0.0/33", "n2"], "invalid subnet"),
                        (["--ipam-driver", "dhcp", "n4"], "dhcp"),
                        (["--aux-address", "a=10.5.0.9", "--subnet", "10.5.0.0/24", "n5"],
                         "auxiliary"),
                        (["bad/name"], "invalid network name")):
        res = docker(d, "network", "create", *args, check=False)
        assert res.returncode != 0 and words in res.stderr, (args, res.stderr)
    res = docker(d, "network", "ls", "--filter", "colour=red", check=False)
    assert res.returncode != 0 and "colour" in res.stderr
    # What the CLI checks itself, the daemon checks too.
    api = dockerpy(d).api
    for ipam, words in (({"Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.2.0.1"}]},
                         "not inside the subnet"),
                        ({"Config": [{"Subnet": "10.1.0.0/24", "IPRange": "10.3.0.0/25"}]},
                         "not inside the subnet"),
                        ({"Config": [{"Subnet": "nonsense"}]}, "invalid subnet")):
        with pytest.raises(DockerAPIError, match=words) as err:
            api.create_network("n6", ipam=ipam)
        assert err.value.status_code == 400
    with pytest.raises(DockerAPIError, match="ingress networks") as err:
        api.create_network("n7", ingress=True)
    assert err.value.status_code == 400
    assert _names(d) == PREDEFINED


def test_containers_on_a_network_connect_disconnect_and_block_removal(daemon: Daemon) -> None:
    d = daemon
    docker(d, "network", "create", "backend")
    box = d.client.containers.create({"image": "busybox", "command": ["true"],
                                      "networks": {"backend": ["db"]}})
    other = d.client.containers.create({"image": "busybox", "command": ["true"]})
    try:
        [net] = docker_json(d, "network", "inspect", "backend")
        assert list(net["Containers"]) == [box["id"]]
        assert net["Containers"][box["id"]]["Name"] == box["name"]
        res = docker(d, "network", "rm", "backend", check=False)
        assert res.returncode != 0 and "has active endpoints" in res.stderr
        assert "backend" not in docker(d, "network", "prune", "--force").stdout

        docker(d, "network", "connect", "--alias", "cache", "backend", other["name"])
        [net] = docker_json(d, "network", "inspect", "backend")
        assert set(net["Containers"]) == {box["id"], other["id"]}
        res = docker(d, "network", "connect", "backend", other["name"], check=False)
        assert res.returncode != 0 and "already exists in network backend" in res.stderr
        res = docker(d, "network", "connect", "--ip", "10.1.1.1", "bridge", other["name"],
                     check=False)
        assert res.returncode != 0 and "is not in network bridge's subnet" in res.stderr
        res = docker(d, "network", "connect", "host", other["name"], check=False)
        assert res.returncode != 0 and "host" in res.stderr

        docker(d, "network", "disconnect", "backend", other["name"])
        [net] = docker_json(d, "network", "inspect", "backend")
        assert list(net["Containers"]) == [box["id"]]
        res = docker(d, "network", "disconnect", "backend", other["name"], check=False)
        assert res.returncode != 0 and "is not connected to network backend" in res.stderr
        # A container on no network shows on the predefined "none".
        [none] = docker_json(d, "network", "inspect", "none")
        assert other["id"] in none["Containers"]
    finally:
        for c in (box, other):
            d.client.containers.remove(c["id"], force=True)
    docker(d, "network", "rm", "backend")


def test_prune_removes_unused_custom_networks_only(daemon: Daemon) -> None:
    d = daemon
    docker(d, "network", "create", "--label", "keep=yes", "kept")
    docker(d, "network", "create", "--label", "keep=no", "gone1")
    docker(d, "network", "create", "gone2")
    out = docker(d, "network", "prune", "--force", "--filter", "label!=keep=yes").stdout
    assert "gone1" in out and "gone2" in out and "kept" not in out
    assert _names(d) == sorted([*PREDEFINED, "kept"])
    docker(d, "network", "prune", "--force", "--filter",
           f"until={int(time.time()) + 60}")
    assert _names(d) == PREDEFINED


def test_docker_py_networks(daemon: Daemon) -> None:
    client = dockerpy(daemon)
    net = client.networks.create("pynet", driver="bridge", labels={"by": "docker-py"},
                                 check_duplicate=True)
    try:
        assert net.name == "pynet"
        assert [n.name for n in client.networks.list(names=["pynet"])] == ["pynet"]
        assert [n.name for n in client.networks.list(filters={"label": "by=docker-py"})] == \
            ["pynet"]
        assert client.networks.get(net.id).attrs["Labels"] == {"by": "docker-py"}
        with pytest.raises(DockerAPIError) as err:
            client.networks.create("pynet", check_duplicate=True)
        assert err.value.status_code == 409
    finally:
        net.remove()
    with pytest.raises(DockerNotFound):
        client.networks.get("pynet")


def test_compose_style_networks_by_label(daemon: Daemon) -> None:
    """What docker-compose 1.29 does: create with its labels, inspect by name, list by
    project label, remove."""
    api = dockerpy(daemon).api
    labels = {"com.docker.compose.network": "default", "com.docker.compose.project": "demo",
              "com.docker.compose.version": "1.29.2"}
    with pytest.raises(DockerNotFound):
        api.inspect_network("demo_default")
    created = api.create_network("demo_default", driver="bridge", labels=labels,
                                 check_duplicate=True, internal=False, attachable=True)
    try:
        inspected = api.inspect_network("demo_default")
        assert inspected["Id"] == created["Id"] and inspected["Labels"] == labels
        found = api.networks(filters={"label": ["com.docker.compose.project=demo"]})
        assert [n["Name"] for n in found] == ["demo_default"]
    finally:
        api.remove_network("demo_default")


def test_another_projects_network_is_not_found(daemon: Daemon) -> None:
    d = daemon
    docker(d, "network", "create", "admins-net")
    token = member_token(d, "net-tenant", "nina")
    member = dockerpy_as(d, token)
    try:
        mine = member.networks.create("ninas")
        names = sorted(n.name for n in member.networks.list())
        assert names == sorted([*PREDEFINED, "ninas"])
        with pytest.raises(DockerNotFound):
            member.networks.get("admins-net")
        with pytest.raises(DockerNotFound):
            member.api.remove_network("admins-net")
        cfg = config_as(token)
        res = docker_as(d, cfg, "network", "inspect", "admins-net", check=False)
        assert res.returncode != 0 and "No such network" in res.stderr
        # Each project has its own predefined networks, with ids of its own.
        theirs = json.loads(docker_as(d, cfg, "network", "inspect", "bridge").stdout)[0]["Id"]
        assert theirs != docker_json(d, "network", "inspect", "bridge")[0]["Id"]
        assert "ninas" not in _names(d)
        mine.remove()
    finally:
        docker(d, "network", "rm", "admins-net")
