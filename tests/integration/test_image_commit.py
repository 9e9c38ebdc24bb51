"""Committing a container's overlayfs upper dir as a layer, and a layer as a new image."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import socket
import stat
import struct
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.errors import InvalidArgument, Unsupported
from berth.image.archive import LAYER_GZIP, LAYER_TAR
from berth.image.base import build_busybox_image
from berth.image.blobs import BlobStore
from berth.image.changes import parse_changes
from berth.image.commit import CommitLimits, commit_image, commit_layer
from berth.image.layers import LayerStore
from berth.image.types import LayerRef
from berth.runtime.base import IdMapping

pytestmark = pytest.mark.integration

MTIME = 1_600_000_000
BASE = 1_000_000_000
CAPS_V2 = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)  # cap_net_raw, effective


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (overlay mounts, chown, trusted xattrs)")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def lower_layer(blobs: BlobStore) -> LayerRef:
    """A small base layer: files, a dir to replace, a dir to chmod, a file to hard-link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in [("d/", None), ("dir2/", None), ("a", b"a"), ("b", b"b"),
                           ("keep", b"keep"), ("d/x", b"x"), ("d/y", b"y"), ("dir2/z", b"z")]:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime, info.mode = MTIME, 0o755 if data is None else 0o644
            if data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    digest, size = blobs.put_bytes(buf.getvalue())
    return LayerRef(digest, digest, size, LAYER_TAR)


@contextlib.contextmanager
def overlay(lowers: list[Path], target: Path, upper: Path | None = None,
            work: Path | None = None) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    opts = "lowerdir=" + ":".join(map(str, lowers))
    if upper is not None:
        opts += f",upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """What a tree looks like from inside: kinds, modes, owners, mtimes, contents."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            st = p.lstat()
            if stat.S_ISREG(st.st_mode):
                what: Any = p.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            else:
                what = None
            out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                             st.st_uid, st.st_gid, int(st.st_mtime), what)
    return out


def members(blobs: BlobStore, layer: LayerRef) -> dict[str, tarfile.TarInfo]:
    with blobs.open(layer.digest) as f, tarfile.open(fileobj=f, mode="r|*") as tf:
        return {m.name: m for m in tf}


@pytest.fixture()
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def test_commit_overlay_changes_round_trip(blobs: BlobStore, tmp_path: Path) -> None:
    need_root()
    store = LayerStore(tmp_path / "layers", blobs)
    base = lower_layer(blobs)
    lower = store.ensure(base, None)
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    with overlay([lower], tmp_path / "merged", upper, work) as m:
        (m / "new.txt").write_bytes(b"new")
        with open(m / "a", "ab") as f:
            f.write(b" changed")
        (m / "b").unlink()  # a lower file deleted: a whiteout
        shutil.rmtree(m / "d")  # a lower dir replaced: an opaque dir
        (m / "d").mkdir()
        (m / "d" / "fresh").write_bytes(b"fresh")
        os.symlink("/etc/passwd", m / "out")  # never followed by the commit
        os.symlink("../../../../../etc", m / "up")
        (m / "h1").write_bytes(b"linked")
        os.link(m / "h1", m / "h2")
        os.link(m / "keep", m / "keep2")  # a hard link to a lower file
        os.mkfifo(m / "fifo")
        os.chmod(m / "dir2", 0o700)
        (m / "n1" / "n2").mkdir(parents=True)
        (m / "n1" / "n2" / "f").write_bytes(b"deep")
        os.chown(m / "n1" / "n2" / "f", 1000, 1000)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(m / "sock"))  # skipped: a socket is no part of an image
        sock.close()
        expected = snapshot(m)
    del expected["sock"]
    layer = commit_layer(upper, blobs, idmap=None)
    assert layer is not None and layer.media_type == LAYER_GZIP
    with blobs.open(layer.digest) as f:
        data = f.read()
    assert sha(data) == layer.digest and len(data) == layer.size
    assert sha(gzip.decompress(data)) == layer.diff_id
    names = members(blobs, layer)
    assert ".wh.b" in names and "d/.wh..wh..opq" in names and "sock" not in names
    assert names["out"].issym() and names["out"].linkname == "/etc/passwd"
    assert names["h2"].islnk() and names["h2"].linkname == "h1"
    assert names["keep2"].islnk() and names["keep2"].linkname == "keep"
    assert names["n1/n2/f"].uid == 1000 and names["n1/n2/f"].uname == ""
    # Deterministic: the same upper dir gives the same blob.
    again = commit_layer(upper, blobs, idmap=None)
    assert again == layer
    # Unpacked over the lower, the new layer shows what the container saw.
    top = store.ensure(layer, None)
    with overlay([top, lower], tmp_path / "check") as m:
        assert snapshot(m) == expected
        assert os.path.samefile(m / "h1", m / "h2")
        assert os.path.samefile(m / "keep", m / "keep2")
        assert not (m / "d" / "x").exists()


