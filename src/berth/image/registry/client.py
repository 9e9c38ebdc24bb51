"""The registry API calls Berth uses: manifests, small blobs, tags (one registry host)."""

from __future__ import annotations

import hashlib
import re
from contextlib import closing
from dataclasses import dataclass

import httpx

from berth import jsontext
from berth.errors import InvalidArgument, UnsafeContent, UpstreamFailure
from berth.image.registry import mediatypes as mt
from berth.image.registry.httputil import origin_of, resolve_location
from berth.image.registry.manifest import document_media_type, load_json
from berth.image.registry.transport import Transport, scope

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_REPO = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
                   r"[a-z0-9]+)*)*")
MAX_TAG_PAGES = 100


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_repo(repo: str) -> str:
    if not isinstance(repo, str) or len(repo) > 255 or not _REPO.fullmatch(repo):
        raise InvalidArgument(f"invalid repository name {str(repo)[:100]!r}")
    return repo


def check_reference(reference: str) -> str:
    """A tag or a sha256 digest: nothing that could change the request path."""
    if isinstance(reference, str) and (_DIGEST.fullmatch(reference)
                                       or _TAG.fullmatch(reference)):
        return reference
    raise InvalidArgument(f"invalid tag or digest {str(reference)[:100]!r}")


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidArgument(f"invalid digest {str(digest)[:100]!r}")
    return digest


@dataclass(frozen=True)
class ManifestInfo:
    digest: str | None  # from Docker-Content-Digest (a HEAD has no body to hash)
    media_type: str
    size: int | None


