"""Docker exec with the real docker CLI and docker-py: output and exit codes, env, workdir,
user, piped stdin, a terminal (exec -it), detached execs, inspect; refusals of bad input and
another project's exec ids."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from berth.client import Client
from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, docker_json, dockerpy
from tests.integration.terminal import DockerPty

pytestmark = pytest.mark.integration
BOX = "ex-box"


@pytest.fixture(scope="module")
def box(daemon: Daemon) -> Iterator[str]:
    """A running container the tests exec into."""
    dockerpy(daemon).containers.run("busybox", "sleep 3600", name=BOX, detach=True)
    daemon.wait_for(lambda: docker_json(daemon, "inspect", BOX)[0]["State"]["Running"],
                    what="the exec box running")
    try:
        yield BOX
    finally:
        docker(daemon, "rm", "-f", BOX, check=False)


def test_exec_output_and_exit_codes(daemon: Daemon, box: str) -> None:
    res = docker(daemon, "exec", box, "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert docker(daemon, "exec", box, "true").returncode == 0
    missing = docker(daemon, "exec", box, "no-such-command", check=False)
    assert missing.returncode == 127
    assert "no-such-command" in missing.stdout + missing.stderr


def test_exec_env_workdir_user(daemon: Daemon, box: str) -> None:
    res = docker(daemon, "exec", "-e", "FOO=bar baz", "-w", "/tmp", "-u", "1234:55", box,
                 "sh", "-c", 'echo "$FOO"; pwd; id -u; id -g')
    assert res.stdout.splitlines() == ["bar baz", "/tmp", "1234", "55"]


def test_exec_i_pipes_stdin_until_its_end(daemon: Daemon, box: str) -> None:
    data = "".join(f"line {i}\n" for i in range(2000))
    res = docker(daemon, "exec", "-i", box, "wc", "-l", input=data, timeout=60)
    assert res.stdout.strip() == "2000"


def test_exec_it_through_a_terminal(daemon: Daemon, box: str) -> None:
    term = DockerPty(daemon, "exec", "-it", box, "sh", rows=30, cols=90)
    try:
        term.read_until(b"# ")
        term.send(b"echo hel''lo; tty\r")
        term.read_until(b"hello")
        term.read_until(b"/dev/pts/")
        term.send(b"stty size\r")
        term.read_until(b"30 90")
        term.send(b"exit 7\r")
        assert term.wait() == 7
    finally:
        term.close()


def test_exec_without_tty_has_no_terminal(daemon: Daemon, box: str) -> None:
    res = docker(daemon, "exec", box, "tty", check=False)
    assert res.returncode == 1 and "not a tty" in res.stdout


def test_dockerpy_exec_run_variants(daemon: Daemon, box: str) -> None:
    container = dockerpy(daemon).containers.get(box)
    res = container.exec_run(["sh", "-c", "echo a; echo b >&2; exit 4"], demux=True)
    assert res.exit_code == 4 and res.output == (b"a\n", b"b\n")
    res = container.exec_run(["sh", "-c", "echo a; echo b >&2"], tty=True)
    assert res.exit_code == 0 and res.output == b"a\r\nb\r\n"  # one terminal: both, CRLF
    res = container.exec_run(["sh", "-c", "echo one; sleep 0.3; echo two >&2"], stream=True,
                             demux=True)
    assert list(res.output) == [(b"one\n", None), (None, b"two\n")]
    res = container.exec_run("env", environment={"XY": "z"}, workdir="/etc", user="nobody")
    assert b"XY=z\n" in res.output


def test_exec_detached_and_inspect(daemon: Daemon, box: str) -> None:
    api = dockerpy(daemon).api
    eid = api.exec_create(box, ["sh", "-c", "sleep 1; exit 6"], tty=False)["Id"]
    before = api.exec_inspect(eid)
    assert before["Running"] is False and before["ExitCode"] is None
    assert before["ProcessConfig"] == {"entrypoint": "sh", "arguments": ["-c", "sleep 1; exit 6"],
                                       "tty": False, "user": "", "privileged": False}
    assert before["ContainerID"] == docker_json(daemon, "inspect", box)[0]["Id"]
    api.exec_start(eid, detach=True)
    assert api.exec_inspect(eid)["Running"] is True
    deadline = time.monotonic() + 30
    while api.exec_inspect(eid)["Running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    after = api.exec_inspect(eid)
    assert (after["Running"], after["ExitCode"]) == (False, 6)
    # An exec runs once.
    res = api.post(api._url(f"/exec/{eid}/start"), json={"Detach": True})
    assert res.status_code == 409 and "already" in res.json()["message"]


def test_exec_resize_reaches_its_terminal(daemon: Daemon, box: str) -> None:
    api = dockerpy(daemon).api
    eid = api.exec_create(box, ["sh", "-c", "sleep 0.5; stty size"], tty=True)["Id"]
    sock = api.exec_start(eid, tty=True, socket=True)._sock
    api.exec_resize(eid, height=41, width=123)
    sock.settimeout(30)
    out = b""
    while chunk := sock.recv(4096):
        out += chunk
    sock.close()
    assert out == b"41 123\r\n"


def test_exec_refusals(daemon: Daemon, box: str) -> None:
    api = dockerpy(daemon).api
    for method, path in (("get", "/exec/{}/json"), ("post", "/exec/{}/start"),
                         ("post", "/exec/{}/resize")):
        res = getattr(api, method)(api._url(path.format("0" * 64)), params={"h": 1, "w": 1})
        assert res.status_code == 404 and "No such exec" in res.json()["message"]
    res = api.post(api._url("/containers/ex-nope/exec"), json={"Cmd": ["true"]})
    assert res.status_code == 404
    res = api.post(api._url(f"/containers/{box}/exec"), json={"Cmd": []})
    assert res.status_code == 400 and "command" in res.json()["message"]
    res = api.post(api._url(f"/containers/{box}/exec"),
                   json={"Cmd": ["true"], "Privileged": True})
    assert res.status_code == 400 and "Privileged" in res.json()["message"]
    res = api.post(api._url(f"/containers/{box}/exec"), json={"Cmd": ["true"], "Env": ["=x"]})
    assert res.status_code == 400
    res = api.post(api._url(f"/containers/{box}/exec"),
                   json={"Cmd": ["true"], "DetachKeys": "ctrl-??"})
    assert res.status_code == 400 and "detach keys" in res.json()["message"]
    res = api.post(api._url(f"/containers/{box}/exec"), data=b"{nope",
                   headers={"Content-Type": "application/json"})
    assert res.status_code == 400


def test_exec_on_a_stopped_container_is_409(daemon: Daemon) -> None:
    docker(daemon, "create", "--name", "ex-stopped", "busybox", "true")
    try:
        res = docker(daemon, "exec", "ex-stopped", "true", check=False)
        assert res.returncode != 0 and "is not running" in res.stderr
        api = dockerpy(daemon).api
        res = api.post(api._url("/containers/ex-stopped/exec"), json={"Cmd": ["true"]})
        assert res.status_code == 409
    finally:
        docker(daemon, "rm", "-f", "ex-stopped")


def test_exec_start_after_the_container_stopped_is_409(daemon: Daemon) -> None:
    dockerpy(daemon).containers.run("busybox", "sleep 3600", name="ex-gone", detach=True)
    try:
        daemon.wait_for(lambda: docker_json(daemon, "inspect", "ex-gone")[0]["State"]["Running"])
        api = dockerpy(daemon).api
        eid = api.exec_create("ex-gone", ["true"])["Id"]
        docker(daemon, "kill", "ex-gone")
        res = api.post(api._url(f"/exec/{eid}/start"), json={"Detach": False})
        assert res.status_code == 409
    finally:
        docker(daemon, "rm", "-f", "ex-gone")


def test_another_projects_exec_is_not_found(daemon: Daemon, box: str) -> None:
    api = dockerpy(daemon).api
    eid = api.exec_create(box, ["true"])["Id"]
    token = (daemon.root / "admin-token").read_text().strip()
    admin = Client(daemon.host, token=token)
    if "ex-other" not in [p["name"] for p in admin.projects.list()]:
        admin.projects.create("ex-other")
    other = dockerpy(daemon).api
    other.headers.update({"Authorization": f"Bearer {token}", "X-Berth-Project": "ex-other"})
    try:
        for res in (other.get(other._url(f"/exec/{eid}/json")),
                    other.post(other._url(f"/exec/{eid}/start"), json={"Detach": True}),
                    other.post(other._url(f"/exec/{eid}/resize"), params={"h": 5, "w": 5})):
            assert res.status_code == 404
        assert api.exec_inspect(eid)["Running"] is False  # untouched in its own project
    finally:
        admin.projects.remove("ex-other")
