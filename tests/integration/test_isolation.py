"""The isolation matrix: every endpoint of the native API, as a member of project A against
project B's objects, and as a reader of A.

The endpoints are read from the live /v1/openapi.json (and the websocket routes from the app),
so a new one is in the matrix the day it is added: ``CALLS`` says how to call each (query, body,
which objects its body names); one missing from it is called with its path parameters filled in
by ``PARAMS`` and a minimal body built from its schema.

* alice (member of A) naming B's containers, images, volumes, tokens, actions, project and
  registry login — by name, by id and by id prefix — gets exactly what a name that never existed
  gets: the same status (404) and the same message, the name aside. Nothing of B's changes.
* alice's lists, and everything she sees with ``all_projects=true`` or ``X-Berth-Project: B``,
  hold nothing of B's; B's registry credentials are never sent on her behalf.
* rita (reader in A) can make every GET in A, and every other call is a 403 saying that it
  needs the member role; A is unchanged afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import queue
import secrets
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from starlette.routing import WebSocketRoute

from berth.api.app import create_app
from berth.client import APIError, Client
from tests.integration.conftest import _require_host
from tests.integration.daemon import Daemon, destroy, leaks, make_dirs, remove_pods
from tests.integration.registry import QuietHTTPServer

pytestmark = pytest.mark.integration

A, B, NOBODY = "iso-a", "iso-b", "iso-z"  # NOBODY: a project that never existed
TIMEOUT = 30.0  # a call that would block (a leaked wait) fails instead of hanging
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
GHOST_ACTION = 987_654_321


# -- a registry that knows bob -----------------------------------------------------------------

class Registry:
    """A plain-HTTP registry on loopback that accepts one user (bob's login) and records every
    request made with his credentials: after set-up, any such request is a leak."""

    def __init__(self) -> None:
        self.username, self.password = "bob-at-registry", secrets.token_hex(8)
        self.authorized: list[str] = []
        expected = "Basic " + base64.b64encode(
            f"{self.username}:{self.password}".encode()).decode()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.headers.get("Authorization") == expected:
                    registry.authorized.append(f"{self.command} {self.path}")
                    status, body = (200, b"{}") if self.path == "/v2/" else (404, json.dumps(
                        {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}
                    ).encode())
                else:
                    status, body = 401, json.dumps(
                        {"errors": [{"code": "UNAUTHORIZED", "message": "login"}]}).encode()
                self.send_response(status)
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="iso"')
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the two projects ------------------------------------------------------------------------

@dataclass
class Side:
    """One project's objects: what its members may name."""

    running: dict[str, Any]
    stopped: dict[str, Any]
    image: dict[str, Any]  # a private image (its own id)
    image_tag: str
    volume: str
    token_id: str
    action_id: int
    network: str
    pod: str
    service: str


@dataclass
class World:
    d: Daemon
    reg: Registry
    admin: Client
    alice: Client
    bob: Client
    rita: Client
    alice_token: str
    a: Side
    b: Side
    markers: list[str] = field(default_factory=list)  # strings only B's objects have


def _client(d: Daemon, token: str, project: str | None = None) -> Client:
    c = Client(d.host, token=token, project=project)
    c.transport.timeout = TIMEOUT
    return c


def _side(c: Client, prefix: str, reg: Registry) -> Side:
    c.images.build_base("busybox")
    running = c.containers.create({"image": "busybox", "name": f"{prefix}-running",
                                   "command": SLEEPER}, start=True)
    stopped = c.containers.create({"image": "busybox", "name": f"{prefix}-stopped",
                                   "command": ["true"]}, start=True)
    c.containers.wait(stopped["id"])
    stopped = c.containers.get(stopped["id"])
    tag = f"{reg.host}/{prefix}-private:1"
    # A commit with its own label: an image id no other project has.
    image = c.images.commit(stopped["id"], tag, changes=[f"LABEL owner={prefix}"])
    c.volumes.create(f"{prefix}-vol")
    token_id = c.tokens.create(f"{prefix}-spare")["id"]
    action_id = c.containers.actions(running["id"])[-1]["id"]
    c.networks.create(f"{prefix}-net")
    c.pods.create(f"{prefix}-pod")
    c.services.create(f"{prefix}-svc", "app=x", [{"port": 80}])
    return Side(running, stopped, image, tag, f"{prefix}-vol", token_id, action_id,
                f"{prefix}-net", f"{prefix}-pod", f"{prefix}-svc")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    _require_host()
    reg = Registry()
    root, run = make_dirs()
    d = Daemon(root, run, args=["--insecure-registry", reg.host])
    d.start()
    try:
        admin = d.client
        for project in (A, B):
            admin.projects.create(project)
        for user, project, role in (("alice", A, "member"), ("bob", B, "member"),
                                    ("rita", A, "reader")):
            admin.users.create(user)
            admin.projects.set_member(project, user, role)
        tokens = {user: Client(d.host, project=project).tokens.create(
            f"{user}-main", user=user)["token"]
            for user, project in (("alice", A), ("bob", B), ("rita", A))}
        alice, bob, rita = (_client(d, tokens[u]) for u in ("alice", "bob", "rita"))
        b = _side(bob, "b", reg)
        bob.registries.login(reg.host, reg.username, reg.password)
        bob.images.set_policy({"default": [{"type": "insecureAcceptAnything"}], "transports": {
            "docker": {f"{reg.host}/b-only": [{"type": "reject"}]}}})
        a = _side(alice, "a", reg)
        reg.authorized.clear()  # bob's login: from here on, nobody may use his credentials
        markers = [f'"{B}"', '"bob"', b.running["id"], b.stopped["id"], "b-running",
                   "b-stopped", b.image["id"], "b-private", '"b-vol"', b.token_id, "b-only",
                   reg.username, "b-net", "b-pod", "b-svc"]
        yield World(d, reg, admin, alice, bob, rita, tokens["alice"], a, b, markers)
    finally:
        for project in (A, B):
            c = Client(d.host, project=project)
            remove_pods(c)
            for box in c.containers.list(all=True):
                with contextlib.suppress(APIError):
                    c.containers.remove(box["id"], force=True, volumes=True)
        d.stop()
        reg.close()
        left = leaks(d)
        if not left:
            destroy(d)
        assert not left, f"left behind by the tests: {left}"


# -- how to call each endpoint ---------------------------------------------------------------

@dataclass
class Call:
    """How to call one operation: its query and body (with A's objects for the reader), and
    the objects its body or query names: pairs of (B's, never existed) overrides."""

    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    raw: bytes | None = None
    names: Callable[[World], list[tuple[dict[str, Any], dict[str, Any]]]] | None = None
    reader_may: bool = False  # a POST that only reads or waits: readers may call it
    not_404: str = ""  # why naming another project's object is not a 404 here (still the
    #                    same answer as for a name that never existed)
    registry: bool = False  # its image reference names a registry's image, not a local one


def _image_names(key: str, registry: bool = False) -> Callable[[World], list]:
    def pairs(w: World) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [({key: b}, {key: g}) for b, g in _image_refs(w, registry)]
    return pairs


def _pull_names(w: World) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """B's image by tag and by its manifest digest (its blobs are on this host already: a
    pull must still ask the registry, with the caller's own login)."""
    digest = w.b.image["manifest_digest"]
    by_digest = f"{w.reg.host}/b-private@{digest}"
    return [*_image_names("reference", registry=True)(w),
            ({"reference": by_digest},
             {"reference": by_digest.replace(digest[7:], _ghost(digest[7:]))})]


def _container_names(key: str) -> Callable[[World], list]:
    def pairs(w: World) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [({key: b}, {key: g}) for b, g in _container_refs(w)]
    return pairs


def _tiny_tar() -> bytes:
    """A one-file tar, for copying into a container."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("iso-copied")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"x\n"))
    return buf.getvalue()


ADMIN_ONLY = "only the cloud's admins may do it: refused before any lookup"
NOT_ADMIN = "in her own project alice is no admin: refused for any user"
REGISTRY_SIDE = ("it acts on the registry's copy, with the caller's own login: anonymous "
                 "here, so the registry refuses (401), whoever's name it is")
CALLS: dict[str, Call] = {
    "GET /v1/info": Call(),
    "GET /v1/hosts": Call(not_404=ADMIN_ONLY),
    "GET /v1/hosts/{name}": Call(not_404=ADMIN_ONLY),
    "GET /v1/events": Call(),
    "GET /v1/whoami": Call(),
    "GET /v1/projects": Call(),
    "POST /v1/projects": Call(body={"name": "iso-new"}),
    "GET /v1/projects/{project}": Call(),
    "DELETE /v1/projects/{project}": Call(not_404=ADMIN_ONLY),
    "PUT /v1/projects/{project}/grants": Call(body={"grants": []}, not_404=ADMIN_ONLY),
    "PUT /v1/projects/{project}/members/{user}": Call(body={"role": "member"},
                                                       not_404=NOT_ADMIN),
    "DELETE /v1/projects/{project}/members/{user}": Call(not_404=NOT_ADMIN),
    "GET /v1/users": Call(),
    "POST /v1/users": Call(body={"name": "iso-new"}),
    "GET /v1/tokens": Call(),
    "POST /v1/tokens": Call(body={"name": "iso-new"}, names=lambda w: [
        ({"name": "t", "user": "bob"}, {"name": "t", "user": "zob"})]),
    "DELETE /v1/tokens/{token_id}": Call(),
    "GET /v1/quotas": Call(),
    "PUT /v1/quotas": Call(body={}),
    "POST /v1/containers": Call(query={"wait": "true"},
                                body={"image": "busybox", "command": ["true"]},
                                names=lambda w: [({"image": b}, {"image": g})
                                                 for b, g in _image_refs(w)] + [
                                    ({"pod": w.b.pod}, {"pod": "z-pod"})]),
    "GET /v1/containers": Call(query={"all": "true"}),
    "GET /v1/containers/{ref}": Call(),
    "DELETE /v1/containers/{ref}": Call(query={"force": "true", "wait": "true"}),
    "GET /v1/containers/{ref}/actions": Call(),
    "GET /v1/containers/{ref}/actions/{action_id}": Call(),
    "POST /v1/containers/{ref}/start": Call(query={"wait": "true"}),
    "POST /v1/containers/{ref}/stop": Call(query={"wait": "true", "timeout": "1"}),
    "POST /v1/containers/{ref}/restart": Call(query={"wait": "true", "timeout": "1"}),
    "POST /v1/containers/{ref}/kill": Call(query={"wait": "true"}),
    "POST /v1/containers/{ref}/pause": Call(query={"wait": "true"}),
    "POST /v1/containers/{ref}/unpause": Call(query={"wait": "true"}),
    "POST /v1/containers/{ref}/update": Call(query={"wait": "true"},
                                             body={"restart_policy": {"name": "no"}}),
    "POST /v1/containers/{ref}/rename": Call(query={"name": "hijacked"}),
    "POST /v1/containers/{ref}/wait": Call(reader_may=True),
    "GET /v1/containers/{ref}/logs": Call(query={"follow": "false"}),
    "GET /v1/containers/{ref}/top": Call(),
    "GET /v1/containers/{ref}/stats": Call(query={"stream": "false"}),
    "GET /v1/containers/{ref}/stat": Call(query={"path": "/etc/hostname"}),
    "GET /v1/containers/{ref}/archive": Call(query={"path": "/etc/hostname"}),
    "PUT /v1/containers/{ref}/archive": Call(query={"path": "/tmp"}, raw=_tiny_tar()),
    "GET /v1/containers/{ref}/export": Call(),
    "GET /v1/containers/{ref}/changes": Call(),
    "POST /v1/images/pull": Call(query={"wait": "true"}, body={"reference": "placeholder"},
                                 names=_pull_names),
    "GET /v1/actions/{action_id}": Call(),
    "POST /v1/images/{ref}/push": Call(body={}),
    "POST /v1/images/{ref}/sign": Call(body={"sign_by": "0" * 40}, registry=True,
                                       not_404=REGISTRY_SIDE),
    "POST /v1/images/{ref}/verify": Call(reader_may=True, registry=True,
                                         not_404=REGISTRY_SIDE),
    "GET /v1/registries/logins": Call(),
    "POST /v1/registries/logins": Call(body={"registry": "placeholder", "username": "x",
                                             "password": "y"}),
    "DELETE /v1/registries/logins/{registry}": Call(),
    "GET /v1/signature-policy": Call(),
    "PUT /v1/signature-policy": Call(raw=json.dumps(
        {"default": [{"type": "reject"}]}).encode()),
    "DELETE /v1/signature-policy": Call(),
    "GET /v1/images": Call(),
    "POST /v1/images/import": Call(raw=b"not a tarball"),
    "POST /v1/build": Call(raw=b"not a tarball"),
    "POST /v1/images/build-base": Call(body={}),
    "GET /v1/images/save": Call(query={"ref": "busybox"}, names=_image_names("ref")),
    "POST /v1/images/commit": Call(body={"container": "placeholder"},
                                   names=_container_names("container")),
    "POST /v1/images/prune": Call(query={"all": "true"}),
    "GET /v1/images/{ref}/history": Call(),
    "POST /v1/images/{ref}/untag": Call(),
    "GET /v1/images/{ref}/json": Call(),
    "POST /v1/images/{ref}/tag": Call(body={"tag": "iso-new:1"}),
    "DELETE /v1/images/{ref}": Call(query={"force": "true"}),
    "POST /v1/volumes": Call(body={"name": "iso-new"}),
    "GET /v1/volumes": Call(),
    "GET /v1/volumes/{name}": Call(),
    "DELETE /v1/volumes/{name}": Call(),
    "POST /v1/volumes/prune": Call(),
    "POST /v1/networks": Call(body={"name": "iso-new"}),
    "GET /v1/networks": Call(),
    "GET /v1/networks/{ref}": Call(),
    "DELETE /v1/networks/{ref}": Call(),
    "POST /v1/networks/prune": Call(),
    "POST /v1/networks/{ref}/connect": Call(body={"container": "placeholder"},
                                            names=_container_names("container")),
    "POST /v1/networks/{ref}/disconnect": Call(body={"container": "placeholder"},
                                               names=_container_names("container")),
    "POST /v1/pods": Call(body={"name": "iso-new"}),
    "GET /v1/pods": Call(),
    "GET /v1/pods/{ref}": Call(),
    "POST /v1/pods/{ref}/start": Call(),
    "POST /v1/pods/{ref}/stop": Call(query={"timeout": "1"}),
    "POST /v1/pods/{ref}/restart": Call(query={"timeout": "1"}),
    "DELETE /v1/pods/{ref}": Call(query={"force": "true"}),
    "POST /v1/services": Call(body={"name": "iso-new", "selector": "a=b",
                                    "ports": [{"port": 80}]}),
    "GET /v1/services": Call(),
    "GET /v1/services/{ref}": Call(),
    "DELETE /v1/services/{ref}": Call(),
}
WEBSOCKETS = {
    "/v1/containers/{ref}/exec": {"command": ["cat", "/etc/hostname"]},  # first message
    "/v1/containers/{ref}/attach": None,  # no first message
}
# What a path parameter names, by the path's first segments and the parameter's name.
PARAMS = {
    ("/v1/containers", "ref"): "container",
    ("/v1/containers", "action_id"): "action",
    ("/v1/actions", "action_id"): "action",
    ("/v1/images", "ref"): "image",
    ("/v1/volumes", "name"): "volume",
    ("/v1/tokens", "token_id"): "token",
    ("/v1/projects", "project"): "project",
    ("/v1/projects", "user"): "user",
    ("/v1/registries", "registry"): "registry",
    ("/v1/hosts", "name"): "host",
    ("/v1/networks", "ref"): "network",
    ("/v1/pods", "ref"): "pod",
    ("/v1/services", "ref"): "service",
}


def _ghost(like: str) -> str:
    """A name that never existed, of the same shape (hex stays hex, length stays)."""
    hexdigits = "0123456789abcdef"
    out = "".join(secrets.choice(hexdigits) if ch in hexdigits else
                  "z" if ch.isalpha() else ch for ch in like)
    return out


def _container_refs(w: World) -> list[tuple[str, str]]:
    """(B's ref, a never-existing ref of the same shape): by name, by id, by id prefix."""
    refs = []
    for box in (w.b.running, w.b.stopped):
        for ref in (box["name"], box["id"], box["id"][:12]):
            ghost = "zz" + box["name"][2:] if ref == box["name"] else _ghost(ref)
            refs.append((ref, ghost))
    return refs


def _image_refs(w: World, registry: bool = False) -> list[tuple[str, str]]:
    """B's private image by tag, id and id prefix (registry: by its registry name only, so
    nothing goes further than the loopback registry)."""
    image_id = w.b.image["id"]
    tag = [(w.b.image_tag, w.b.image_tag.replace("b-private", "z-private"))]
    return tag if registry else [*tag, (image_id, "sha256:" + _ghost(image_id[7:])),
                                 (image_id[7:19], _ghost(image_id[7:19]))]


def _kind(path: str, param: str) -> str:
    for (prefix, name), kind in PARAMS.items():
        if path.startswith(prefix) and name == param:
            return kind
    raise AssertionError(f"the isolation matrix does not know what {{{param}}} in {path} "
                         "names: add it to PARAMS")


def _params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/")
            if part.startswith("{") and part.endswith("}")]


def _own(w: World, kind: str, path: str, spec: Call) -> str:
    """The caller's own object of a kind (in A)."""
    waits = path.endswith("/wait")  # on a running container it would block
    return {"container": w.a.stopped["id"] if waits else w.a.running["id"],
            "action": str(w.a.action_id),
            "image": w.a.image_tag if spec.registry else "busybox", "volume": w.a.volume,
            "token": w.a.token_id, "project": A, "user": "alice",
            "registry": w.reg.host, "host": socket.gethostname(), "network": w.a.network,
            "pod": w.a.pod, "service": w.a.service}[kind]


def _others(w: World, kind: str, spec: Call) -> list[tuple[str, str]]:
    """(B's, never existed) values for a path parameter."""
    if kind == "container":
        return _container_refs(w)
    if kind == "image":
        return _image_refs(w, spec.registry)
    return {"action": [(str(w.b.action_id), str(GHOST_ACTION))],
            "volume": [(w.b.volume, "z-vol")],
            "token": [(w.b.token_id, _ghost(w.b.token_id))],
            "project": [(B, NOBODY)],
            "user": [("bob", "zob")],
            "registry": [(w.reg.host, "127.0.0.1:1")],
            "host": [(socket.gethostname(), "no-such-host")],
            "network": [(w.b.network, "z-net")],
            "pod": [(w.b.pod, "z-pod")],
            "service": [(w.b.service, "z-svc")]}[kind]


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


# -- calling ---------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    message: str

    def shape(self, *names: str) -> tuple[int, str]:
        """The status and the message with the names that were asked for taken out."""
        text = self.message
        for name in sorted(names, key=len, reverse=True):
            text = text.replace(name, "<name>")
            if name.startswith("sha256:"):
                text = text.replace(name[7:], "<name>").replace(name[7:19], "<name>")
        return self.status, text


def call(c: Client, method: str, path: str, spec: Call, *, query: dict[str, Any] | None = None,
         body: Any = None) -> Answer:
    """One request; streams are read a little, then closed."""
    params = {**spec.query, **(query or {})}
    payload = spec.body if body is None else body
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items()}
    try:
        resp = c.transport.open(method, path, params or None, body=payload, raw=spec.raw)
    except APIError as e:
        return Answer(e.status, e.message)
    try:
        if method == "GET" and path.endswith("/events"):
            return Answer(resp.status, "")
        data = resp.read(1 << 16)
        return Answer(resp.status, data.decode(errors="replace"))
    finally:
        resp.shutdown()
        resp.close()


