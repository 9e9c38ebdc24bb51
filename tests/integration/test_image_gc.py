"""Garbage collection of blobs and unpacked layers: referenced or recent content survives."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from berth.image import gc
from berth.image.base import build_busybox_image
from berth.image.blobs import BlobStore
from berth.image.commit import commit_image, commit_layer
from berth.image.gc import collect, disk_usage, image_blobs, image_diff_ids, tree_size
from berth.image.layers import LayerStore
from berth.image.types import ImageManifest, LayerRef
from berth.runtime.base import IdMapping

pytestmark = pytest.mark.integration

HOUR = 3600


def age(path: Path, seconds: float = 2 * HOUR) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old), follow_symlinks=False)


def age_all(blobs: BlobStore) -> None:
    for digest in blobs.iter_digests():
        age(blobs.path(digest))


@pytest.fixture()
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def small_layer(blobs: BlobStore, tmp_path: Path, name: str) -> LayerRef:
    upper = tmp_path / f"upper-{name}"
    upper.mkdir()
    (upper / name).write_bytes(name.encode() * 100)
    layer = commit_layer(upper, blobs, idmap=None)
    assert layer is not None
    return layer


def test_blobs_referenced_or_recent_survive(blobs: BlobStore, tmp_path: Path) -> None:
    image = build_busybox_image(blobs, Path("/bin/busybox"))
    dropped = commit_image(image, small_layer(blobs, tmp_path, "x"), blobs, changes={})
    garbage, garbage_size = blobs.put_bytes(b"nobody wants me")
    age_all(blobs)
    fresh, _ = blobs.put_bytes(b"just pulled, not yet recorded")
    keep = image_blobs([image])
    assert keep == {image.id, image.manifest_digest, image.layers[0].digest}
    report = collect(blobs, LayerStore(tmp_path / "layers", blobs), keep, set())
    gone = {dropped.id, dropped.manifest_digest, dropped.layers[-1].digest, garbage}
    assert set(report.blobs_removed) == gone
    assert report.layers_removed == []
    assert set(blobs.iter_digests()) == keep | {fresh}
    assert report.bytes_freed >= garbage_size + dropped.layers[-1].size
    assert os.listdir(blobs.tmp_dir) == []
    # The grace period is the caller's to choose: with none, the fresh blob goes too.
    assert collect(blobs, LayerStore(tmp_path / "layers", blobs), keep, set(),
                   grace_seconds=0, now=time.time() + 1).blobs_removed == [fresh]


def test_blob_rewritten_during_collection_is_put_back(
        blobs: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digest, _ = blobs.put_bytes(b"racing")
    age(blobs.path(digest))
    real_rename = os.rename

    def rename_after_a_write(src: str | Path, dst: str | Path) -> None:
        if Path(src) == blobs.path(digest):
            blobs.put_bytes(b"racing")  # a pull stores the same blob again, just now
        real_rename(src, dst)

    monkeypatch.setattr(gc.os, "rename", rename_after_a_write)
    report = collect(blobs, LayerStore(tmp_path / "layers", blobs), set(), set())
    assert report.blobs_removed == []
    assert blobs.read_bytes(digest) == b"racing"
    assert os.listdir(blobs.tmp_dir) == []


def unpacked(layers: LayerStore, layer: LayerRef, idmap: IdMapping | None) -> Path:
    path = layers.ensure(layer, idmap)
    age(path)
    return path


def test_layers_referenced_or_recent_survive(blobs: BlobStore, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("unpacking layers needs root (chown)")
    layers = LayerStore(tmp_path / "layers", blobs)
    image = build_busybox_image(blobs, Path("/bin/busybox"))
    old = small_layer(blobs, tmp_path, "old")
    recent = small_layer(blobs, tmp_path, "recent")
    kept = unpacked(layers, image.layers[0], None)
    doomed = [unpacked(layers, old, None), unpacked(layers, old, IdMapping(1_000_000_000))]
    young = layers.ensure(recent, None)
    expected_size = sum(tree_size(p) for p in doomed)
    assert expected_size == 2 * 300
    keep_blobs = {old.digest, recent.digest} | image_blobs([image])
    report = collect(blobs, layers, keep_blobs, image_diff_ids([image]))
    assert report.layers_removed == [old.diff_id]
    assert report.blobs_removed == [] and report.bytes_freed == expected_size
    assert kept.is_dir() and young.is_dir()
    assert not any(p.exists() for p in doomed)
    assert sorted(d for _, d in layers.iter_layers()) == sorted([image.layers[0].diff_id,
                                                                 recent.diff_id])
    for key_dir in (tmp_path / "layers").iterdir():
        assert not [n for n in os.listdir(key_dir) if n.startswith(".tmp-")]


def test_disk_usage(blobs: BlobStore, tmp_path: Path) -> None:
    layers = LayerStore(tmp_path / "layers", blobs)
    image: ImageManifest = build_busybox_image(blobs, Path("/bin/busybox"))
    extra, extra_size = blobs.put_bytes(b"extra")
    usage = disk_usage(blobs, layers, keep_blobs=image_blobs([image]), keep_diff_ids=set())
    total = sum(blobs.path(d).stat().st_size for d in blobs.iter_digests())
    assert usage["blobs"] == total and usage["blob_count"] == 4
    assert usage["blobs_reclaimable"] == extra_size
    assert usage["layers"] == usage["layer_count"] == usage["tmp"] == 0
    if os.geteuid() == 0:
        path = layers.ensure(image.layers[0], None)
        usage = disk_usage(blobs, layers, keep_diff_ids=image_diff_ids([image]))
        assert usage["layer_count"] == 1 and usage["layers"] == tree_size(path) > 1_000_000
        assert usage["layers_reclaimable"] == 0
