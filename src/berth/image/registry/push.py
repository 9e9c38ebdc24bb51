"""Pushing an image: its blobs (layers, then config), then the manifest bytes exactly as given,
so the pushed digest is the one Berth already knows (and signatures over it stay valid)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from berth.errors import InvalidArgument, NotFound, UnsafeContent
from berth.image.blobs import BlobStore
from berth.image.reference import Reference
from berth.image.registry import mediatypes as mt
from berth.image.registry.client import (
    RegistryClient,
    check_reference,
    check_repo,
    sha256_digest,
)
from berth.image.registry.config import CredentialsFn, RegistryConfig
from berth.image.registry.manifest import load_json, parse_image_manifest
from berth.image.registry.progress import Progress, ProgressFn
from berth.image.registry.upload import upload_blob
from berth.image.types import ImageManifest


def push(ref: Reference, image: ImageManifest, manifest_bytes: bytes, media_type: str,
         blobs: BlobStore, *, config: RegistryConfig | None = None,
         credentials_for: CredentialsFn | None = None, progress: ProgressFn | None = None,
         mount_from: list[str] | None = None, max_workers: int = 4) -> str:
    """Push ``image`` to ``ref`` (by its tag, else its digest); return the manifest digest."""
    repo = check_repo(ref.repository)
    digest = sha256_digest(manifest_bytes)
    if ref.digest is not None and ref.digest != digest:
        raise InvalidArgument(f"cannot push to {ref.familiar()}: the manifest's digest is "
                              f"{digest}")
    reference = check_reference(ref.tag or digest)
    if media_type not in mt.MANIFESTS:
        raise InvalidArgument(f"cannot push media type {media_type[:100]!r}: only image "
                              "manifests are supported")
    sink = Progress(progress)
    with RegistryClient(ref.domain, config, credentials_for) as client:
        limits = client.config.limits
        where = f"manifest of {ref.familiar()}"
        config_desc, layers = parse_image_manifest(
            load_json(manifest_bytes, limits.max_json_depth, where), limits, where)
        if config_desc.digest != image.id or \
                [la.digest for la in layers] != [la.digest for la in image.layers]:
            raise InvalidArgument(f"{where} does not describe image {image.id}")
        wanted = {d.digest: d.size for d in [*layers, config_desc]}
        for blob_digest, size in wanted.items():
            if not blobs.has(blob_digest):
                raise NotFound(f"blob {blob_digest} of image {image.id} is not stored locally")
            if blobs.path(blob_digest).stat().st_size != size:
                raise UnsafeContent(f"blob {blob_digest} does not have the size {size} the "
                                    "manifest says")
        trackers = {d: sink.blob(d, s) for d, s in wanted.items()}
        for t in trackers.values():
            t.status("waiting", 0)
        candidates = list(mount_from or [])
        layer_digests = [d for d in wanted if d != config_desc.digest]
        with ThreadPoolExecutor(max_workers=max(1, max_workers),
                                thread_name_prefix="push") as pool:
            futures = [pool.submit(upload_blob, client, repo, d, wanted[d], blobs,
                                   trackers[d], candidates) for d in layer_digests]
            for f in futures:
                f.result()
        upload_blob(client, repo, config_desc.digest, config_desc.size, blobs,
                    trackers[config_desc.digest], candidates)
        return client.put_manifest(repo, reference, manifest_bytes, media_type)
