"""Images to and from registries: pull (policy first, then layers), push, sign, verify, login.

A pull resolves the reference to a manifest, checks it against the signature policy, and only
then downloads layers, by digest, so what is stored is exactly what was checked. The pull ends
once every blob is verified and the image recorded; its layers are unpacked in the background
right after, and a container create waits for (or does) whatever is not unpacked yet.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from berth.errors import InvalidArgument, NotFound
from berth.image.layers import LayerStore
from berth.image.reference import Reference, parse_reference
from berth.image.registry import (
    Credentials,
    CredentialsFn,
    RegistryClient,
    RegistryConfig,
    host_platform,
)
from berth.image.registry import pull as registry_pull
from berth.image.registry import push as registry_push
from berth.image.registry.sigext import attach, read_attached
from berth.image.signature import (
    MAX_SIGNATURE_SIZE,
    SigstoreSig,
    add_signature,
    build_cosign_artifact,
    cosign_signature_tag,
    parse_cosign_manifest,
    sign_sigstore,
    sign_simple,
    sigstore_sig_from_blob,
)
from berth.image.types import LayerRef
from berth.runtime.base import IdMapping
from berth.service.context import Context, Forbidden
from berth.service.credentials import CredentialService
from berth.service.idmaps import IdMaps
from berth.service.images import ImageService, as_manifest
from berth.service.trust import FetchedSignatures, TrustService
from berth.store.models import Image

log = logging.getLogger("berth.registry")
Report = Callable[[dict[str, Any]], None]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
UNPACKERS = 4  # layers unpacked at once (each also writes small files from a few threads)


def parse_platform(text: str | None) -> tuple[str, str, str | None]:
    if not text:
        return host_platform()
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(p.isalnum() for p in parts):
        raise InvalidArgument(f"invalid platform {text!r}: use OS/ARCH[/VARIANT], e.g. "
                              "linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def registry_reference(text: str) -> Reference:
    ref = parse_reference(text)
    return ref if ref.digest else ref.with_default_tag()


class RegistryService:
    def __init__(self, images: ImageService, layers: LayerStore,
                 credentials: CredentialService, trust: TrustService,
                 idmaps: IdMaps, insecure: frozenset[str] = frozenset()) -> None:
        self.images = images
        self.blobs = images.blobs
        self.layers = layers
        self.credentials = credentials
        self.trust = trust
        self.idmaps = idmaps  # layers are unpacked in the pulling project's id range
        self.config = RegistryConfig(insecure=insecure)
        self._unpacker = ThreadPoolExecutor(UNPACKERS, thread_name_prefix="unpack")

    def _creds(self, ctx: Context, override: tuple[str, Credentials] | None = None
               ) -> CredentialsFn:
        """The project's stored credentials; ``override`` (host, credentials) given with one
        request (Docker's X-Registry-Auth) replaces them for that one host only."""
        from berth.service.credentials import normalize_host

        lookup = self.credentials.lookup(ctx)

        def credentials_for(host: str) -> Credentials | None:
            if override is not None:
                with contextlib.suppress(InvalidArgument):
                    if normalize_host(host) == normalize_host(override[0]):
                        return override[1]
            found = lookup(host)
            return None if found is None else Credentials(*found)

        return credentials_for

    def _client(self, ctx: Context, ref: Reference,
                auth: Credentials | None = None) -> RegistryClient:
        return RegistryClient(ref.domain, self.config, self._creds(ctx, _for(ref, auth)))

    # -- pull -----------------------------------------------------------------------------

    def pull(self, ctx: Context, reference: str, platform: str | None,
             report: Report, auth: Credentials | None = None) -> tuple[Image, dict[str, Any]]:
        """``auth``: credentials for this pull only (sent to ``reference``'s registry alone,
        never kept), instead of the project's stored ones."""
        ref = registry_reference(reference)
        wanted = parse_platform(platform)
        with self.images.content.using():
            with self._client(ctx, ref, auth) as client:
                data, _media_type, digest = client.get_manifest(ref.repository,
                                                                _manifest_ref(ref))
                source = self._signatures(client, ref, digest)
                self.trust.check(ctx, ref, data, digest, source)
                kept = self.trust.keep(source)
            report({"status": "resolved", "digest": digest,
                    "message": f"{ref.familiar()}: pulling from {ref.domain}"})
            pulled = registry_pull(
                replace(ref, digest=digest), self.blobs, config=self.config,
                credentials_for=self._creds(ctx, _for(ref, auth)), platform=wanted,
                progress=report)
            manifest = pulled.image
            self._touch([manifest.id, manifest.manifest_digest, digest,
                         *(la.digest for la in manifest.layers)])
            tags = [ref.familiar()] if ref.tag else []
            image = self.images.record(ctx, manifest, tags, source=str(ref),
                                       source_digest=digest, repo_digest=f"{ref.name}@{digest}",
                                       signatures=kept)
        self.unpack_later(manifest.layers, self.idmaps.for_project(ctx.project_id))
        self.images.event(ctx.project_id, "pull", image, ref.familiar(), digest=digest)
        return image, {"digest": digest, "reference": ref.familiar()}

    def unpack_later(self, layers: list[LayerRef], idmap: IdMapping | None) -> None:
        """Unpack a pulled image's layers in the background. The pull is done once its blobs
        are verified and recorded (as skopeo's is); a create that comes first unpacks, or
        waits on the layer lock for, whatever is not ready yet (LayerStore.ensure)."""
        for layer in layers:
            if self.layers.path(layer.diff_id, idmap) is None:
                self._unpacker.submit(self._unpack_one, layer, idmap)

    def _unpack_one(self, layer: LayerRef, idmap: IdMapping | None) -> None:
        try:
            self.layers.ensure(layer, idmap)
        except Exception as exc:  # noqa: BLE001 - a background job: say it, a create retries
            log.warning("background unpack of layer %s failed (a container create will try "
                        "again): %s", layer.digest, exc)

    def close(self) -> None:
        """Drop queued unpacks (the one running finishes; the rest happen at create)."""
        self._unpacker.shutdown(wait=False, cancel_futures=True)

    def _signatures(self, client: RegistryClient, ref: Reference,
                    digest: str) -> FetchedSignatures:
        """Read lazily, only the kinds the policy asks for. Simple signatures come from the
        registry when it keeps them (the signature extension), else from the lookaside, as
        containers/image chooses."""
        lookaside = self.trust.simple_fetcher(ref, digest)

        def simple() -> list[bytes]:
            if client.supports_signatures():
                return read_attached(client, ref.repository, digest)
            return lookaside()

        def sigstore() -> list[SigstoreSig]:
            return self._read_sigstore(client, ref, digest)

        return FetchedSignatures(simple, sigstore)

    @staticmethod
    def _read_sigstore(client: RegistryClient, ref: Reference, digest: str
                       ) -> list[SigstoreSig]:
        """The cosign signature artifact stored beside the image (tag sha256-<hex>.sig)."""
        try:
            data, _, _ = client.get_manifest(ref.repository, cosign_signature_tag(digest))
        except NotFound:
            return []
        return [sigstore_sig_from_blob(layer, client.get_blob_bytes(
            ref.repository, layer.digest, MAX_SIGNATURE_SIZE))
            for layer in parse_cosign_manifest(data)]

    def _touch(self, digests: list[str]) -> None:
        """Blobs a pull reuses count as fresh, so a concurrent prune's grace period spares
        them until the image row that needs them exists."""
        for digest in dict.fromkeys(digests):
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.blobs.path(digest))

    # -- push -----------------------------------------------------------------------------

    def push(self, ctx: Context, ref_text: str, destination: str | None, report: Report, *,
             sign_by: str | None = None, sigstore_key: str | None = None,
             auth: Credentials | None = None) -> dict[str, Any]:
        _may_sign(ctx, sign_by, sigstore_key)  # before anything is pushed
        image = self.images.resolve(ctx, ref_text)
        target = parse_reference(destination or ref_text)
        if target.digest is not None:
            raise InvalidArgument(f"cannot push to {target.familiar()}: name a tag, not a "
                                  "digest")
        target = target.with_default_tag()
        data = self.blobs.read_bytes(image.manifest_digest)
        media_type = _media_type(data)
        mount_from = [parse_reference(d.split("@")[0]).repository
                      for d in image.repo_digests or []
                      if parse_reference(d.split("@")[0]).domain == target.domain]
        with self.images.content.using():
            digest = registry_push(target, as_manifest(image), data, media_type, self.blobs,
                                   config=self.config,
                                   credentials_for=self._creds(ctx, _for(target, auth)),
                                   progress=report, mount_from=mount_from)
        self.images.add_repo_digest(ctx, image.id, f"{target.name}@{digest}")
        signed = self._sign(ctx, target, digest, sign_by, sigstore_key)
        self.images.event(ctx.project_id, "push", image, target.familiar(), digest=digest)
        return {"reference": target.familiar(), "digest": digest, "signed": signed,
                "size": len(data)}

    # -- sign and verify ------------------------------------------------------------------

    def sign(self, ctx: Context, ref_text: str, *, sign_by: str | None,
             sigstore_key: str | None) -> dict[str, Any]:
        """Sign the manifest the registry serves for ``ref_text`` now."""
        _may_sign(ctx, sign_by, sigstore_key)
        ref = registry_reference(ref_text)
        with self._client(ctx, ref) as client:
            _, _, digest = client.get_manifest(ref.repository, _manifest_ref(ref))
        where = self._sign(ctx, ref, digest, sign_by, sigstore_key)
        return {"reference": ref.familiar(), "digest": digest, "where": ", ".join(where)}

    def _sign(self, ctx: Context, ref: Reference, digest: str, sign_by: str | None,
              sigstore_key: str | None) -> list[str]:
        where: list[str] = []  # the callers (push, sign) checked _may_sign first
        identity = str(replace(ref, digest=None)) if ref.tag else str(ref)
        if sign_by:
            where.append(self._sign_simple(ctx, ref, digest, identity, sign_by))
        if sigstore_key:
            where.append(self._sign_sigstore(ctx, ref, digest, identity, Path(sigstore_key)))
        return where

    def _sign_simple(self, ctx: Context, ref: Reference, digest: str, identity: str,
                     sign_by: str) -> str:
        """A GPG simple signature, stored where readers will look: in the registry when it
        keeps signatures (the extension), else in the writable lookaside."""
        home = self.trust.gpg_home or Path(os.environ.get("GNUPGHOME")
                                           or Path.home() / ".gnupg")
        with self._client(ctx, ref) as client:
            if client.supports_signatures():
                sig = sign_simple(digest, identity, sign_by, home)
                attach(client, ref.repository, digest, sig)
                return f"{client.where(ref.repository, digest)} (registry signature storage)"
        staging = self.trust.lookaside(ref, write=True)
        if staging is None or not staging.startswith("file://"):
            raise InvalidArgument(f"no writable lookaside for {ref.familiar()}: set "
                                  "lookaside-staging (file://…) in registries.d")
        sig = sign_simple(digest, identity, sign_by, home)
        return str(add_signature(staging, ref, digest, sig))

    def _sign_sigstore(self, ctx: Context, ref: Reference, digest: str, identity: str,
                       key_file: Path) -> str:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(key_file.read_bytes()[:1 << 16], password=None)
        except (OSError, ValueError, TypeError) as e:
            raise InvalidArgument(f"cannot use sigstore key {key_file}: {e}") from None
        payload, signature = sign_sigstore(digest, identity, key)  # type: ignore[arg-type]
        with self._client(ctx, ref) as client:
            existing = self._read_sigstore(client, ref, digest)
            artifact = build_cosign_artifact(digest,
                                             [*existing, SigstoreSig(payload, signature)])
            for blob in artifact.blobs.values():
                self.blobs.put_bytes(blob)
            target = replace(ref, tag=artifact.tag, digest=None)
            self._push_artifact(client, target, artifact.manifest,
                                {d: len(b) for d, b in artifact.blobs.items()})
        return target.familiar()

    def _push_artifact(self, client: RegistryClient, target: Reference, manifest: bytes,
                       blobs: dict[str, int]) -> None:
        """A signature artifact: not an image (its layers are JSON), so not push()."""
        from berth.image.registry.progress import Progress
        from berth.image.registry.upload import upload_blob

        sink = Progress(None)
        for digest, size in blobs.items():
            upload_blob(client, target.repository, digest, size, self.blobs,
                        sink.blob(digest, size), [])
        client.put_manifest(target.repository, target.tag or "", manifest, OCI_MANIFEST)

    def verify(self, ctx: Context, ref_text: str) -> dict[str, Any]:
        """Check what the registry serves for ``ref_text`` against the policy, now."""
        ref = registry_reference(ref_text)
        with self._client(ctx, ref) as client:
            data, _, digest = client.get_manifest(ref.repository, _manifest_ref(ref))
            source = self._signatures(client, ref, digest)
            self.trust.check(ctx, ref, data, digest, source)
        found = len(source.simple or []) + len(source.sigstore or [])
        return {"reference": ref.familiar(), "digest": digest,
                "result": f"accepted by the policy ({found} signature(s) checked)"}

    # -- login ----------------------------------------------------------------------------

    def login(self, ctx: Context, host: str, username: str, password: str) -> str:
        """Ask the registry to accept the credentials (its /v2/ endpoint, through whatever
        auth it asks for) before keeping them."""
        from berth.service.credentials import normalize_host

        key = normalize_host(host)
        creds = Credentials(username, password)
        with RegistryClient(key, self.config, lambda h: creds if h == key else None) as client:
            client.request("GET", "/v2/", scopes=[], what="login").close()
        return self.credentials.save(ctx, key, username, password)


def _for(ref: Reference, auth: Credentials | None) -> tuple[str, Credentials] | None:
    return None if auth is None else (ref.domain, auth)


def _manifest_ref(ref: Reference) -> str:
    """What names the manifest at the registry: the digest when pinned, else the tag."""
    return ref.digest or ref.tag or ""


def _may_sign(ctx: Context, sign_by: str | None, sigstore_key: str | None) -> None:
    """The keys are the daemon host's (its GnuPG home, a key file on its disk): signing is
    the cloud admins' to do, like any other use of the host's files."""
    if (sign_by or sigstore_key) and not ctx.is_admin:
        raise Forbidden("signing uses keys on the daemon's host: only the cloud's admins "
                        "may sign")


def _media_type(manifest: bytes) -> str:
    import json

    try:
        doc = json.loads(manifest)
    except ValueError:
        raise InvalidArgument("the stored manifest is not JSON") from None
    media_type = doc.get("mediaType") if isinstance(doc, dict) else None
    return media_type if isinstance(media_type, str) else OCI_MANIFEST
