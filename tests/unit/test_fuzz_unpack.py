"""Property tests for layer unpacking: hostile tars against the layer store, and blob checks.

Archives are drawn as sequences of entries over a small alphabet of path components ("..", ".",
"", whiteouts, long and non-UTF-8 names, names of earlier entries) and kinds (files, dirs,
symlinks and hard links to drawn targets, fifos, devices, unknown types, pax overrides), in
ustar, GNU or pax format, optionally truncated, corrupted, gzip'd. Each one is unpacked through
``LayerStore.ensure`` into ``store/`` beside a ``victim/`` tree, and the properties are: only
UnsafeContent/InvalidArgument escapes; nothing outside the target changes; a failed or
interrupted unpack leaves nothing complete; a finished tree holds nothing outside it (no
devices but whiteouts, no hard link leaving it); and, for archives that are not mangled, the
tree is exactly what a small model of the unpacker's rules predicts (later entries win, a later
``.wh.name`` removes ``name``, an opaque whiteout marks its directory).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from berth.errors import InvalidArgument, UnsafeContent
from berth.image import layers as layers_mod
from berth.image import unpack as unpack_mod
from berth.image.blobs import BlobStore, validate_digest
from berth.image.layers import LayerStore
from berth.image.types import LayerRef
from berth.image.unpack import UnpackLimits, unpack_layer
from berth.runtime.base import IdMapping

if os.geteuid() != 0:
    pytest.skip("needs root (whiteout device nodes, chown, trusted xattrs)",
                allow_module_level=True)

MTIME = 1_600_000_000
VICTIM = "{victim}"  # replaced by the victim dir's absolute path once the tmp dir exists
IDMAP = IdMapping(100000, 65536)

# -- drawing archives ----------------------------------------------------------------------------

COMPONENTS = ["a", "b", "d", "a", "b", ".", "..", "", ".wh.a", ".wh.b", ".wh.d", ".wh..wh..opq",
              ".wh...", ".wh.", ".wh..wh.x", "é", "\udcff\udc80", "L" * 120, "N" * 256]
LINK_TARGETS = ["a", "b", "d", "d/a", "..", "../victim", "../../victim", "../../../victim",
                "../../../victim/x", "/", VICTIM, VICTIM + "/x", "/etc/passwd", "", "d/../..",
                "x\x00y", "s" * 5000]
KINDS = ["file", "file", "file", "dir", "dir", "sym", "hard", "fifo", "chr", "blk", "unknown",
         "cont", "gnusparse"]
PAX_EXTRAS: list[dict[str, str]] = [
    {"size": "-1"}, {"size": "-511"}, {"size": "-513"}, {"size": "2000"}, {"size": "0"},
    {"GNU.sparse.map": "a,b"}, {"GNU.sparse.map": "0,1"}, {"GNU.sparse.size": "zz"},
    {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}, {"mtime": "nan"}, {"mtime": "1e400"},
    {"uid": "99999999999"}, {"gid": "-5"}, {"path": "../victim/x"}, {"path": "a"},
    {"path": "x\x00y"}, {"linkpath": "/etc/passwd"}, {"linkpath": "a"},
    {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02" + "\x00" * 16},
    {"SCHILY.xattr.security.capability": "garbage"},
    {"SCHILY.xattr.security.capability": "c" * 70000},
]
FORMATS = [tarfile.PAX_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]
TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
         "hard": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE,
         "blk": tarfile.BLKTYPE, "unknown": b"Z", "cont": tarfile.CONTTYPE,
         "gnusparse": tarfile.GNUTYPE_SPARSE}


@dataclass
class Entry:
    name: str
    kind: str
    data: bytes = b""
    mode: int = 0o644
    link: str = ""
    uid: int = 0
    pax: dict[str, str] = field(default_factory=dict)
    fmt: int = tarfile.PAX_FORMAT
    dev: tuple[int, int] = (0, 0)


@dataclass
class Archive:
    entries: list[Entry]
    limits: UnpackLimits
    idmap: IdMapping | None
    end: bool = True  # the end-of-archive blocks
    mangle: tuple[str, int] | None = None  # ("truncate"|"flip"|"trailer", offset)
    gzip: str = ""  # "", "gzip", "gzip-truncated", "gzip-flipped"
    interrupt_at: int | None = None  # raise (as a kill would) when adding the nth entry

    @property
    def modelled(self) -> bool:
        return self.mangle is None and self.gzip in ("", "gzip") and self.interrupt_at is None


# Mostly-valid layers reach the model; these keep hostility to what a valid layer may hold.
TAME_DIRS = ["a", "b", "d", "é", "\udcff\udc80", "."]
TAME_LAST = [*TAME_DIRS, ".wh.a", ".wh.b", ".wh.d", ".wh..wh..opq"]
TAME_KINDS = ["file", "file", "file", "dir", "dir", "sym", "hard", "fifo"]
TAME_LINKS = ["a", "d", "d/a", "/etc/passwd", "../../../victim", VICTIM + "/x"]

names_st = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4).map("/".join)
tame_names_st = st.builds(lambda d, last: "/".join([*d, last]),
                          st.lists(st.sampled_from(TAME_DIRS), max_size=3),
                          st.sampled_from(TAME_LAST))


@st.composite
def entry_name(draw: st.DrawFn, earlier: list[str], tame: bool) -> str:
    names = tame_names_st if tame else names_st
    how = draw(st.integers(0, 9))
    if how == 0 and earlier:
        return draw(st.sampled_from(earlier))
    if how == 1 and not tame:
        return draw(st.sampled_from(["/" + draw(names_st), VICTIM + "/x", "./", ".", "",
                                     "/".join(["d"] * 40) + "/f"]))
    if how == 2 and earlier:  # below an earlier entry (through a symlink, a file, a dir)
        return draw(st.sampled_from(earlier)).rstrip("/") + "/" + draw(names)
    return draw(names)


@st.composite
def entries_st(draw: st.DrawFn, tame: bool) -> list[Entry]:
    out: list[Entry] = []
    for _ in range(draw(st.integers(0, 8))):
        earlier = [e.name for e in out]
        kind = draw(st.sampled_from(TAME_KINDS if tame else KINDS))
        e = Entry(draw(entry_name(earlier, tame)), kind, fmt=draw(st.sampled_from(FORMATS)),
                  uid=draw(st.sampled_from([0, 1000] if tame else [0, 0, 1000, 70000])))
        if kind in ("file", "cont", "unknown"):
            e.data = draw(st.sampled_from([b"", b"x", b"hello", b"z" * 600]))
            e.mode = draw(st.sampled_from([0o644, 0o4755, 0o000, 0o7777]))
        elif kind == "dir":
            e.mode = draw(st.sampled_from([0o755, 0o555, 0o000, 0o1777]))
        elif kind in ("sym", "hard"):
            e.link = draw(st.sampled_from([*(TAME_LINKS if tame else LINK_TARGETS), *earlier]))
        elif kind in ("chr", "blk"):
            e.dev = draw(st.sampled_from([(0, 0), (1, 3), (8, 0)]))
        if not tame and draw(st.integers(0, 5)) == 0:
            e.pax = dict(draw(st.sampled_from(PAX_EXTRAS)))
            e.fmt = tarfile.PAX_FORMAT
        out.append(e)
    return out


small_limits = st.builds(
    UnpackLimits,
    max_total_bytes=st.sampled_from([16 << 30, 1000, 5]),
    max_entries=st.sampled_from([1_000_000, 3]),
    max_depth=st.sampled_from([128, 2]),
    max_path=st.sampled_from([4096, 40]),
    max_name=st.sampled_from([255, 8]),
)


@st.composite
def archives(draw: st.DrawFn) -> Archive:
    tame = draw(st.booleans())
    entries = draw(entries_st(tame))
    limits = UnpackLimits() if tame else draw(st.one_of(st.just(UnpackLimits()), small_limits))
    arc = Archive(entries, limits, draw(st.sampled_from([None, None, IDMAP])))
    if draw(st.integers(0, 7 if tame else 3)) == 0:
        arc.end = draw(st.booleans())
        arc.mangle = draw(st.one_of(
            st.none(), st.tuples(st.sampled_from(["truncate", "flip", "trailer"]),
                                 st.integers(0, 1 << 14))))
        arc.gzip = draw(st.sampled_from(["", "gzip", "gzip-truncated", "gzip-flipped"]))
        if draw(st.integers(0, 2)) == 0:
            arc.interrupt_at = draw(st.integers(1, len(entries) + 1))
    elif draw(st.booleans()):
        arc.gzip = "gzip"
    return arc


def member_bytes(e: Entry, victim: str) -> bytes:
    info = tarfile.TarInfo(e.name.replace(VICTIM, victim))
    info.type = TYPES[e.kind]
    info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.uid, MTIME
    info.linkname = e.link.replace(VICTIM, victim)
    info.devmajor, info.devminor = e.dev
    info.size = len(e.data)
    info.pax_headers = {k: v.replace(VICTIM, victim) for k, v in e.pax.items()}
    try:
        head = info.tobuf(e.fmt, "utf-8", "surrogateescape")
    except ValueError:  # ustar cannot hold it: a pax header can
        head = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if info.type in (tarfile.REGTYPE, tarfile.CONTTYPE, b"Z") and e.data:
        return head + e.data + bytes(-len(e.data) % 512)
    return head


def plain_tar(arc: Archive, victim: str) -> bytes:
    body = b"".join(member_bytes(e, victim) for e in arc.entries)
    return body + (bytes(1024) if arc.end else b"")


def mangled(arc: Archive, plain: bytes) -> bytes:
    """The bytes the layer blob holds: the plain tar, mangled and compressed as drawn."""
    data = plain
    if arc.mangle is not None:
        how, off = arc.mangle
        off = off % (len(data) + 1)
        if how == "truncate":
            data = data[:off]
        elif how == "flip" and data:
            off %= len(data)
            data = data[:off] + bytes([data[off] ^ 0x5A]) + data[off + 1:]
        elif how == "trailer":
            data = data + b"junk" * (off % 300)
    if arc.gzip:
        data = gzip.compress(data, compresslevel=1, mtime=0)
        if arc.gzip == "gzip-truncated":
            data = data[: len(data) - 1 - len(plain) % max(len(data) - 1, 1)]
        elif arc.gzip == "gzip-flipped":
            i = 10 + len(plain) % max(len(data) - 10, 1)
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
    return data


# -- watching what must not change ---------------------------------------------------------------

def tree_state(top: Path, skip: set[Path]) -> dict[str, tuple[Any, ...]]:
    """Names, types, modes, owners, link counts, mtimes, contents and link targets under top."""
    state: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) not in skip]
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st_ = os.lstat(p)
            extra: object = None
            if stat.S_ISREG(st_.st_mode):
                extra = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st_.st_mode):
                extra = os.readlink(p)
            state[str(p.relative_to(top))] = (
                st_.st_mode, st_.st_uid, st_.st_gid, st_.st_nlink, st_.st_ino, extra,
                None if stat.S_ISDIR(st_.st_mode) else st_.st_mtime_ns)
    return state


def make_victim(tmp: Path) -> Path:
    victim = tmp / "victim"
    victim.mkdir()
    (victim / "secret").write_text("do not touch")
    (victim / "x").write_text("original x")
    os.chown(victim / "x", 1234, 5678)
    (victim / "exe").write_bytes(b"#!/bin/sh\n")
    os.chmod(victim / "exe", 0o4755)
    (victim / "a").mkdir()
    (victim / "a" / "inner").write_text("inner")
    (victim / "ro").mkdir()
    os.chmod(victim / "ro", 0o555)
    os.symlink("secret", victim / "link")
    os.link(victim / "secret", victim / "hard")
    return victim


@contextlib.contextmanager
def scratch(factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tmp dir for one example, removed after it (thousands of examples would otherwise
    leave hundreds of thousands of dirs behind for pytest to delete)."""
    with tempfile.TemporaryDirectory(dir=factory.getbasetemp()) as d:
        yield Path(d)