def ws_call(c: Client, path: str, first: dict[str, Any] | None) -> Answer:
    """A websocket session: what the daemon says before it closes (a refusal is a JSON text
    message {"error", "exit_code"})."""
    try:
        ws = c.transport.websocket(path)
    except APIError as e:  # refused before the upgrade
        return Answer(e.status, e.message)
    texts = []
    with ws:
        try:
            if first is not None:
                ws.send(json.dumps(first))
            while (msg := ws.recv(timeout=TIMEOUT)) is not None:
                if isinstance(msg, bytes):
                    return Answer(101, f"streamed output: {msg[:60]!r}")
                texts.append(msg)
                doc = json.loads(msg)
                if "error" in doc:
                    return Answer(0, doc["error"])
        except (OSError, TimeoutError):
            pass
        return Answer(101, " ".join(texts))


def _operations(w: World) -> list[tuple[str, str]]:
    doc = w.admin.transport.call("GET", "/v1/openapi.json")
    return [(method.upper(), path) for path, ops in doc["paths"].items() for method in ops]


def _spec(w: World, method: str, path: str) -> Call:
    """The table's row, or one made from the document for an operation the table lacks."""
    label = f"{method} {path}"
    if label in CALLS:
        return CALLS[label]
    doc = w.admin.transport.call("GET", "/v1/openapi.json")
    op = doc["paths"][path][method.lower()]
    schema = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
              .get("schema"))
    return Call(body=_minimal(schema, doc) if schema else None)


