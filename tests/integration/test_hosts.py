"""/v1/hosts: the host running containers, for the cloud's admins only."""

from __future__ import annotations

import pytest

from berth.client import APIError, Client
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration


def test_admins_see_the_host_and_members_do_not(daemon: Daemon) -> None:
    admin = daemon.client
    hosts = admin.transport.call("GET", "/v1/hosts")
    assert len(hosts) == 1 and hosts[0]["runtime"] == "oci" and hosts[0]["state"] == "up"
    name = hosts[0]["name"]
    assert admin.transport.call("GET", f"/v1/hosts/{name}")["name"] == name
    with pytest.raises(APIError) as exc:
        admin.transport.call("GET", "/v1/hosts/no-such-host")
    assert exc.value.status == 404
    admin.projects.create("hostless")
    admin.users.create("hank")
    admin.projects.set_member("hostless", "hank", "member")
    token = Client(daemon.host, project="hostless").tokens.create("t", user="hank")["token"]
    with pytest.raises(APIError) as exc:
        Client(daemon.host, token=token, project="hostless").transport.call("GET", "/v1/hosts")
    assert exc.value.status == 403


def test_info_keeps_the_hosts_layout_from_tenants(daemon: Daemon) -> None:
    admin = daemon.client
    assert {"root", "run_root", "pid"} <= set(admin.info())
    admin.projects.create("nosy")
    admin.users.create("nora")
    admin.projects.set_member("nosy", "nora", "member")
    token = Client(daemon.host, project="nosy").tokens.create("t", user="nora")["token"]
    seen = Client(daemon.host, token=token, project="nosy").info()
    assert not {"root", "run_root", "pid", "userns_base"} & set(seen)
    assert seen["project"] == "nosy" and seen["containers"] == 0
