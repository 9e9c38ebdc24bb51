"""Label-selector services with real nftables: a VIP and a name that spread the load over
the matching running containers and pods, follow them as they come and go, drop an unhealthy
backend until it recovers, stay invisible to other projects, and refuse bad input.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from berth.client import APIError, Client
from tests.integration.daemon import BIN, Daemon
from tests.integration.dockertools import docker
from tests.integration.test_pods import HTTPD, call

pytestmark = pytest.mark.integration
# Ask the VIP N times from one client container; print each answer on its own line.
ASK = ("i=0; while [ $i -lt {n} ]; do timeout 3 wget -q -O- http://{target}/ || echo FAIL; "
       "i=$((i+1)); done")


def backend(d: Daemon, name: str, labels: dict[str, str], client: Client | None = None,
            **extra: Any) -> str:
    """A bridge-networked busybox web server on port 8080 answering its own name."""
    made = call(d, "POST", "/v1/containers", {"start": True, "wait": True},
                {"image": "busybox", "name": name, "labels": labels,
                 "networks": {"bridge": []},
                 "command": ["sh", "-c", HTTPD.format(text=name, port=8080)], **extra},
                client=client)
    return str(made["container"]["id"])


def client_box(d: Daemon, name: str, client: Client | None = None) -> None:
    call(d, "POST", "/v1/containers", {"start": True, "wait": True},
         {"image": "busybox", "name": name, "networks": {"bridge": []},
          "command": ["sleep", "600"]}, client=client)


def answers(d: Daemon, box: str, target: str, n: int = 30) -> list[str]:
    res = d.cli("exec", box, "sh", "-c", ASK.format(n=n, target=target), check=False)
    return res.stdout.split()


def backend_names(d: Daemon, svc: str) -> set[str]:
    return {b["name"] for b in call(d, "GET", f"/v1/services/{svc}")["backends"]}


def spread(d: Daemon, box: str, target: str, expected: set[str], timeout: float = 15) -> None:
    """Wait until asking the target reaches exactly the expected backends (each of them)."""
    seen: set[str] = set()

    def reached() -> bool:
        nonlocal seen
        seen = set(answers(d, box, target))
        return seen == expected

    try:
        d.wait_for(reached, timeout, f"{target} to reach {sorted(expected)}")
    except AssertionError:
        raise AssertionError(f"{target} reached {sorted(seen)}, not {sorted(expected)}"
                             ) from None


def test_a_service_spreads_over_its_backends_by_vip_and_name(daemon: Daemon) -> None:
    d = daemon
    for i in (1, 2, 3):
        backend(d, f"web{i}", {"app": "web", "n": str(i)})
    backend(d, "api1", {"app": "api"})  # not selected
    svc = call(d, "POST", "/v1/services", None,
               {"name": "web", "selector": "app=web", "labels": {"team": "a"},
                "ports": [{"port": 80, "target_port": 8080}]})
    client_box(d, "asker")
    try:
        vip = svc["vip"]
        assert svc["ports"] == [{"port": 80, "target_port": 8080, "proto": "tcp"}]
        assert backend_names(d, "web") == {"web1", "web2", "web3"}
        spread(d, "asker", vip, {"web1", "web2", "web3"})
        spread(d, "asker", "web", {"web1", "web2", "web3"})  # the service's name
        # a backend that stops leaves; one that starts joins; a new match joins at once
        d.client.containers.stop("web2", timeout=1)
        spread(d, "asker", vip, {"web1", "web3"})
        backend(d, "web4", {"app": "web"})
        d.client.containers.start("web2")
        spread(d, "asker", vip, {"web1", "web2", "web3", "web4"})
        # a pod whose labels match is one backend, at its address
        call(d, "POST", "/v1/pods", {"start": True}, {"name": "webpod", "labels": {"app": "web"}})
        call(d, "POST", "/v1/containers", {"start": True, "wait": True},
             {"image": "busybox", "name": "webpod-srv", "pod": "webpod",
              "command": ["sh", "-c", HTTPD.format(text="webpod", port=8080)]})
        spread(d, "asker", vip, {"web1", "web2", "web3", "web4", "webpod"})
        # label selectors on the list
        assert [s["name"] for s in call(d, "GET", "/v1/services", {"selector": "team=a"})] \
            == ["web"]
        assert call(d, "GET", "/v1/services", {"selector": "team!=a"}) == []
        # a removed service's VIP answers no more (rejected, not left hanging)
        call(d, "DELETE", "/v1/services/web")
        assert set(answers(d, "asker", vip, n=2)) == {"FAIL"}
    finally:
        call(d, "DELETE", "/v1/pods/webpod", {"force": True})
        for name in ("web1", "web2", "web3", "web4", "api1", "asker"):
            d.client.containers.remove(name, force=True)
        for s in call(d, "GET", "/v1/services"):
            call(d, "DELETE", f"/v1/services/{s['id']}")


def test_an_unhealthy_backend_leaves_until_it_recovers(daemon: Daemon) -> None:
    d = daemon
    check = {"test": ["CMD-SHELL", "test -f /healthy"], "interval": 0.2, "timeout": 2,
             "retries": 1}
    for name in ("hb1", "hb2", "hb3"):
        backend(d, name, {"app": "hb"}, healthcheck=check)
        d.cli("exec", name, "touch", "/healthy")
    call(d, "POST", "/v1/services", None,
         {"name": "hb", "selector": "app=hb", "ports": [{"port": 80, "target_port": 8080}]})
    client_box(d, "hb-asker")
    try:
        d.wait_for(lambda: backend_names(d, "hb") == {"hb1", "hb2", "hb3"}, what="healthy")
        spread(d, "hb-asker", "hb", {"hb1", "hb2", "hb3"})
        d.cli("exec", "hb2", "rm", "/healthy")
        d.wait_for(lambda: d.client.containers.get("hb2")["state"]["health"]["status"]
                   == "unhealthy", what="hb2 unhealthy")
        spread(d, "hb-asker", "hb", {"hb1", "hb3"})
        assert backend_names(d, "hb") == {"hb1", "hb3"}
        d.cli("exec", "hb2", "touch", "/healthy")
        spread(d, "hb-asker", "hb", {"hb1", "hb2", "hb3"})
    finally:
        call(d, "DELETE", "/v1/services/hb")
        for name in ("hb1", "hb2", "hb3", "hb-asker"):
            d.client.containers.remove(name, force=True)


def test_another_project_neither_reaches_nor_resolves_a_service(daemon: Daemon) -> None:
    d = daemon
    d.client.projects.create("svc-other")
    other = Client(d.host, project="svc-other")
    other.images.build_base("busybox")
    backend(d, "priv1", {"app": "priv"})
    svc = call(d, "POST", "/v1/services", None,
               {"name": "priv", "selector": "app=priv", "ports": [{"port": 80,
                                                                   "target_port": 8080}]})
    client_box(d, "priv-asker")
    try:
        spread(d, "priv-asker", svc["vip"], {"priv1"})
        client_box(d, "outsider", client=other)
        res = subprocess.run(
            [str(BIN / "berth"), "exec", "outsider", "sh", "-c",
             f"timeout 3 wget -q -O- http://{svc['vip']}/; echo rc=$?; nslookup priv; true"],
            env={**d.env, "BERTH_PROJECT": "svc-other"}, capture_output=True, text=True,
            timeout=60)
        assert "priv1" not in res.stdout, res.stdout
        assert "rc=0" not in res.stdout
        assert svc["vip"] not in res.stdout.split("rc=")[1], res.stdout  # no name either
        # and the other project cannot see the service in its lists
        assert other.transport.call("GET", "/v1/services") == []
        with pytest.raises(APIError) as err:
            other.transport.call("GET", "/v1/services/priv")
        assert err.value.status == 404
    finally:
        call(d, "DELETE", "/v1/services/priv")
        for name in ("priv1", "priv-asker"):
            d.client.containers.remove(name, force=True)
        for box in other.containers.list(all=True):
            other.containers.remove(box["id"], force=True)
        for img in other.images.list():
            other.images.remove(img["id"], force=True)


def test_bad_service_input(daemon: Daemon) -> None:
    d = daemon

    def refused(status: int, body: Any) -> str:
        with pytest.raises(APIError) as err:
            call(d, "POST", "/v1/services", None, body)
        assert err.value.status == status, err.value.message
        return err.value.message

    assert "position" in refused(400, {"name": "s", "selector": "app in (web",
                                       "ports": [{"port": 80}]})
    assert "port" in refused(400, {"name": "s", "selector": "app=web", "ports": []})
    assert "selector" in refused(400, {"name": "s", "selector": " ", "ports": [{"port": 80}]})
    assert "port" in refused(400, {"name": "s", "selector": "a=b", "ports": [{"port": 70000}]})
    assert "twice" in refused(400, {"name": "s", "selector": "a=b",
                                    "ports": [{"port": 80}, {"port": 80}]})
    assert "name" in refused(400, {"name": "bad.name", "selector": "a=b",
                                   "ports": [{"port": 80}]})
    made = call(d, "POST", "/v1/services", None,
                {"name": "dup", "selector": "a=b", "ports": [{"port": 53, "proto": "udp"}]})
    try:
        assert made["ports"] == [{"port": 53, "target_port": 53, "proto": "udp"}]
        assert "already exists" in refused(409, {"name": "dup", "selector": "a=b",
                                                 "ports": [{"port": 80}]})
        other = call(d, "POST", "/v1/services", None,
                     {"name": "dup2", "selector": "a=b", "ports": [{"port": 80}]})
        assert other["vip"] != made["vip"]  # every service its own VIP
        call(d, "DELETE", "/v1/services/dup2")
    finally:
        call(d, "DELETE", "/v1/services/dup")
    with pytest.raises(APIError) as err:
        call(d, "DELETE", "/v1/services/dup")
    assert err.value.status == 404
    # a network may not take the services' range
    res = docker(d, "network", "create", "--subnet", "10.212.5.0/24", "clash", check=False)
    assert res.returncode != 0 and "10.212.0.0/16" in res.stderr
