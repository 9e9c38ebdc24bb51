"""Containers through the Docker API: the real docker CLI and docker-py create, list, inspect
and drive containers' lifecycles on Berth, and bad input gets Docker-style 4xx answers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.client import Client
from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, docker_json, dockerpy

pytestmark = pytest.mark.integration


def _state(d: Daemon, name: str) -> dict[str, Any]:
    return docker_json(d, "inspect", "--type", "container", name)[0]["State"]


@contextlib.contextmanager
def _removed(d: Daemon, *names: str) -> Iterator[None]:
    """The containers named are removed at the end, whatever happened."""
    try:
        yield
    finally:
        for name in names:
            docker(d, "rm", "-f", "-v", name, check=False)


def _raw(d: Daemon) -> tuple[Any, str]:
    """docker-py's HTTP session on the Docker socket, for bodies no client would send."""
    api = dockerpy(d).api
    return api, api.base_url


def test_run_detached_inspect_and_ps(daemon: Daemon) -> None:
    with _removed(daemon, "web1"):
        cid = docker(daemon, "run", "-d", "--name", "web1", "-e", "GREETING=hi",
                     "-l", "tier=web", "--memory", "64m", "busybox", "sleep", "300").stdout.strip()
        assert len(cid) == 64
        fmt = ("{{.State.Running}} {{.State.Status}} {{.Name}} {{.HostConfig.Memory}} "
               "{{.Path}} {{json .Args}} {{.Config.Image}}")
        out = docker(daemon, "inspect", "--format", fmt, "web1").stdout.split()
        assert out == ["true", "running", "/web1", str(64 * 1024 * 1024), "sleep", '["300"]',
                       "busybox"]
        env = docker(daemon, "inspect", "--format", "{{json .Config.Env}}", "web1").stdout
        assert "GREETING=hi" in json.loads(env)
        info = docker_json(daemon, "inspect", "web1")[0]
        assert info["Id"] == cid and info["Image"].startswith("sha256:")
        assert info["State"]["Pid"] > 0 and info["Config"]["Labels"]["tier"] == "web"
        assert info["Created"].endswith("Z") and info["Driver"] == "overlay2"
        assert "bridge" in info["NetworkSettings"]["Networks"]
        # ps: the table, a filter, a format
        assert "web1" in docker(daemon, "ps").stdout
        rows = docker(daemon, "ps", "--filter", "label=tier=web", "--format",
                      "{{.ID}} {{.Names}} {{.Status}} {{.Command}}").stdout.strip().splitlines()
        assert len(rows) == 1 and rows[0].startswith(cid[:12] + " web1 Up "), rows
        assert '"sleep 300"' in rows[0]
        assert docker(daemon, "ps", "-q", "--filter", "label=tier=nope").stdout == ""
        assert docker(daemon, "ps", "-q", "--filter", "name=web1").stdout.strip() == cid[:12]


def test_create_start_stop_kill_restart_wait(daemon: Daemon) -> None:
    with _removed(daemon, "life1"):
        docker(daemon, "create", "--name", "life1", "busybox", "sleep", "300")
        assert _state(daemon, "life1")["Status"] == "created"
        line = docker(daemon, "ps", "-a", "--filter", "name=life1", "--format",
                      "{{.Status}}").stdout.strip()
        assert line == "Created"
        assert "life1" not in docker(daemon, "ps").stdout  # not running: only with -a
        docker(daemon, "start", "life1")
        assert _state(daemon, "life1")["Running"] is True
        docker(daemon, "start", "life1")  # already running: 304, not an error
        docker(daemon, "stop", "-t", "1", "life1")
        state = _state(daemon, "life1")
        assert state["Status"] == "exited" and state["FinishedAt"] != "0001-01-01T00:00:00Z"
        assert docker(daemon, "wait", "life1").stdout.strip() == str(state["ExitCode"])
        res = docker(daemon, "kill", "life1", check=False)  # not running: Docker's 409
        assert res.returncode != 0 and "is not running" in res.stderr
        docker(daemon, "restart", "-t", "1", "life1")
        assert _state(daemon, "life1")["Running"] is True
        docker(daemon, "kill", "--signal", "KILL", "life1")
        assert docker(daemon, "wait", "life1").stdout.strip() == "137"
        ps = docker(daemon, "ps", "-a", "--filter", "exited=137", "--format",
                    "{{.Names}} {{.Status}}").stdout
        assert "life1 Exited (137)" in ps


