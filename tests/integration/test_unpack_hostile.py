"""Layer extraction against hostile tars, and the layer store's all-or-nothing behaviour."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import struct
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from berth.errors import UnsafeContent
from berth.image import layers as layers_mod
from berth.image.blobs import BlobStore
from berth.image.layers import LayerStore
from berth.image.types import LayerRef
from berth.image.unpack import UnpackLimits, unpack_layer
from berth.runtime.base import IdMapping

pytestmark = pytest.mark.integration

MTIME = 1_600_000_000

if os.geteuid() != 0:
    pytest.skip("needs root (mknod, chown, trusted xattrs)", allow_module_level=True)


# -- building tars ------------------------------------------------------------------------------

def E(name: str, kind: str = "file", data: bytes = b"", *, mode: int | None = None,
      link: str = "", uid: int = 0, gid: int = 0, pax: dict[str, str] | None = None,
      dev: tuple[int, int] = (0, 0)) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
                 "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
                 "fifo": tarfile.FIFOTYPE}[kind]
    info.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    info.linkname, info.uid, info.gid, info.mtime = link, uid, gid, MTIME
    info.devmajor, info.devminor = dev
    if pax:
        info.pax_headers = dict(pax)
    if kind == "file":
        info.size = len(data)
        return info, data
    return info, None


def member_bytes(info: tarfile.TarInfo, data: bytes | None) -> bytes:
    out = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if data:
        out += data + bytes(-len(data) % 512)
    return out


def raw_pax_file(name: str, data: bytes, records: dict[str, bytes]) -> bytes:
    """A file with a pax header holding raw (non-UTF-8) bytes, as GNU tar and Docker write."""
    body = b""
    for key, value in records.items():
        rest = b" " + key.encode() + b"=" + value + b"\n"
        n = len(rest) + 1
        while len(str(n).encode() + rest) != n:
            n += 1
        body += str(n).encode() + rest
    pax = tarfile.TarInfo("PaxHeaders/" + name)
    pax.type, pax.size = tarfile.XHDTYPE, len(body)
    out = pax.tobuf(tarfile.USTAR_FORMAT) + body + bytes(-len(body) % 512)
    info, _ = E(name, data=data, mode=0o755)
    return out + info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


def tar_bytes(*entries: tuple[tarfile.TarInfo, bytes | None] | bytes) -> bytes:
    """A tar of the entries (or of raw member bytes), with its end-of-archive blocks."""
    chunks = [e if isinstance(e, bytes) else member_bytes(*e) for e in entries]
    return b"".join(chunks) + bytes(1024)


# -- watching what must not change --------------------------------------------------------------

def tree_state(top: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Names, types, modes, owners, contents and link targets of everything under top."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if skip is not None and Path(dirpath) == skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if skip is not None and p == skip:
                continue
            st = os.lstat(p)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            state[str(p.relative_to(top))] = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink,
                                              st.st_mtime_ns if not stat.S_ISDIR(st.st_mode)
                                              else None, extra)
    return state


@pytest.fixture()
def sandbox(tmp_path: Path):
    """A target dir with a victim dir beside it: files, a symlink, odd modes."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret").write_text("do not touch")
    (victim / "x").write_text("original x")
    (victim / "ro").mkdir(mode=0o555)
    os.chmod(victim / "ro", 0o555)
    (victim / "exe").write_bytes(b"#!/bin/sh\n")
    os.chmod(victim / "exe", 0o4755)
    os.symlink("secret", victim / "link")
    os.chown(victim / "x", 1234, 5678)
    target = tmp_path / "target"
    target.mkdir()
    with open("/etc/passwd", "rb") as f:
        passwd = f.read()
    before = tree_state(tmp_path, skip=target)
    yield target
    assert tree_state(tmp_path, skip=target) == before, "something outside target changed"
    with open("/etc/passwd", "rb") as f:
        assert f.read() == passwd


def unpack(data: bytes, target: Path, idmap: IdMapping | None = None, **limits: int) -> str:
    return unpack_layer(io.BytesIO(data), target, idmap=idmap, limits=UnpackLimits(**limits))


# -- hostile input ------------------------------------------------------------------------------

VICTIM_ABS = "{victim}/x"

