"""Docker API streams with the real docker CLI and docker-py: attached `run` (output, exit
codes, stdin, a terminal and its detach keys), attach, logs (follow, tail, timestamps, since),
resize, stats and top; refusals of bad input."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
from websockets.sync.client import unix_connect

from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, docker_json, dockerpy
from tests.integration.terminal import DETACH, DockerPty

pytestmark = pytest.mark.integration
TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


@pytest.fixture
def names(daemon: Daemon) -> Iterator[list[str]]:
    """Containers a test made; removed afterwards whatever happened."""
    made: list[str] = []
    yield made
    for name in made:
        docker(daemon, "rm", "-f", name, check=False)


def _running(d: Daemon, name: str) -> bool:
    return bool(docker_json(d, "inspect", name)[0]["State"]["Running"])


def _wait_running(d: Daemon, name: str) -> None:
    d.wait_for(lambda: _running(d, name), what=f"{name} running")


# ---- docker run, attached -------------------------------------------------------------------


def test_run_rm_prints_the_output_and_exits_zero(daemon: Daemon) -> None:
    res = docker(daemon, "run", "--rm", "busybox", "echo", "hi")
    assert res.stdout == "hi\n"
    assert res.returncode == 0


def test_run_rm_keeps_the_streams_apart_and_passes_the_exit_code(daemon: Daemon) -> None:
    res = docker(daemon, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3",
                 check=False)
    assert res.returncode == 3
    assert res.stdout == "out\n"
    assert res.stderr == "err\n"
    assert docker(daemon, "ps", "-aq").stdout.strip() == ""  # --rm left nothing


def test_run_i_pipes_stdin_and_its_end_closes_the_containers_input(daemon: Daemon) -> None:
    res = docker(daemon, "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo end",
                 input="one\ntwo\n", timeout=60)
    assert res.stdout == "one\ntwo\nend\n"


def test_run_it_through_a_terminal_then_detach(daemon: Daemon, names: list[str]) -> None:
    names.append("st-run-it")
    term = DockerPty(daemon, "run", "-it", "--name", "st-run-it", "busybox", "sh")
    try:
        term.read_until(b"# ")
        term.send(b"echo hel''lo\r")
        term.read_until(b"hello")
        term.send(b"stty size\r")  # the CLI sized the container's terminal like its own
        term.read_until(b"24 80")
        term.send(DETACH)
        assert term.wait() == 0
    finally:
        term.close()
    assert _running(daemon, "st-run-it")


def test_attach_to_a_terminal_then_detach(daemon: Daemon, names: list[str]) -> None:
    names.append("st-attach-it")
    docker(daemon, "run", "-dit", "--name", "st-attach-it", "busybox", "sh")
    _wait_running(daemon, "st-attach-it")
    term = DockerPty(daemon, "attach", "st-attach-it")
    try:
        term.send(b"echo at''tached\r")
        term.read_until(b"attached")
        term.send(DETACH)
        # The CLI sees the keys itself and ends (docker 20.10's attach then exits 1 with
        # "read escape sequence", whatever the daemon does); the container stays up.
        term.wait()
    finally:
        term.close()
    assert _running(daemon, "st-attach-it")


def test_attach_without_a_terminal_ends_with_the_container(daemon: Daemon,
                                                           names: list[str]) -> None:
    names.append("st-attach")
    docker(daemon, "run", "-d", "-i", "--name", "st-attach", "busybox", "sh", "-c",
           "read x; echo got $x; echo bye >&2; exit 4")
    _wait_running(daemon, "st-attach")
    res = docker(daemon, "attach", "st-attach", input="word\n", check=False, timeout=60)
    assert res.stdout == "got word\n"
    assert res.stderr == "bye\n"
    assert res.returncode == 4


# ---- docker-py ----------------------------------------------------------------------------


def test_dockerpy_run_returns_the_output(daemon: Daemon) -> None:
    client = dockerpy(daemon)
    assert client.containers.run("busybox", "echo hi", remove=True) == b"hi\n"


def test_dockerpy_attach_before_start_misses_nothing(daemon: Daemon) -> None:
    api = dockerpy(daemon).api
    cid = api.create_container("busybox", ["sh", "-c", "echo early; read x; echo got $x"],
                               stdin_open=True)["Id"]
    try:
        sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                              "stream": 1})._sock
        api.start(cid)
        sock.sendall(b"yes\n")
        sock.settimeout(30)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        sock.close()
        # Docker's framing: stdout (1), three zero bytes, a big-endian length.
        assert data == (b"\x01\x00\x00\x00\x00\x00\x00\x06early\n"
                        b"\x01\x00\x00\x00\x00\x00\x00\x08got yes\n")
        assert api.wait(cid)["StatusCode"] == 0
    finally:
        api.remove_container(cid, force=True)


def test_dockerpy_attach_stream_and_logs(daemon: Daemon) -> None:
    api = dockerpy(daemon).api
    cid = api.create_container("busybox", ["sh", "-c", "echo a; sleep 0.5; echo b >&2"])["Id"]
    try:
        stream = api.attach(cid, stream=True, demux=True)
        api.start(cid)
        got = list(stream)
        assert (b"a\n", None) in got and (None, b"b\n") in got
        assert api.logs(cid, stdout=True, stderr=False) == b"a\n"
        assert api.logs(cid, stdout=False, stderr=True) == b"b\n"
        # logs=1 replays what the log holds; the container is over, so that is all.
        replay = api.attach(cid, logs=True, stream=False)
        assert replay == b"a\nb\n"
    finally:
        api.remove_container(cid, force=True)


def test_dockerpy_logs_follow_streams_until_exit(daemon: Daemon) -> None:
    client = dockerpy(daemon)
    box = client.containers.run("busybox", ["sh", "-c",
                                            "for i in 1 2 3; do echo l$i; sleep 0.3; done"],
                                detach=True)
    try:
        assert b"".join(box.logs(stream=True, follow=True)) == b"l1\nl2\nl3\n"
    finally:
        box.remove(force=True)


def test_websocket_attach_carries_raw_bytes(daemon: Daemon) -> None:
    api = dockerpy(daemon).api
    cid = api.create_container("busybox", ["sh", "-c", "read x; echo got $x; echo e >&2"],
                               stdin_open=True)["Id"]
    try:
        url = f"ws://docker/containers/{cid}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1"
        with unix_connect(str(daemon.docker_socket), url) as ws:
            api.start(cid)
            ws.send(b"wsin\n")
            got = b""
            deadline = time.monotonic() + 30
            while b"e\n" not in got and time.monotonic() < deadline:
                got += ws.recv(timeout=30)
        assert got == b"got wsin\ne\n"  # no multiplexing on the websocket
    finally:
        api.remove_container(cid, force=True)


# ---- logs -----------------------------------------------------------------------------------


def test_logs_follow_sees_new_output_and_ends_with_the_container(daemon: Daemon,
                                                                 names: list[str]) -> None:
    names.append("st-follow")
    docker(daemon, "run", "-d", "--name", "st-follow", "busybox", "sh", "-c",
           "echo first; sleep 2; echo second; sleep 1; echo third")
    _wait_running(daemon, "st-follow")
    res = docker(daemon, "logs", "-f", "st-follow", timeout=60)  # returns only at the end
    assert res.stdout == "first\nsecond\nthird\n"
    assert not _running(daemon, "st-follow")


def test_logs_tail_timestamps_since(daemon: Daemon, names: list[str]) -> None:
    names.append("st-logs")
    docker(daemon, "run", "-d", "--name", "st-logs", "busybox", "sh", "-c",
           "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2")
    docker(daemon, "wait", "st-logs")
    res = docker(daemon, "logs", "--tail", "2", "st-logs")
    assert res.stdout == "line5\n" and res.stderr == "oops\n"
    assert docker(daemon, "logs", "--tail", "0", "st-logs").stdout == ""
    stamped = docker(daemon, "logs", "-t", "st-logs").stdout.splitlines()
    assert len(stamped) == 5
    parsed = [TS_RE.match(line) for line in stamped]
    assert all(parsed), stamped
    assert [m.group(2) for m in parsed if m] == [f"line{i}" for i in range(1, 6)]
    first = datetime.fromisoformat(parsed[0].group(1)[:26] + "+00:00")  # type: ignore[union-attr]
    assert abs(first.timestamp() - time.time()) < 3600
    # --since after everything was written: nothing; before: everything.
    assert docker(daemon, "logs", "--since", str(int(time.time()) + 5), "st-logs").stdout == ""
    assert docker(daemon, "logs", "--since", "1h", "st-logs").stdout.count("line") == 5
    until = docker(daemon, "logs", "--until", "1h", "st-logs").stdout  # an hour ago: nothing
    assert until == ""


def test_logs_of_a_tty_container_are_raw(daemon: Daemon, names: list[str]) -> None:
    names.append("st-tty-logs")
    docker(daemon, "run", "-d", "-t", "--name", "st-tty-logs", "busybox", "echo", "raw")
    docker(daemon, "wait", "st-tty-logs")
    api = dockerpy(daemon).api
    body = api.get(api._url("/containers/st-tty-logs/logs"),
                   params={"stdout": 1, "stderr": 1}).content
    assert body == b"raw\r\n"


def test_logs_refusals(daemon: Daemon, names: list[str]) -> None:
    names.append("st-bad-logs")
    docker(daemon, "run", "-d", "--name", "st-bad-logs", "busybox", "true")
    api = dockerpy(daemon).api
    url = api._url("/containers/st-bad-logs/logs")
    res = api.get(url, params={"stdout": 1, "tail": "many"})
    assert res.status_code == 400 and "tail" in res.json()["message"]
    res = api.get(url, params={})
    assert res.status_code == 400 and "stream" in res.json()["message"]
    res = api.get(url, params={"stdout": 1, "since": "yesterday-ish"})
    assert res.status_code == 400 and "time" in res.json()["message"]
    res = api.get(api._url("/containers/st-no-such/logs"), params={"stdout": 1})
    assert res.status_code == 404 and "st-no-such" in res.json()["message"]
    res = api.post(api._url("/containers/st-no-such/attach"), params={"stream": 1})
    assert res.status_code == 404


# ---- resize, stats, top -----------------------------------------------------------------------


def test_resize_reaches_the_containers_terminal(daemon: Daemon, names: list[str]) -> None:
    names.append("st-resize")
    docker(daemon, "run", "-dit", "--name", "st-resize", "busybox", "sh")
    _wait_running(daemon, "st-resize")
    api = dockerpy(daemon).api
    api.resize("st-resize", height=33, width=101)
    size = docker(daemon, "exec", "st-resize", "stty", "-F", "/dev/console", "size").stdout
    assert size.strip() == "33 101"
    res = api.post(api._url("/containers/st-resize/resize"), params={"h": "x", "w": 3})
    assert res.status_code == 400


def test_stats_no_stream_shows_cpu_and_memory(daemon: Daemon, names: list[str]) -> None:
    names.append("st-stats")
    docker(daemon, "run", "-d", "--name", "st-stats", "busybox", "sh", "-c",
           "while true; do :; done")
    _wait_running(daemon, "st-stats")
    row = json.loads(docker(daemon, "stats", "--no-stream", "--format", "{{json .}}",
                            "st-stats").stdout)
    assert row["Name"] == "st-stats"
    cpu = float(row["CPUPerc"].rstrip("%"))
    assert 5.0 < cpu <= 100.0 * 64  # a busy loop shows; a sane percentage
    used, _, limit = row["MemUsage"].partition(" / ")
    assert re.match(r"^[\d.]+(B|KiB|MiB)$", used), row
    assert re.match(r"^[\d.]+(MiB|GiB|TiB)$", limit), row
    assert row["PIDs"] == "1"


def test_stats_document_shape(daemon: Daemon, names: list[str]) -> None:
    names.append("st-stats-doc")
    ping = "ping -c 3 -W 1 $(ip route | awk '/default/ {print $3}'); sleep 60"
    box = dockerpy(daemon).containers.run("busybox", ["sh", "-c", ping], name="st-stats-doc",
                                          detach=True)
    _wait_running(daemon, "st-stats-doc")
    daemon.wait_for(lambda: box.stats(stream=False, one_shot=True).get("networks", {}).get(
        "eth0", {}).get("tx_packets", 0) >= 3, what="the pings counted")
    doc = box.stats(stream=False)
    assert set(doc["networks"]) == {"eth0"}  # on its bridge network; loopback left out
    assert doc["networks"]["eth0"]["rx_bytes"] > 0 and doc["networks"]["eth0"]["rx_errors"] == 0
    assert doc["name"] == "/st-stats-doc" and doc["id"] == box.id
    assert doc["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert doc["cpu_stats"]["system_cpu_usage"] >= doc["precpu_stats"]["system_cpu_usage"] > 0
    assert doc["cpu_stats"]["online_cpus"] >= 1
    assert doc["memory_stats"]["usage"] > 0 and doc["memory_stats"]["limit"] > 0
    assert doc["pids_stats"]["current"] >= 1
    assert doc["read"] > doc["preread"]
    one = box.stats(stream=False, one_shot=True)
    assert one["preread"] == "0001-01-01T00:00:00Z"
    stream = box.stats(stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert second["precpu_stats"] == first["cpu_stats"]


def test_top_lists_the_processes(daemon: Daemon, names: list[str]) -> None:
    names.append("st-top")
    docker(daemon, "run", "-d", "--name", "st-top", "busybox", "sleep", "120")
    _wait_running(daemon, "st-top")
    lines = docker(daemon, "top", "st-top").stdout.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    assert any(line.endswith("sleep 120") for line in lines[1:])
    top = dockerpy(daemon).api.top("st-top")
    assert top["Titles"][-1] == "CMD" and len(top["Processes"]) == 1
    # ps options, as docker's: the host's ps, only this container's rows.
    lines = docker(daemon, "top", "st-top", "-o", "pid,args").stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"] and len(lines) == 2, lines
    assert lines[1].split()[1:] == ["sleep", "120"]
    aux = dockerpy(daemon).api.top("st-top", ps_args="aux")
    assert aux["Titles"][:2] == ["USER", "PID"] and len(aux["Processes"]) == 1, aux
    res = docker(daemon, "top", "st-top", "-o", "comm", check=False)
    assert res.returncode != 0 and "PID column" in res.stderr
    docker(daemon, "stop", "-t", "0", "st-top")
    res = docker(daemon, "top", "st-top", check=False)
    assert res.returncode != 0 and "not running" in res.stderr


def test_resize_of_unknown_container_is_404(daemon: Daemon) -> None:
    api = dockerpy(daemon).api
    res = api.post(api._url("/containers/st-nope/resize"), params={"h": 10, "w": 10})
    assert res.status_code == 404
    res = api.get(api._url("/containers/st-nope/stats"), params={"stream": 0})
    assert res.status_code == 404
    assert isinstance(res, requests.Response)
