"""Bad input, through the CLI and through raw HTTP: a clear 4xx / one-line refusal, never a
traceback or a 500, and nothing half-made left behind."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from berth.client.transport import Transport
from berth.client.wire import Response, send_request
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration

# Every HTTP status this module saw; none may be a 5xx (checked by the last test).
STATUSES: list[tuple[str, int]] = []


# -- the CLI ---------------------------------------------------------------------------------

def _containers(daemon: Daemon) -> list[dict[str, Any]]:
    return json.loads(daemon.cli("ps", "-a", "-o", "json").stdout)


def _refused(res: subprocess.CompletedProcess[str], codes: tuple[int, ...], *words: str) -> str:
    assert res.returncode in codes, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {res.stderr!r}"
    assert lines[0].startswith("berth: "), lines[0]
    low = lines[0].lower()
    assert any(w.lower() in low for w in words), f"none of {words} in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def no_leftovers(daemon: Daemon) -> Iterator[None]:
    """No container and no volume may appear because of a refused command."""
    before = {c["id"] for c in _containers(daemon)}
    volumes = set(daemon.cli("volume", "ls", "-q").stdout.split())
    yield
    made = [c["name"] for c in _containers(daemon) if c["id"] not in before]
    if made:
        daemon.cli("rm", "-f", "-v", *made, check=False)
    left = set(daemon.cli("volume", "ls", "-q").stdout.split()) - volumes
    for vol in left:
        daemon.cli("volume", "rm", vol, check=False)
    assert not made, f"a refused command left containers behind: {made}"
    assert not left, f"a refused command left volumes behind: {sorted(left)}"


RUN_REFUSALS = [
    (["--name", "bad/name"], ("name",)),
    (["--name", ".."], ("name",)),
    (["--name", "n" * 200], ("name",)),
    (["--memory", "1k"], ("memory",)),
    (["--cpus", "0"], ("cpus",)),
    (["--cpus", "1000"], ("cpus",)),
    (["--pids-limit", "0"], ("pids",)),
    (["--restart", "sometimes"], ("restart",)),
    (["--restart", "always:3"], ("restart",)),
    (["-e", "=x"], ("env",)),
    (["--workdir", "relative"], ("workdir",)),
    (["--hostname", "no spaces"], ("hostname",)),
]


@pytest.mark.parametrize(("flags", "words"), RUN_REFUSALS,
                         ids=[" ".join(f)[:30] for f, _ in RUN_REFUSALS])
@pytest.mark.usefixtures("no_leftovers")
def test_run_refuses_bad_option(daemon: Daemon, flags: list[str], words: tuple[str]) -> None:
    for command in ("run", "create"):
        res = daemon.cli(command, *flags, "busybox", "true", check=False)
        _refused(res, (125,), *words)
        assert res.stdout == "", res.stdout


@pytest.mark.usefixtures("no_leftovers")
def test_run_unknown_image(daemon: Daemon) -> None:
    res = daemon.cli("run", "--rm", "no-such-image:latest", "true", check=False)
    _refused(res, (125,), "image")


@pytest.mark.parametrize("command", [
    ["stop", "ghost-container"], ["rm", "ghost-container"], ["logs", "ghost-container"],
    ["exec", "ghost-container", "true"], ["inspect", "--type", "container", "ghost-container"],
    ["start", "ghost-container"], ["kill", "ghost-container"],
])
@pytest.mark.usefixtures("no_leftovers")
def test_unknown_container(daemon: Daemon, command: list[str]) -> None:
    res = daemon.cli(*command, check=False)
    _refused(res, (1, 125), "no such container")


def test_duplicate_name(daemon: Daemon) -> None:
    name = "bad-dup"
    try:
        daemon.cli("create", "--name", name, "busybox", "true")
        before = {c["id"] for c in _containers(daemon)}
        volumes = set(daemon.cli("volume", "ls", "-q").stdout.split())
        res = daemon.cli("create", "--name", name, "-v", "bad-dup-vol:/data", "busybox",
                         "true", check=False)
        _refused(res, (125,), "in use", "already")
        assert {c["id"] for c in _containers(daemon)} == before
        left = set(daemon.cli("volume", "ls", "-q").stdout.split()) - volumes
        assert not left, f"the refused create still made volumes: {sorted(left)}"
    finally:
        daemon.cli("rm", "-f", name, check=False)
        daemon.cli("volume", "rm", "bad-dup-vol", check=False)


def test_refusals_on_container_state(daemon: Daemon) -> None:
    stopped, running = "bad-stopped", "bad-running"
    try:
        daemon.cli("create", "--name", stopped, "busybox", "sleep", "100")
        daemon.cli("run", "-d", "--name", running, "busybox", "sleep", "100")
        daemon.wait_for(lambda: daemon.inspect(running)["state"]["status"] == "running",
                        timeout=20, what="running")
        before = _containers(daemon)

        _refused(daemon.cli("exec", stopped, "true", check=False), (125,), "not running")
        _refused(daemon.cli("pause", stopped, check=False), (1, 125), "not running")
        _refused(daemon.cli("unpause", running, check=False), (1, 125), "not paused")
        _refused(daemon.cli("rm", running, check=False), (1, 125), "running")

        assert daemon.inspect(running)["state"]["status"] == "running"
        assert daemon.inspect(stopped)["state"]["status"] == "created"
        assert {c["id"] for c in _containers(daemon)} == {c["id"] for c in before}
    finally:
        daemon.cli("rm", "-f", stopped, running, check=False)


# -- raw HTTP on the unix socket -------------------------------------------------------------

def _http(daemon: Daemon, method: str, url: str, body: bytes | None = None,
          content_type: str = "application/json") -> tuple[int, Any]:
    conn = Transport(daemon.host, timeout=60).connect()
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            send_request(conn, method, url, "localhost", headers, body)
            resp = Response(conn, method)
        except (BrokenPipeError, ConnectionResetError):
            # A server may refuse a huge body before reading it all; that is not a 500.
            STATUSES.append((url, 413))
            return 413, None
        raw = resp.read()
        STATUSES.append((f"{method} {url}", resp.status))
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw
        return resp.status, doc
    finally:
        conn.close()


def _post_container(daemon: Daemon, doc: Any) -> tuple[int, Any]:
    return _http(daemon, "POST", "/v1/containers", json.dumps(doc).encode())


@pytest.fixture
def no_new_containers(daemon: Daemon) -> Iterator[None]:
    before = {c["id"] for c in daemon.client.containers.list(all=True)}
    yield
    made = [c["name"] for c in daemon.client.containers.list(all=True)
            if c["id"] not in before]
    if made:
        daemon.cli("rm", "-f", "-v", *made, check=False)
    assert not made, f"a refused request made containers: {made}"


@pytest.mark.usefixtures("no_new_containers")
def test_http_unknown_field(daemon: Daemon) -> None:
    status, doc = _post_container(daemon, {"image": "busybox", "comand": ["true"]})
    assert status == 400, doc
    assert doc["message"] == "unknown field: comand"


@pytest.mark.usefixtures("no_new_containers")
def test_http_malformed_json(daemon: Daemon) -> None:
    for body in (b'{"image": "busybox",', b"{'image': 'busybox'}", b"\xff\xfe", b"",
                 b"[1, 2, 3]", b"null", b'"busybox"'):
        status, doc = _http(daemon, "POST", "/v1/containers", body)
        assert status == 400, (body, status, doc)
        assert isinstance(doc, dict) and doc.get("message"), (body, doc)


@pytest.mark.usefixtures("no_new_containers")
def test_http_wrong_type_names_the_field(daemon: Daemon) -> None:
    cases = [({"image": "busybox", "memory": "lots"}, "memory"),
             ({"image": "busybox", "tty": "maybe"}, "tty"),
             ({"image": "busybox", "command": "true"}, "command"),
             ({"image": "busybox", "env": {"A": "1"}}, "env"),
             ({"image": 42}, "image"),
             ({"image": "busybox", "restart_policy": "always"}, "restart_policy"),
             ({"image": "busybox", "mounts": [{"type": "volume", "target": 7}]}, "target")]
    for doc, field in cases:
        status, answer = _post_container(daemon, doc)
        assert status == 400, (doc, status, answer)
        assert field in answer["message"], (doc, answer)


@pytest.mark.usefixtures("no_new_containers")
def test_http_huge_garbage_body(daemon: Daemon) -> None:
    garbage = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    status, _ = _http(daemon, "POST", "/v1/containers", garbage)
    assert 400 <= status < 500, status
    status, _ = _http(daemon, "POST", "/v1/containers", garbage,
                      content_type="application/octet-stream")
    assert 400 <= status < 500, status
    # The daemon still answers.
    assert daemon.client.info()


@pytest.mark.usefixtures("no_new_containers")
def test_http_too_many_mounts(daemon: Daemon) -> None:
    mounts = [{"type": "tmpfs", "target": f"/t{i}"} for i in range(1000)]
    status, doc = _post_container(daemon, {"image": "busybox", "mounts": mounts})
    assert status == 400, doc
    assert "mounts" in doc["message"]


@pytest.mark.usefixtures("no_new_containers")
def test_http_negative_stop_timeout(daemon: Daemon) -> None:
    status, doc = _post_container(daemon, {"image": "busybox", "stop_timeout": -5})
    assert status == 400, doc
    assert "stop_timeout" in doc["message"]
    name = "bad-http-stop"
    try:
        daemon.cli("create", "--name", name, "busybox", "true")
        status, doc = _http(daemon, "POST", f"/v1/containers/{name}/stop?timeout=-5")
        assert status == 400, doc
        assert "timeout" in doc["message"]
    finally:
        daemon.cli("rm", "-f", name, check=False)


@pytest.mark.usefixtures("no_new_containers")
def test_http_out_of_range_limits(daemon: Daemon) -> None:
    """Numbers beyond what the kernel or runc can take are a 400 at create, not a create
    that can never start."""
    for field in ("memory", "pids_limit", "memory_swap"):
        doc: dict[str, Any] = {"image": "busybox", field: 2**70}
        if field == "memory_swap":
            doc["memory"] = 64 * 1024 * 1024
        status, answer = _post_container(daemon, doc)
        assert status == 400, (field, status, answer)
        assert field in answer["message"], answer


@pytest.mark.usefixtures("no_new_containers")
def test_http_path_traversal_is_not_found(daemon: Daemon) -> None:
    for url in ("/v1/containers/../../etc/passwd", "/v1/containers/..%2F..%2Fetc%2Fpasswd",
                "/v1/volumes/..%2F..%2Fetc", "/v1/containers/%2E%2E"):
        status, doc = _http(daemon, "GET", url)
        assert status == 404, (url, status, doc)
        assert "root:" not in json.dumps(doc)


def test_no_http_answer_was_a_server_error() -> None:
    assert STATUSES, "no HTTP request was made"
    errors = [(what, s) for what, s in STATUSES if s >= 500]
    assert not errors, f"5xx answers: {errors}"


def test_request_bodies_are_bounded(daemon: Daemon) -> None:
    import http.client
    import socket as socketlib

    def post(body: bytes, chunked: bool) -> tuple[int, str]:
        class Unix(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socketlib.socket(socketlib.AF_UNIX)
                self.sock.connect(str(daemon.socket))

        conn = Unix("localhost", timeout=30)
        headers = {"Content-Type": "application/json"}
        if chunked:
            conn.request("POST", "/v1/volumes", body=iter([body[i:i + 65536] for i in
                                                          range(0, len(body), 65536)]),
                         headers=headers, encode_chunked=True)
        else:
            conn.request("POST", "/v1/volumes", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()

    huge = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    for chunked in (False, True):
        status, text = post(huge, chunked)
        assert status == 413 and "larger than" in text, (status, text)
    assert post(b'{"name": "small-one"}', False)[0] == 201
    daemon.client.volumes.remove("small-one")
