"""What the image package hands to the service layer.

The image package owns bytes on disk (blobs, unpacked layers); the service layer owns records in
the store (which project has which image under which tags). These dataclasses cross that line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LayerRef:
    digest: str  # "sha256:<hex>" of the blob as stored (compressed or not)
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    size: int  # blob size in bytes
    media_type: str


@dataclass(frozen=True)
class ImageManifest:
    """An image as stored locally: its config blob and its layers, lowest first."""

    id: str  # "sha256:<hex>" of the config blob: the image ID, as Docker reports it
    manifest_digest: str  # "sha256:<hex>" of the OCI manifest blob Berth stores for it
    config: dict[str, Any]  # the parsed image config (architecture, os, config, rootfs, history)
    layers: list[LayerRef]
    repo_tags: list[str] = field(default_factory=list)  # normalised "name:tag" from an archive

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)