def _minimal(schema: dict[str, Any], doc: dict[str, Any]) -> Any:
    """The smallest value a JSON schema accepts, as far as a guess goes."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _minimal(doc["components"]["schemas"][name], doc)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _minimal(options[0], doc) if options else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: _minimal(schema["properties"][name], doc)
                for name in schema.get("required", [])}
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "x" * max(1, schema.get("minLength", 1)), "integer": 1, "number": 1,
            "boolean": False, "array": []}.get(kind or "string")


# -- snapshots: nothing changes ---------------------------------------------------------------

def snapshot(c: Client) -> dict[str, Any]:
    """What a project holds, as its member sees it (volatile fields left out)."""
    return {
        "containers": sorted((x["id"], x["name"], x["state"]["status"], x["restart_count"],
                              json.dumps(x["config"], sort_keys=True))
                             for x in c.containers.list(all=True)),
        "images": sorted((i["id"], tuple(sorted(i["tags"]))) for i in c.images.list()),
        "volumes": sorted(v["name"] for v in c.volumes.list()),
        "networks": sorted(n["name"] for n in c.networks.list()),
        "pods": sorted((p["name"], p["status"]) for p in c.pods.list()),
        "services": sorted((s["name"], s["vip"]) for s in c.services.list()),
        "tokens": sorted((t["id"], t["revoked"]) for t in c.tokens.list()),
        "logins": sorted(x["registry"] for x in c.registries.list()),
        "policy": json.dumps(c.images.policy(), sort_keys=True),
        "project": c.projects.get(c.whoami()["project"])["members"],
    }


# -- the tests -------------------------------------------------------------------------------

def test_another_projects_objects_are_not_found_anywhere(world: World) -> None:
    """Every operation naming B's object answers like one naming nothing: 404, same message."""
    w = world
    before = snapshot(w.bob)
    leaks_found: list[str] = []
    checked = 0
    for method, path in _operations(w):
        spec = _spec(w, method, path)
        label = f"{method} {path}"
        params = _params(path)
        cases: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None,
                          dict[str, Any] | None, dict[str, Any] | None, tuple[str, ...]]] = []
        for param in params:
            kind = _kind(path, param)
            own = {p: _own(w, _kind(path, p), path, spec) for p in params if p != param}
            for theirs, ghost in _others(w, kind, spec):
                cases.append((_fill(path, {**own, param: theirs}),
                              _fill(path, {**own, param: ghost}), None, None, None, None,
                              (theirs, ghost)))
        if spec.names is not None:
            own = {p: _own(w, _kind(path, p), path, spec) for p in params}
            for theirs, ghost in spec.names(w):
                in_query = method == "GET"
                base = dict(spec.body or {}) if not in_query else {}
                names = tuple(str(v) for v in (*theirs.values(), *ghost.values()))
                cases.append((_fill(path, own), _fill(path, own),
                              theirs if in_query else None, ghost if in_query else None,
                              None if in_query else {**base, **theirs},
                              None if in_query else {**base, **ghost}, names))
        for b_path, g_path, b_query, g_query, b_body, g_body, names in cases:
            got = call(w.alice, method, b_path, spec, query=b_query, body=b_body)
            ghost = call(w.alice, method, g_path, spec, query=g_query, body=g_body)
            checked += 1
            what = f"{label} as {b_path} {b_query or ''}{b_body or ''}"
            if got.shape(*names) != ghost.shape(*names):
                leaks_found.append(f"{what}: B's object answers {got.status} {got.message!r}, "
                                   f"one that never existed {ghost.status} {ghost.message!r}")
            elif got.status < 400:
                leaks_found.append(f"{what}: {got.status} {got.message[:200]!r}")
            elif got.status != 404 and not spec.not_404 and params:
                leaks_found.append(f"{what}: {got.status} {got.message!r}, expected 404")
    for path, first in _websockets():
        for theirs, ghost in _container_refs(w):
            got = ws_call(w.alice, _fill(path, {"ref": theirs}), first)
            never = ws_call(w.alice, _fill(path, {"ref": ghost}), first)
            checked += 1
            if got.shape(theirs, ghost) != never.shape(theirs, ghost) or got.status != 0 or \
                    "no such container" not in got.message:
                leaks_found.append(f"websocket {path} on {theirs}: {got}, never existed: "
                                   f"{never}")
    assert not leaks_found, f"{len(leaks_found)} of {checked} calls leak:\n" + \
        "\n".join(leaks_found)
    assert checked > 100, f"only {checked} calls: is the matrix empty?"
    assert snapshot(w.bob) == before, "alice's calls changed project B"
    assert not w.reg.authorized, f"B's registry login was used: {w.reg.authorized}"


