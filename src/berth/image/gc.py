"""Garbage collection of a host's image content: blobs and unpacked layers no image needs.

The store decides what is referenced (the caller passes the keep sets); this module only
deletes what is neither referenced nor recent. "Recent" (younger than ``grace_seconds`` by
mtime) protects content a pull or import wrote but has not yet recorded as an image row. A
blob is renamed out of the store before it is deleted, and checked again once renamed, so a
concurrent write of the same digest is put back rather than lost. Unpacked layers go through
``LayerStore.remove`` (under the layer's lock, rename then delete).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from berth.image.blobs import BlobStore
from berth.image.layers import TMP_PREFIX, LayerStore
from berth.image.types import ImageManifest

DEFAULT_GRACE_SECONDS = 600


@dataclass(frozen=True)
class ImageContent:
    """What one image keeps in the store: its blobs' digests and its layers' diff_ids."""

    blobs: frozenset[str]
    diff_ids: frozenset[str]


@dataclass
class GcReport:
    blobs_removed: list[str] = field(default_factory=list)  # digests
    bytes_freed: int = 0  # blob bytes plus the apparent size of removed unpacked layers
    layers_removed: list[str] = field(default_factory=list)  # diff_ids (every id mapping)


def image_blobs(images: Iterable[ImageManifest]) -> set[str]:
    """Every blob the images need: config, stored manifest and layers."""
    keep: set[str] = set()
    for image in images:
        keep.update((image.id, image.manifest_digest), (la.digest for la in image.layers))
    return keep


def image_diff_ids(images: Iterable[ImageManifest]) -> set[str]:
    return {la.diff_id for image in images for la in image.layers}


def tree_size(path: Path) -> int:
    """Apparent size of the files under ``path`` (hard links counted once; never follows a
    symlink)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [str(path)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
            elif (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) else 0
    return total


def _mtime(path: Path) -> float:
    try:
        return os.stat(path, follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return 0.0


def _remove_blob(blobs: BlobStore, digest: str, cutoff: float) -> int | None:
    """Delete one old blob; its size, or None if it was recent or already gone."""
    path = blobs.path(digest)
    if not path.exists() or _mtime(path) > cutoff:
        return None
    doomed = blobs.tmp_dir / f"gc-{digest[7:]}"
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return None  # another collector got there first
    st = os.stat(doomed)
    if st.st_mtime > cutoff:
        # Rewritten between the check and the rename: a writer wants it, put it back. If it
        # was written yet again meanwhile, that copy has the same content: keep that one.
        with contextlib.suppress(FileExistsError):
            os.link(doomed, path)
        os.unlink(doomed)
        return None
    os.unlink(doomed)
    return st.st_size


def _layer_copies(layers: LayerStore) -> dict[str, list[Path]]:
    copies: dict[str, list[Path]] = {}
    for key, diff_id in layers.iter_layers():
        copies.setdefault(diff_id, []).append(layers.root / key / diff_id[7:])
    return copies


def collect(blobs: BlobStore, layers: LayerStore, keep_blobs: set[str],
            keep_diff_ids: set[str], *, grace_seconds: float = DEFAULT_GRACE_SECONDS,
            now: float | None = None, only: ImageContent | None = None) -> GcReport:
    """Remove blobs not in ``keep_blobs`` and unpacked layers whose diff_id is not in
    ``keep_diff_ids``, unless written in the last ``grace_seconds``; ``only``: of these
    candidates alone (a removed image's content), not of the whole store."""
    cutoff = (time.time() if now is None else now) - grace_seconds
    report = GcReport()
    digests = blobs.iter_digests() if only is None else only.blobs
    for digest in sorted(digests):
        if digest in keep_blobs:
            continue
        freed = _remove_blob(blobs, digest, cutoff)
        if freed is not None:
            report.blobs_removed.append(digest)
            report.bytes_freed += freed
    for diff_id, paths in sorted(_layer_copies(layers).items()):
        # All copies (one per id mapping) go together, and only when all are old.
        if only is not None and diff_id not in only.diff_ids:
            continue
        if diff_id in keep_diff_ids or any(_mtime(p) > cutoff for p in paths):
            continue
        size = sum(tree_size(p) for p in paths)
        layers.remove(diff_id)
        report.layers_removed.append(diff_id)
        report.bytes_freed += size
    return report


def disk_usage(blobs: BlobStore, layers: LayerStore, *, keep_blobs: set[str] | None = None,
               keep_diff_ids: set[str] | None = None) -> dict[str, int]:
    """Bytes (and counts) per kind of content, for ``system df``; given the keep sets, also
    what a collection could reclaim (ignoring the grace period)."""
    usage = dict.fromkeys(("blobs", "blob_count", "blobs_reclaimable", "layers",
                           "layer_count", "layers_reclaimable", "tmp"), 0)
    for digest in blobs.iter_digests():
        try:
            size = blobs.path(digest).stat().st_size
        except FileNotFoundError:
            continue
        usage["blobs"] += size
        usage["blob_count"] += 1
        if keep_blobs is not None and digest not in keep_blobs:
            usage["blobs_reclaimable"] += size
    for diff_id, paths in _layer_copies(layers).items():
        size = sum(tree_size(p) for p in paths)
        usage["layers"] += size
        usage["layer_count"] += len(paths)
        if keep_diff_ids is not None and diff_id not in keep_diff_ids:
            usage["layers_reclaimable"] += size
    usage["tmp"] = tree_size(blobs.tmp_dir)
    for key_dir in _key_dirs(layers):
        for entry in os.scandir(key_dir):
            if entry.name.startswith(TMP_PREFIX):
                usage["tmp"] += tree_size(Path(entry.path))
    return usage


def _key_dirs(layers: LayerStore) -> list[Path]:
    return [Path(e.path) for e in os.scandir(layers.root) if e.is_dir(follow_symlinks=False)]
