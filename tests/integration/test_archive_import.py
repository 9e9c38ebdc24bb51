"""Importing docker-archive and OCI-layout tarballs, and refusing broken or hostile ones."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from berth.errors import InvalidArgument, UnsafeContent
from berth.image.archive import (
    LAYER_GZIP,
    LAYER_TAR,
    OCI_INDEX,
    OCI_MANIFEST,
    ArchiveLimits,
    export_docker_archive,
    host_arch,
    import_archive,
)
from berth.image.blobs import BlobStore
from berth.image.layers import LayerStore

pytestmark = pytest.mark.integration


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(files: dict[str, bytes | str]) -> bytes:
    """A tar of regular files (bytes) and symlinks (str: the link target), in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


LAYER1 = tar_of({"a": b"file a", "d/inner": b"inner"})
LAYER2 = tar_of({".wh.a": b"", "d/new": b"new"})
LAYER2_GZ = gzip.compress(LAYER2, mtime=0)


def config_for(*layers: bytes, cmd: str = "sh") -> bytes:
    return json.dumps({
        "architecture": host_arch(), "os": "linux", "config": {"Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
    }).encode()


CONFIG = config_for(LAYER1, LAYER2)
CONFIG_B = config_for(LAYER1, cmd="true")


def docker_archive(**over: object) -> dict[str, bytes | str]:
    members: dict[str, bytes | str] = {
        "l1/layer.tar": LAYER1,
        "l2/layer.tar": LAYER2_GZ,
        "l3/layer.tar": "../l1/layer.tar",  # docker save links duplicate layers
        f"{sha(CONFIG)[7:]}.json": CONFIG,
        f"{sha(CONFIG_B)[7:]}.json": CONFIG_B,
        "manifest.json": json.dumps([
            {"Config": f"{sha(CONFIG)[7:]}.json",
             "RepoTags": ["docker.io/library/test:1", "example.com/app"],
             "Layers": ["l1/layer.tar", "l2/layer.tar"]},
            {"Config": f"{sha(CONFIG_B)[7:]}.json", "RepoTags": None,
             "Layers": ["l3/layer.tar"]},
        ]).encode(),
        "repositories": b'{"test": {"1": "l2"}}',
    }
    members.update(over)  # type: ignore[arg-type]
    return {k: v for k, v in members.items() if v is not None}


def desc(media: str, data: bytes, **extra: object) -> dict[str, object]:
    return {"mediaType": media, "digest": sha(data), "size": len(data), **extra}


def oci_layout(config: bytes = CONFIG) -> tuple[dict[str, bytes | str], bytes]:
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": [desc(LAYER_TAR, LAYER1), desc(LAYER_GZIP, LAYER2_GZ)],
    }).encode()
    other_arch = "arm64" if host_arch() != "arm64" else "amd64"
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        # Another platform's manifest is not in the archive: it must not be needed.
        {**desc(OCI_MANIFEST, b"missing"), "platform": {"os": "linux",
                                                        "architecture": other_arch}},
        {**desc(OCI_MANIFEST, manifest), "platform": {"os": "linux",
                                                      "architecture": host_arch()}},
    ]}).encode()
    top = {"schemaVersion": 2, "manifests": [
        desc(OCI_INDEX, index, annotations={"org.opencontainers.image.ref.name":
                                            "example.com/oci:v2"}),
    ]}
    members: dict[str, bytes | str] = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
                                       "index.json": json.dumps(top).encode()}
    for blob in (LAYER1, LAYER2_GZ, config, manifest, index):
        members[f"blobs/sha256/{sha(blob)[7:]}"] = blob
    return members, manifest


@pytest.fixture()
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def stored(blobs: BlobStore) -> set[str]:
    assert os.listdir(blobs.tmp_dir) == [], "temp files left behind"
    return set(blobs.iter_digests())


def test_docker_archive(blobs: BlobStore, tmp_path: Path):
    images = import_archive(io.BytesIO(tar_of(docker_archive())), blobs)
    assert [i.id for i in images] == [sha(CONFIG), sha(CONFIG_B)]
    first, second = images
    assert first.repo_tags == ["test:1", "example.com/app:latest"]
    assert second.repo_tags == []
    assert [(la.digest, la.diff_id, la.media_type) for la in first.layers] == [
        (sha(LAYER1), sha(LAYER1), LAYER_TAR), (sha(LAYER2_GZ), sha(LAYER2), LAYER_GZIP)]
    assert first.layers[1].size == len(LAYER2_GZ)
    assert [la.digest for la in second.layers] == [sha(LAYER1)]
    assert first.config["config"]["Cmd"] == ["sh"]
    manifest = blobs.read_json(first.manifest_digest)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["digest"] == first.id
    assert [la["digest"] for la in manifest["layers"]] == [sha(LAYER1), sha(LAYER2_GZ)]
    assert stored(blobs) == {sha(LAYER1), sha(LAYER2_GZ), sha(CONFIG), sha(CONFIG_B),
                             first.manifest_digest, second.manifest_digest}
    # The imported layers unpack and stack as overlay lowerdirs would.
    layers = LayerStore(tmp_path / "layers", blobs)
    top = layers.ensure(first.layers[1], None)
    assert os.stat(top / "a", follow_symlinks=False).st_rdev == os.makedev(0, 0)
    assert (top / "d" / "new").read_bytes() == b"new"


def test_gzipped_outer_archive(blobs: BlobStore):
    images = import_archive(io.BytesIO(gzip.compress(tar_of(docker_archive()))), blobs)
    assert images[0].id == sha(CONFIG)