def _websockets() -> list[tuple[str, dict[str, Any] | None]]:
    """The app's websocket routes, each with its first message (from WEBSOCKETS)."""
    def walk(routes: list[Any]) -> Iterator[str]:
        for r in routes:
            if isinstance(r, WebSocketRoute):
                yield r.path
            # FastAPI keeps an included router whole (the app's include adds no prefix)
            yield from walk(getattr(getattr(r, "original_router", None), "routes", []))

    paths = sorted(set(walk(create_app(None).routes)))  # type: ignore[arg-type]
    missing = [p for p in paths if p not in WEBSOCKETS]
    assert not missing, f"websocket routes missing from WEBSOCKETS: {missing}"
    assert "/v1/containers/{ref}/exec" in paths, f"websocket routes not found: {paths}"
    return [(p, WEBSOCKETS[p]) for p in paths]


def test_lists_and_all_projects_show_nothing_of_another_project(world: World) -> None:
    w = world
    found: list[str] = []
    for method, path in _operations(w):
        if method != "GET" or _params(path) or path.endswith("/events"):
            continue
        spec = _spec(w, method, path)
        for query in ({}, {"all_projects": "true"}):  # the latter: 404, or nothing more
            got = call(w.alice, method, path, spec, query=query)
            seen = [m for m in w.markers if m in got.message]
            if seen:
                found.append(f"GET {path} {query}: {got.status} shows {seen}")
    assert not found, "\n".join(found)
    # Counts too: what alice is told she has is what she has.
    info = w.alice.info()  # running, stopped and her pod's infra container
    assert info["containers"] == len(w.alice.containers.list(all=True)) == 3, info
    quotas = w.alice.transport.call("GET", "/v1/quotas")
    assert quotas["containers"]["in_use"] == 3, quotas
    assert quotas["volumes"]["in_use"] == 1, quotas


