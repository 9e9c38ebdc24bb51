"""Cosign signature artifacts: the ``sha256-<hex>.sig`` OCI manifest next to a signed image.

Each layer of that manifest whose media type is ``application/vnd.dev.cosign.simplesigning.v1+
json`` is one signature: the layer blob is the signed payload and the layer annotation
``dev.cosignproject.cosign/signature`` carries the base64 signature. Fetching the manifest and
blobs is the registry client's job; this module parses (bounded) and builds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidArgument, UnsafeContent

from .common import (
    MAX_MANIFEST_SIZE,
    MAX_SIGNATURE_SIZE,
    MAX_SIGNATURES,
    compute_digest,
    is_valid_digest,
)
from .strictjson import load_strict

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class SigstoreSig:
    """One sigstore signature: the payload blob and its base64 signature annotation."""

    payload: bytes
    signature_b64: str


@dataclass(frozen=True)
class CosignLayer:
    """A signature layer listed by an artifact manifest, before its blob is fetched."""

    digest: str
    signature_b64: str
    size: int


@dataclass(frozen=True)
class CosignArtifact:
    """A signature artifact ready to push: every blob, then the manifest under ``tag``."""

    tag: str
    manifest: bytes
    blobs: dict[str, bytes]  # digest -> content (config and payloads)


def cosign_signature_tag(manifest_digest: str) -> str:
    """The tag cosign stores an image's signatures under: ``sha256-<hex>.sig``."""
    if not is_valid_digest(manifest_digest):
        raise InvalidArgument(f"invalid manifest digest: {manifest_digest!r}")
    algorithm, hex_part = manifest_digest.split(":", 1)
    return f"{algorithm}-{hex_part}.sig"


def parse_cosign_manifest(manifest_bytes: bytes) -> list[CosignLayer]:
    """The signature layers of an artifact manifest; other layers are skipped.

    Raises UnsafeContent for a manifest that is malformed or exceeds the bounds.
    """
    try:
        doc = load_strict(manifest_bytes, "cosign signature manifest", MAX_MANIFEST_SIZE)
    except InvalidArgument as e:
        raise UnsafeContent(e.message) from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise UnsafeContent("cosign signature manifest: not an OCI manifest (schemaVersion 2)")
    media_type = doc.get("mediaType", OCI_MANIFEST_MEDIA_TYPE)
    if media_type != OCI_MANIFEST_MEDIA_TYPE:
        raise UnsafeContent(f"cosign signature manifest: unexpected mediaType {media_type!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise UnsafeContent("cosign signature manifest: layers is not an array")
    if len(layers) > MAX_SIGNATURES:
        raise UnsafeContent(f"cosign signature manifest: more than {MAX_SIGNATURES} layers")
    out = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise UnsafeContent(f"cosign signature manifest: layers[{i}] is not an object")
        if layer.get("mediaType") != SIMPLESIGNING_MEDIA_TYPE:
            continue
        digest, size = layer.get("digest"), layer.get("size")
        annotations = layer.get("annotations")
        if not is_valid_digest(digest) or not str(digest).startswith("sha256:"):
            raise UnsafeContent(f"cosign signature manifest: layers[{i}].digest is invalid")
        if isinstance(size, bool) or not isinstance(size, int) or not (
                0 < size <= MAX_SIGNATURE_SIZE):
            raise UnsafeContent(f"cosign signature manifest: layers[{i}].size must be 1.."
                                f"{MAX_SIGNATURE_SIZE}")
        if not isinstance(annotations, dict):
            continue  # no signature annotation: nothing to verify
        signature = annotations.get(SIGNATURE_ANNOTATION)
        if not isinstance(signature, str) or not signature:
            continue
        out.append(CosignLayer(str(digest), signature, size))
    return out


def sigstore_sig_from_blob(layer: CosignLayer, blob: bytes) -> SigstoreSig:
    """Pair a fetched payload blob with its layer after checking its size and digest."""
    if len(blob) != layer.size or len(blob) > MAX_SIGNATURE_SIZE:
        raise UnsafeContent(f"signature payload {layer.digest}: size {len(blob)} does not "
                            f"match the manifest's {layer.size}")
    if compute_digest(blob) != layer.digest:
        raise UnsafeContent(f"signature payload {layer.digest}: content does not match its "
                            "digest")
    return SigstoreSig(blob, layer.signature_b64)


def _descriptor(media_type: str, blob: bytes, annotations: dict[str, str] | None = None
                ) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": media_type, "size": len(blob),
                           "digest": compute_digest(blob)}
    if annotations:
        out["annotations"] = annotations
    return out


def build_cosign_artifact(manifest_digest: str, signatures: list[SigstoreSig]
                          ) -> CosignArtifact:
    """The artifact holding ``signatures`` for the image ``manifest_digest``.

    To add a signature, pass the existing ones (``parse_cosign_manifest`` +
    ``sigstore_sig_from_blob``) followed by the new one; the manifest is replaced whole.
    """
    if not signatures:
        raise InvalidArgument("a cosign signature artifact needs at least one signature")
    if len(signatures) > MAX_SIGNATURES:
        raise InvalidArgument(f"more than {MAX_SIGNATURES} signatures")
    layers = [_descriptor(SIMPLESIGNING_MEDIA_TYPE, s.payload,
                          {SIGNATURE_ANNOTATION: s.signature_b64}) for s in signatures]
    config = json.dumps({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": _descriptor(OCI_CONFIG_MEDIA_TYPE, config),
        "layers": layers,
    }, separators=(",", ":")).encode()
    blobs = {compute_digest(config): config}
    for sig in signatures:
        blobs[compute_digest(sig.payload)] = sig.payload
    return CosignArtifact(cosign_signature_tag(manifest_digest), manifest, blobs)