def test_pause_unpause_rename_update(daemon: Daemon) -> None:
    with _removed(daemon, "pz1", "pz2"):
        docker(daemon, "run", "-d", "--name", "pz1", "busybox", "sleep", "300")
        docker(daemon, "pause", "pz1")
        state = _state(daemon, "pz1")
        assert state["Paused"] is True and state["Status"] == "paused"
        assert "(Paused)" in docker(daemon, "ps", "--format", "{{.Status}}",
                                    "--filter", "name=pz1").stdout
        docker(daemon, "unpause", "pz1")
        assert _state(daemon, "pz1")["Status"] == "running"
        docker(daemon, "rename", "pz1", "pz2")
        assert docker(daemon, "inspect", "--format", "{{.Name}}", "pz2").stdout.strip() == "/pz2"
        assert docker(daemon, "inspect", "pz1", check=False).returncode != 0
        docker(daemon, "update", "--memory", "96m", "--memory-swap", "128m", "pz2")
        out = docker(daemon, "inspect", "--format", "{{.HostConfig.Memory}} "
                     "{{.HostConfig.MemorySwap}}", "pz2").stdout.split()
        assert out == [str(96 << 20), str(128 << 20)]
        # the limit is live in the container's cgroup
        res = docker(daemon, "exec", "pz2", "cat", "/sys/fs/cgroup/memory.max", check=False)
        if res.returncode == 0:  # exec is helper B's; the inspect above is the check here
            assert res.stdout.strip() == str(96 << 20)


def test_rm_running_needs_force_and_prune(daemon: Daemon) -> None:
    with _removed(daemon, "rm1", "pr1", "pr2", "pr3"):
        docker(daemon, "run", "-d", "--name", "rm1", "busybox", "sleep", "300")
        res = docker(daemon, "rm", "rm1", check=False)
        assert res.returncode != 0 and "cannot remove a running container" in res.stderr
        docker(daemon, "rm", "-f", "rm1")
        assert "rm1" not in docker(daemon, "ps", "-a").stdout
        res = docker(daemon, "rm", "rm1", check=False)
        assert res.returncode != 0 and "No such container: rm1" in res.stderr
        docker(daemon, "create", "--name", "pr1", "-l", "keep=yes", "busybox", "true")
        docker(daemon, "create", "--name", "pr2", "busybox", "true")
        docker(daemon, "run", "-d", "--name", "pr3", "busybox", "sleep", "300")
        out = docker(daemon, "container", "prune", "-f", "--filter", "label!=keep=yes").stdout
        names = docker(daemon, "ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert "pr2" not in names and "pr1" in names and "pr3" in names, (out, names)
        assert "Deleted Containers" in out


def test_name_conflict_is_dockers_409(daemon: Daemon) -> None:
    with _removed(daemon, "dup1"):
        docker(daemon, "create", "--name", "dup1", "busybox", "true")
        res = docker(daemon, "create", "--name", "dup1", "busybox", "true", check=False)
        assert res.returncode != 0
        assert 'The container name "/dup1" is already in use' in res.stderr


def test_mounts_tmpfs_volumes_and_init(daemon: Daemon) -> None:
    with _removed(daemon, "mnt1"):
        docker(daemon, "run", "-d", "--name", "mnt1", "--init", "--tmpfs", "/scratch:size=8m",
               "-v", "named1:/named", "-v", "/anon", "busybox", "sleep", "300")
        info = docker_json(daemon, "inspect", "mnt1")[0]
        assert info["HostConfig"]["Init"] is True
        points = {m["Destination"]: m for m in info["Mounts"]}
        assert points["/named"]["Type"] == "volume" and points["/named"]["Name"] == "named1"
        assert points["/anon"]["Type"] == "volume"
        assert "/scratch" in info["HostConfig"]["Tmpfs"]
        assert "/anon" in info["Config"]["Volumes"]
        # the init is PID 1, the command its child (seen from the host's /proc)
        pid = info["State"]["Pid"]
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        assert comm in ("docker-init", "tini-static", "tini"), comm
        # (the init forks and execs its child just after it starts: give it the moment)
        daemon.wait_for(lambda: [c for c in Path(f"/proc/{pid}/task/{pid}/children")
                                 .read_text().split() if _comm(c) == "sleep"],
                        timeout=10, what="the init's child, sleep")
        mounts = Path(f"/proc/{pid}/mounts").read_text()
        line = next(x for x in mounts.splitlines() if " /scratch " in x)
        assert "noexec" in line and "size=8192k" in line, line
    docker(daemon, "volume", "rm", "named1", check=False)


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:  # gone meanwhile
        return ""


def test_dockerpy_high_level(daemon: Daemon) -> None:
    client = dockerpy(daemon)
    box = client.containers.run("busybox", ["sleep", "300"], detach=True, name="py1",
                                labels={"a": "b"}, environment={"X": "1"})
    try:
        box.reload()
        assert box.status == "running" and box.name == "py1"
        attrs = box.attrs
        assert attrs["State"]["Running"] is True and attrs["Config"]["Labels"]["a"] == "b"
        assert "X=1" in attrs["Config"]["Env"] and attrs["Config"]["Cmd"] == ["sleep", "300"]
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"
        assert [c.name for c in client.containers.list(filters={"label": "a=b"})] == ["py1"]
        box.update(mem_limit="80m", restart_policy={"Name": "on-failure",
                                                    "MaximumRetryCount": 2})
        box.reload()
        assert box.attrs["HostConfig"]["Memory"] == 80 << 20
        assert box.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                            "MaximumRetryCount": 2}
        box.kill()
        assert box.wait() == {"StatusCode": 137, "Error": None}
        box.reload()
        assert box.status == "exited" and box.attrs["State"]["ExitCode"] == 137
    finally:
        box.remove(force=True)
    with pytest.raises(Exception) as err:
        client.containers.get("py1")
    assert type(err.value).__name__ == "NotFound"


