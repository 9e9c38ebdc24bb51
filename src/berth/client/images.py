"""Images and registry logins in the SDK: pull and push stream progress as they go."""

from __future__ import annotations

import json

from berth.client.paging import Page, fetch
from berth.client.transport import APIError, Transport, read_chunks

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO


def _progress(resp: Any) -> Iterator[dict[str, Any]]:
    """NDJSON progress lines; an {"error": …} line (a failure after the 200) raises."""
    for line in resp:
        if not line.strip():
            continue
        event = json.loads(line)
        if "error" in event:
            raise APIError(int(event.get("status") or 500), event["error"], event)
        yield event


class Images:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, filters: list[str] | None = None, *, selector: str | None = None,
             limit: int | None = None, marker: str | None = None, sort: str | None = None,
             all_projects: bool = False, all: bool = False) -> Page:
        """Images, newest first. selector: their labels; sort: "size", "created_at:asc", …;
        limit: one page (see Page.next_marker), else every page; all_projects: admins;
        all: build steps' results too (build cache)."""
        return fetch(self._t, "/v1/images",
                     {"filter": filters or None, "all_projects": all_projects or None,
                      "all": all or None},
                     limit=limit, marker=marker, sort=sort, selector=selector)

    def get(self, ref: str) -> dict[str, Any]:
        return self._t.call("GET", f"/v1/images/{ref}/json")

    def history(self, ref: str) -> list[dict[str, Any]]:
        return self._t.call("GET", f"/v1/images/{ref}/history")

    def pull(self, ref: str, platform: str | None = None) -> Iterator[dict[str, Any]]:
        """Progress events per layer; the last one is {"status": "done", "image": {…}}."""
        resp = self._t.open("POST", "/v1/images/pull", {"stream": True},
                            body={"reference": ref, "platform": platform})
        yield from _progress(resp)

    def start_pull(self, ref: str, platform: str | None = None) -> dict[str, Any]:
        """Start a pull in the background; returns its action (see Client.action)."""
        return self._t.call("POST", "/v1/images/pull",
                            body={"reference": ref, "platform": platform})["action"]

    def pull_image(self, ref: str, platform: str | None = None) -> dict[str, Any]:
        """Pull and return the image (for scripts that do not show progress)."""
        last: dict[str, Any] = {}
        for last in self.pull(ref, platform):  # noqa: B007 - the last event is the result
            pass
        return last["image"]

    def push(self, ref: str, destination: str | None = None, sign_by: str | None = None,
             sign_by_sigstore_key: str | None = None) -> Iterator[dict[str, Any]]:
        body = {"destination": destination, "sign_by": sign_by,
                "sign_by_sigstore_key": sign_by_sigstore_key}
        resp = self._t.open("POST", f"/v1/images/{ref}/push",
                            body={k: v for k, v in body.items() if v is not None})
        yield from _progress(resp)

    def import_archive(self, stream: BinaryIO) -> list[dict[str, Any]]:
        """The images of a docker-archive or OCI-layout tarball (``load``)."""
        return self._t.call("POST", "/v1/images/import", {"format": "archive"},
                            raw=read_chunks(stream))

    def import_tarball(self, stream: BinaryIO, reference: str | None = None,
                       changes: list[str] | None = None, message: str = "",
                       format: str = "auto") -> list[dict[str, Any]]:
        """An image archive's images, or a root filesystem as a one-layer image (``import``;
        format: auto, archive or rootfs)."""
        params: dict[str, Any] = {"format": format, "change": changes or []}
        if reference:
            params["reference"] = reference
        if message:
            params["message"] = message
        return self._t.call("POST", "/v1/images/import", params, raw=read_chunks(stream))

    def save(self, refs: list[str], format: str = "docker-archive") -> Iterator[bytes]:
        resp = self._t.open("GET", "/v1/images/save", {"ref": refs, "format": format})
        yield from read_chunks(resp, close=True)

    def build_base(self, kind: str = "busybox", tag: str | None = None) -> dict[str, Any]:
        return self._t.call("POST", "/v1/images/build-base", body={"kind": kind, "tag": tag})

    def commit(self, container: str, reference: str | None = None,
               changes: list[str] | None = None, message: str = "", author: str = "",
               pause: bool = True) -> dict[str, Any]:
        return self._t.call("POST", "/v1/images/commit", body={
            "container": container, "reference": reference, "changes": changes or [],
            "message": message, "author": author, "pause": pause})

    def tag(self, ref: str, tag: str) -> dict[str, Any]:
        return self._t.call("POST", f"/v1/images/{ref}/tag", body={"tag": tag})

    def untag(self, ref: str) -> dict[str, Any]:
        return self._t.call("POST", f"/v1/images/{ref}/untag")

    def remove(self, ref: str, force: bool = False) -> list[dict[str, Any]]:
        return self._t.call("DELETE", f"/v1/images/{ref}", {"force": force})

    def prune(self, all: bool = False, filters: list[str] | None = None) -> dict[str, Any]:
        """filters: "until=24h", "label=k=v", "label!=k"."""
        return self._t.call("POST", "/v1/images/prune", {"all": all, "filter": filters or None})

    def sign(self, ref: str, sign_by: str | None = None,
             sign_by_sigstore_key: str | None = None) -> dict[str, Any]:
        body = {"sign_by": sign_by, "sign_by_sigstore_key": sign_by_sigstore_key}
        return self._t.call("POST", f"/v1/images/{ref}/sign",
                            body={k: v for k, v in body.items() if v is not None})

    def verify(self, ref: str) -> dict[str, Any]:
        return self._t.call("POST", f"/v1/images/{ref}/verify")

    def policy(self) -> dict[str, Any]:
        return self._t.call("GET", "/v1/signature-policy")

    def set_policy(self, policy: dict[str, Any]) -> dict[str, Any]:
        return self._t.call("PUT", "/v1/signature-policy", body=policy)

    def unset_policy(self) -> None:
        self._t.call("DELETE", "/v1/signature-policy")


class Registries:
    """The project's registry logins. Passwords go in and never come back out."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def login(self, registry: str, username: str, password: str) -> dict[str, Any]:
        return self._t.call("POST", "/v1/registries/logins", body={
            "registry": registry, "username": username, "password": password})

    def logout(self, registry: str) -> None:
        self._t.call("DELETE", f"/v1/registries/logins/{registry}")

    def list(self) -> list[dict[str, Any]]:
        return self._t.call("GET", "/v1/registries/logins")