def test_oci_layout(blobs: BlobStore):
    members, manifest = oci_layout()
    images = import_archive(io.BytesIO(tar_of(members)), blobs)
    assert len(images) == 1
    image = images[0]
    assert image.id == sha(CONFIG)
    assert image.repo_tags == ["example.com/oci:v2"]
    assert [la.diff_id for la in image.layers] == [sha(LAYER1), sha(LAYER2)]
    assert [la.digest for la in image.layers] == [sha(LAYER1), sha(LAYER2_GZ)]
    assert stored(blobs) == {sha(LAYER1), sha(LAYER2_GZ), sha(CONFIG), image.manifest_digest}


def test_export_then_import_round_trips(blobs: BlobStore, tmp_path: Path):
    images = import_archive(io.BytesIO(tar_of(docker_archive())), blobs)
    out = io.BytesIO()
    export_docker_archive([(images[0], ["test:1"]), (images[1], [])], blobs, out)
    other = BlobStore(tmp_path / "other")
    again = import_archive(io.BytesIO(out.getvalue()), other)
    assert [i.id for i in again] == [i.id for i in images]
    assert again[0].repo_tags == ["test:1"]
    assert [la.diff_id for la in again[0].layers] == [la.diff_id for la in images[0].layers]
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        names = tf.getnames()
    assert "manifest.json" in names and "repositories" in names


def bad_config_diff() -> bytes:
    return config_for(LAYER1, LAYER1)


BROKEN = {
    "wrong_diff_id": (docker_archive(**{f"{sha(CONFIG)[7:]}.json": bad_config_diff()}),
                      "diff_id mismatch"),
    "missing_layer": (docker_archive(**{"l2/layer.tar": None}), "missing from the archive"),
    "manifest_not_json": (docker_archive(**{"manifest.json": b"{nope"}), "not valid JSON"),
    "manifest_huge": (docker_archive(**{"manifest.json": b" " * (5 << 20)}),
                      "unexpected large member 'manifest.json'"),
    "manifest_wrong_shape": (docker_archive(**{"manifest.json": b'{"Config": 1}'}),
                             "manifest.json must be a non-empty list"),
    "manifest_missing_layers": (docker_archive(**{"manifest.json": json.dumps(
        [{"Config": f"{sha(CONFIG)[7:]}.json"}]).encode()}), "has no 'Layers'"),
    "traversal_member": (docker_archive(**{"../evil": b"x"}), "contains '..'"),
    "absolute_member": (docker_archive(**{"/etc/evil": b"x"}), "absolute"),
    "traversal_layer_path": (docker_archive(**{"manifest.json": json.dumps([
        {"Config": f"{sha(CONFIG)[7:]}.json", "Layers": ["../../l1/layer.tar", "x"]}]).encode()}),
        "escapes the archive"),
    "symlink_out": (docker_archive(**{"l3/layer.tar": "../../../etc/passwd"}), "contains '..'"),
    "bad_tag": (docker_archive(**{"manifest.json": json.dumps([
        {"Config": f"{sha(CONFIG_B)[7:]}.json", "RepoTags": ["UPPER:case"],
         "Layers": ["l1/layer.tar"]}]).encode()}), "invalid reference format"),
    "not_an_image": ({"hello.txt": b"hi"}, "neither a docker archive"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_archives(blobs: BlobStore, case: str):
    members, message = BROKEN[case]
    with pytest.raises(InvalidArgument, match=message):
        import_archive(io.BytesIO(tar_of(members)), blobs)
    assert stored(blobs) == set()


def test_oci_blob_not_matching_its_name(blobs: BlobStore):
    members, manifest = oci_layout()
    members[f"blobs/sha256/{sha(CONFIG)[7:]}"] = CONFIG + b" "
    with pytest.raises(UnsafeContent, match="does not match its content"):
        import_archive(io.BytesIO(tar_of(members)), blobs)
    assert stored(blobs) == set()


def test_oci_wrong_diff_id(blobs: BlobStore):
    members, _ = oci_layout(config=bad_config_diff())
    with pytest.raises(UnsafeContent, match="layer 1 .*diff_id mismatch"):
        import_archive(io.BytesIO(tar_of(members)), blobs)
    assert stored(blobs) == set()


def test_truncated_archive(blobs: BlobStore):
    data = tar_of(docker_archive())
    with pytest.raises(UnsafeContent, match="corrupt image archive"):
        import_archive(io.BytesIO(data[: len(data) // 2 + 100]), blobs)
    assert stored(blobs) == set()


def test_failed_import_keeps_existing_blobs(blobs: BlobStore):
    digest, _ = blobs.put_bytes(LAYER1)
    members, message = BROKEN["wrong_diff_id"]
    with pytest.raises(UnsafeContent, match=message):
        import_archive(io.BytesIO(tar_of(members)), blobs)
    assert stored(blobs) == {digest}


def test_gzip_bomb_layer_is_bounded(blobs: BlobStore):
    bomb_tar = tar_of({"zeros": bytes(8 << 20)})
    bomb = gzip.compress(bomb_tar, mtime=0)
    config = config_for(bomb_tar)
    members = {"l/layer.tar": bomb, "c.json": config, "manifest.json": json.dumps(
        [{"Config": "c.json", "Layers": ["l/layer.tar"]}]).encode()}
    with pytest.raises(UnsafeContent, match="size bound"):
        import_archive(io.BytesIO(tar_of(members)), blobs,
                       limits=ArchiveLimits(max_total_bytes=1 << 20))
    assert stored(blobs) == set()
