"""Write stored images as tarballs: ``docker save`` archives and OCI image layouts.

Both formats are written as a stream (``out`` need not be seekable). Blobs go out exactly as
stored, so layer digests survive the round trip, and a blob shared by several images (a common
base layer) is written once. ``berth.image.archive.import_archive`` reads both back.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
from typing import Any, BinaryIO

from berth.image.archive import (
    LAYER_GZIP,
    LAYER_TAR,
    OCI_INDEX,
    OCI_MANIFEST,
    REF_NAME,
    oci_manifest_bytes,
)
from berth.image.blobs import BlobStore
from berth.image.reference import normalize_tag_reference, parse_reference
from berth.image.types import ImageManifest, LayerRef

CONTAINERD_NAME = "io.containerd.image.name"
OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
# Docker's layer media types name the same bytes as the OCI ones; an OCI layout wants the latter.
_OCI_LAYER_TYPE = {
    "application/vnd.docker.image.rootfs.diff.tar": LAYER_TAR,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": LAYER_GZIP,
}

ImageList = list[tuple[ImageManifest, list[str]]]


class _TarOut:
    """A streaming tar of blobs and small JSON documents, each name written once."""

    def __init__(self, out: BinaryIO, blobs: BlobStore) -> None:
        self.out = out
        self.blobs = blobs
        self.written: set[str] = set()
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    @staticmethod
    def _info(name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        return info

    def blob(self, name: str, digest: str) -> None:
        if name in self.written:
            return
        self.written.add(name)
        with self.blobs.open(digest) as f:
            size = self.blobs.path(digest).stat().st_size
            self.tf.addfile(self._info(name, size), f)

    def data(self, name: str, data: bytes) -> None:
        if name in self.written:
            return
        self.written.add(name)
        self.tf.addfile(self._info(name, len(data)), io.BytesIO(data))

    def json(self, name: str, doc: Any) -> None:
        self.data(name, json.dumps(doc, separators=(",", ":")).encode())

    def close(self) -> None:
        self.tf.close()
        with contextlib.suppress(AttributeError, OSError):
            self.out.flush()


def _normalized(images: ImageList) -> ImageList:
    """Tags in their familiar form, checked before the first byte is written (a bad tag must
    not leave a half-written stream)."""
    return [(image, list(dict.fromkeys(normalize_tag_reference(t) for t in tags)))
            for image, tags in images]


def export_docker_archive(images: ImageList, blobs: BlobStore, out: BinaryIO) -> None:
    """Write a ``docker save`` compatible tar; layers are written as stored."""
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    images = _normalized(images)
    tar = _TarOut(out, blobs)
    for image, norm in images:
        config_name = f"{image.id[7:]}.json"
        tar.blob(config_name, image.id)
        layer_names = []
        for layer in image.layers:
            name = f"{layer.digest[7:]}/layer.tar"
            tar.blob(name, layer.digest)
            layer_names.append(name)
        manifest.append({"Config": config_name, "RepoTags": norm or None,
                         "Layers": layer_names})
        for tag in norm:
            ref = parse_reference(tag)
            if layer_names and ref.tag:
                repositories.setdefault(ref.name, {})[ref.tag] = layer_names[-1].split("/")[0]
    tar.json("manifest.json", manifest)
    tar.json("repositories", repositories)
    tar.close()


def _oci_layer(layer: LayerRef) -> LayerRef:
    media = _OCI_LAYER_TYPE.get(layer.media_type, layer.media_type)
    return LayerRef(layer.digest, layer.diff_id, layer.size, media)


def _annotations(tag: str) -> dict[str, str]:
    """podman/skopeo name an image by ``ref.name``; containerd and Docker by their own key with
    the fully qualified name. Both are written so every loader finds the tag."""
    return {REF_NAME: tag, CONTAINERD_NAME: str(parse_reference(tag))}


def export_oci_layout(images: ImageList, blobs: BlobStore, out: BinaryIO) -> None:
    """Write an OCI image layout tar (``oci-archive``): one index entry per image and tag.

    An untagged image gets one entry without annotations. Each image's manifest is rebuilt
    from its config and layers (for an image Berth made, the same bytes it stored).
    """
    descriptors: list[dict[str, Any]] = []
    images = _normalized(images)
    tar = _TarOut(out, blobs)
    tar.json("oci-layout", OCI_LAYOUT)
    for image, norm in images:
        tar.blob(f"blobs/sha256/{image.id[7:]}", image.id)  # NotFound if it is missing
        config_size = blobs.path(image.id).stat().st_size
        layers = [_oci_layer(la) for la in image.layers]
        for layer in layers:
            tar.blob(f"blobs/sha256/{layer.digest[7:]}", layer.digest)
        manifest = oci_manifest_bytes(image.id, config_size, layers)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        tar.data(f"blobs/sha256/{digest[7:]}", manifest)
        desc: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest,
                                "size": len(manifest)}
        plat = {k: image.config.get(k) for k in ("architecture", "os")}
        if all(isinstance(v, str) and v for v in plat.values()):
            desc["platform"] = plat
        if not norm:
            descriptors.append(desc)
        descriptors.extend({**desc, "annotations": _annotations(t)} for t in norm)
    tar.json("index.json", {"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": descriptors})
    tar.close()
