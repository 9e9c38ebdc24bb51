"""The pure parts of a container's files: docker cp's path rules, Go's file modes, resolving
inside a root (openat2 and the fallback), the upload check, the tar writer and the diff."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.errors import InvalidArgument, UnsafeContent
from berth.runtime.base import IdMapping
from berth.service import fsextract, inroot
from berth.service.containerfs import CopyPath
from berth.service.fsdiff import ADDED, MODIFIED, changes
from berth.service.fstar import TreeWriter, go_mode, go_time, open_tar


@pytest.mark.parametrize(("asked", "norm", "follow", "name"), [
    ("/etc/passwd", "/etc/passwd", False, "passwd"),
    ("etc/../etc/passwd", "/etc/passwd", False, "passwd"),
    ("/etc/", "/etc", True, "etc"),
    ("/etc/.", "/etc", True, "."),
    ("/", "/", True, "/"),
    ("/../..", "/", True, "/"),
    ("/a/b/..", "/a", False, "a"),
])
def test_copy_path(asked: str, norm: str, follow: bool, name: str) -> None:
    p = CopyPath.parse(asked)
    assert (p.norm, p.follow, p.name) == (norm, follow, name)


@pytest.mark.parametrize("bad", ["", "a\x00b", "/" + "x" * 5000])
def test_copy_path_refuses(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        CopyPath.parse(bad)


def test_go_mode_and_time() -> None:
    assert go_mode(stat.S_IFREG | 0o644) == 0o644
    assert go_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755
    assert go_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert go_mode(stat.S_IFDIR | stat.S_ISVTX | 0o777) == (1 << 31) | (1 << 20) | 0o777
    assert go_time(1_600_000_000 * 10**9) == "2020-09-13T12:26:40Z"
    assert go_time(1_600_000_000 * 10**9 + 5_000) == "2020-09-13T12:26:40.000005Z"


# -- resolving inside a root ------------------------------------------------------------------

@pytest.fixture(params=["openat2", "fallback"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "fallback":
        monkeypatch.setattr(inroot, "_openat2_works", False)
    yield request.param


@pytest.fixture
def root(tmp_path: Path) -> Iterator[int]:
    """A little tree whose symlinks point out of it (absolutely and with ..)."""
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "inside").write_text("inside\n")
    (tmp_path / "outside").write_text("host\n")
    os.symlink("/etc", r / "abs")
    os.symlink("../../..", r / "up")
    os.symlink(str(tmp_path / "outside"), r / "hostfile")
    fd = os.open(r, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def _read(root_fd: int, path: str) -> str:
    fd = inroot.open_in_root(root_fd, path, os.O_RDONLY)
    with os.fdopen(fd) as f:
        return f.read()


def test_resolving_stays_inside_the_root(resolver: str, root: int) -> None:
    assert _read(root, "/abs/inside") == "inside\n"
    assert _read(root, "/up/etc/inside") == "inside\n"
    assert _read(root, "../../etc/inside") == "inside\n"
    with pytest.raises(FileNotFoundError):
        _read(root, "/hostfile")  # the host's file is never reached
    assert inroot.resolved_path(root, "/abs/inside") == "/etc/inside"
    assert inroot.resolved_path(root, "/up") == "/"


# -- the upload check -------------------------------------------------------------------------

def _tar(*entries: tarfile.TarInfo, data: bytes = b"") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info in entries:
            tf.addfile(info, io.BytesIO(data[:info.size]) if info.isreg() else None)
    buf.seek(0)
    return buf


def _entry(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def test_check_archive_accepts_a_plain_tree() -> None:
    tar = _tar(_entry("d", tarfile.DIRTYPE), _entry("d/f", size=2),
               _entry("d/l", tarfile.SYMTYPE, linkname="/etc/passwd"),
               _entry("d/h", tarfile.LNKTYPE, linkname="d/f"), data=b"hi")
    assert fsextract.check_archive(tar) == 4


@pytest.mark.parametrize("entries", [
    [_entry("../x")],
    [_entry("a/../../x")],
    [_entry("/etc/passwd")],
    [_entry("l", tarfile.SYMTYPE, linkname="/etc"), _entry("l/passwd")],
    [_entry("d", tarfile.DIRTYPE), _entry("d/l", tarfile.SYMTYPE, linkname=".."),
     _entry("d/l/x", tarfile.DIRTYPE)],
    [_entry("null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
    [_entry("h", tarfile.LNKTYPE, linkname="etc/shadow")],
    [_entry(".wh.passwd")],
], ids=["dotdot", "inner-dotdot", "absolute", "through-symlink", "through-nested-symlink",
        "device", "hardlink-outside", "whiteout"])
def test_check_archive_refuses_hostile_entries(entries: list[tarfile.TarInfo]) -> None:
    with pytest.raises(UnsafeContent):
        fsextract.check_archive(_tar(*entries))


def test_check_archive_refuses_garbage() -> None:
    with pytest.raises(UnsafeContent):
        fsextract.check_archive(io.BytesIO(b"this is not a tar archive" * 40))


# -- the tar writer and the diff ------------------------------------------------------------

def test_tree_writer(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"data")
    os.link(tmp_path / "d" / "f", tmp_path / "d" / "g")
    os.symlink("/nowhere", tmp_path / "d" / "l")
    out = io.BytesIO()
    tf = open_tar(out)
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        me = os.getuid()
        TreeWriter(tf, IdMapping(me, 65536) if me else None).add(fd, "d", "d")
    finally:
        os.close(fd)
    tf.close()
    out.seek(0)
    with tarfile.open(fileobj=out) as got:
        members = {m.name: m for m in got}
        assert got.extractfile(members["d/f"]).read() == b"data"  # type: ignore[union-attr]
    assert sorted(members) == ["d", "d/f", "d/g", "d/l"]
    assert members["d/g"].islnk() and members["d/g"].linkname == "d/f"
    assert members["d/l"].issym() and members["d/l"].linkname == "/nowhere"
    assert members["d/f"].uid == 0  # shifted back into the container's range


def test_changes_added_and_modified(tmp_path: Path) -> None:
    layer, upper = tmp_path / "layer", tmp_path / "upper"
    for base in (layer, upper):
        (base / "etc").mkdir(parents=True)
    (layer / "etc" / "passwd").write_text("old")
    (upper / "etc" / "passwd").write_text("new")
    (upper / "new").write_text("x")
    os.utime(upper / "etc", ns=(0, os.stat(layer / "etc").st_mtime_ns))
    found = changes(upper, [layer])
    assert {"Path": "/etc/passwd", "Kind": MODIFIED} in found
    assert {"Path": "/new", "Kind": ADDED} in found
    assert not any(c["Path"] == "/etc" for c in found)  # only a parent of a change
    assert changes(tmp_path / "never-started", [layer]) == []