def test_commit_shifts_ids_and_keeps_caps(blobs: BlobStore, tmp_path: Path) -> None:
    need_root()
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "f").write_bytes(b"f")
    (upper / "ping").write_bytes(b"\x7fELF")
    os.mknod(upper / "gone", stat.S_IFCHR, os.makedev(0, 0))  # whiteouts: root-owned
    os.setxattr(upper / "etc", "user.overlay.opaque", b"y")  # a userxattr overlay's opaque dir
    for p in (upper / "etc", upper / "etc" / "f", upper / "ping"):
        os.chown(p, BASE + 5, BASE + 7)
    os.setxattr(upper / "ping", "security.capability", CAPS_V2)  # after chown, which clears it
    idmap = IdMapping(BASE)
    layer = commit_layer(upper, blobs, idmap=idmap)
    assert layer is not None
    names = members(blobs, layer)
    assert (names["etc/f"].uid, names["etc/f"].gid) == (5, 7)
    assert (names["etc"].uid, names["etc/.wh..wh..opq"].uid) == (5, 5)
    assert names[".wh.gone"].isreg()
    assert "SCHILY.xattr.security.capability" in names["ping"].pax_headers
    # Unpacked under the same mapping, the ids and the capability come back.
    out = LayerStore(tmp_path / "layers", blobs).ensure(layer, idmap)
    assert (out / "etc" / "f").stat().st_uid == BASE + 5
    assert os.getxattr(out / "ping", "security.capability") == CAPS_V2
    # A file owned by an id outside the mapping cannot be expressed in the layer.
    os.chown(upper / "etc" / "f", 0, 0)
    with pytest.raises(InvalidArgument, match="outside the container's user namespace"):
        commit_layer(upper, blobs, idmap=idmap)
    assert os.listdir(blobs.tmp_dir) == []