HOSTILE = {
    "dotdot": [E("../victim/x", data=b"pwned")],
    "dotdot_inner": [E("a/../../victim/x", data=b"pwned")],
    "absolute": [E("/victim/x", data=b"pwned")],
    "absolute_real": [E(VICTIM_ABS, data=b"pwned")],
    "symlink_parent": [E("evil", "sym", link="../victim"), E("evil/x", data=b"pwned")],
    "symlink_parent_inside": [E("d", "dir"), E("evil", "sym", link="d"),
                              E("evil/x", data=b"through an inner link")],
    "symlink_root": [E("evil", "sym", link="/"), E("evil{victim}/pwned", data=b"pwned")],
    "symlink_dir_entry": [E("evil", "sym", link="../victim"), E("evil/newdir", "dir")],
    "symlink_deep": [E("a/b", "dir"), E("a/b/up", "sym", link="../../.."),
                     E("a/b/up/victim/x", data=b"pwned")],
    "hardlink_dotdot": [E("h", "hard", link="../victim/secret")],
    "hardlink_abs": [E("h", "hard", link="/etc/passwd")],
    "hardlink_via_symlink": [E("evil", "sym", link="../victim"),
                             E("h", "hard", link="evil/secret")],
    "hardlink_to_symlink": [E("s", "sym", link="../victim/secret"), E("h", "hard", link="s"),
                            E("h", data=b"pwned")],
    "hardlink_missing": [E("h", "hard", link="nothing")],
    "hardlink_dir": [E("d", "dir"), E("h", "hard", link="d")],
    "whiteout_escape": [E(".wh.../victim")],
    "whiteout_dotdot": [E(".wh...")],
    "whiteout_parent_dotdot": [E("../.wh.victim")],
    "whiteout_meta": [E(".wh..wh.plnk")],
    "whiteout_through_symlink": [E("evil", "sym", link="../victim"), E("evil/.wh.secret")],
    "opaque_through_symlink": [E("evil", "sym", link="../victim"), E("evil/.wh..wh..opq")],
    "chardev": [E("dev/null", "chr", dev=(1, 3))],
    "blockdev": [E("sda", "blk", dev=(8, 0))],
    "whiteout_style_chardev": [E("gone", "chr", dev=(0, 0))],
    "nul_in_path": [E("a" * 10, pax={"path": "ok\x00../victim/x"}, data=b"pwned")],
    "long_component": [E("a" * 256, data=b"x")],
    "idmap_out_of_range": [E("f", data=b"x", uid=70000)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_entries_are_refused(sandbox: Path, case: str):
    entries = HOSTILE[case]
    victim = sandbox.parent / "victim"
    fixed = []
    for info, data in entries:
        info.name = info.name.replace("{victim}", str(victim))
        fixed.append((info, data))
    with pytest.raises(UnsafeContent):
        unpack(tar_bytes(*fixed), sandbox, idmap=IdMapping(100000))


def test_bad_entry_error_names_the_entry(sandbox: Path):
    with pytest.raises(UnsafeContent, match="dev/null"):
        unpack(tar_bytes(E("dev/null", "chr", dev=(1, 3))), sandbox)
    with pytest.raises(UnsafeContent, match=r"\.\./victim/x"):
        unpack(tar_bytes(E("../victim/x", data=b"pwned")), sandbox)


def test_gzip_bomb(sandbox: Path):
    bomb = gzip.compress(tar_bytes(E("zeros", data=bytes(64 << 20))), compresslevel=9)
    assert len(bomb) < 1 << 20
    with pytest.raises(UnsafeContent, match="max_total_bytes"):
        unpack(bomb, sandbox, max_total_bytes=1 << 20)


def test_many_files_exceeding_total(sandbox: Path):
    data = tar_bytes(*[E(f"f{i}", data=b"x" * 1000) for i in range(20)])
    with pytest.raises(UnsafeContent, match="max_total_bytes"):
        unpack(data, sandbox, max_total_bytes=10_000)


def test_huge_pax_header_is_bounded(sandbox: Path):
    big = tar_bytes(E("f", data=b"x", pax={"comment": "y" * (4 << 20)}))
    with pytest.raises(UnsafeContent, match="size bound"):
        unpack(big, sandbox)


def test_too_many_entries(sandbox: Path):
    data = tar_bytes(*[E(f"f{i}", data=b"x") for i in range(10)])
    with pytest.raises(UnsafeContent, match="max_entries"):
        unpack(data, sandbox, max_entries=5)


def test_too_deep(sandbox: Path):
    with pytest.raises(UnsafeContent, match="max_depth"):
        unpack(tar_bytes(E("/".join(["d"] * 10) + "/f", data=b"x")), sandbox, max_depth=8)


def test_path_too_long(sandbox: Path):
    with pytest.raises(UnsafeContent, match="max_path"):
        unpack(tar_bytes(E("d/" * 60 + "f", data=b"x")), sandbox, max_path=100)


def test_truncated_in_data(sandbox: Path):
    data = tar_bytes(E("a", data=b"x" * 5000), E("b", data=b"y" * 5000))
    with pytest.raises(UnsafeContent, match="corrupt layer"):
        unpack(data[:512 * 4], sandbox)


def test_truncated_at_header_boundary(sandbox: Path):
    data = tar_bytes(E("a", data=b"x" * 512), E("b", data=b"y" * 512))
    first = data.index(b"y" * 512) - 512 * 3  # somewhere inside b's headers
    cut = first - first % 512
    with pytest.raises(UnsafeContent, match="corrupt layer"):
        unpack(data[:cut], sandbox)


def test_garbage_header(sandbox: Path):
    data = bytearray(tar_bytes(E("a", data=b"x" * 512), E("b", data=b"y")))
    data[2048:2048 + 100] = b"\xff" * 100  # b's pax header block: bad checksum
    with pytest.raises(UnsafeContent, match="corrupt layer"):
        unpack(bytes(data), sandbox)


def test_corrupt_gzip(sandbox: Path):
    gz = bytearray(gzip.compress(tar_bytes(E("a", data=os.urandom(20000)))))
    gz[len(gz) // 2] ^= 0xFF
    with pytest.raises(UnsafeContent, match="corrupt layer"):
        unpack(bytes(gz), sandbox)


def test_truncated_gzip(sandbox: Path):
    gz = gzip.compress(tar_bytes(E("a", data=os.urandom(20000))))
    with pytest.raises(UnsafeContent, match="corrupt layer"):
        unpack(gz[: len(gz) - 100], sandbox)


def test_not_a_tar(sandbox: Path):
    with pytest.raises(UnsafeContent, match="corrupt layer"):
        unpack(b"hello, this is not a tar" * 100, sandbox)


def test_zstd_refused(sandbox: Path):
    with pytest.raises(UnsafeContent, match="zstd"):
        unpack(b"\x28\xb5\x2f\xfd" + b"\0" * 100, sandbox)


def test_replacing_a_symlink_never_writes_through_it(sandbox: Path):
    data = tar_bytes(E("evil", "sym", link="../victim/secret"), E("evil", data=b"new"),
                     E("d", "sym", link="../victim"), E("d", "dir"), E("d/x", data=b"inside"))
    unpack(data, sandbox)
    assert (sandbox / "evil").read_bytes() == b"new"
    assert not (sandbox / "evil").is_symlink()
    assert (sandbox / "d").is_dir() and not (sandbox / "d").is_symlink()
    assert (sandbox / "d" / "x").read_bytes() == b"inside"


# -- what a good layer becomes ------------------------------------------------------------------

def test_good_layer(sandbox: Path):
    # cap_setuid,cap_net_raw+ep: the 0x80 byte is not UTF-8, as in real images.
    caps = struct.pack("<IIIII", 0x02000001, (1 << 7) | (1 << 13), 0, 0, 0)
    data = tar_bytes(
        E("./", "dir", mode=0o755),
        E("ro", "dir", mode=0o555),
        E("ro/child", data=b"child"),
        E("ro/sub", "dir", mode=0o500),
        E("ro/sub/deep", data=b"deep"),
        E("bin/suid", data=b"#!", mode=0o4755),
        raw_pax_file("bin/ping", b"ping", {"SCHILY.xattr.security.capability": caps,
                                            "SCHILY.xattr.user.ignored": b"x"}),
        E("a", data=b"hello"),
        E("hl", "hard", link="a"),
        E("sl", "sym", link="/etc/passwd"),
        E("fifo", "fifo", mode=0o640),
        E("replace", "dir"),
        E("replace/inner", data=b"gone"),
        E("replace", data=b"now a file"),
        E("f2d", data=b"file"),
        E("f2d", "dir", mode=0o711),
    )
    diff_id = unpack(data, sandbox)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert stat.S_IMODE(os.lstat(sandbox / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.lstat(sandbox / "ro" / "sub").st_mode) == 0o500
    assert (sandbox / "ro" / "sub" / "deep").read_bytes() == b"deep"
    assert os.lstat(sandbox / "ro").st_mtime == MTIME
    assert stat.S_IMODE(os.lstat(sandbox / "bin/suid").st_mode) == 0o4755
    assert os.getxattr(sandbox / "bin/ping", "security.capability") == caps
    with pytest.raises(OSError):
        os.getxattr(sandbox / "bin/ping", "user.ignored")
    assert os.lstat(sandbox / "a").st_ino == os.lstat(sandbox / "hl").st_ino
    assert os.lstat(sandbox / "a").st_nlink == 2
    assert os.readlink(sandbox / "sl") == "/etc/passwd"
    assert stat.S_ISFIFO(os.lstat(sandbox / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(sandbox / "fifo").st_mode) == 0o640
    assert (sandbox / "replace").read_bytes() == b"now a file"
    assert (sandbox / "f2d").is_dir() and stat.S_IMODE(os.lstat(sandbox / "f2d").st_mode) == 0o711
    assert os.lstat(sandbox / "a").st_mtime == MTIME


def test_gzip_layer_diff_id_is_of_uncompressed_tar(sandbox: Path):
    data = tar_bytes(E("a", data=b"hello"))
    diff_id = unpack(gzip.compress(data), sandbox)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (sandbox / "a").read_bytes() == b"hello"


def test_hardlink_then_replace_keeps_original(sandbox: Path):
    unpack(tar_bytes(E("a", data=b"one"), E("b", "hard", link="a"), E("b", data=b"two")), sandbox)
    assert (sandbox / "a").read_bytes() == b"one"
    assert (sandbox / "b").read_bytes() == b"two"


def test_whiteouts(sandbox: Path):
    data = tar_bytes(E("d", "dir"), E("d/.wh..wh..opq"), E(".wh.a"), E("e/.wh.f"))
    unpack(data, sandbox)
    for p in (sandbox / "a", sandbox / "e" / "f"):
        st = os.lstat(p)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(sandbox / "d", "trusted.overlay.opaque") == b"y"
    assert not (sandbox / ".wh.a").exists()
    assert not (sandbox / "d" / ".wh..wh..opq").exists()


def test_idmap_shifts_ownership(sandbox: Path):
    data = tar_bytes(E("root", data=b"r"), E("user", data=b"u", uid=1000, gid=100),
                     E("d", "dir", uid=5, gid=6), E("l", "sym", link="root", uid=7, gid=8),
                     E("implicit/f", data=b"x", uid=1000, gid=1000))
    unpack(data, sandbox, idmap=IdMapping(200000, 65536))
    own = {n: (os.lstat(sandbox / n).st_uid, os.lstat(sandbox / n).st_gid)
           for n in ("root", "user", "d", "l", "implicit", "implicit/f")}
    assert own == {"root": (200000, 200000), "user": (201000, 200100), "d": (200005, 200006),
                   "l": (200007, 200008), "implicit": (200000, 200000),
                   "implicit/f": (201000, 201000)}


def test_no_idmap_keeps_ownership(sandbox: Path):
    unpack(tar_bytes(E("f", data=b"x", uid=1000, gid=1001)), sandbox)
    st = os.lstat(sandbox / "f")
    assert (st.st_uid, st.st_gid) == (1000, 1001)


def test_overlayfs_honours_whiteouts(tmp_path: Path):
    lower, upper, mnt = tmp_path / "lower", tmp_path / "upper", tmp_path / "mnt"
    mnt.mkdir()
    unpack(tar_bytes(E("a", data=b"a"), E("b", data=b"b"), E("d", "dir"),
                     E("d/inner", data=b"i")), lower)
    unpack(tar_bytes(E(".wh.a"), E("d", "dir"), E("d/.wh..wh..opq")), upper)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"ro,lowerdir={upper}:{lower}", str(mnt)], check=True)
    try:
        assert sorted(os.listdir(mnt)) == ["b", "d"]
        assert os.listdir(mnt / "d") == []
        assert (mnt / "b").read_bytes() == b"b"
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# -- the layer store ----------------------------------------------------------------------------

@pytest.fixture()
def store(tmp_path: Path) -> tuple[BlobStore, LayerStore]:
    blobs = BlobStore(tmp_path / "blobs")
    return blobs, LayerStore(tmp_path / "layers", blobs)


def add_layer(blobs: BlobStore, data: bytes) -> LayerRef:
    digest, size = blobs.put_bytes(data)
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    return LayerRef(digest, diff_id, size, "application/vnd.oci.image.layer.v1.tar")


def leftovers(layers_root: Path) -> list[str]:
    return sorted(str(p.relative_to(layers_root)) for p in layers_root.rglob("*")
                  if not p.name.endswith(".lock"))


def test_interrupted_unpack_leaves_no_layer(store, monkeypatch, tmp_path: Path):
    blobs, ls = store
    layer = add_layer(blobs, tar_bytes(E("ro", "dir", mode=0o555), E("ro/f", data=b"x")))
    real = layers_mod.unpack_layer

    def dies_midway(stream, target, **kw):
        (Path(target) / "half").write_text("half")
        raise RuntimeError("killed")

    monkeypatch.setattr(layers_mod, "unpack_layer", dies_midway)
    with pytest.raises(RuntimeError):
        ls.ensure(layer, None)
    assert ls.path(layer.diff_id, None) is None
    assert leftovers(tmp_path / "layers") == ["host"]
    monkeypatch.setattr(layers_mod, "unpack_layer", real)
    path = ls.ensure(layer, None)
    assert (path / "ro" / "f").read_bytes() == b"x"
    assert ls.path(layer.diff_id, None) == path
    assert not (path / "half").exists()


def test_crash_leftover_is_cleaned(store, tmp_path: Path):
    blobs, ls = store
    layer = add_layer(blobs, tar_bytes(E("f", data=b"x")))
    ls.ensure(layer, None)
    stale = tmp_path / "layers" / "host" / ".tmp-deadbeef-123"
    (stale / "ro").mkdir(parents=True)
    os.mknod(stale / "wh", stat.S_IFCHR, os.makedev(0, 0))
    os.chmod(stale / "ro", 0o555)
    ls.cleanup_incomplete()
    assert not stale.exists()
    assert ls.path(layer.diff_id, None) is not None


def test_diff_id_mismatch_is_refused(store, tmp_path: Path):
    blobs, ls = store
    layer = add_layer(blobs, tar_bytes(E("f", data=b"x")))
    wrong = LayerRef(layer.digest, "sha256:" + "0" * 64, layer.size, layer.media_type)
    with pytest.raises(UnsafeContent, match="diff_id mismatch"):
        ls.ensure(wrong, None)
    assert leftovers(tmp_path / "layers") == ["host"]


def test_hostile_layer_via_store_leaves_nothing(store, tmp_path: Path):
    blobs, ls = store
    layer = add_layer(blobs, tar_bytes(E("ok", data=b"x"), E("../escape", data=b"x")))
    with pytest.raises(UnsafeContent):
        ls.ensure(layer, IdMapping(300000))
    assert leftovers(tmp_path / "layers") == ["300000-65536"]
    assert not (tmp_path / "layers" / "escape").exists()


def test_concurrent_ensure_unpacks_once(store, monkeypatch):
    blobs, ls = store
    layer = add_layer(blobs, tar_bytes(*[E(f"f{i}", data=b"x" * 1000) for i in range(200)]))
    calls = []
    real = layers_mod.unpack_layer

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(layers_mod, "unpack_layer", counting)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ls.ensure(layer, None)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert len(calls) == 1


def test_idmaps_are_separate_and_remove_drops_all(store, tmp_path: Path):
    blobs, ls = store
    layer = add_layer(blobs, tar_bytes(E("ro", "dir", mode=0o555), E("ro/f", data=b"x"),
                                       E(".wh.gone")))
    host = ls.ensure(layer, None)
    mapped = ls.ensure(layer, IdMapping(100000))
    assert host != mapped
    assert os.lstat(mapped).st_uid == 100000 and os.lstat(host).st_uid == 0
    assert os.lstat(mapped / "ro" / "f").st_uid == 100000
    ls.remove(layer.diff_id)
    assert ls.path(layer.diff_id, None) is None
    assert ls.path(layer.diff_id, IdMapping(100000)) is None
    assert leftovers(tmp_path / "layers") == ["100000-65536", "host"]
