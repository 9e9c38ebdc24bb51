"""The busybox base image: deterministic, and a usable rootfs once unpacked."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from berth.errors import InvalidArgument
from berth.fsutil import read_file_in_root
from berth.image.base import build_busybox_image
from berth.image.blobs import BlobStore
from berth.image.layers import LayerStore
from berth.runtime.base import IdMapping

pytestmark = pytest.mark.integration

BUSYBOX = Path("/bin/busybox")
if not BUSYBOX.exists():
    pytest.skip("busybox-static is not installed", allow_module_level=True)


def test_same_image_twice(tmp_path: Path):
    a = build_busybox_image(BlobStore(tmp_path / "a"))
    b = build_busybox_image(BlobStore(tmp_path / "b"))
    assert a.id == b.id
    assert a.manifest_digest == b.manifest_digest
    assert a.layers == b.layers


def test_image_contents(tmp_path: Path):
    blobs = BlobStore(tmp_path / "blobs")
    image = build_busybox_image(blobs)
    assert blobs.has(image.id) and blobs.has(image.manifest_digest)
    assert blobs.read_json(image.id) == image.config
    assert image.config["os"] == "linux"
    assert image.config["config"]["Cmd"] == ["sh"]
    assert image.config["rootfs"]["diff_ids"] == [image.layers[0].diff_id]
    assert blobs.read_json(image.manifest_digest)["config"]["digest"] == image.id

    layers = LayerStore(tmp_path / "layers", blobs)
    root = layers.ensure(image.layers[0], IdMapping(100000))
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert (root / "bin" / "busybox").read_bytes() == BUSYBOX.read_bytes()
    assert os.lstat(root / "bin" / "busybox").st_uid == 100000
    passwd = read_file_in_root(root, "/etc/passwd")
    assert passwd is not None and passwd.startswith(b"root:x:0:0:root:/root:/bin/sh\n")
    assert b"user:x:1000:1000::/home/user:/bin/sh" in passwd
    assert b"nobody:x:65534:65534:" in passwd
    group = read_file_in_root(root, "/etc/group")
    assert group is not None and b"nogroup:x:65534:" in group
    for empty in ("hosts", "hostname", "resolv.conf"):
        assert (root / "etc" / empty).read_bytes() == b""
    assert stat.S_IMODE(os.lstat(root / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.lstat(root / "root").st_mode) == 0o700
    assert os.lstat(root / "home" / "user").st_uid == 101000
    for d in ("proc", "sys", "dev", "var", "usr/bin", "usr/sbin", "sbin"):
        assert (root / d).is_dir()
    assert os.readlink(root / "usr" / "bin" / "env") == "/bin/busybox"


def test_dynamic_busybox_is_refused(tmp_path: Path):
    fake = tmp_path / "busybox"
    shutil.copy("/bin/ls", fake)  # a dynamically linked binary
    with pytest.raises(InvalidArgument, match="dynamically linked"):
        build_busybox_image(BlobStore(tmp_path / "blobs"), fake)
