"""Uploading one blob: skip it if present, try cross-repository mounts, else upload it
monolithically (small) or in PATCH chunks (big). Upload sessions stay on the registry host."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from urllib.parse import quote

from berth.errors import UpstreamFailure
from berth.image.blobs import BlobStore
from berth.image.registry.client import RegistryClient, check_repo
from berth.image.registry.httputil import add_query, origin_of, resolve_location
from berth.image.registry.progress import BlobProgress
from berth.image.registry.transport import scope

READ_CHUNK = 1 << 20


def _session(client: RegistryClient, base: str, location: str | None, what: str) -> str:
    url = resolve_location(base, location, what)
    if origin_of(url) != client.origin:
        raise UpstreamFailure(f"registry {client.host}: {what}: the upload location points "
                              "to another host")
    return url


def _read_range(blobs: BlobStore, digest: str, start: int, length: int,
                progress: BlobProgress, base: int) -> Iterator[bytes]:
    """Bytes [start, start+length) of a stored blob, reporting progress as they go."""
    with blobs.open(digest) as f:
        f.seek(start)
        left = length
        while left > 0:
            chunk = f.read(min(READ_CHUNK, left))
            if not chunk:
                raise UpstreamFailure(f"blob {digest} shrank while being pushed")
            left -= len(chunk)
            progress.advance(base + length - left, "pushing")
            yield chunk


def upload_blob(client: RegistryClient, repo: str, digest: str, size: int, blobs: BlobStore,
                progress: BlobProgress, mount_from: list[str]) -> str:
    """Make ``digest`` exist in ``repo``: returns "exists", "mounted" or "done"."""
    push_scope = scope(repo, "pull", "push")
    what = f"blob {client.where(repo)}@{digest}"
    if client.blob_exists(repo, digest, scopes=[push_scope]):
        progress.status("exists")
        return "exists"
    location = None
    candidates = [check_repo(r) for r in dict.fromkeys(mount_from) if r != repo]
    for i, other in enumerate(candidates):
        url = client.url(f"/v2/{repo}/blobs/uploads/?mount={quote(digest)}&from={quote(other)}")
        resp = client.request("POST", url, scopes=[push_scope, scope(other, "pull")],
                              what=f"mount {what} from {other}", ok=(201, 202), retry=False)
        with closing(resp):
            if resp.status_code == 201:
                progress.status("mounted", mounted_from=other)
                return "mounted"
            location = _session(client, url, resp.headers.get("location"), what)
        if i + 1 < len(candidates):  # give the unused session back before the next try
            client.request("DELETE", location, scopes=[push_scope], what=what,
                           ok=(200, 202, 204, 404), retry=False).close()
            location = None
    attempts = client.config.attempts
    for attempt in range(attempts):
        try:
            if location is None:
                url = client.url(f"/v2/{repo}/blobs/uploads/")
                resp = client.request("POST", url, scopes=[push_scope],
                                      what=f"upload {what}", ok=(202,), retry=False)
                with closing(resp):
                    location = _session(client, url, resp.headers.get("location"), what)
            _send(client, location, digest, size, blobs, progress, push_scope, what)
            progress.status("done")
            return "done"
        except UpstreamFailure:
            if attempt + 1 >= attempts:
                raise
            location = None
            client.sleep_before(attempt + 1)
    raise AssertionError("unreachable")


def _send(client: RegistryClient, location: str, digest: str, size: int, blobs: BlobStore,
          progress: BlobProgress, push_scope: str, what: str) -> None:
    progress.status("pushing", 0)
    sent = 0
    if size > client.config.chunk_size:
        while sent < size:
            n = min(client.config.chunk_size, size - sent)
            start = sent

            def body(start: int = start, n: int = n) -> Iterator[bytes]:
                return _read_range(blobs, digest, start, n, progress, start)

            resp = client.request("PATCH", location, scopes=[push_scope],
                                  what=f"upload {what}",
                                  headers={"Content-Type": "application/octet-stream",
                                           "Content-Range": f"{start}-{start + n - 1}",
                                           "Content-Length": str(n)},
                                  content=body, ok=(202,), retry=False)
            with closing(resp):
                location = _session(client, location, resp.headers.get("location"), what)
            sent += n
    rest = size - sent
    start = sent

    def tail() -> Iterator[bytes]:
        return _read_range(blobs, digest, start, rest, progress, start)

    resp = client.request("PUT", add_query(location, digest=digest), scopes=[push_scope],
                          what=f"upload {what}",
                          headers={"Content-Type": "application/octet-stream",
                                   "Content-Length": str(rest)},
                          content=tail, ok=(201, 204), retry=False)
    with closing(resp):
        served = resp.headers.get("docker-content-digest")
    if served and served != digest:
        raise UpstreamFailure(f"registry {client.host} stored {what} as {served}")
