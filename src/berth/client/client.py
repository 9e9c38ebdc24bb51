"""The Python SDK for Berth's native API. The `berth` CLI is built only on this.

    from berth.client import Client
    c = Client()                       # BERTH_HOST or unix:///run/berth/berth.sock
    box = c.containers.create({"image": "busybox", "command": ["sleep", "60"]}, start=True)
    c.containers.stop(box["id"])
    c.pods.create("p1", start=True)   # pods, services, networks: see client/networking.py
"""

from __future__ import annotations

import json
import os

from berth.client.builds import Builds
from berth.client.identity import Projects, Tokens, Users
from berth.client.images import Images, Registries
from berth.client.networking import Networks, Pods, Services
from berth.client.paging import Page, fetch
from berth.client.transport import (
    DEFAULT_HOST,
    APIError,
    Transport,
    read_chunks,
    read_frames,
)

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    from berth.client.wire import Response

EXIT_FRAME = 3
PATH_STAT_HEADER = "x-berth-path-stat"  # GET archive: the path's stat, base64 JSON
CONTAINER_HEADER = "x-berth-container-id"  # an attached run's container


class Attached:
    """An attached container's output: iterate for (stream, data) frames, the last one
    (stream 3) its exit record; container_id names it."""

    def __init__(self, resp: Response) -> None:
        self.container_id: str = resp.getheader(CONTAINER_HEADER) or ""
        self._frames = read_frames(resp)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return self._frames