def test_event_stream_shows_nothing_of_another_project(world: World) -> None:
    w = world
    resp = w.alice.transport.open("GET", "/v1/events")
    lines: queue.Queue[bytes] = queue.Queue()

    def read() -> None:
        with contextlib.suppress(Exception):
            for line in resp:
                lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    w.bob.volumes.create("b-evt")
    w.bob.volumes.remove("b-evt")
    w.bob.containers.restart(w.b.running["id"], timeout=1)
    w.alice.volumes.create("a-evt")  # the last event alice must see
    w.alice.volumes.remove("a-evt")
    seen = []
    while not any(b'"a-evt"' in line and b"destroy" in line for line in seen):
        seen.append(lines.get(timeout=TIMEOUT))
    resp.shutdown()
    text = b"".join(seen).decode()
    assert "b-evt" not in text and not [m for m in w.markers if m in text], text


def test_another_project_header_is_not_found(world: World) -> None:
    """X-Berth-Project: B as alice is a 404 on every operation, as for a project that never
    existed."""
    w = world
    into_b = _client(w.d, w.alice_token, B)
    into_nothing = _client(w.d, w.alice_token, NOBODY)
    wrong = []
    for method, path in _operations(w):
        spec = _spec(w, method, path)
        filled = _fill(path, {p: _own(w, _kind(path, p), path, spec) for p in _params(path)})
        got = call(into_b, method, filled, spec)
        never = call(into_nothing, method, filled, spec)
        if got.status != 404 or got.shape(B, NOBODY) != never.shape(B, NOBODY):
            wrong.append(f"{method} {path}: {got}, for a project that never existed: {never}")
    for path, first in _websockets():
        got = ws_call(into_b, _fill(path, {"ref": w.b.running["id"]}), first)
        if f"no such project: {B}" not in got.message:
            wrong.append(f"websocket {path}: {got}")
    assert not wrong, "\n".join(wrong)


