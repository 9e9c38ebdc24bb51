"""Schemathesis over the native API's OpenAPI document, against a live berthd: no 5xx, and no
answer outside the document (checks: not_a_server_error, status_code_conformance,
response_schema_conformance, content_type_conformance, negative_data_rejection).

How it reaches berthd: berthd listens on a unix socket, and schemathesis 4 sends a case with
``requests`` (``case.call_and_validate(session=...)``). The session here mounts an adapter
whose urllib3 connections open an AF_UNIX socket to the daemon (``UnixSession``); the base URL
``http://berthd`` only names that mount. The document is fetched over the same socket and
loaded with ``schemathesis.openapi.from_dict``.

Each operation is one test: a Hypothesis run with a fixed budget (``MAX_EXAMPLES``,
``derandomize=True``, no database, no shrinking), mixing positive and negative generation, with
generated path parameters and with the ids of real objects, so the fuzzer gets past "no such
container". Every case acts as a *member* of a scratch project, never as the admin: it cannot
touch other projects, and the containers it makes are removed when the module ends. What is
not fuzzed, or fuzzed with a parameter held, says why beside it (EXCLUDED, FIXED_QUERY, ...).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
import urllib3
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from berth.api.app import create_app
from berth.client import APIError, Client
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25
CALL_TIMEOUT = 60.0  # a case that hangs is reported as a failure, not waited out
BASE_URL = "http://berthd"
PROJECT, USER = "fuzz", "fuzzer"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance,
          content_type_conformance, negative_data_rejection]

# Operations not fuzzed, and why.
EXCLUDED = {
    "GET /v1/events": "an event stream: it never ends",
    "POST /v1/images/pull": "pulls from whatever registry the generated reference names "
                            "(the network)",
    "POST /v1/images/{ref}/push": "pushes to a registry (the network)",
    "POST /v1/images/{ref}/sign": "fetches the image's manifest from its registry to sign it "
                                  "(the network)",
    "POST /v1/images/{ref}/verify": "fetches fresh signatures from the image's registry "
                                    "(the network)",
    "POST /v1/registries/logins": "checks the credentials with the registry named in the body "
                                  "(the network)",
}
# Query parameters held fixed, and why: the rest of each request is still generated.
FIXED_QUERY = {
    "GET /v1/containers/{ref}/logs": {"follow": "false"},  # follow streams until the exit
    "GET /v1/containers/{ref}/stats": {"stream": "false"},  # stream=true never ends
    "POST /v1/containers": {"attach": "false"},  # attach streams the output until the exit
    "POST /v1/containers/{ref}/start": {"attach": "false"},
}
# Operations fuzzed only with real objects in the path, and why.
REAL_REFS_ONLY = {
    "POST /v1/containers/{ref}/wait": "a generated ref can be a prefix of a running container's "
                                      "id (\"0\"), and waiting on that would never end",
}
MAX_STOP_TIMEOUT = 2  # seconds: a generated stop/restart timeout is capped (runtime bound)


def _operations() -> list[str]:
    """Every operation in the document (the same code berthd serves it from)."""
    doc = create_app(None).openapi()  # type: ignore[arg-type]
    return [f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops]


OPERATIONS = _operations()


# -- HTTP over the daemon's unix socket, for requests ----------------------------------------

class UnixSession(requests.Session):
    """A requests session whose every connection goes to one unix socket."""

    def __init__(self, path: str) -> None:
        super().__init__()

        class Connection(urllib3.connection.HTTPConnection):
            def _new_conn(self) -> socket.socket:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(CALL_TIMEOUT)
                sock.connect(path)
                return sock

        class Pool(urllib3.HTTPConnectionPool):
            ConnectionCls = Connection

        pool = Pool("localhost", maxsize=4)

        class Adapter(HTTPAdapter):
            def get_connection_with_tls_context(self, request: Any, verify: Any,
                                                proxies: Any = None,
                                                cert: Any = None) -> Pool:
                return pool

            def close(self) -> None:
                pool.close()
                super().close()

        self.mount(BASE_URL, Adapter())


# -- the scratch project and its objects -----------------------------------------------------

@dataclass
class Fuzz:
    daemon: Daemon
    client: Client  # the fuzzer's own SDK client (member of PROJECT)
    session: UnixSession
    schema: Any
    refs: dict[str, str] = field(default_factory=dict)

    def ensure_objects(self) -> None:
        """Real objects for the path parameters; remade when an earlier case removed, renamed
        or stopped them."""
        c = self.client
        if not any("busybox:latest" in i["tags"] for i in c.images.list()):
            c.images.build_base("busybox")
        run = _find(c, self.refs.get("running"))
        if run is None or run["state"]["status"] != "running":
            if run is not None:
                c.containers.remove(run["id"], force=True)
            # sh as pid 1 ignores SIGTERM unless it traps it: stop must not wait its timeout
            run = c.containers.create({"image": "busybox", "command": [
                "sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}, start=True)
        stopped = _find(c, self.refs.get("stopped"))
        if stopped is None or stopped["state"]["status"] in ("running", "paused", "restarting"):
            if stopped is not None:
                c.containers.remove(stopped["id"], force=True)
            stopped = c.containers.create({"image": "busybox", "command": ["true"]})
        if not any(v["name"] == "fuzz-vol" for v in c.volumes.list()):
            c.volumes.create("fuzz-vol")
        spare = [t for t in c.tokens.list() if t["name"] == "spare" and not t["revoked"]]
        token_id = spare[0]["id"] if spare else c.tokens.create("spare")["id"]
        action = c.containers.actions(run["id"])[-1]["id"]
        self.refs.update(running=run["id"], stopped=stopped["id"], token=token_id,
                         action=str(action))

    def path_parameters(self, label: str) -> list[dict[str, str]]:
        """Real values for an operation's path parameters (none: only generated ones)."""
        method, path = label.split(" ", 1)
        if path.startswith("/v1/containers/{ref}"):
            if path.endswith("/wait"):  # waiting on the running one would never end
                return [{"ref": self.refs["stopped"]}]
            if "{action_id}" in path:
                return [{"ref": self.refs["running"], "action_id": self.refs["action"]}]
            return [{"ref": self.refs["running"]}, {"ref": self.refs["stopped"]}]
        if path.startswith("/v1/actions/{action_id}"):
            return [{"action_id": self.refs["action"]}]
        if path.startswith("/v1/images/{ref}"):
            return [{"ref": "busybox"}]
        if path.startswith("/v1/volumes/{name}"):
            return [{"name": "fuzz-vol"}]
        if path.startswith("/v1/tokens/{token_id}"):
            return [{"token_id": self.refs["token"]}]
        if path.startswith("/v1/projects/{project}"):
            return [{"project": PROJECT, "user": USER}] if "{user}" in path else [
                {"project": PROJECT}]
        return []