class RegistryClient(Transport):
    """Calls against one registry host; open one per pull or push and close it after."""

    _signature_extension: bool | None = None

    def supports_signatures(self) -> bool:
        """Whether the registry's /v2/ answer advertises the X-Registry-Supports-Signatures
        extension (registry/sigext.py); asked once per client."""
        if self._signature_extension is None:
            resp = self.request("GET", "/v2/", scopes=[], what="API version check")
            with closing(resp):
                value = resp.headers.get("x-registry-supports-signatures", "")
            self._signature_extension = value.strip() == "1"
        return self._signature_extension

    def where(self, repo: str, reference: str | None = None) -> str:
        if reference is None:
            return f"{self.host}/{repo}"
        sep = "@" if reference.startswith("sha256:") else ":"
        return f"{self.host}/{repo}{sep}{reference}"

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """(bytes as served, media type, sha256 digest of those bytes). A digest reference
        is verified; an oversized manifest is refused without reading it all."""
        check_repo(repo)
        check_reference(reference)
        where = self.where(repo, reference)
        limits = self.config.limits
        data, headers = self.get_bytes(f"/v2/{repo}/manifests/{reference}",
                                       scopes=[scope(repo, "pull")], what=f"manifest {where}",
                                       limit=limits.max_manifest_bytes,
                                       headers={"Accept": mt.ACCEPT})
        content_type = headers.get("content-type")
        digest = sha256_digest(data)
        if _DIGEST.fullmatch(reference) and digest != reference:
            raise UnsafeContent(f"manifest {where}: the registry sent content with digest "
                                f"{digest}")
        doc = load_json(data, limits.max_json_depth, f"manifest {where}")
        media_type = document_media_type(doc, content_type, f"manifest {where}")
        return data, media_type, digest

    def head_manifest(self, repo: str, reference: str) -> ManifestInfo | None:
        """What the registry has under ``reference`` (None if nothing)."""
        check_repo(repo)
        check_reference(reference)
        resp = self.request("HEAD", f"/v2/{repo}/manifests/{reference}",
                            scopes=[scope(repo, "pull")],
                            what=f"manifest {self.where(repo, reference)}",
                            headers={"Accept": mt.ACCEPT}, ok=(200, 404))
        with closing(resp):
            if resp.status_code == 404:
                return None
            digest = resp.headers.get("docker-content-digest")
            length = resp.headers.get("content-length", "")
            return ManifestInfo(digest if digest and _DIGEST.fullmatch(digest) else None,
                                resp.headers.get("content-type", "").split(";")[0].strip(),
                                int(length) if length.isdigit() else None)

    def manifest_exists(self, repo: str, reference: str) -> bool:
        return self.head_manifest(repo, reference) is not None

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        """Upload manifest bytes exactly as given; return their digest."""
        check_repo(repo)
        check_reference(reference)
        digest = sha256_digest(data)
        if _DIGEST.fullmatch(reference) and reference != digest:
            raise InvalidArgument(f"manifest bytes have digest {digest}, not {reference}")
        where = self.where(repo, reference)
        resp = self.request("PUT", f"/v2/{repo}/manifests/{reference}",
                            scopes=[scope(repo, "pull", "push")], what=f"push manifest {where}",
                            headers={"Content-Type": media_type}, content=data, ok=(201, 200))
        with closing(resp):
            served = resp.headers.get("docker-content-digest")
        if served and served != digest:
            raise UpstreamFailure(f"registry {self.host} stored manifest {where} as {served}, "
                                  f"expected {digest}")
        return digest

    def blob_exists(self, repo: str, digest: str, scopes: list[str] | None = None) -> bool:
        check_repo(repo)
        check_digest(digest)
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}",
                            scopes=scopes or [scope(repo, "pull")],
                            what=f"blob {self.where(repo)}@{digest}", ok=(200, 404))
        resp.close()
        return resp.status_code == 200

    def open_blob(self, repo: str, digest: str, headers: dict[str, str] | None = None,
                  retry: bool = True) -> httpx.Response:
        """A streamed GET of a blob (200, or 206 for a Range request); the caller closes it."""
        check_repo(repo)
        check_digest(digest)
        hdrs = {"Accept-Encoding": "identity", **(headers or {})}
        return self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=[scope(repo, "pull")],
                            what=f"blob {self.where(repo)}@{digest}", headers=hdrs,
                            ok=(200, 206), retry=retry)

    def get_blob_bytes(self, repo: str, digest: str, max_bytes: int) -> bytes:
        """A small blob (a signature, a config) in memory, verified against its digest."""
        check_repo(repo)
        check_digest(digest)
        data, _ = self.get_bytes(f"/v2/{repo}/blobs/{digest}", scopes=[scope(repo, "pull")],
                                 what=f"blob {self.where(repo)}@{digest}", limit=max_bytes,
                                 headers={"Accept-Encoding": "identity"}, raw=True)
        if sha256_digest(data) != digest:
            raise UnsafeContent(f"blob {self.where(repo)}@{digest}: content does not match "
                                "its digest")
        return data

    def list_tags(self, repo: str) -> list[str]:
        """All tags of ``repo``, following the Link header's pagination (bounded)."""
        check_repo(repo)
        limits = self.config.limits
        url = self.url(f"/v2/{repo}/tags/list?n=1000")
        tags: list[str] = []
        for _ in range(MAX_TAG_PAGES):
            body, headers = self.get_bytes(url, scopes=[scope(repo, "pull")],
                                           what=f"tags of {self.where(repo)}",
                                           limit=limits.max_manifest_bytes)
            link = headers.get("link")
            try:
                doc = jsontext.loads(body)
            except ValueError:
                doc = None
            page = doc.get("tags") if isinstance(doc, dict) else None
            if page is None and isinstance(doc, dict):
                page = []
            if not isinstance(page, list):
                raise UpstreamFailure(f"registry {self.host}: unusable tag list for {repo}")
            tags.extend(t for t in page if isinstance(t, str) and _TAG.fullmatch(t))
            if len(tags) > limits.max_tags:
                raise UnsafeContent(f"{self.where(repo)} has more than {limits.max_tags} tags")
            nxt = _next_link(link)
            if nxt is None:
                return tags
            url = resolve_location(url, nxt, f"tags of {self.where(repo)}")
            if origin_of(url) != self.origin:
                raise UpstreamFailure(f"registry {self.host}: tag list continues on another "
                                      "host")
        raise UnsafeContent(f"{self.where(repo)}: more than {MAX_TAG_PAGES} pages of tags")


def _next_link(link: str | None) -> str | None:
    """The URL of a ``Link: <url>; rel="next"`` header, if any."""
    if not link:
        return None
    for part in link.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            m = re.search(r"<([^>]*)>", part)
            if m:
                return m.group(1)
    return None