def no_fsync() -> Any:
    """Durability is not under test here, and fsync on a busy shared disk dominates the run."""
    return mock.patch("os.fsync", lambda fd: None)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# -- the model -----------------------------------------------------------------------------------

class Refused(Exception):
    """The model says the unpacker must refuse the layer."""


class _SeesEnd(tarfile.TarInfo):
    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EOFHeaderError:
            tarfile_.saw_end = True  # type: ignore[attr-defined]
            raise


def parsed(plain: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """The members tarfile sees in a plain tar (with data); Refused for what it cannot read,
    including a header that ends the archive without the end-of-archive blocks."""
    try:
        with tarfile.open(fileobj=io.BytesIO(plain), mode="r|", tarinfo=_SeesEnd,
                          encoding="utf-8", errors="surrogateescape") as tf:
            for m in tf:
                data = b""
                if m.isreg() and m.size > 0:
                    src = tf.extractfile(m)
                    assert src is not None
                    data = src.read()
                yield m, data
                tf.members.clear()
            if not getattr(tf, "saw_end", False):
                raise Refused("no end of archive")
    except (tarfile.TarError, ValueError) as exc:
        raise Refused(str(exc)) from None


Node = dict[str, Any]  # {"kind": ..., plus per-kind fields}


class Model:
    """What the unpacker's rules predict for a layer, as a dict of path -> node."""

    def __init__(self, limits: UnpackLimits, idmap: IdMapping | None) -> None:
        self.limits, self.idmap = limits, idmap
        self.nodes: dict[tuple[str, ...], Node] = {}
        self.root_opaque = False
        self.entries = 0
        self.data = 0
        self.inodes = 0

    def parts(self, name: str) -> list[str]:
        lim = self.limits
        if "\x00" in name or len(os.fsencode(name)) > lim.max_path or name.startswith("/"):
            raise Refused(name)
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts or len(parts) > lim.max_depth:
            raise Refused(name)
        if any(len(os.fsencode(p)) > lim.max_name for p in parts):
            raise Refused(name)
        return parts

    def owner(self, m: tarfile.TarInfo) -> tuple[int, int]:
        if not (0 <= m.uid <= (1 << 32) - 2 and 0 <= m.gid <= (1 << 32) - 2):
            raise Refused("owner")
        if self.idmap is None:
            return m.uid, m.gid
        if m.uid >= self.idmap.size or m.gid >= self.idmap.size:
            raise Refused("owner outside the mapping")
        return self.idmap.host_base + m.uid, self.idmap.host_base + m.gid

    def root_owner(self) -> tuple[int, int]:
        base = self.idmap.host_base if self.idmap else 0
        return base, base

    def walk(self, parts: list[str], create: bool) -> None:
        for i in range(1, len(parts) + 1):
            node = self.nodes.get(tuple(parts[:i]))
            if node is None:
                if not create:
                    raise Refused("missing")
                self.nodes[tuple(parts[:i])] = {"kind": "dir", "mode": 0o755,
                                                "owner": self.root_owner(), "opaque": False}
            elif node["kind"] != "dir":
                raise Refused("not a directory")

    def clear(self, parts: list[str], keep_dir: bool) -> bool:
        key = tuple(parts)
        node = self.nodes.get(key)
        if node is None:
            return False
        if node["kind"] == "dir" and keep_dir:
            return True
        for k in [k for k in self.nodes if k[: len(key)] == key]:
            del self.nodes[k]
        return False

    def add(self, m: tarfile.TarInfo, data: bytes) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise Refused("max_entries")
        parts = self.parts(m.name)
        if any(p.startswith(".wh.") for p in parts[:-1]):
            raise Refused("whiteout as dir")
        if m.issparse():
            raise Refused("sparse")
        whiteout = bool(parts) and parts[-1].startswith(".wh.")
        if parts and not whiteout:
            if m.ischr() or m.isblk():
                raise Refused("type")
            if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
                raise Refused("type")
        if m.size < 0:
            raise Refused("negative size")
        if (m.isreg() or m.type not in tarfile.SUPPORTED_TYPES) and m.size:
            self.data += m.size
            if self.data > self.limits.max_total_bytes:
                raise Refused("max_total_bytes")
        if not parts:
            return
        name, parent = parts[-1], parts[:-1]
        if whiteout:
            if name == ".wh..wh..opq":
                self.walk(parent, create=True)
                if parent:
                    self.nodes[tuple(parent)]["opaque"] = True
                else:
                    self.root_opaque = True
                return
            real = name[len(".wh."):]
            if name.startswith(".wh..wh.") or real in ("", ".", ".."):
                raise Refused("whiteout")
            owner = self.owner(m)
            self.walk(parent, create=True)
            self.clear([*parent, real], keep_dir=False)
            self.nodes[(*parent, real)] = {"kind": "wh", "owner": owner}
        elif m.isreg():
            owner = self.owner(m)
            caps = m.pax_headers.get(unpack_mod.CAPS_PAX)
            if caps is not None:
                raise Refused("unmodelled: file capabilities")  # the kernel judges those
            self.walk(parent, create=True)
            self.clear(parts, keep_dir=False)
            self.inodes += 1
            self.nodes[tuple(parts)] = {"kind": "file", "mode": m.mode & 0o7777, "owner": owner,
                                        "data": data, "ino": self.inodes}
        elif m.isdir():
            owner = self.owner(m)
            self.walk(parent, create=True)
            if self.clear(parts, keep_dir=True):
                self.nodes[tuple(parts)].update(mode=m.mode & 0o7777, owner=owner)
            else:
                self.nodes[tuple(parts)] = {"kind": "dir", "mode": m.mode & 0o7777,
                                            "owner": owner, "opaque": False}
        elif m.issym():
            owner = self.owner(m)
            t = m.linkname
            if not t or "\x00" in t or len(os.fsencode(t)) > self.limits.max_path:
                raise Refused("symlink target")
            self.walk(parent, create=True)
            self.clear(parts, keep_dir=False)
            self.nodes[tuple(parts)] = {"kind": "sym", "owner": owner, "target": t}
        elif m.islnk():
            src = self.parts(m.linkname)
            if not src:
                raise Refused("hard link without target")
            self.walk(src[:-1], create=False)
            node = self.nodes.get(tuple(src))
            if node is None or node["kind"] != "file":
                raise Refused("hard link target")
            if src == parts:
                return
            self.walk(parent, create=True)
            self.clear(parts, keep_dir=False)
            if tuple(src) not in self.nodes:
                raise Refused("hard link target removed by the link itself")
            self.nodes[tuple(parts)] = node
        else:
            owner = self.owner(m)
            self.walk(parent, create=True)
            self.clear(parts, keep_dir=False)
            self.nodes[tuple(parts)] = {"kind": "fifo", "mode": m.mode & 0o7777, "owner": owner}

    def expected(self) -> dict[str, tuple[Any, ...]]:
        out: dict[str, tuple[Any, ...]] = {"": ("dir", 0o755, self.root_owner(), self.root_opaque)}
        for key, n in self.nodes.items():
            path = "/".join(key)
            if n["kind"] == "dir":
                out[path] = ("dir", n["mode"], n["owner"], n["opaque"])
            elif n["kind"] == "file":
                links = sum(1 for o in self.nodes.values() if o is n)
                out[path] = ("file", n["mode"], n["owner"], n["data"], links)
            elif n["kind"] == "sym":
                out[path] = ("sym", n["owner"], os.fsencode(n["target"]))
            elif n["kind"] == "fifo":
                out[path] = ("fifo", n["mode"], n["owner"])
            else:
                out[path] = ("wh", n["owner"])
        return out


def predict(plain: bytes, limits: UnpackLimits, idmap: IdMapping | None) -> Model:
    model = Model(limits, idmap)
    for m, data in parsed(plain):
        model.add(m, data)
    return model


def hard_link_groups(nodes: dict[tuple[str, ...], Node]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for key, n in nodes.items():
        if n["kind"] == "file":
            groups.setdefault(id(n), set()).add("/".join(key))
    return {frozenset(g) for g in groups.values()}


# -- checking an unpacked tree -------------------------------------------------------------------

def actual_tree(top: Path) -> tuple[dict[str, tuple[Any, ...]], set[frozenset[str]]]:
    """The unpacked tree as the model describes one, and its groups of hard links; asserts
    it holds nothing that reaches outside (a device, a foreign hard link, a .wh. name)."""
    out: dict[str, tuple[Any, ...]] = {}
    by_ino: dict[int, set[str]] = {}
    nlink: dict[int, int] = {}
    paths = [(top, "")]
    for dirpath, dirnames, filenames in os.walk(top):
        paths += [(Path(dirpath, n), n) for n in dirnames + filenames]
    for p, name in paths:
        rel = str(p.relative_to(top)) if name else ""
        assert not name.startswith(".wh."), f"whiteout file left as a name: {rel}"
        s = os.lstat(p)
        owner = (s.st_uid, s.st_gid)
        mode = stat.S_IMODE(s.st_mode)
        if stat.S_ISDIR(s.st_mode):
            try:
                opaque = os.getxattr(p, unpack_mod.OPAQUE_XATTR, follow_symlinks=False)
            except OSError:
                opaque = None
            out[rel] = ("dir", mode, owner, opaque == b"y")
        elif stat.S_ISREG(s.st_mode):
            by_ino.setdefault(s.st_ino, set()).add(rel)
            nlink[s.st_ino] = s.st_nlink
            out[rel] = ("file", mode, owner, p.read_bytes(), s.st_nlink)
        elif stat.S_ISLNK(s.st_mode):
            out[rel] = ("sym", owner, os.readlink(os.fsencode(p)))
        elif stat.S_ISFIFO(s.st_mode):
            out[rel] = ("fifo", mode, owner)
        else:
            assert stat.S_ISCHR(s.st_mode) and s.st_rdev == os.makedev(0, 0), \
                f"device node in a layer: {rel} {s.st_mode:o}"
            out[rel] = ("wh", owner)
    for ino, paths in by_ino.items():
        assert nlink[ino] == len(paths), f"hard link to something outside the layer: {paths}"
    return out, {frozenset(g) for g in by_ino.values()}


def to_fs_names(tree: dict[str, tuple[Any, ...]]) -> dict[bytes, tuple[Any, ...]]:
    return {os.fsencode(k): v for k, v in tree.items()}


# -- the property: a hostile layer through the layer store ---------------------------------------

class Killed(BaseException):
    """Stands for the process dying mid-unpack (not an Exception: nothing may swallow it)."""


def run_layer(tmp: Path, arc: Archive) -> None:
    victim = make_victim(tmp)
    plain = plain_tar(arc, str(victim))
    blob = mangled(arc, plain)
    blobs = BlobStore(tmp / "blobs")
    with no_fsync():
        digest, size = blobs.put_bytes(blob)
    diff_id = "sha256:" + hashlib.sha256(plain).hexdigest()
    layer = LayerRef(digest, diff_id, size, "application/vnd.oci.image.layer.v1.tar+gzip")
    layers = LayerStore(tmp / "store", blobs, arc.limits)
    key_dir = tmp / "store" / (arc.idmap.key if arc.idmap else "host")
    key_dir.mkdir()
    before = tree_state(tmp, skip={key_dir})
    with open("/etc/passwd", "rb") as f:
        passwd = f.read()
    fds = open_fds()

    real_add = unpack_mod._Extractor.add
    calls = [0]

    def add(self: Any, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        calls[0] += 1
        if calls[0] == arc.interrupt_at:
            raise Killed()
        real_add(self, m, tf)

    result: Path | None = None
    error: BaseException | None = None
    # syncfs is about durability, not confinement; on a busy disk it dominates the run time.
    with mock.patch.object(unpack_mod._Extractor, "add", add), \
            mock.patch.object(layers_mod, "_syncfs", lambda path: None):
        try:
            result = layers.ensure(layer, arc.idmap)
        except (UnsafeContent, InvalidArgument, Killed) as exc:
            error = exc

    event("accepted" if error is None else type(error).__name__)
    # (2) nothing outside the target changed, nor any fd leaked.
    assert tree_state(tmp, skip={key_dir}) == before, "something outside the target changed"
    with open("/etc/passwd", "rb") as f:
        assert f.read() == passwd
    leaked = [os.readlink(f"/proc/self/fd/{fd}") for fd in open_fds() - fds]
    assert not leaked, f"fds leaked: {leaked}"
    # (3) complete iff ensure returned; no temp dir left either way.
    left = sorted(os.listdir(key_dir))
    hexid = diff_id[7:]
    if error is not None:
        assert layers.path(diff_id, arc.idmap) is None
        assert left == [f".{hexid}.lock"], left
        assert list(layers.iter_layers()) == []
        if isinstance(error, Killed):
            return
    else:
        assert result == key_dir / hexid
        assert layers.path(diff_id, arc.idmap) == result
        assert left == [f".{hexid}.lock", hexid], left
        assert arc.interrupt_at is None or calls[0] < arc.interrupt_at, "kill swallowed"
    # (4) a finished tree is confined; and it is what the model predicts.
    tree, links = actual_tree(result) if result is not None else ({}, set())
    if not arc.modelled:
        return
    try:
        model = predict(plain, arc.limits, arc.idmap)
    except Refused as why:
        if "unmodelled" in str(why):
            return
        assert error is not None, f"accepted a layer the rules refuse ({why})"
        return
    event("modelled: accepted" if error is None else "modelled: refused")
    assert error is None, f"refused a layer the rules accept: {error}"
    assert to_fs_names(tree) == to_fs_names(model.expected())
    assert links == hard_link_groups(model.nodes)


def E(name: str, kind: str = "file", data: bytes = b"", **kw: Any) -> Entry:
    return Entry(name, kind, data, **kw)


@given(archives())
@example(Archive([E("f", data=b"x" * 100), E(".wh.f")], UnpackLimits(), None))
@example(Archive([E("f", pax={"GNU.sparse.map": "a,b"})], UnpackLimits(), None))
@example(Archive([E("f", pax={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})],
                 UnpackLimits(), None))
@example(Archive([E(".wh.f", pax={"size": "-511"}), E("f", data=b"y" * 600)],
                 UnpackLimits(max_total_bytes=100), None))
@example(Archive([E(".wh.f", "unknown", b"z" * 600)], UnpackLimits(max_total_bytes=100), None))
@example(Archive([E("f", pax={"SCHILY.xattr.security.capability": "c" * 70000})],
                 UnpackLimits(), None))
@example(Archive([E("a", data=b"z" * 600)], UnpackLimits(), None, mangle=("truncate", 700)))
@example(Archive([*(E(f"f{i}", data=b"x") for i in range(100)), E("dev", "chr", dev=(1, 3))],
                 UnpackLimits(), None))
@example(Archive([E("evil", "sym", link="../../../victim"), E("evil/x", data=b"pwned"),
                  E("h", "hard", link="evil/secret"), E("s", "sym", link=VICTIM + "/x"),
                  E("h2", "hard", link="s"), E("s", "dir"), E("s/x", data=b"inside")],
                 UnpackLimits(), IDMAP))
@example(Archive([E("d", "dir", mode=0o000), E("d/f", data=b"x"), E("d/.wh..wh..opq"),
                  E(".wh..wh..opq"), E("d", data=b"file now"), E("d/g", data=b"?")],
                 UnpackLimits(), None))
def test_hostile_layer_stays_inside_and_all_or_nothing(tmp_path_factory: pytest.TempPathFactory,
                                                       arc: Archive) -> None:
    with scratch(tmp_path_factory) as tmp:
        run_layer(tmp, arc)


def gnu_sparse(name: str, realsize: int) -> bytes:
    """A GNU sparse member header: no data in the stream, ``realsize`` bytes of holes."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.GNUTYPE_SPARSE
    block = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    block[483:495] = b"%011o\0" % realsize
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


@pytest.mark.parametrize("name", [".wh.x", "./", "x"])
def test_sparse_entries_are_refused_even_as_whiteouts(tmp_path: Path, name: str) -> None:
    """Reading (to skip) a sparse whiteout made its holes: 8 GiB of zeros from 1.5 KiB."""
    data = gnu_sparse(name, (8 << 30) - 1) + bytes(1024)
    with pytest.raises(UnsafeContent, match="sparse"):
        unpack_layer(io.BytesIO(data), tmp_path / "layer", idmap=None)


def test_queued_small_files_are_bounded(tmp_path: Path) -> None:
    """Each queued file holds a Future and a dir fd: a layer of many empty files (which add
    nothing to the queued bytes) must not queue them all."""
    most = [0]
    real = unpack_mod._Extractor._file

    def counting(self: Any, *args: Any) -> None:
        most[0] = max(most[0], len(self._pending))
        real(self, *args)

    data = b"".join(tarfile.TarInfo(f"f{i}").tobuf(tarfile.USTAR_FORMAT)
                    for i in range(800)) + bytes(1024)
    with mock.patch.object(unpack_mod._Extractor, "_file", counting):
        unpack_layer(io.BytesIO(data), tmp_path / "layer", idmap=None)
    assert 0 < most[0] <= 256  # far below a daemon's usual limit of 1024 open fds
    assert len(os.listdir(tmp_path / "layer")) == 800


# -- the property: benign layers against a plain model -------------------------------------------

SAFE = ["a", "b", "c", "a/b", "a/c", "b/a", "a/b/c", "c/a/b"]


@given(st.lists(st.tuples(st.sampled_from(SAFE), st.sampled_from(["file", "dir"]),
                          st.sampled_from([b"", b"1", b"two", b"3" * 700])), max_size=12),
       st.booleans(), st.booleans())
def test_benign_layer_is_what_later_entries_say(tmp_path_factory: pytest.TempPathFactory,
                                                entries: list[tuple[str, str, bytes]],
                                                gz: bool, sync_writes: bool) -> None:
    with scratch(tmp_path_factory) as tmp:
        check_benign(tmp, entries, gz, sync_writes)


def check_benign(tmp: Path, entries: list[tuple[str, str, bytes]], gz: bool,
                 sync_writes: bool) -> None:
    expected: dict[str, bytes | None] = {}  # path -> content (None: a directory)
    refused = False  # an entry below a file: the unpacker refuses, never replaces the file
    chunks = []
    for name, kind, data in entries:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE if kind == "dir" else tarfile.REGTYPE
        info.size = len(data) if kind == "file" else 0
        info.mtime = MTIME
        chunks.append(info.tobuf(tarfile.PAX_FORMAT))
        if kind == "file":
            chunks.append(data + bytes(-len(data) % 512))
        parts = name.split("/")
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        refused = refused or any(expected.get(p) is not None for p in parents)
        for p in parents:
            expected[p] = None
        # A new entry replaces the old one and all below it, unless a dir meets a dir.
        if not (kind == "dir" and name in expected and expected[name] is None):
            for p in [p for p in expected if p == name or p.startswith(name + "/")]:
                del expected[p]
            expected[name] = None if kind == "dir" else data
    plain = b"".join(chunks) + bytes(1024)
    target = tmp / "store" / "layer"
    target.parent.mkdir()
    small = -1 if sync_writes else unpack_mod.SMALL_FILE
    with mock.patch.object(unpack_mod, "SMALL_FILE", small):
        try:
            diff_id = unpack_layer(io.BytesIO(gzip.compress(plain) if gz else plain), target,
                                   idmap=None)
        except UnsafeContent as exc:
            assert refused, f"a benign layer was refused: {exc}"
            return
    assert not refused, "an entry below a file was accepted"
    assert diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    got: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(target):
        for d in dirnames:
            got[str(Path(dirpath, d).relative_to(target))] = None
        for f in filenames:
            got[str(Path(dirpath, f).relative_to(target))] = Path(dirpath, f).read_bytes()
    assert got == expected


# -- blob verification ---------------------------------------------------------------------------

@given(st.one_of(st.text(max_size=80), st.none(), st.integers(), st.binary(max_size=80),
                 st.text("0123456789abcdefABCDEF", min_size=64, max_size=64).map(
                     "sha256:{}".format),
                 st.sampled_from(["sha256:" + "a" * 64 + "\n", "sha256:../" + "a" * 61,
                                  "SHA256:" + "a" * 64, "sha256:" + "a" * 64])))
def test_validate_digest_is_a_hex_name_or_refused(digest: Any) -> None:
    try:
        hexid = validate_digest(digest)
    except InvalidArgument:
        return
    assert len(hexid) == 64 and set(hexid) <= set("0123456789abcdef")
    assert digest == "sha256:" + hexid


@given(st.binary(max_size=300), st.sampled_from(["right", "wrong", "bad", None]),
       st.integers(1, 400))
def test_blob_put_is_verified_and_all_or_nothing(tmp_path_factory: pytest.TempPathFactory,
                                                 data: bytes, expect: str | None,
                                                 max_size: int) -> None:
    real = "sha256:" + hashlib.sha256(data).hexdigest()
    expected = {"right": real, "wrong": "sha256:" + "0" * 64, "bad": "sha256:zz", None: None}[
        expect]
    with scratch(tmp_path_factory) as tmp:
        check_put(BlobStore(tmp), data, expected, max_size)


def check_put(blobs: BlobStore, data: bytes, expected: str | None, max_size: int) -> None:
    real = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        with no_fsync():
            digest, size = blobs.put(io.BytesIO(data), expected, max_size=max_size)
    except (UnsafeContent, InvalidArgument):
        assert expected != real or len(data) > max_size
        assert list(blobs.iter_digests()) == []
    else:
        assert (digest, size) == (real, len(data))
        assert blobs.path(digest).read_bytes() == data
        assert list(blobs.iter_digests()) == [digest]
    assert os.listdir(blobs.tmp_dir) == []


def json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)


@given(st.one_of(
    st.binary(max_size=200),
    st.integers(1, 100_000).map(lambda n: b"[" * n),
    st.integers(1, 100_000).map(lambda n: b'{"a":' * n),
    st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                 json_containers).map(lambda v: json.dumps(v).encode())))
@example(b"[" * 100_000)
def test_blob_read_json_returns_or_refuses(tmp_path_factory: pytest.TempPathFactory,
                                           data: bytes) -> None:
    with scratch(tmp_path_factory) as tmp:
        blobs = BlobStore(tmp)
        with no_fsync():
            digest, _ = blobs.put_bytes(data)
        try:
            blobs.read_json(digest, max_bytes=1 << 20)
        except UnsafeContent as exc:
            assert "not valid JSON" in str(exc)


def test_every_tar_reader_refuses_a_negative_size() -> None:
    """A pax "size" of -N would refund N bytes of any reader's data bound (layers, image
    archives, files copied into a container): iter_tar refuses it for all of them."""
    import tarfile as _tarfile

    from berth.image.tarstream import BoundedReader, iter_tar

    buf = io.BytesIO()
    with _tarfile.open(fileobj=buf, mode="w", format=_tarfile.PAX_FORMAT) as tf:
        info = _tarfile.TarInfo("f")
        info.pax_headers = {"size": "-511"}
        tf.addfile(info)
    buf.seek(0)
    with pytest.raises(UnsafeContent, match="negative size"):
        for _member, _tf in iter_tar(BoundedReader(buf, "archive")):
            pass
