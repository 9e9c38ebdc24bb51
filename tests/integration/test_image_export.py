"""Exporting images as docker-archive and OCI-layout tarballs, and reading them back."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from berth.errors import InvalidArgument
from berth.image import archive
from berth.image.archive import OCI_MANIFEST, REF_NAME, import_archive
from berth.image.base import build_busybox_image
from berth.image.blobs import BlobStore
from berth.image.commit import commit_image, commit_layer
from berth.image.export import export_docker_archive, export_oci_layout
from berth.image.types import ImageManifest

pytestmark = pytest.mark.integration


@pytest.fixture()
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture()
def two_images(blobs: BlobStore, tmp_path: Path) -> list[ImageManifest]:
    """busybox, and an image built on it: they share the busybox layer."""
    base = build_busybox_image(blobs, Path("/bin/busybox"))
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "app").write_bytes(b"#!/bin/sh\necho app\n")
    layer = commit_layer(upper, blobs, idmap=None)
    assert layer is not None
    child = commit_image(base, layer, blobs, changes={"Cmd": ["/app"]},
                         created="2024-01-01T00:00:00Z")
    return [base, child]


def names_of(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()


def member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def summary(images: list[ImageManifest]) -> list[tuple[str, list[str], list[str]]]:
    return [(i.id, i.repo_tags, [la.digest for la in i.layers]) for i in images]


def test_docker_archive_round_trip(two_images: list[ImageManifest], blobs: BlobStore,
                                   tmp_path: Path) -> None:
    base, child = two_images
    out = io.BytesIO()
    export_docker_archive([(base, ["busybox"]), (child, ["example.com/app:v1", "app"])],
                          blobs, out)
    data = out.getvalue()
    shared = f"{base.layers[0].digest[7:]}/layer.tar"
    assert Counter(names_of(data))[shared] == 1
    assert archive.export_docker_archive is export_docker_archive  # the old import path works
    again = import_archive(io.BytesIO(data), BlobStore(tmp_path / "other"))
    assert summary(again) == [
        (base.id, ["busybox:latest"], [base.layers[0].digest]),
        (child.id, ["example.com/app:v1", "app:latest"], [la.digest for la in child.layers])]


def test_oci_layout_round_trip(two_images: list[ImageManifest], blobs: BlobStore,
                               tmp_path: Path) -> None:
    base, child = two_images
    out = io.BytesIO()
    export_oci_layout([(base, ["busybox"]), (child, ["example.com/app:v1", "app"]),
                       (child, [])], blobs, out)
    data = out.getvalue()
    names = Counter(names_of(data))
    assert names[f"blobs/sha256/{base.layers[0].digest[7:]}"] == 1
    assert all(count == 1 for count in names.values())
    assert json.loads(member(data, "oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(member(data, "index.json"))
    refs = [d.get("annotations", {}).get(REF_NAME) for d in index["manifests"]]
    assert refs == ["busybox:latest", "example.com/app:v1", "app:latest", None]
    assert index["manifests"][1]["annotations"]["io.containerd.image.name"] == \
        "example.com/app:v1"
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == \
        "docker.io/library/busybox:latest"
    # For images Berth made, the manifest written is the one it stored.
    assert index["manifests"][0]["digest"] == base.manifest_digest
    assert all(d["mediaType"] == OCI_MANIFEST for d in index["manifests"])
    again = import_archive(io.BytesIO(data), BlobStore(tmp_path / "other"))
    assert summary(again) == [
        (base.id, ["busybox:latest"], [base.layers[0].digest]),
        (child.id, ["example.com/app:v1", "app:latest"], [la.digest for la in child.layers])]


def test_skopeo_reads_our_oci_archive(two_images: list[ImageManifest], blobs: BlobStore,
                                      tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    _, child = two_images
    path = tmp_path / "child.tar"
    with open(path, "wb") as f:
        export_oci_layout([(child, ["example.com/app:v1"])], blobs, f)
    shown = json.loads(subprocess.run(["skopeo", "inspect", f"oci-archive:{path}"],
                                      capture_output=True, check=True, text=True).stdout)
    assert shown["Digest"] == child.manifest_digest
    assert shown["Layers"] == [la.digest for la in child.layers]
    # The ref.name annotation names the image, as podman's own oci-archives do.
    subprocess.run(["skopeo", "copy", "-q", f"oci-archive:{path}:example.com/app:v1",
                    f"oci:{tmp_path / 'layout'}:copied"], check=True, capture_output=True)
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert index["manifests"][0]["annotations"][REF_NAME] == "copied"
    if shutil.which("umoci") is not None:
        unpacked = tmp_path / "unpacked"
        unpacked.mkdir()
        # The archive is our own, just written; Debian 12's Python 3.11.2 predates filters.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        with tarfile.open(path) as tf:
            tf.extractall(unpacked, **safe)  # type: ignore[arg-type]
        tags = subprocess.run(["umoci", "ls", "--layout", str(unpacked)], capture_output=True,
                              check=True, text=True).stdout.split()
        assert tags == ["example.com/app:v1"]


def test_bad_tag_is_refused_before_writing(two_images: list[ImageManifest],
                                           blobs: BlobStore) -> None:
    for export in (export_docker_archive, export_oci_layout):
        out = io.BytesIO()
        with pytest.raises(InvalidArgument, match="invalid reference format"):
            export([(two_images[0], ["ok"]), (two_images[1], ["Bad:Tag"])], blobs, out)
        assert out.getvalue() == b""
