"""Pulling an image: resolve the reference (through an index by platform), validate the
manifest and config, download missing layers concurrently, and store the verified blobs.

Nothing is unpacked here; the caller does that through ``berth.image.layers``. Blobs are
committed only once verified, and the config and manifests only after every layer is in.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from berth.errors import InvalidArgument, UnsafeContent
from berth.image.blobs import BlobStore
from berth.image.reference import Reference
from berth.image.registry import mediatypes as mt
from berth.image.registry.client import RegistryClient, check_reference, check_repo
from berth.image.registry.config import CredentialsFn, RegistryConfig
from berth.image.registry.download import fetch_blob
from berth.image.registry.manifest import (
    Descriptor,
    load_json,
    parse_image_config,
    parse_image_manifest,
    parse_index,
)
from berth.image.registry.platforms import host_platform, select
from berth.image.registry.progress import BlobProgress, Progress, ProgressFn
from berth.image.types import ImageManifest, LayerRef

PlatformSpec = tuple[str, str, str | None]


@dataclass(frozen=True)
class PulledImage:
    image: ImageManifest  # id = config digest; manifest_digest = the registry's manifest
    manifest_bytes: bytes  # exactly as served (also stored in the blob store)
    media_type: str
    repo_digest: str  # what the reference resolved to: the index digest if pulled via one
    reference: Reference  # the reference pulled, with the default tag filled in


def pull(ref: Reference, blobs: BlobStore, *, config: RegistryConfig | None = None,
         credentials_for: CredentialsFn | None = None, platform: PlatformSpec | None = None,
         progress: ProgressFn | None = None, max_workers: int = 4,
         on_layer: Callable[[LayerRef], None] | None = None) -> PulledImage:
    """Fetch ``ref`` into ``blobs`` and describe it; see the module docstring. ``on_layer``
    is called (from a download thread) as soon as each layer blob is stored and verified,
    so a caller can unpack it while the others still download."""
    ref = ref.with_default_tag()
    repo = check_repo(ref.repository)
    reference = check_reference(ref.digest or ref.tag or "")
    if max_workers < 1:
        raise InvalidArgument("max_workers must be at least 1")
    sink = Progress(progress)
    with RegistryClient(ref.domain, config, credentials_for) as client:
        limits = client.config.limits
        data, media_type, digest = client.get_manifest(repo, reference)
        repo_digest = digest
        served = [(data, digest)]
        depth = 0
        while media_type in mt.INDEXES:
            depth += 1
            where = f"index {client.where(repo, digest)}"
            if depth > limits.max_index_depth:
                raise UnsafeContent(f"{where}: indexes nested more than "
                                    f"{limits.max_index_depth} deep")
            entries = parse_index(load_json(data, limits.max_json_depth, where), limits, where)
            chosen = select(entries, platform or host_platform(), where)
            if chosen.media_type not in mt.MANIFESTS | mt.INDEXES:
                raise UnsafeContent(f"{where}: entry {chosen.digest} has media type "
                                    f"{chosen.media_type[:100]!r}")
            data, media_type, digest = client.get_manifest(repo, chosen.digest)
            if len(data) != chosen.size:
                raise UnsafeContent(f"{where}: manifest {chosen.digest} is {len(data)} bytes, "
                                    f"the index says {chosen.size}")
            served.append((data, digest))
        where = f"manifest {client.where(repo, digest)}"
        config_desc, layers = parse_image_manifest(
            load_json(data, limits.max_json_depth, where), limits, where)
        config_bytes = _config_bytes(client, repo, config_desc, blobs)
        config_doc, diff_ids = parse_image_config(
            config_bytes, len(layers), limits, f"config {client.where(repo)}@{config_desc.digest}")
        refs = [LayerRef(la.digest, diff_id, la.size, la.media_type)
                for la, diff_id in zip(layers, diff_ids, strict=True)]
        _fetch_layers(client, repo, layers, blobs, sink, max_workers,
                      on_layer, refs)
        blobs.put_bytes(config_bytes, config_desc.digest)
        for blob, blob_digest in served:
            blobs.put_bytes(blob, blob_digest)
    image = ImageManifest(id=config_desc.digest, manifest_digest=digest, config=config_doc,
                          layers=refs)
    return PulledImage(image, data, media_type, repo_digest, ref)


def _config_bytes(client: RegistryClient, repo: str, desc: Descriptor,
                  blobs: BlobStore) -> bytes:
    """The config blob, verified (from the store when it is already there)."""
    if blobs.has(desc.digest):
        data = blobs.read_bytes(desc.digest, client.config.limits.max_config_bytes)
    else:
        data = client.get_blob_bytes(repo, desc.digest, client.config.limits.max_config_bytes)
    if len(data) != desc.size:
        raise UnsafeContent(f"config {client.where(repo)}@{desc.digest} is {len(data)} bytes, "
                            f"the manifest says {desc.size}")
    return data


def _fetch_layers(client: RegistryClient, repo: str, layers: list[Descriptor],
                  blobs: BlobStore, sink: Progress, max_workers: int,
                  on_layer: Callable[[LayerRef], None] | None, refs: list[LayerRef]) -> None:
    """Download every missing layer, at most ``max_workers`` at a time; the first failure
    stops the ones not yet started and is raised."""
    trackers = [sink.blob(la.digest, la.size) for la in layers]
    for t in trackers:
        t.status("waiting", 0)
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pull") as pool:
        def one(la: Descriptor, t: BlobProgress, ref: LayerRef) -> None:
            fetch_blob(client, repo, la, blobs, t)
            if on_layer is not None:
                on_layer(ref)

        futures = [pool.submit(one, la, t, ref)
                   for la, t, ref in zip(layers, trackers, refs, strict=True)]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and f.exception() is not None]
        if failed:
            for f in pending:
                f.cancel()
            wait(futures)
            for t, f in zip(trackers, futures, strict=True):
                if f.done() and not f.cancelled() and f.exception() is not None:
                    t.status("error", 0, error=str(f.exception()))
            raise failed[0].exception()  # type: ignore[misc]
