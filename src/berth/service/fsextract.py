"""Extract an uploaded tar into a directory of a container (``docker cp`` in).

The upload is spooled to a file first and checked as a whole before anything is written, so a
hostile archive (``..``, absolute names, device nodes, a symlink it then writes through, a hard
link to something it did not carry) is refused with nothing extracted. Extraction itself is the
image unpacker's (image/unpack.py): every write relative to a directory fd with O_NOFOLLOW,
never through a symlink, so nothing outside the target directory can be reached.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import BinaryIO

from berth.errors import InvalidArgument, UnsafeContent
from berth.image.tarstream import BoundedReader, ZeroTail, decompressed, iter_tar
from berth.image.unpack import CAPS_PAX, UnpackLimits, _Extractor
from berth.runtime.base import IdMapping
from berth.service.fstar import is_kernel_fs

LIMITS = UnpackLimits()


def _parts(name: str) -> tuple[str, ...]:
    if "\x00" in name:
        raise UnsafeContent(f"entry name contains a NUL byte: {name!r}")
    if len(os.fsencode(name)) > LIMITS.max_path:
        raise UnsafeContent(f"entry name longer than {LIMITS.max_path} bytes: {name[:80]!r}")
    if name.startswith("/"):
        raise UnsafeContent(f"absolute entry name {name!r}")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeContent(f"entry name {name!r} contains '..'")
    if len(parts) > LIMITS.max_depth:
        raise UnsafeContent(f"entry {name[:80]!r} is deeper than {LIMITS.max_depth} levels")
    if any(len(os.fsencode(p)) > LIMITS.max_name for p in parts):
        raise UnsafeContent(f"a component of {name[:80]!r} is longer than {LIMITS.max_name} "
                            "bytes")
    if any(p.startswith(".wh.") for p in parts):
        raise UnsafeContent(f"entry {name!r}: the .wh. prefix is reserved for layer whiteouts")
    return parts


def _reader(spool: BinaryIO, end_optional: bool) -> tuple[BoundedReader, ZeroTail | None]:
    stream = decompressed(spool)
    tail = ZeroTail(stream) if end_optional else None
    return BoundedReader(tail or stream, "archive"), tail  # type: ignore[arg-type]


def check_archive(spool: BinaryIO, *, end_optional: bool = False) -> int:
    """Read the whole archive without writing anything; refuse it if any entry is hostile.
    Returns the number of entries. ``end_optional``: accept a tar cut off after its last
    member's data (see tarstream.ZeroTail)."""
    symlinks: set[tuple[str, ...]] = set()
    files: set[tuple[str, ...]] = set()
    entries = data = 0
    reader, tail = _reader(spool, end_optional)
    try:
        for m, tf in iter_tar(reader):
            entries += 1
            if entries > LIMITS.max_entries:
                raise UnsafeContent(f"archive has more than {LIMITS.max_entries} entries")
            parts = _parts(m.name)
            for i in range(1, len(parts)):
                if parts[:i] in symlinks:
                    raise UnsafeContent(f"entry {m.name!r} would be written through the "
                                        f"symlink {'/'.join(parts[:i])!r} the archive made")
            if m.ischr() or m.isblk():
                raise UnsafeContent(f"device node {m.name!r}: not allowed")
            if m.issparse():
                raise UnsafeContent(f"sparse file {m.name!r} is not supported")
            if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
                raise UnsafeContent(f"unsupported tar entry type {m.type!r} for {m.name!r}")
            if m.issym() and (not m.linkname or "\x00" in m.linkname):
                raise UnsafeContent(f"invalid symlink target for {m.name!r}")
            if m.islnk() and _parts(m.linkname) not in files:
                raise UnsafeContent(f"hard link {m.name!r} -> {m.linkname!r}: the archive "
                                    "carries no such file before it")
            symlinks.discard(parts)
            files.discard(parts)
            if m.issym():
                symlinks.add(parts)
            elif m.isreg() or m.islnk():
                files.add(parts)
            if m.isreg():
                data += m.size
                if data > LIMITS.max_total_bytes:
                    raise UnsafeContent(f"archive holds more than {LIMITS.max_total_bytes} "
                                        "bytes of data")
                src = tf.extractfile(m)
                assert src is not None
                while src.read(1 << 20):
                    pass
            if tail is not None and tail.real_size is not None \
                    and m.offset_data + m.size > tail.real_size:
                # the zeros stand for missing padding only, never for missing data
                raise UnsafeContent(f"corrupt archive: {m.name!r} is cut short")
    except tarfile.TarError as exc:
        raise UnsafeContent(f"corrupt archive: {exc}") from None
    return entries


class _CopyExtractor(_Extractor):
    """The unpacker with docker cp's rules: optional refusal to replace a directory by a
    non-directory (and the reverse)."""

    def __init__(self, root_fd: int, idmap: IdMapping | None, no_overwrite_dir: bool) -> None:
        super().__init__(root_fd, idmap, LIMITS)
        self.no_overwrite_dir = no_overwrite_dir

    def _clear(self, parent_fd: int, name: str, parts: list[str] | tuple[str, ...],
               *, keep_dir: bool) -> bool:
        if self.no_overwrite_dir:
            try:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode) != keep_dir:
                what = ("a directory with a non-directory" if stat.S_ISDIR(st.st_mode)
                        else "a non-directory with a directory")
                raise InvalidArgument(f"cannot overwrite {what}: {'/'.join(parts)}")
        return super()._clear(parent_fd, name, list(parts), keep_dir=keep_dir)

    def _open_child(self, parent: int, parts: tuple[str, ...], create: bool) -> int:
        fd = super()._open_child(parent, parts, create)
        if is_kernel_fs(fd):  # /proc, /sys, cgroups: never written as the host's root
            os.close(fd)
            raise UnsafeContent(f"{'/'.join(parts)!r} is on a kernel filesystem: refusing "
                                "to write into it")
        return fd


def extract(spool: BinaryIO, dir_fd: int, idmap: IdMapping | None, *, keep_owner: bool,
            no_overwrite_dir: bool, end_optional: bool = False,
            owner: tuple[int, int] | None = None, keep_setid: bool = True) -> None:
    """Extract a checked archive into the directory ``dir_fd``. Entries are owned by the
    container's root unless keep_owner (then by their own ids, inside the mapping), or by
    ``owner`` when given. ``keep_setid=False`` drops set-user/group-ID bits."""
    reader, _ = _reader(spool, end_optional)
    ex = _CopyExtractor(dir_fd, idmap, no_overwrite_dir)
    try:
        for m, tf in iter_tar(reader):
            if owner is not None:
                m.uid, m.gid = owner
            elif not keep_owner:
                m.uid = m.gid = 0
            if not keep_setid:
                m.mode &= ~(stat.S_ISUID | stat.S_ISGID)
            m.pax_headers.pop(CAPS_PAX, None)  # file capabilities are not copied in
            ex.add(m, tf)
        ex.finish()
    except tarfile.TarError as exc:
        raise UnsafeContent(f"corrupt archive: {exc}") from None
    finally:
        ex.close()
