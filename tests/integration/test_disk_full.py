"""A full disk under Berth's root: uploads, imports and builds that do not fit are refused
with one clear message (507, naming no host path), the CLI shows berthd's answer rather than
a broken pipe, and nothing of the refused work stays behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon, destroy, leaks, make_dirs, refused
from tests.integration.dockertools import docker
from tests.integration.test_archive_import import config_for, tar_of

pytestmark = pytest.mark.integration
SIZE_MB = 24
FULL = "no space left on device: Berth's storage on this host is full"


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def stored(d: Daemon) -> set[str]:
    """Every file under the root but the store's own (the database changes as it works)."""
    return {str(p.relative_to(d.root)) for p in d.root.rglob("*")
            if p.is_file() and not p.name.startswith("berth.db")}


@pytest.fixture
def small() -> Iterator[Daemon]:
    """A berthd whose root is a tmpfs of SIZE_MB, with busybox in it (and unpacked)."""
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (mounts)")
    for tool in ("runc", "conmon"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed on this host (scripts/setup.sh installs it)")
    root, run = make_dirs()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0711", "berth-test",
                    str(root)], check=True)
    d = Daemon(root, run)
    try:
        d.start()
        d.cli("image", "build-base", "busybox")
        d.cli("run", "--rm", "busybox", "true")  # its layer unpacked
        yield d
    finally:
        d.remove_all()
        d.stop()
        left = [x for x in leaks(d) if x != f"mount: {root}"]  # the tmpfs itself
        subprocess.run(["umount", str(root)], check=True)
        if not left:
            destroy(d)
        assert not left, f"left behind by the tests: {left}"


def test_an_upload_that_does_not_fit(small: Daemon, tmp_path: Path) -> None:
    d = small
    before = stored(d)
    junk = tmp_path / "big.tar"
    with open(junk, "wb") as f:
        f.truncate(SIZE_MB * 1024 * 1024 + (1 << 20))  # more than the whole disk
    line = refused(d.cli("image", "import", str(junk), check=False), FULL, "system prune")
    assert str(d.root) not in line  # no host path for a tenant to see
    res = docker(d, "load", "-i", str(junk), check=False)
    assert res.returncode == 1 and FULL in res.stderr, res.stderr
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nCOPY big.tar /\n")
    shutil.copy(junk, context / "big.tar")
    refused(d.cli("build", "-t", "toobig", str(context), check=False), FULL)
    assert stored(d) == before  # no spool, blob or layer left of any of them
    assert [i["tags"] for i in d.client.images.list()] == [["busybox:latest"]]


def unpacked(d: Daemon) -> set[str]:
    """The layer store's entries (layers/<id mapping>/<layer>), but its lock files."""
    return {p.name for p in (d.root / "layers").glob("*/*") if not p.name.endswith(".lock")}


def archive_of(path: Path, tag: str, size: int) -> Path:
    """A docker-archive of one layer holding ``size`` random bytes."""
    layer = tar_of({"fat": os.urandom(size)})
    path.write_bytes(tar_of({
        "layer.tar": layer, "config.json": config_for(layer, cmd="true"),
        "manifest.json": json.dumps([{"Config": "config.json", "RepoTags": [tag],
                                      "Layers": ["layer.tar"]}]).encode()}))
    return path


def test_work_that_fills_the_disk_part_way(small: Daemon, tmp_path: Path) -> None:
    d = small
    before, room = stored(d), free_bytes(d.root)
    # the archive fits; it and its blob do not
    refused(d.cli("image", "import", str(archive_of(tmp_path / "a.tar", "fat:1",
                                                     room // 10 * 6)), check=False), FULL)
    assert stored(d) == before
    assert free_bytes(d.root) >= room - (1 << 20)  # all of it back (the database aside)
    assert [i["tags"] for i in d.client.images.list()] == [["busybox:latest"]]
    # two images that fit, and the first's unpacked layer; the second's layer does not
    for name in ("one", "two"):
        d.cli("image", "import", str(archive_of(tmp_path / f"{name}.tar", f"{name}:1",
                                                room // 10 * 3)))
    # (no program in them: a start that gets as far as looking for one has its layers)
    ran = d.cli("run", "--name", "first", "one:1", check=False)
    assert "executable file not found" in ran.stderr, ran.stderr
    layers = unpacked(d)
    refused(d.cli("run", "--name", "second", "two:1", check=False), FULL)
    assert unpacked(d) == layers  # no half-unpacked layer kept
    d.cli("rm", "-f", "first", "second")
    # and berthd goes on
    assert d.cli("run", "--rm", "busybox", "echo", "still here").stdout == "still here\n"