def test_tokens_and_actions_of_another_project(world: World) -> None:
    w = world
    assert w.b.token_id not in {t["id"] for t in w.alice.tokens.list()}
    with pytest.raises(APIError) as e:
        w.alice.tokens.list(all_projects=True)
    assert e.value.status == 404
    with pytest.raises(APIError) as e:
        w.alice.tokens.revoke(w.b.token_id)
    assert (e.value.status, e.value.message) == (404, f"no such token: {w.b.token_id}")
    assert not next(t for t in w.bob.tokens.list() if t["id"] == w.b.token_id)["revoked"]
    for ref in (w.b.running["id"], w.b.running["name"]):
        with pytest.raises(APIError) as e:
            w.alice.containers.actions(ref)
        assert (e.value.status, e.value.message) == (404, f"no such container: {ref}")
    with pytest.raises(APIError) as e:
        w.alice.transport.call("GET", f"/v1/containers/{w.a.running['id']}/actions/"
                                      f"{w.b.action_id}")
    assert (e.value.status, e.value.message) == (404, f"no such action: {w.b.action_id}")


def test_names_are_per_project(world: World) -> None:
    """B's names are free in A: taking them is no conflict (a 409 would tell they exist)."""
    w = world
    box = w.alice.containers.create({"image": "busybox", "name": w.b.running["name"],
                                     "command": ["true"]})
    w.alice.containers.rename(box["id"], w.b.stopped["name"])
    w.alice.containers.remove(box["id"])
    w.alice.volumes.create(w.b.volume)
    w.alice.volumes.remove(w.b.volume)
    w.alice.images.tag("busybox", w.b.image_tag)
    w.alice.images.untag(w.b.image_tag)
    w.alice.tokens.revoke(w.alice.tokens.create("b-spare")["id"])