def test_dockerpy_low_level_create_start_wait(daemon: Daemon) -> None:
    api = dockerpy(daemon).api
    made = api.create_container(
        "busybox", ["sh", "-c", "exit 3"], name="low1",
        host_config=api.create_host_config(auto_remove=False, nano_cpus=500_000_000,
                                           restart_policy={"Name": "no"}))
    try:
        assert made["Warnings"] in ([], None)
        api.start(made["Id"])
        assert api.wait(made["Id"])["StatusCode"] == 3
        info = api.inspect_container("low1")
        assert info["HostConfig"]["NanoCpus"] == 500_000_000
        assert info["State"]["ExitCode"] == 3 and info["State"]["Status"] == "exited"
    finally:
        api.remove_container(made["Id"], force=True)


def test_wait_next_exit_before_start(daemon: Daemon) -> None:
    """The CLI's attached run waits (next-exit) before it starts the container: the answer's
    headers come at once, the exit when it happens."""
    api = dockerpy(daemon).api
    made = api.create_container("busybox", ["sh", "-c", "exit 7"], name="ne1")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(60)
        sock.connect(str(daemon.docker_socket))
        sock.sendall(b"POST /v1.41/containers/ne1/wait?condition=next-exit HTTP/1.1\r\n"
                     b"Host: docker\r\nContent-Length: 0\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += sock.recv(4096)
        assert got.startswith(b"HTTP/1.1 200"), got
        api.start(made["Id"])  # only now: the waiter saw it before it ran
        while not re.search(rb"\{.*\}", got.partition(b"\r\n\r\n")[2]):
            chunk = sock.recv(4096)
            assert chunk, got
            got += chunk
        body = re.search(rb"\{.*\}", got.partition(b"\r\n\r\n")[2])
        assert body and json.loads(body.group()) == {"StatusCode": 7, "Error": None}
    finally:
        sock.close()
        api.remove_container(made["Id"], force=True)


def test_docker_run_rm_waits_for_removal(daemon: Daemon) -> None:
    res = docker(daemon, "run", "-d", "--rm", "--name", "rmme", "busybox", "true")
    cid = res.stdout.strip()
    out = docker(daemon, "wait", cid, check=False)
    # gone already, or its exit code once it goes
    assert (out.returncode, out.stdout.strip()) == (0, "0") or "No such container" in \
        out.stderr, out
    daemon.wait_for(lambda: "rmme" not in docker(daemon, "ps", "-a").stdout, what="rm")


def test_bad_input_is_a_docker_4xx(daemon: Daemon) -> None:
    session, base = _raw(daemon)

    def create(body: Any, raw: bytes | None = None) -> tuple[int, str]:
        data = raw if raw is not None else json.dumps(body).encode()
        res = session.post(f"{base}/v1.41/containers/create", data=data,
                           headers={"Content-Type": "application/json"})
        return res.status_code, res.json()["message"]

    assert create(None, b"{not json")[0] == 400
    code, msg = create({"Image": "busybox", "HostConfig": {"Memory": "lots"}})
    assert code == 400 and "HostConfig.Memory" in msg
    code, msg = create({"Image": "busybox", "HostConfig": {"OomKillDisable": True}})
    assert (code, msg) == (400, "HostConfig.OomKillDisable is not supported by Berth")
    code, msg = create({"Image": "busybox", "HostConfig": {"Devices": [
        {"PathOnHost": "/etc/hostname", "PathInContainer": "/dev/x"}]}})
    assert code == 400 and "/etc/hostname is not a device node" in msg
    code, msg = create({"Image": "busybox", "HostConfig": {"Devices": [
        {"PathOnHost": "/dev/null", "CgroupPermissions": "rwx"}]}})
    assert code == 400 and "invalid permissions 'rwx'" in msg, msg
    code, msg = create({"Image": "busybox", "HostConfig": {"PortBindings": {
        "80/tcp": [{"HostPort": "8080-8090"}]}}})
    assert code == 400 and "ranges are not supported" in msg
    code, msg = create({"Image": "busybox", "HostConfig": {"NetworkMode": "none",
                                                           "PortBindings": {
        "80/tcp": [{"HostPort": "8080"}]}}})
    assert code == 400 and "published ports need a network" in msg
    code, msg = create({"Image": "busybox", "Healthcheck": {"Test": ["CMD", "true"],
                                                            "Retries": -1}})
    assert code == 400 and "Healthcheck.Retries" in msg
    code, msg = create({"Image": "nosuchimage"})
    assert (code, msg) == (404, "No such image: nosuchimage:latest")
    code, msg = create({"Image": "busybox", "Cmd": "true", "HostConfig": {
        "Binds": ["/tmp:/x:shared"]}})
    assert code == 400 and "shared" in msg
    res = session.get(f"{base}/v1.41/containers/nope/json")
    assert res.status_code == 404 and res.json()["message"] == "No such container: nope"
    res = session.post(f"{base}/v1.41/containers/nope/wait")
    assert res.status_code == 404
    res = session.get(f"{base}/v1.41/containers/json", params={"filters": '{"bogus":["x"]}'})
    assert res.status_code == 400
    res = session.post(f"{base}/v1.41/containers/nope/kill", params={"signal": "SIGNOPE"})
    assert res.status_code == 400 and "invalid signal" in res.json()["message"]
    res = session.post(f"{base}/v1.41/containers/nope/kill")
    assert res.status_code == 404 and res.json()["message"] == "No such container: nope"
    # the CLI shows the refusal's message
    res = docker(daemon, "run", "-d", "--oom-kill-disable", "busybox", "true", check=False)
    assert res.returncode != 0 and "OomKillDisable is not supported" in res.stderr
    res = docker(daemon, "create", "--network", "none", "-p", "8080:80", "busybox", "true",
                 check=False)
    assert res.returncode != 0 and "published ports need a network" in res.stderr
    # nothing was left behind by the refusals
    assert docker(daemon, "ps", "-aq").stdout == ""


def test_network_modes(daemon: Daemon) -> None:
    with _removed(daemon, "netnone", "nethost"):
        docker(daemon, "run", "-d", "--name", "netnone", "--network", "none", "busybox",
               "sleep", "300")
        info = docker_json(daemon, "inspect", "netnone")[0]
        assert info["HostConfig"]["NetworkMode"] == "none"
        assert list(info["NetworkSettings"]["Networks"]) == ["none"]
        # the root admin may use the host's network
        docker(daemon, "run", "-d", "--name", "nethost", "--network", "host", "busybox",
               "sleep", "300")
        assert docker(daemon, "inspect", "--format", "{{.HostConfig.NetworkMode}}",
                      "nethost").stdout.strip() == "host"
        assert docker(daemon, "ps", "--filter", "network=host", "--format",
                      "{{.Names}}").stdout.split() == ["nethost"]


def test_user_defined_network_is_recorded(daemon: Daemon) -> None:
    net_id = docker(daemon, "network", "create", "appnet").stdout.strip()
    try:
        with _removed(daemon, "netapp"):
            docker(daemon, "run", "-d", "--name", "netapp", "--network", "appnet",
                   "--network-alias", "web", "busybox", "sleep", "300")
            info = docker_json(daemon, "inspect", "netapp")[0]
            assert info["HostConfig"]["NetworkMode"] == "appnet"
            endpoint = info["NetworkSettings"]["Networks"]["appnet"]
            assert "web" in endpoint["Aliases"] and endpoint["NetworkID"] == net_id
            assert docker(daemon, "ps", "--filter", "network=appnet", "--format",
                          "{{.Names}}").stdout.split() == ["netapp"]
        res = docker(daemon, "create", "--network", "nonet", "busybox", "true", check=False)
        assert res.returncode != 0 and "nonet" in res.stderr and "not found" in res.stderr
    finally:
        docker(daemon, "network", "rm", "appnet", check=False)


def test_member_without_grant_gets_403(daemon: Daemon) -> None:
    admin = daemon.client
    admin.projects.create("dk-member")
    in_project = Client(daemon.host, project="dk-member")
    in_project.images.build_base("busybox")
    admin.users.create("dk-user")
    admin.projects.set_member("dk-member", "dk-user", "member")
    token = in_project.tokens.create("docker", user="dk-user")["token"]
    client = dockerpy(daemon)
    client.api.headers["Authorization"] = f"Bearer {token}"
    host_dir = tempfile.mkdtemp(prefix="berth-bind-")
    try:
        with pytest.raises(Exception) as err:
            client.containers.create("busybox", "true", volumes={host_dir: {"bind": "/h"}})
        assert getattr(err.value, "status_code", None) == 403, err.value
        with pytest.raises(Exception) as err:
            client.containers.create("busybox", "true", network_mode="host")
        assert getattr(err.value, "status_code", None) == 403, err.value
        # the member's own containers are fine, and live in its project only
        box = client.containers.create("busybox", "true", name="member1")
        try:
            assert [c.name for c in client.containers.list(all=True)] == ["member1"]
            assert "member1" not in docker(daemon, "ps", "-a").stdout
        finally:
            box.remove(force=True)
    finally:
        os.rmdir(host_dir)
        for img in in_project.images.list():
            in_project.images.remove(img["id"], force=True)


def test_attached_run_exit_codes(daemon: Daemon) -> None:
    """create, attach, wait(next-exit or removed), start: the CLI's attached run."""
    res = docker(daemon, "run", "--rm", "busybox", "echo", "hello")
    assert res.stdout == "hello\n"
    res = docker(daemon, "run", "--name", "att1", "busybox", "sh", "-c", "exit 3", check=False)
    try:
        assert res.returncode == 3, res
        assert _state(daemon, "att1")["ExitCode"] == 3
    finally:
        docker(daemon, "rm", "-f", "att1", check=False)


def test_extra_hosts_dns_ulimits_and_groups_through_docker(daemon: Daemon) -> None:
    with _removed(daemon, "opts1"):
        docker(daemon, "run", "-d", "--name", "opts1", "--add-host", "db.internal:10.0.0.5",
               "--add-host", "gw:host-gateway", "--dns", "10.9.9.9", "--dns-search", "corp",
               "--dns-option", "ndots:3", "--ulimit", "nofile=300:400", "--group-add", "users",
               "--shm-size", "128m", "--sysctl", "net.core.somaxconn=777",
               "--cpuset-cpus", "0", "--memory-reservation", "32m",
               "busybox", "sleep", "300")
        host = docker_json(daemon, "inspect", "opts1")[0]["HostConfig"]
        assert host["ExtraHosts"] == ["db.internal:10.0.0.5", "gw:host-gateway"]
        assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (
            ["10.9.9.9"], ["corp"], ["ndots:3"])
        assert host["Ulimits"] == [{"Name": "nofile", "Soft": 300, "Hard": 400}]
        assert host["GroupAdd"] == ["users"]
        assert host["ShmSize"] == 128 << 20 and host["Sysctls"] == {"net.core.somaxconn": "777"}
        assert docker(daemon, "exec", "opts1", "cat", "/proc/sys/net/core/somaxconn"
                      ).stdout == "777\n"
        assert (host["CpusetCpus"], host["MemoryReservation"]) == ("0", 32 << 20)
        assert docker(daemon, "exec", "opts1", "nproc").stdout == "1\n"
        docker(daemon, "update", "--memory-reservation", "16m", "opts1")
        assert docker_json(daemon, "inspect", "opts1")[0]["HostConfig"][
            "MemoryReservation"] == 16 << 20
        gateway = docker_json(daemon, "network", "inspect", "bridge")[0]["IPAM"]["Config"][0][
            "Gateway"]
        hosts = docker(daemon, "exec", "opts1", "cat", "/etc/hosts").stdout
        assert "10.0.0.5\tdb.internal\n" in hosts and f"{gateway}\tgw\n" in hosts
        # on a network its DNS stays the nameserver: it sends other names to 10.9.9.9
        resolv = docker(daemon, "exec", "opts1", "cat", "/etc/resolv.conf").stdout
        assert resolv == f"nameserver {gateway}\nsearch corp\noptions ndots:3\n"
        out = docker(daemon, "exec", "opts1", "sh", "-c", "ulimit -n; ulimit -Hn; id -G")
        assert out.stdout.split("\n")[:2] == ["300", "400"]
        assert "100" in out.stdout.split("\n")[2].split()


def test_oom_score_adj_and_a_dotted_hostname_through_docker(daemon: Daemon) -> None:
    with _removed(daemon, "opts2"):
        docker(daemon, "run", "-d", "--name", "opts2", "--oom-score-adj", "250", "-h",
               "api.example.com", "busybox", "sleep", "300")
        box = docker_json(daemon, "inspect", "opts2")[0]
        assert (box["HostConfig"]["OomScoreAdj"], box["Config"]["Hostname"]) == (
            250, "api.example.com")
        out = docker(daemon, "exec", "opts2", "sh", "-c", "cat /proc/1/oom_score_adj; hostname")
        assert out.stdout == "250\napi.example.com\n"
    res = docker(daemon, "run", "--rm", "--oom-score-adj", "-100", "busybox", "true",
                 check=False)
    assert res.returncode != 0 and "below 0 is not allowed" in res.stderr


def test_stop_with_a_signal_through_the_api(daemon: Daemon) -> None:
    """API 1.42's ?signal= on stop (docker stop -s): not the container's stop signal."""
    client = dockerpy(daemon)
    box = client.containers.run("busybox", ["sh", "-c", "trap 'exit 7' USR1; trap 'exit 0' "
                                            "TERM; while true; do sleep 0.1; done"],
                                detach=True, name="api-sig")
    try:
        client.api._raise_for_status(client.api._post(
            client.api._url("/containers/{0}/stop", box.id), params={"signal": "SIGUSR1",
                                                                      "t": 10}))
        box.reload()
        assert box.attrs["State"]["ExitCode"] == 7
    finally:
        box.remove(force=True)
