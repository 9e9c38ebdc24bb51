"""Pods with real namespaces: members share one address, one hostname and localhost (and PID
when asked), the pod is reached by name and through its published port, its lifecycle runs
infra first and members first, it survives a kill -9 of berthd, bad input leaves nothing,
and removing it leaves nothing on the host.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from typing import Any

import pytest

from berth.client import APIError, Client
from tests.integration.daemon import Daemon, leaks
from tests.integration.test_networking import free_port

pytestmark = pytest.mark.integration
HTTPD = "echo {text} > /index.html; exec httpd -f -p {port} -h /"


def call(d: Daemon, method: str, path: str, params: dict[str, Any] | None = None,
         body: Any = None, client: Client | None = None) -> Any:
    return (client or d.client).transport.call(method, path, params, body)


def member(d: Daemon, name: str, pod: str, *command: str, **extra: Any) -> dict[str, Any]:
    made = call(d, "POST", "/v1/containers", {"start": True, "wait": True},
                {"image": "busybox", "name": name, "pod": pod, "command": list(command),
                 **extra})
    return dict(made["container"])


def sh(d: Daemon, name: str, script: str, check: bool = False) -> tuple[int, str]:
    res = d.cli("exec", name, "sh", "-c", script, check=check)
    return res.returncode, res.stdout.strip()


def until(d: Daemon, name: str, script: str, timeout: float = 10) -> str:
    """The output of a command in the container once it succeeds."""
    return str(d.wait_for(lambda: (lambda r: r[1] if r[0] == 0 else None)(sh(d, name, script)),
                          timeout, f"{script!r} in {name}"))


def statuses(d: Daemon, pod: str) -> dict[str, str]:
    return {m["name"]: m["status"] for m in call(d, "GET", f"/v1/pods/{pod}")["containers"]}


def test_members_share_one_address_hostname_and_localhost(daemon: Daemon) -> None:
    d = daemon
    port = free_port()
    pod = call(d, "POST", "/v1/pods", {"start": True},
               {"name": "shop", "labels": {"tier": "front"},
                "ports": [{"container_port": 8080, "host_port": port}]})
    try:
        assert pod["status"] == "Running"
        address = pod["networks"]["bridge"]["address"]
        member(d, "shop-web", "shop", "sh", "-c", HTTPD.format(text="from-the-pod", port=8080))
        member(d, "shop-side", "shop", "sleep", "300")
        # localhost between members; the same interface, address and hostname in both
        assert until(d, "shop-side", "wget -q -O- http://127.0.0.1:8080/") == "from-the-pod"
        for name in ("shop-web", "shop-side"):
            assert f"inet {address}/" in sh(d, name, "ip -4 addr show eth0")[1]
            assert sh(d, name, "hostname")[1] == "shop"
        # one IP: the infra container's, shown on every member
        seen = call(d, "GET", "/v1/containers/shop-side")
        assert seen["networks"]["bridge"]["address"] == address
        assert seen["config"]["pod_id"] == pod["id"]
        # the published port of the pod, from the host
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:  # noqa: S310
            assert resp.read().decode().strip() == "from-the-pod"
        # other containers find the pod, and its members, by name at its address
        res = d.cli("run", "--rm", "--network", "bridge", "busybox", "sh", "-c",
                    "nslookup shop; nslookup shop-web; "
                    "timeout 3 wget -q -O- http://shop-web:8080/; exit $?")
        assert res.stdout.count(f"Address: {address}") == 2, res.stdout
        assert res.stdout.strip().endswith("from-the-pod")
        # the pod's view and label selectors on the list
        shown = call(d, "GET", "/v1/pods/shop")
        assert [m["name"] for m in shown["containers"]] == ["shop-infra", "shop-web",
                                                            "shop-side"]
        assert shown["shared"] == ["net", "uts", "ipc"]
        assert [p["name"] for p in call(d, "GET", "/v1/pods", {"selector": "tier=front"})] \
            == ["shop"]
        assert call(d, "GET", "/v1/pods", {"selector": "tier notin (front)"}) == []
        assert [p["name"] for p in call(d, "GET", "/v1/pods", {"filter": "status=running"})] \
            == ["shop"]
    finally:
        call(d, "DELETE", "/v1/pods/shop", {"force": True})
    assert call(d, "GET", "/v1/pods") == []
    assert not [c for c in d.client.containers.list(all=True) if c["name"].startswith("shop")]


def test_stop_start_restart_and_remove(daemon: Daemon) -> None:
    d = daemon
    call(d, "POST", "/v1/pods", {"start": True}, {"name": "cycle"})
    try:
        member(d, "cycle-web", "cycle", "sh", "-c", HTTPD.format(text="up", port=80))
        member(d, "cycle-side", "cycle", "sleep", "300", restart_policy={"name": "always"})
        until(d, "cycle-side", "wget -q -O- http://127.0.0.1/")
        stopped = call(d, "POST", "/v1/pods/cycle/stop", {"timeout": 1})
        assert stopped["status"] == "Exited"
        assert set(statuses(d, "cycle").values()) == {"exited"}
        started = call(d, "POST", "/v1/pods/cycle/start")
        assert started["status"] == "Running"
        # the members are in the new infra container's namespaces: localhost works again
        assert until(d, "cycle-side", "wget -q -O- http://127.0.0.1/") == "up"
        restarted = call(d, "POST", "/v1/pods/cycle/restart", {"timeout": 1})
        assert restarted["status"] == "Running"
        assert until(d, "cycle-side", "wget -q -O- http://127.0.0.1/") == "up"
        # a member started on its own starts its pod's infra container first
        call(d, "POST", "/v1/pods/cycle/stop", {"timeout": 1})
        d.client.containers.start("cycle-web")
        d.wait_for(lambda: statuses(d, "cycle")["cycle-infra"] == "running", what="infra")
        assert until(d, "cycle-web", "wget -q -O- http://127.0.0.1/") == "up"
        # the infra container goes with its pod only; running members need force
        with pytest.raises(APIError) as err:
            d.client.containers.remove("cycle-infra", force=True)
        assert err.value.status == 409 and "remove the pod" in err.value.message
        # ... and stops only with its pod while members run: alone it would come back with
        # new namespaces, the members left in the old ones
        for verb, instead in (("stop", "stop the pod"), ("restart", "restart the pod"),
                              ("kill", "stop the pod")):
            with pytest.raises(APIError) as err:
                getattr(d.client.containers, verb)("cycle-infra")
            assert err.value.status == 409 and instead in err.value.message, verb
            assert "cycle-web" in err.value.message
        assert statuses(d, "cycle")["cycle-infra"] == "running"
        res = d.cli("stop", "cycle-infra", check=False)  # as docker stop: exit 1, one line
        assert res.returncode == 1 and res.stderr.count("\n") == 1, res
        assert "stop the pod instead" in res.stderr
        with pytest.raises(APIError) as err:
            call(d, "DELETE", "/v1/pods/cycle")
        assert err.value.status == 409 and "cycle-web" in err.value.message
    finally:
        call(d, "DELETE", "/v1/pods/cycle", {"force": True})
    names = {c["name"] for c in d.client.containers.list(all=True)}
    assert not names & {"cycle-infra", "cycle-web", "cycle-side"}


def test_members_follow_an_infra_container_its_restart_policy_brought_back(
        daemon: Daemon) -> None:
    """The infra process dies (killed from outside): its restart policy starts it again with
    new namespaces, and the members running in the old ones are restarted into the new."""
    d = daemon
    call(d, "POST", "/v1/pods", {"start": True}, {"name": "phoenix"})
    try:
        member(d, "phoenix-web", "phoenix", "sh", "-c", HTTPD.format(text="again", port=80),
               stop_timeout=1)
        until(d, "phoenix-web", "wget -q -O- http://127.0.0.1/")
        infra = d.client.containers.get("phoenix-infra")
        web = d.client.containers.get("phoenix-web")
        os.kill(infra["state"]["pid"], signal.SIGKILL)

        def rejoined() -> bool:
            i, w = (d.client.containers.get(n) for n in ("phoenix-infra", "phoenix-web"))
            if i["state"]["status"] != "running" or w["state"]["status"] != "running" or \
                    w["state"]["pid"] == web["state"]["pid"]:
                return False
            return netns(i["state"]["pid"]) == netns(w["state"]["pid"])

        d.wait_for(rejoined, timeout=30, what="the member in the new infra's namespaces")
        assert d.client.containers.get("phoenix-infra")["state"]["pid"] != infra["state"]["pid"]
        assert until(d, "phoenix-web", "wget -q -O- http://127.0.0.1/") == "again"
    finally:
        call(d, "DELETE", "/v1/pods/phoenix", {"force": True})


def netns(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def test_shared_pid_namespace(daemon: Daemon) -> None:
    d = daemon
    call(d, "POST", "/v1/pods", {"start": True}, {"name": "pids", "share": ["pid"]})
    try:
        member(d, "pids-a", "pids", "sleep", "301")
        member(d, "pids-b", "pids", "sleep", "302")
        ps = sh(d, "pids-b", "ps -o pid,args")[1]
        assert "sleep 301" in ps and "sleep 302" in ps, ps
        first = [line.split(None, 1) for line in ps.splitlines()[1:]]
        assert ["1", "/catatonit -P"] in first, ps  # the pod's init reaps for everyone
        # without pid sharing, members see only themselves
        call(d, "POST", "/v1/pods", {"start": True}, {"name": "nopids"})
        member(d, "nopids-a", "nopids", "sleep", "303")
        member(d, "nopids-b", "nopids", "sleep", "304")
        assert "sleep 303" not in sh(d, "nopids-b", "ps -o args")[1]
    finally:
        call(d, "DELETE", "/v1/pods/pids", {"force": True})
        call(d, "DELETE", "/v1/pods/nopids", {"force": True})


def test_members_take_the_pods_dns_search_and_options(daemon: Daemon) -> None:
    d = daemon
    d.cli("pod", "create", "--dns-search", "corp.example", "--dns-option", "ndots:3",
          "--start", "dnsopts")
    try:
        member(d, "dnsopts-a", "dnsopts", "sleep", "300")
        resolv = sh(d, "dnsopts-a", "cat /etc/resolv.conf", check=True)[1]
        assert "search corp.example" in resolv and "options ndots:3" in resolv, resolv
        # A member's own settings win over the pod's.
        member(d, "dnsopts-b", "dnsopts", "sleep", "300", dns_search=["own.example"])
        resolv = sh(d, "dnsopts-b", "cat /etc/resolv.conf", check=True)[1]
        assert "search own.example" in resolv and "corp.example" not in resolv, resolv
        assert "options ndots:3" in resolv, resolv
        bad = d.cli("pod", "create", "--dns-option", "bad option", "badopts", check=False)
        assert bad.returncode == 125 and "bad option" in bad.stderr, bad.stderr
    finally:
        call(d, "DELETE", "/v1/pods/dnsopts", {"force": True})


def test_bad_pod_input_leaves_nothing(daemon: Daemon) -> None:
    d = daemon
    before = {c["id"] for c in d.client.containers.list(all=True)}

    def refused(status: int, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None) -> str:
        with pytest.raises(APIError) as err:
            call(d, method, path, params, body)
        assert err.value.status == status, err.value.message
        return err.value.message

    assert "share" in refused(400, "POST", "/v1/pods", {"name": "bad", "share": ["mnt"]})
    assert "network" in refused(404, "POST", "/v1/pods",
                                {"name": "bad", "networks": {"nosuchnet": []}})
    assert "subnet" in refused(400, "POST", "/v1/pods", {
        "name": "bad", "networks": {"bridge": []}, "ip_addresses": {"bridge": "192.0.2.9"}})
    assert "pod" in refused(404, "POST", "/v1/containers",
                            {"image": "busybox", "pod": "nosuchpod", "command": ["true"]})
    call(d, "POST", "/v1/pods", None, {"name": "dup"})
    try:
        assert "already exists" in refused(409, "POST", "/v1/pods", {"name": "dup"})
        assert "pod" in refused(400, "POST", "/v1/containers", {
            "image": "busybox", "pod": "dup", "command": ["true"],
            "ports": [{"container_port": 80}]})
        assert "pod" in refused(404, "POST", "/v1/pods/nosuch/start")
    finally:
        call(d, "DELETE", "/v1/pods/dup")
    after = {c["id"] for c in d.client.containers.list(all=True)}
    assert after == before  # no infra container, no member was left half-made


def test_a_pod_and_its_service_outlive_berthd_and_leave_nothing(own_daemon: Daemon) -> None:
    d = own_daemon
    svc = call(d, "POST", "/v1/services", None,
               {"name": "longsvc", "selector": "tier=long", "ports": [{"port": 80}]})
    call(d, "POST", "/v1/pods", {"start": True}, {"name": "long", "labels": {"tier": "long"}})
    member(d, "long-web", "long", "sh", "-c", HTTPD.format(text="still", port=80))
    member(d, "long-side", "long", "sleep", "300")
    until(d, "long-side", "wget -q -O- http://127.0.0.1/")
    asker = call(d, "POST", "/v1/containers", {"start": True, "wait": True},
                 {"image": "busybox", "name": "long-asker", "networks": {"bridge": []},
                  "command": ["sleep", "300"]})["container"]["id"]
    via_vip = f"timeout 3 wget -q -O- http://{svc['vip']}/"
    assert until(d, "long-asker", via_vip) == "still"
    pids = {m["name"]: d.client.containers.get(m["id"])["state"]["pid"]
            for m in call(d, "GET", "/v1/pods/long")["containers"]}
    d.kill9()
    time.sleep(0.2)
    d.start()
    d.wait_for(lambda: call(d, "GET", "/v1/pods/long")["status"] == "Running", what="adopted")
    again = {m["name"]: d.client.containers.get(m["id"])["state"]["pid"]
             for m in call(d, "GET", "/v1/pods/long")["containers"]}
    assert again == pids  # the same processes, adopted
    assert until(d, "long-side", "wget -q -O- http://127.0.0.1/") == "still"
    assert until(d, "long-asker", via_vip) == "still"  # the service, by VIP and by name
    assert until(d, "long-asker", "timeout 3 wget -q -O- http://longsvc/") == "still"
    # a member that joins after the restart finds the namespaces through the infra's pid
    member(d, "long-late", "long", "sleep", "300")
    assert until(d, "long-late", "wget -q -O- http://127.0.0.1/") == "still"
    call(d, "DELETE", "/v1/pods/long", {"force": True})
    call(d, "DELETE", "/v1/services/longsvc")
    d.client.containers.remove(asker, force=True)
    assert call(d, "GET", "/v1/pods") == []
    d.wait_for(lambda: not leaks(d), what=f"no leaks ({leaks(d)})")


def test_berth_cli_pods_services_and_networks(daemon: Daemon) -> None:
    d = daemon
    port = free_port()
    d.cli("network", "create", "--subnet", "10.233.4.0/24", "-l", "tier=app", "appnet")
    try:
        pod_id = d.cli("pod", "create", "clipod", "-l", "app=cli", "--network", "appnet:cp",
                       "--ip", "10.233.4.40", "-p", f"{port}:80", "--start").stdout.strip()
        assert len(pod_id) >= 12
        d.cli("run", "-d", "--pod", "clipod", "--name", "clipod-web", "busybox", "sh", "-c",
              HTTPD.format(text="cli", port=80))
        assert d.cli("run", "--rm", "--pod", "clipod", "busybox", "hostname").stdout.strip() \
            == "clipod"
        listed = d.cli("pod", "ls", "--selector", "app=cli").stdout
        assert "clipod" in listed and "10.233.4.40" in listed
        assert d.cli("pod", "ls", "-q", "--selector", "app!=cli").stdout.strip() == ""
        shown = d.cli("pod", "inspect", "clipod").stdout
        assert '"10.233.4.40"' in shown and "clipod-web" in shown
        made = d.cli("service", "create", "clisvc", "--selector", "app=cli", "-p", "8000:80")
        assert "10.212." in made.stdout
        assert "clisvc" in d.cli("service", "ls").stdout
        answer = d.cli("run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                       "timeout 3 wget -q -O- http://clisvc:8000/; exit $?").stdout.strip()
        assert answer == "cli"
        assert "10.233.4.40" in d.cli("network", "inspect", "appnet").stdout
        assert "appnet" in d.cli("network", "ls").stdout
        # a pod member is connected through its pod, never on its own
        res = d.cli("network", "connect", "bridge", "clipod-web", check=False)
        assert res.returncode != 0 and "pod" in res.stderr and "Traceback" not in res.stderr
        # bad input: one line, non-zero
        res = d.cli("service", "create", "bad", "--selector", "app in (x", "-p", "80",
                    check=False)
        assert res.returncode != 0 and "position" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        res = d.cli("run", "--pod", "clipod", "-p", "81:81", "busybox", "true", check=False)
        assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1
    finally:
        d.cli("service", "rm", "clisvc", check=False)
        d.cli("pod", "rm", "-f", "clipod", check=False)
        d.cli("network", "rm", "appnet", check=False)
    assert "clipod" not in d.cli("pod", "ls").stdout
    assert "appnet" not in d.cli("network", "ls").stdout