def test_a_volume_of_the_same_name_is_another_volume(world: World) -> None:
    """Naming B's volume in a mount gives alice her own (new, empty) volume, not B's data."""
    w = world
    w.bob.containers.create({"image": "busybox", "name": "b-writer", "command": [
        "sh", "-c", "echo bob-secret > /data/secret"], "auto_remove": False,
        "mounts": [{"type": "volume", "source": w.b.volume, "target": "/data"}]}, start=True)
    assert w.bob.containers.wait("b-writer")["exit_code"] == 0
    w.alice.containers.create({"image": "busybox", "name": "a-reader", "command": [
        "sh", "-c", "cat /data/secret; ls -A /data"],
        "mounts": [{"type": "volume", "source": w.b.volume, "target": "/data"}]}, start=True)
    w.alice.containers.wait("a-reader")
    out = b"".join(data for _, data in w.alice.containers.logs("a-reader"))
    assert b"bob-secret" not in out, out
    w.alice.containers.remove("a-reader")
    w.alice.volumes.remove(w.b.volume)  # hers, made by the mount
    w.bob.containers.remove("b-writer")
    assert w.bob.volumes.get(w.b.volume)["name"] == w.b.volume


def test_prunes_leave_another_project_alone(world: World) -> None:
    """alice's image and volume prunes (and the host's blob collection that follows) leave B's
    unused private image and volume in place, and still usable."""
    w = world
    before = snapshot(w.bob)
    w.alice.images.prune(all=True)
    w.alice.volumes.prune()
    assert snapshot(w.bob) == before
    w.alice.volumes.create(w.a.volume)  # hers went (unused): the reader test reads it
    box = w.bob.containers.create({"image": w.b.image_tag, "command": ["true"]}, start=True)
    assert w.bob.containers.wait(box["id"])["exit_code"] == 0
    w.bob.containers.remove(box["id"])


