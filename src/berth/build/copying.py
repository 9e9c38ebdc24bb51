"""COPY and ADD: pick the sources, checksum them (the cache key), write them as a layer tar.

No container runs: the layer is written here, deterministically (sorted entries, no user
names), with the ids the container sees (the layer store shifts them per project). Sources are
read with lstat/O_NOFOLLOW relative to their root (the context, or another stage's view).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from berth.build.paths import expand, split
from berth.errors import InvalidArgument, UnsafeContent
from berth.image.blobs import BlobStore
from berth.image.commit import pack_layer
from berth.image.tarstream import BoundedReader, compression_of, decompressed, iter_tar
from berth.image.types import LayerRef

MAX_ENTRIES = 1_000_000
CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    dest: str  # path in the image, without the leading "/"
    host: str  # where it is on the host ("" for a directory this step creates)
    st: os.stat_result | None  # None: a directory created as a parent
    archive: str = ""  # ADD: a local tar unpacked at dest


@dataclass
class Plan:
    entries: list[Entry] = field(default_factory=list)
    owner: tuple[int, int] | None = None  # --chown; None: 0:0 (archives: their own)
    # ids on the host of a source read from a view (another stage): subtract to get the
    # container's
    shift: int = 0


def select(root: str, sources: list[str], dest: str, *, clamp: bool, is_dir: Callable[[str], bool],
           add: bool, line_what: str) -> Plan:
    """Docker's rules: a directory's contents go into dest; several sources need a dest
    that ends with "/"; a file goes to dest/<name> when dest is (or ends like) a directory."""
    matched: list[str] = []
    for src in sources:
        found = expand(root, src, clamp=clamp)
        found = [f for f in found if os.path.lexists(os.path.join(root, f)) or f == ""]
        if not found:
            raise InvalidArgument(f"{line_what}: no source files were specified: {src} was "
                                  "not found in the build context" if not clamp else
                                  f"{line_what}: {src} not found")
        matched.extend(found)
    dest_dir = dest.endswith("/") or dest in ("", ".") or is_dir(dest)
    if len(matched) > 1 and not dest_dir:
        raise InvalidArgument(f"{line_what}: when using COPY with more than one source file, "
                              "the destination must be a directory and end with a /")
    base = dest.strip("/")
    plan = Plan()
    for rel in matched:
        host = os.path.join(root, rel) if rel else root
        st = os.lstat(host)
        if stat.S_ISDIR(st.st_mode):
            plan.entries.append(Entry(base, host, st))
            plan.entries.extend(_walk(host, base))
        elif add and stat.S_ISREG(st.st_mode) and _is_archive(host):
            plan.entries.append(Entry(base, host, st, archive=host))
        else:
            name = posixpath.basename(rel)
            target = posixpath.join(base, name) if dest_dir else base
            plan.entries.append(Entry(target, host, st))
        if len(plan.entries) > MAX_ENTRIES:
            raise InvalidArgument(f"{line_what}: more than {MAX_ENTRIES} files")
    return plan


def _walk(top: str, dest: str) -> Iterator[Entry]:
    for name in sorted(os.listdir(top)):
        host = os.path.join(top, name)
        st = os.lstat(host)
        target = posixpath.join(dest, name) if dest else name
        yield Entry(target, host, st)
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(host, target)


def _is_archive(path: str) -> bool:
    with open(path, "rb", opener=_nofollow) as f:
        head = f.read(512)
    if compression_of(head[:8]) != "none":
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


def checksum(plan: Plan) -> str:
    """Content and metadata of every selected source (mtimes aside), as the cache sees it."""
    h = hashlib.sha256(repr(plan.owner).encode())
    for e in plan.entries:
        st = e.st
        h.update(f"\0{e.dest}\0{bool(e.archive)}\0".encode())
        if st is None:
            continue
        h.update(f"{stat.S_IFMT(st.st_mode)}:{stat.S_IMODE(st.st_mode)}:{st.st_size}".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.fsencode(os.readlink(e.host)))
        elif stat.S_ISREG(st.st_mode):
            with open(e.host, "rb", opener=_nofollow) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
    return h.hexdigest()


def write_layer(plan: Plan, parents: list[str], blobs: BlobStore,
                parent_owner: tuple[int, int] = (0, 0)) -> LayerRef | None:
    """The plan as a gzip'd layer blob; ``parents``: directories to create first."""
    def fill(tf: tarfile.TarFile) -> int:
        count = 0
        for d in parents:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            info.uid, info.gid = parent_owner
            tf.addfile(info)
            count += 1
        for e in plan.entries:
            count += _add(tf, e, plan)
        return count

    return pack_layer(blobs, "build-", fill)


def _add(tf: tarfile.TarFile, e: Entry, plan: Plan) -> int:
    if e.archive:
        return _unpack_into(tf, e.archive, e.dest, plan.owner)
    st = e.st
    assert st is not None
    if not e.dest:  # the root itself: its metadata stays the image's
        return 0
    info = tarfile.TarInfo(e.dest)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = max(0, int(st.st_mtime))
    info.uid, info.gid = plan.owner or (0, 0)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tf.addfile(info)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(e.host)
        tf.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        with open(e.host, "rb", opener=_nofollow) as f:
            info.size = os.fstat(f.fileno()).st_size
            tf.addfile(info, f)
    else:
        return 0  # sockets, fifos and devices are not copied
    return 1


def _unpack_into(tf: tarfile.TarFile, path: str, dest: str,
                 owner: tuple[int, int] | None) -> int:
    """ADD of a local archive: its entries under dest, every name checked (no '..', no
    absolute names, no whiteouts, no devices); the layer unpacker checks the rest."""
    count = 0
    with open(path, "rb", opener=_nofollow) as f:
        reader = BoundedReader(decompressed(f), "archive")
        try:
            for m, src in iter_tar(reader):
                parts = _member_parts(m.name)
                if not parts:
                    continue
                m.name = "/".join([*split(dest), *parts])
                if m.islnk():
                    link = _member_parts(m.linkname)
                    m.linkname = "/".join([*split(dest), *link])
                elif not (m.isreg() or m.isdir() or m.issym() or m.isfifo()):
                    continue
                if owner is not None:
                    m.uid, m.gid = owner
                m.uname = m.gname = ""
                tf.addfile(m, src.extractfile(m) if m.isreg() else None)
                count += 1
                if count > MAX_ENTRIES:
                    raise UnsafeContent(f"archive has more than {MAX_ENTRIES} entries")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UnsafeContent(f"ADD: cannot read the archive: {exc}") from None
    return count


def _member_parts(name: str) -> list[str]:
    if name.startswith("/") or "\x00" in name:
        raise UnsafeContent(f"ADD: the archive's entry {name!r} has an absolute name")
    parts = split(name)
    if ".." in parts:
        raise UnsafeContent(f"ADD: the archive's entry {name!r} leads outside its directory")
    if any(p.startswith(".wh.") for p in parts):
        raise UnsafeContent(f"ADD: the archive's entry {name!r} uses the reserved .wh. prefix")
    return parts