def _find(c: Client, ref: str | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    try:
        return c.containers.get(ref)
    except APIError as e:
        if e.status == 404:
            return None
        raise


@pytest.fixture(scope="module")
def fuzz(daemon: Daemon) -> Iterator[Fuzz]:
    admin = daemon.client
    admin.projects.create(PROJECT)
    admin.users.create(USER)
    admin.projects.set_member(PROJECT, USER, "member")
    token = Client(daemon.host, project=PROJECT).tokens.create("fuzz", user=USER)["token"]
    client = Client(daemon.host, token=token)
    session = UnixSession(str(daemon.socket))
    session.headers["Authorization"] = f"Bearer {token}"
    doc = client.transport.call("GET", "/v1/openapi.json")
    schema = schemathesis.openapi.from_dict(doc)
    fz = Fuzz(daemon, client, session, schema)

    @schema.hook
    def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
        timeout = (query or {}).get("timeout")
        if isinstance(timeout, int) and not isinstance(timeout, bool) and \
                timeout > MAX_STOP_TIMEOUT:
            query = {**(query or {}), "timeout": MAX_STOP_TIMEOUT}
        return query

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        """Sometimes name real objects in the body, so creates and commits get past 404. Only
        in place of a valid name: a negative case must stay invalid."""
        label = context.operation.label if context.operation else ""
        key, real = {"POST /v1/containers": ("image", "busybox"),
                     "POST /v1/images/commit": ("container", fz.refs.get("stopped"))
                     }.get(label, ("", None))
        if isinstance(body, dict) and isinstance(body.get(key), str) and \
                1 <= len(body[key]) <= 128:
            return st.sampled_from([body, {**body, key: real}])
        return st.just(body)

    try:
        yield fz
    finally:
        session.close()
        for box in client.containers.list(all=True):
            with contextlib.suppress(APIError):
                client.containers.remove(box["id"], force=True, volumes=True)
        left = client.containers.list(all=True)
        assert not left, f"the fuzzer's containers could not be removed: {left}"


# -- the run ---------------------------------------------------------------------------------

def test_every_excluded_operation_exists() -> None:
    """Exclusions are deliberate (see EXCLUDED): each must name a real operation."""
    assert set(EXCLUDED) <= set(OPERATIONS), set(EXCLUDED) - set(OPERATIONS)


@pytest.mark.parametrize("label", [op for op in OPERATIONS if op not in EXCLUDED])
def test_operation_conforms(fuzz: Fuzz, label: str) -> None:
    fuzz.ensure_objects()
    method, path = label.split(" ", 1)
    op = fuzz.schema[path][method]
    query = FIXED_QUERY.get(label)
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        if label not in REAL_REFS_ONLY:
            strategies.append(op.as_strategy(mode, query=query))
        for params in fuzz.path_parameters(label):
            strategies.append(op.as_strategy(mode, query=query, path_parameters=params))
    failures: dict[str, str] = {}
    started = time.monotonic()

    @given(case=st.one_of(strategies))
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        try:
            case.call_and_validate(base_url=BASE_URL, session=fuzz.session, checks=CHECKS,
                                   timeout=CALL_TIMEOUT)
        except BaseExceptionGroup as e:  # schemathesis' FailureGroup: the checks that failed
            for failure in e.exceptions:
                failures.setdefault(f"{type(failure).__name__}: {failure}".split("\n")[0],
                                    str(e))
        except requests.RequestException as e:
            failures.setdefault(f"{type(e).__name__}", f"{e}\n{case.as_curl_command()}")

    run()
    assert not failures, f"{label}: {len(failures)} distinct failures in " \
        f"{time.monotonic() - started:.1f}s:\n\n" + "\n\n".join(failures.values())