def test_a_reader_reads_everything_and_changes_nothing(world: World) -> None:
    w = world
    before = snapshot(w.alice)
    refused, failed = [], []
    for method, path in _operations(w):
        spec = _spec(w, method, path)
        label = f"{method} {path}"
        filled = _fill(path, {p: _own(w, _kind(path, p), path, spec) for p in _params(path)})
        got = call(w.rita, method, filled, spec)
        if spec.not_404 == ADMIN_ONLY and got.status == 403:
            continue  # for the cloud's admins: a reader is refused like any member
        if method == "GET" or spec.reader_may:
            if got.status == 403:
                failed.append(f"{label}: a reader was refused: {got.message}")
            elif method == "GET" and got.status >= 400:
                failed.append(f"{label}: {got.status} {got.message}")
        elif got.status != 403 or "needs the member role" not in got.message or \
                "rita is a reader" not in got.message:
            refused.append(f"{label}: {got.status} {got.message[:200]!r}")
    for path, first in _websockets():
        got = ws_call(w.rita, _fill(path, {"ref": w.a.running["id"]}), first)
        if "needs the member role" not in got.message:
            refused.append(f"websocket {path}: {got}")
    assert not failed, "reads a reader could not make:\n" + "\n".join(failed)
    assert not refused, "changes a reader was not refused (403, naming the role):\n" + \
        "\n".join(refused)
    assert snapshot(w.alice) == before, "a reader's calls changed project A"