class _Containers:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def create(self, spec: dict[str, Any], start: bool = False, *,
               pod: str | None = None) -> dict[str, Any]:
        """Create (and optionally start) a container; returns it once the agent is done.
        pod (or spec["pod"]): join that pod's network, hostname and IPC (see Pods)."""
        if pod is not None:
            spec = {**spec, "pod": pod}
        answer = self._t.call("POST", "/v1/containers", {"start": start, "wait": True},
                              body=spec)
        return answer["container"]

    def run_attached(self, spec: dict[str, Any]) -> Attached:
        """Create, start and stream output as (stream, data); stream 3 is the exit record.
        The answer's container_id names the container (as soon as it started)."""
        return Attached(self._t.open("POST", "/v1/containers",
                                     {"start": True, "attach": True, "wait": True}, body=spec))

    def list(self, all: bool = False, filters: list[str] | None = None, *,
             selector: str | None = None, limit: int | None = None, marker: str | None = None,
             sort: str | None = None, all_projects: bool = False, size: bool = False) -> Page:
        """Containers (all: stopped ones too). selector: labels, Kubernetes-style
        ("app=web,tier!=db"); sort: "name", "created_at:desc", …; limit: one page (its
        next_marker is the next page's marker), else every page; all_projects: admins;
        size: each with size_rw and size_root_fs (bytes on disk; walked, so slower)."""
        return fetch(self._t, "/v1/containers",
                     {"all": all, "filter": filters or None, "all_projects": all_projects or None,
                      "size": size or None},
                     limit=limit, marker=marker, sort=sort, selector=selector)

    def prune(self, filters: list[str] | None = None) -> dict[str, Any]:
        """Remove stopped containers (filters: "label=k=v", "label!=k", "until=24h"):
        {"removed": [ids]}."""
        return self._t.call("POST", "/v1/containers/prune", {"filter": filters or None})

    def get(self, ref: str, size: bool = False) -> dict[str, Any]:
        """size: with size_rw (its writable layer) and size_root_fs (that and its image)."""
        return self._t.call("GET", f"/v1/containers/{ref}", {"size": size or None})

    def _act(self, ref: str, verb: str, **params: Any) -> dict[str, Any] | None:
        return self._t.call("POST", f"/v1/containers/{ref}/{verb}", {**params, "wait": True})

    def start(self, ref: str) -> dict[str, Any] | None:
        return self._act(ref, "start")

    def start_attached(self, ref: str) -> Attached:
        return Attached(self._t.open("POST", f"/v1/containers/{ref}/start", {"attach": True}))

    def stop(self, ref: str, timeout: int | None = None,
             signal: str | None = None) -> dict[str, Any] | None:
        """signal: instead of the container's stop signal; then SIGKILL after timeout."""
        return self._act(ref, "stop", timeout=timeout, signal=signal)

    def restart(self, ref: str, timeout: int | None = None,
                signal: str | None = None) -> dict[str, Any] | None:
        return self._act(ref, "restart", timeout=timeout, signal=signal)

    def kill(self, ref: str, signal: str = "SIGKILL") -> dict[str, Any] | None:
        return self._act(ref, "kill", signal=signal)

    def pause(self, ref: str) -> dict[str, Any] | None:
        return self._act(ref, "pause")

    def unpause(self, ref: str) -> dict[str, Any] | None:
        return self._act(ref, "unpause")

    def update(self, ref: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        return self._t.call("POST", f"/v1/containers/{ref}/update", {"wait": True},
                            body=changes)

    def rename(self, ref: str, name: str) -> dict[str, Any]:
        return self._t.call("POST", f"/v1/containers/{ref}/rename", {"name": name})

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        self._t.call("DELETE", f"/v1/containers/{ref}",
                     {"force": force, "volumes": volumes, "wait": True})

    def wait(self, ref: str, condition: str = "not-running") -> dict[str, Any]:
        return self._t.call("POST", f"/v1/containers/{ref}/wait", {"condition": condition})

    def actions(self, ref: str, *, limit: int | None = None, marker: str | None = None,
                sort: str | None = None) -> Page:
        return fetch(self._t, f"/v1/containers/{ref}/actions", {}, limit=limit, marker=marker,
                     sort=sort)

    def logs(self, ref: str, follow: bool = False, tail: str | int = "all",
             since: str | None = None, until: str | None = None, timestamps: bool = False,
             stdout: bool = True, stderr: bool = True) -> Iterator[tuple[int, bytes]]:
        resp = self._t.open("GET", f"/v1/containers/{ref}/logs", {
            "follow": follow, "tail": tail, "since": since, "until": until,
            "timestamps": timestamps, "stdout": stdout, "stderr": stderr})
        return read_frames(resp)

    def top(self, ref: str, ps_args: str | None = None) -> dict[str, Any]:
        return self._t.call("GET", f"/v1/containers/{ref}/top",
                            {"ps_args": ps_args} if ps_args else None)

    def stats(self, ref: str) -> dict[str, Any]:
        return self._t.call("GET", f"/v1/containers/{ref}/stats")

    def stats_stream(self, ref: str) -> Iterator[dict[str, Any]]:
        resp = self._t.open("GET", f"/v1/containers/{ref}/stats", {"stream": True})
        for line in resp:
            if line.strip():
                yield json.loads(line)

    def exec_session(self, ref: str, command: list[str], tty: bool = False,
                     stdin: bool = False, env: list[str] | None = None, workdir: str = "",
                     user: str = "", detach: bool = False) -> Any:
        """An open websocket: see berth.api.routes.streams for the message protocol. With
        detach, the answer comes once the command has started ({"exit_code": 0})."""
        ws = self._t.websocket(f"/v1/containers/{ref}/exec")
        ws.send(json.dumps({"command": command, "tty": tty, "stdin": stdin, "env": env or [],
                            "workdir": workdir, "user": user, "detach": detach}))
        return ws

    def attach_session(self, ref: str, start: bool = False, logs: bool = True) -> Any:
        return self._t.websocket(f"/v1/containers/{ref}/attach",
                                 {"start": start, "logs": logs})

    # -- its files ---------------------------------------------------------------------------

    def stat_path(self, ref: str, path: str) -> dict[str, Any]:
        """name, size, mode (Go's FileMode bits, as Docker's), mtime, linkTarget."""
        return self._t.call("GET", f"/v1/containers/{ref}/stat", {"path": path})

    def get_archive(self, ref: str, path: str) -> tuple[dict[str, Any], Iterator[bytes]]:
        """The path's stat and a tar of it, whose entries start with the path's base name
        ("." for a path ending in "/.")."""
        resp = self._t.open("GET", f"/v1/containers/{ref}/archive", {"path": path})
        header = resp.headers.get(PATH_STAT_HEADER, "")
        try:
            import base64

            stat = json.loads(base64.b64decode(header))
        except ValueError:
            resp.close()
            raise APIError(502, f"berthd sent no valid {PATH_STAT_HEADER} header") from None
        return stat, read_chunks(resp, close=True)

    def put_archive(self, ref: str, path: str, tar: Iterable[bytes], *,
                    copy_uid_gid: bool = False, no_overwrite_dir: bool = False) -> None:
        """Extract a tar into the directory ``path`` (which must exist). The daemon checks the
        whole archive first: a hostile one is refused with nothing written."""
        self._t.call("PUT", f"/v1/containers/{ref}/archive",
                     {"path": path, "copy_uid_gid": copy_uid_gid,
                      "no_overwrite_dir_non_dir": no_overwrite_dir}, raw=iter(tar))

    def export(self, ref: str) -> Iterator[bytes]:
        """A tar of the container's root filesystem (its volumes left out)."""
        return read_chunks(self._t.open("GET", f"/v1/containers/{ref}/export"), close=True)

    def changes(self, ref: str) -> list[dict[str, str]]:
        """[{"path", "kind": added|modified|deleted}]: what differs from its image."""
        return self._t.call("GET", f"/v1/containers/{ref}/changes")


class _Volumes:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def create(self, name: str | None = None, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None) -> dict[str, Any]:
        """options: the local driver's (docker's --opt): {"type": "tmpfs", "o": "size=64m"},
        or {"type": "none", "o": "bind", "device": "/host/dir"}."""
        return self._t.call("POST", "/v1/volumes", body={"name": name, "labels": labels or {},
                                                         "options": options or {}})

    def list(self, filters: list[str] | None = None, *, selector: str | None = None,
             limit: int | None = None, marker: str | None = None, sort: str | None = None,
             all_projects: bool = False) -> Page:
        return fetch(self._t, "/v1/volumes",
                     {"filter": filters or None, "all_projects": all_projects or None},
                     limit=limit, marker=marker, sort=sort, selector=selector)

    def get(self, name: str) -> dict[str, Any]:
        return self._t.call("GET", f"/v1/volumes/{name}")

    def remove(self, name: str) -> None:
        self._t.call("DELETE", f"/v1/volumes/{name}")

    def prune(self, filters: list[str] | None = None) -> dict[str, Any]:
        """Remove the volumes no container uses (filters: "label=k=v", "label!=k")."""
        return self._t.call("POST", "/v1/volumes/prune", {"filter": filters or None})


class Client:
    """Each argument left out comes from the environment: BERTH_HOST (default: the local
    unix socket), BERTH_TOKEN, BERTH_PROJECT, BERTH_TLS_CA, BERTH_TLS_CERT, BERTH_TLS_KEY.
    TLS: ``tcp://host:port`` with a CA or client certificate, or ``https://host:port``."""

    def __init__(self, host: str | None = None, token: str | None = None,
                 project: str | None = None, tls_ca: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None) -> None:
        env = os.environ.get
        self.host = host or env("BERTH_HOST") or DEFAULT_HOST
        self.transport = Transport(self.host, token=token or env("BERTH_TOKEN"),
                                   project=project or env("BERTH_PROJECT"),
                                   tls_ca=tls_ca or env("BERTH_TLS_CA"),
                                   tls_cert=tls_cert or env("BERTH_TLS_CERT"),
                                   tls_key=tls_key or env("BERTH_TLS_KEY"))
        self.containers = _Containers(self.transport)
        self.images = Images(self.transport)
        self.builds = Builds(self.transport)
        self.registries = Registries(self.transport)
        self.volumes = _Volumes(self.transport)
        self.pods = Pods(self.transport)
        self.services = Services(self.transport)
        self.networks = Networks(self.transport)
        self.projects = Projects(self.transport)
        self.users = Users(self.transport)
        self.tokens = Tokens(self.transport)

    def action(self, action_id: int, wait: bool = False) -> dict[str, Any]:
        """Any action of the project; wait=True blocks until it ends (raising if it failed)."""
        return self.transport.call("GET", f"/v1/actions/{action_id}",
                                   {"wait": wait or None})["action"]

    def whoami(self) -> dict[str, Any]:
        return self.transport.call("GET", "/v1/whoami")

    def info(self) -> dict[str, Any]:
        return self.transport.call("GET", "/v1/info")

    def disk_usage(self) -> dict[str, Any]:
        """The project's images, containers and volumes on disk: {"summary": {kind: {total,
        active, size, reclaimable}}, "images": [...], "containers": [...], "volumes": [...]}."""
        return self.transport.call("GET", "/v1/system/df")

    def events(self, type: str | list[str] | None = None, *,
               object: str | list[str] | None = None, selector: str | None = None,
               action: str | list[str] | None = None, since: str | None = None,
               until: str | None = None, all_projects: bool = False
               ) -> Iterator[dict[str, Any]]:
        """What happens, as it happens: filtered by type (container, image, volume, network),
        object (id or name), action (die, pull, ...) and the object's labels (selector);
        since: the recent past first ("10m", unix seconds, RFC 3339); until: the stream's end;
        all_projects: admins. Subscribed when this returns (a refusal is raised here):
        nothing that happens after it is missed."""
        resp = self.transport.open("GET", "/v1/events", {
            "type": type, "object": object, "selector": selector, "action": action,
            "since": since, "until": until, "all_projects": all_projects or None})
        return _data_lines(resp)


def _data_lines(resp: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for line in resp:
        if line.startswith(b"data: "):
            yield json.loads(line[6:])


__all__ = ["APIError", "Client"]