def test_commit_never_follows_symlinks(blobs: BlobStore, tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    os.symlink("/etc", upper / "etc")
    os.symlink("/etc/hostname", upper / "hostname")
    layer = commit_layer(upper, blobs, idmap=None)
    assert layer is not None
    names = members(blobs, layer)
    assert sorted(names) == ["etc", "hostname"]
    assert all(m.issym() and m.size == 0 for m in names.values())
    (upper / ".wh.fake").write_bytes(b"")  # would read back as a deletion of "fake"
    with pytest.raises(InvalidArgument, match="reserve the .wh. prefix"):
        commit_layer(upper, blobs, idmap=None)


def test_commit_empty_and_limits(blobs: BlobStore, tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    assert commit_layer(upper, blobs, idmap=None) is None
    for i in range(3):
        (upper / f"f{i}").write_bytes(b"0123456789")
    with pytest.raises(InvalidArgument, match="exceed 2 files"):
        commit_layer(upper, blobs, idmap=None, limits=CommitLimits(max_entries=2))
    with pytest.raises(InvalidArgument, match="exceed 25 bytes"):
        commit_layer(upper, blobs, idmap=None, limits=CommitLimits(max_bytes=25))
    (upper / "a" / "b").mkdir(parents=True)
    with pytest.raises(InvalidArgument, match="deeper than 1"):
        commit_layer(upper, blobs, idmap=None, limits=CommitLimits(max_depth=1))
    assert os.listdir(blobs.tmp_dir) == []
    assert list(blobs.iter_digests()) == []


def test_commit_image(blobs: BlobStore, tmp_path: Path) -> None:
    base = build_busybox_image(blobs, Path("/bin/busybox"))
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "hello").write_bytes(b"hi")
    layer = commit_layer(upper, blobs, idmap=None)
    assert layer is not None
    changes = parse_changes(['ENTRYPOINT ["/bin/echo"]', "ENV A=1 B=2", "LABEL x=y",
                             "WORKDIR app", "EXPOSE 80"])
    image = commit_image(base, layer, blobs, changes=changes, author="me", comment="why",
                         created="2024-01-02T03:04:05Z", created_by="sh -c true")
    cfg = image.config
    assert image.id == sha(blobs.read_bytes(image.id))
    assert cfg["rootfs"]["diff_ids"] == [base.layers[0].diff_id, layer.diff_id]
    assert image.layers == [*base.layers, layer]
    assert cfg["created"] == "2024-01-02T03:04:05Z" and cfg["author"] == "me"
    assert cfg["history"][-1] == {"created": "2024-01-02T03:04:05Z", "created_by": "sh -c true",
                                  "author": "me", "comment": "why"}
    run = cfg["config"]
    assert run["Entrypoint"] == ["/bin/echo"] and "Cmd" not in run  # ENTRYPOINT resets CMD
    assert run["Env"][0].startswith("PATH=") and run["Env"][1:] == ["A=1", "B=2"]
    assert run["WorkingDir"] == "/app" and run["Labels"] == {"x": "y"}
    assert run["ExposedPorts"] == {"80/tcp": {}}
    manifest = blobs.read_json(image.manifest_digest)
    assert manifest["config"]["digest"] == image.id
    assert [la["digest"] for la in manifest["layers"]] == [base.layers[0].digest, layer.digest]
    # No filesystem change: Docker's rule, no new layer but an empty_layer history entry.
    same = commit_image(base, None, blobs, changes={}, created="2024-01-02T03:04:05Z")
    assert same.layers == base.layers and same.id != base.id
    assert same.config["history"][-1]["empty_layer"] is True
    assert same.config["config"] == base.config["config"]


def test_parse_changes_forms() -> None:
    got = parse_changes([
        'CMD ["sh", "-c", "echo hi"]', "entrypoint /bin/run --flag", 'ENV A="hello world" B=c',
        "ENV LEGACY some value", 'LABEL "com.example.x"="1 2" y=', "EXPOSE 80 53/udp 8000-8002",
        "USER 1000:100", "WORKDIR /srv", "WORKDIR data", 'VOLUME ["/v1", "/v2"]', "VOLUME /v3",
        "STOPSIGNAL SIGTERM", "", "   "])
    assert got == {
        "Cmd": ["sh", "-c", "echo hi"], "Entrypoint": ["/bin/sh", "-c", "/bin/run --flag"],
        "Env": ["A=hello world", "B=c", "LEGACY=some value"],
        "Labels": {"com.example.x": "1 2", "y": ""},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {},
                         "8002/tcp": {}},
        "User": "1000:100", "WorkingDir": "/srv/data",
        "Volumes": {"/v1": {}, "/v2": {}, "/v3": {}}, "StopSignal": "SIGTERM"}
    assert parse_changes(["CMD []"]) == {"Cmd": []}
    assert parse_changes(["CMD [not json"]) == {"Cmd": ["/bin/sh", "-c", "[not json"]}
    assert parse_changes(["STOPSIGNAL 9"]) == {"StopSignal": "9"}


@pytest.mark.parametrize(("line", "message"), [
    ("RUN rm -rf /", "RUN is not supported"), ("FROM busybox", "FROM is not supported"),
    ("HEALTHCHECK NONE", "HEALTHCHECK is not supported"), ("CMD", "CMD needs an argument"),
    ("EXPOSE 70000", "invalid port range"), ("EXPOSE 80/foo", "invalid port"),
    ("EXPOSE 90-80", "invalid port range"), ("ENV =x", "not KEY=VALUE"),
    ("ENV ONLYKEY", "expected KEY=VALUE"), ("LABEL a='unterminated", "LABEL"),
    ("USER a b", "exactly one"), ("STOPSIGNAL 1x", "invalid signal"),
])
def test_parse_changes_refuses(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_changes([line])


def test_changes_refused_by_commit_image(blobs: BlobStore) -> None:
    base = build_busybox_image(blobs, Path("/bin/busybox"))
    with pytest.raises(InvalidArgument, match="unsupported config changes: Hostname"):
        commit_image(base, None, blobs, changes={"Hostname": "x"})


def test_commit_refuses_redirected_dirs(blobs: BlobStore, tmp_path: Path) -> None:
    need_root()
    upper = tmp_path / "upper"
    (upper / "moved").mkdir(parents=True)
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/orig")
    with pytest.raises(Unsupported, match="redirect_dir"):
        commit_layer(upper, blobs, idmap=None)
    assert os.listdir(blobs.tmp_dir) == []
