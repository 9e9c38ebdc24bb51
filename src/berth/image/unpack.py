"""Extract one image layer (a tar, maybe gzip'd) into a directory, treating it as hostile.

tarfile is used only to parse headers and stream member data; every filesystem operation is
done here, relative to directory fds opened with O_NOFOLLOW, so nothing is ever written, chmod'ed
or read through a symlink and nothing outside the target can be reached. OCI whiteouts become
overlayfs whiteouts, so the result can be used directly as an overlayfs lowerdir.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from berth.errors import UnsafeContent
from berth.image.filewriter import (
    PENDING_BYTES,
    SMALL_FILE,
    Counted,
    write_file,
    writers,
)
from berth.image.tarstream import CHUNK, BoundedReader, decompressed, iter_tar
from berth.runtime.base import IdMapping

MAX_ID = (1 << 32) - 2
MAX_CAPS = 1024  # a security.capability value is 20 or 24 bytes; the kernel refuses > 64 KiB
FD_CACHE = 64  # directory fds kept open while unpacking one layer
PENDING_FILES = 256  # small files queued to the writers (each holds a Future and a dir fd)
OPAQUE_XATTR = "trusted.overlay.opaque"
CAPS_PAX = "SCHILY.xattr.security.capability"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Errors that mean "the archive asks for something impossible", not "the host is broken".
_CONTENT_ERRNOS = {errno.ELOOP, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG,
                   errno.EINVAL, errno.EMLINK, errno.ENOENT}


@dataclass(frozen=True)
class UnpackLimits:
    max_total_bytes: int = 16 << 30  # uncompressed file data
    max_entries: int = 1_000_000
    max_depth: int = 128
    max_path: int = 4096
    max_name: int = 255


def entry_parts(name: str, limits: UnpackLimits) -> list[str]:
    """A tar entry's path inside the layer, as components; refuses a name that could
    escape it or that breaks a bound."""
    if "\x00" in name:
        raise UnsafeContent(f"entry name contains a NUL byte: {name!r}")
    if len(os.fsencode(name)) > limits.max_path:
        raise UnsafeContent(f"entry name longer than max_path ({limits.max_path}): "
                            f"{name[:80]!r}")
    if name.startswith("/"):
        raise UnsafeContent(f"absolute entry name {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeContent(f"entry name {name!r} contains '..'")
    if len(parts) > limits.max_depth:
        raise UnsafeContent(f"entry {name[:80]!r} deeper than max_depth ({limits.max_depth})")
    for p in parts:
        if len(os.fsencode(p)) > limits.max_name:
            raise UnsafeContent(f"entry name component longer than max_name "
                                f"({limits.max_name}) in {name[:80]!r}")
    return parts


def check_entry(m: tarfile.TarInfo, limits: UnpackLimits) -> list[str]:
    """The rules an entry must meet that need no filesystem (its name, a whiteout not used
    as a directory, a type Berth unpacks); its path as components. Links are checked
    against the tree when unpacked."""
    parts = entry_parts(m.name, limits)
    if m.size < 0:  # a pax "size" may say anything; a negative one would refund the data bound
        raise UnsafeContent(f"negative size {m.size} for {m.name!r}")
    if any(p.startswith(".wh.") for p in parts[:-1]):
        raise UnsafeContent(f"whiteout name used as a directory in {m.name!r}")
    # Even as a whiteout (whose data is read and dropped): its holes are zeros made from
    # nothing, gigabytes of them from one header.
    if m.issparse():
        raise UnsafeContent(f"sparse file {m.name!r} is not supported")
    if not parts or parts[-1].startswith(".wh."):
        return parts
    if m.ischr() or m.isblk():
        raise UnsafeContent(f"device node {m.name!r} is not allowed in a layer")
    if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
        raise UnsafeContent(f"unsupported tar entry type {m.type!r} for {m.name!r}")
    return parts


def unpack_layer(stream: BinaryIO, target: Path, *, idmap: IdMapping | None,
                 limits: UnpackLimits = UnpackLimits()) -> str:
    """Extract a layer into ``target`` and return its diff_id (sha256 of the plain tar)."""
    target = Path(target)
    target.mkdir(exist_ok=True)
    reader = BoundedReader(decompressed(stream), "layer")
    root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ex = _Extractor(root_fd, idmap, limits)
        try:
            for member, tf in iter_tar(reader):
                ex.add(member, tf)
            ex.finish()
        except tarfile.TarError as exc:
            raise UnsafeContent(f"corrupt layer: {exc}") from None
        finally:
            ex.close()
    finally:
        os.close(root_fd)
    return reader.digest()


class _Extractor:
    def __init__(self, root_fd: int, idmap: IdMapping | None, limits: UnpackLimits) -> None:
        self.root_fd = root_fd
        self.idmap = idmap
        self.limits = limits
        self.entries = 0
        self.data_bytes = 0
        # Directory modes and mtimes are applied last: children change a dir's mtime, and a
        # read-only dir must still accept its entries.
        self.dirs: dict[tuple[str, ...], tuple[int, int]] = {}
        # Open fds of recently used directories (entries of a tar come grouped by directory):
        # walking every path from the root costs an openat per component per entry. Any
        # removal drops the whole cache, so a cached fd always names the directory that is at
        # its path now (never one since replaced by a file or a symlink).
        self._fds: dict[tuple[str, ...], int] = {}
        # Small files being written in the background, by path; an entry that touches one of
        # these paths waits for it, and anything that removes waits for them all.
        self._pending: dict[tuple[str, ...], Future[None]] = {}
        self._pending_bytes = 0

    # -- one entry ---------------------------------------------------------------------------

    def add(self, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise UnsafeContent(f"layer exceeds max_entries ({self.limits.max_entries})")
        parts = check_entry(m, self.limits)
        if (m.isreg() or m.type not in tarfile.SUPPORTED_TYPES) and m.size:
            self._count_data(m)  # tarfile also reads (skips) the data of an unknown type
        if not parts:
            self._skip_data(m, tf)  # the layer root itself ("./"): its metadata is ours
            return
        self._wait_for(tuple(parts))
        try:
            if parts[-1].startswith(".wh."):
                self._skip_data(m, tf)
                self._whiteout(m, parts)
            elif m.isreg():
                self._file(m, parts, tf)
            elif m.isdir():
                self._dir(m, parts)
            elif m.issym():
                self._symlink(m, parts)
            elif m.islnk():
                self._hardlink(m, parts)
            else:  # check_entry lets no other type through
                self._fifo(m, parts)
        except OSError as exc:
            if exc.errno in _CONTENT_ERRNOS:
                raise UnsafeContent(f"cannot extract {m.name!r}: {exc.strerror}") from None
            raise

    def _count_data(self, m: tarfile.TarInfo) -> None:
        self.data_bytes += m.size
        if self.data_bytes > self.limits.max_total_bytes:
            raise UnsafeContent(
                f"layer exceeds max_total_bytes ({self.limits.max_total_bytes} bytes of data)")

    def _owner(self, m: tarfile.TarInfo) -> tuple[int, int]:
        uid, gid = m.uid, m.gid
        if not (0 <= uid <= MAX_ID and 0 <= gid <= MAX_ID):
            raise UnsafeContent(f"invalid owner {uid}:{gid} for {m.name!r}")
        if self.idmap is None:
            return uid, gid
        if uid >= self.idmap.size or gid >= self.idmap.size:
            raise UnsafeContent(f"owner {uid}:{gid} of {m.name!r} is outside the user namespace "
                                f"mapping (size {self.idmap.size})")
        return self.idmap.host_base + uid, self.idmap.host_base + gid

    @staticmethod
    def _mtime_ns(m: tarfile.TarInfo) -> int:
        try:
            ns = int(round(m.mtime * 1_000_000_000))
        except (OverflowError, ValueError, TypeError):
            return 0
        return min(max(ns, 0), 1 << 62)

    # -- directory walking -------------------------------------------------------------------

    def _open_dir(self, parts: Sequence[str], *, create: bool) -> int:
        """An fd (the caller's to close) for the directory ``parts`` under the root, never
        following a symlink."""
        key = tuple(parts)
        cached = self._fds.get(key)
        if cached is None:
            cached = self._walk(key, create)
        return os.dup(cached)

    def _walk(self, key: tuple[str, ...], create: bool) -> int:
        """Open ``key`` from its nearest cached ancestor, caching what it opens."""
        if len(self._fds) + len(key) > FD_CACHE:
            self._drop_fds()  # never evict one by one: an evicted fd may be our parent
        start = len(key)
        while start > 0 and key[:start] not in self._fds:
            start -= 1
        fd = self._fds[key[:start]] if start else self.root_fd
        for end in range(start + 1, len(key) + 1):
            self._wait_for(key[:end])  # a file still being written there is not a dir to make
            fd = self._open_child(fd, key[:end], create)
            self._fds[key[:end]] = fd
        return fd

    def close(self) -> None:
        """Wait for the writers (after an error: ignore their results) and close fds."""
        jobs, self._pending = list(self._pending.values()), {}
        # Not cancelled: a cancelled job would never close the dir fd it was given. And none
        # may still write into a directory the caller is about to remove.
        wait(jobs)
        self._drop_fds()

    def _wait_for(self, path: tuple[str, ...]) -> None:
        job = self._pending.pop(path, None)
        if job is not None:
            self._result(job)

    def _drain(self) -> None:
        jobs, self._pending = list(self._pending.values()), {}
        self._pending_bytes = 0
        for job in jobs:
            self._result(job)

    @staticmethod
    def _result(job: Future[None]) -> None:
        try:
            job.result()
        except OSError as exc:
            if exc.errno in _CONTENT_ERRNOS:
                raise UnsafeContent(f"cannot extract a file: {exc.strerror}") from None
            raise

    def _drop_fds(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _open_child(self, parent: int, parts: tuple[str, ...], create: bool) -> int:
        comp = parts[-1]
        try:
            try:
                return os.open(comp, DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(comp, 0o755, dir_fd=parent)
                nfd = os.open(comp, DIR_FLAGS, dir_fd=parent)
                os.fchmod(nfd, 0o755)  # implicit parents: 0755 root, as Docker makes them
                os.fchown(nfd, *self._root_owner())
                return nfd
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeContent(f"{'/'.join(parts)!r} is a symlink or not a directory; "
                                    "refusing to write through it") from None
            raise

    def _root_owner(self) -> tuple[int, int]:
        base = self.idmap.host_base if self.idmap else 0
        return base, base

    def _clear(self, parent_fd: int, name: str, parts: Sequence[str], *, keep_dir: bool) -> bool:
        """Remove whatever an earlier entry put at ``name``; True if a dir was kept."""
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode) and keep_dir:
            return True
        self._drain()  # a removal must not race files still being written below it
        self._drop_fds()  # something goes away: no cached fd may outlive its path
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent_fd)  # fd-based: does not follow symlinks
            prefix = tuple(parts)
            for key in [k for k in self.dirs if k[: len(prefix)] == prefix]:
                del self.dirs[key]
        else:
            os.unlink(name, dir_fd=parent_fd)
        return False

    # -- entry kinds -------------------------------------------------------------------------

    def _skip_data(self, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        if m.isreg() and m.size:
            src = tf.extractfile(m)
            assert src is not None
            while src.read(CHUNK):
                pass

    def _file(self, m: tarfile.TarInfo, parts: list[str], tf: tarfile.TarFile) -> None:
        uid, gid = self._owner(m)
        caps = m.pax_headers.get(CAPS_PAX)
        if caps is not None and len(caps) > MAX_CAPS:
            raise UnsafeContent(f"file capabilities of {m.name!r} are too large")
        meta = (uid, gid, m.mode & 0o7777, caps, self._mtime_ns(m))
        parent = self._open_dir(parts[:-1], create=True)
        try:  # until write_file owns parent, every way out must close it
            self._clear(parent, parts[-1], parts, keep_dir=False)
            src = tf.extractfile(m)
            assert src is not None
            if m.size <= SMALL_FILE:
                data = src.read(m.size + 1)  # a corrupt stream fails here
                if len(data) != m.size:
                    raise UnsafeContent(f"corrupt layer: short data for {m.name!r}")
                if (self._pending_bytes + len(data) > PENDING_BYTES
                        or len(self._pending) >= PENDING_FILES):
                    self._drain()
        except BaseException:
            os.close(parent)
            raise
        if m.size <= SMALL_FILE:
            self._pending[tuple(parts)] = writers().submit(
                write_file, parent, parts[-1], [data], meta)  # it closes parent
            self._pending_bytes += len(data)
            return
        write_file(parent, parts[-1], Counted(src, m.size, m.name), meta)  # it closes parent

    def _dir(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        uid, gid = self._owner(m)
        parent = self._open_dir(parts[:-1], create=True)
        try:
            if not self._clear(parent, parts[-1], parts, keep_dir=True):
                os.mkdir(parts[-1], 0o700, dir_fd=parent)
            fd = os.open(parts[-1], DIR_FLAGS, dir_fd=parent)
        finally:
            os.close(parent)
        try:
            os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
        self.dirs[tuple(parts)] = (m.mode & 0o7777, self._mtime_ns(m))

    def _symlink(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        uid, gid = self._owner(m)
        target = m.linkname
        if not target or "\x00" in target or len(os.fsencode(target)) > self.limits.max_path:
            raise UnsafeContent(f"invalid symlink target for {m.name!r}")
        parent = self._open_dir(parts[:-1], create=True)
        try:
            name = parts[-1]
            self._clear(parent, name, parts, keep_dir=False)
            os.symlink(target, name, dir_fd=parent)  # only data: it is never followed here
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            mt = self._mtime_ns(m)
            os.utime(name, ns=(mt, mt), dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)

    def _hardlink(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        src_parts = entry_parts(m.linkname, self.limits)
        if not src_parts:
            raise UnsafeContent(f"hard link {m.name!r} has no target")
        self._wait_for(tuple(src_parts))
        try:
            src_parent = self._open_dir(src_parts[:-1], create=False)
        except FileNotFoundError:
            raise UnsafeContent(f"hard link {m.name!r} -> {m.linkname!r}: target not "
                                "extracted") from None
        try:
            try:
                st = os.stat(src_parts[-1], dir_fd=src_parent, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is None or not stat.S_ISREG(st.st_mode):
                raise UnsafeContent(f"hard link {m.name!r} -> {m.linkname!r}: target is not an "
                                    "extracted regular file")
            if src_parts == parts:
                return
            parent = self._open_dir(parts[:-1], create=True)
            try:
                self._clear(parent, parts[-1], parts, keep_dir=False)
                os.link(src_parts[-1], parts[-1], src_dir_fd=src_parent, dst_dir_fd=parent,
                        follow_symlinks=False)
            finally:
                os.close(parent)
        finally:
            os.close(src_parent)

    def _fifo(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        uid, gid = self._owner(m)
        parent = self._open_dir(parts[:-1], create=True)
        try:
            self._clear(parent, parts[-1], parts, keep_dir=False)
            os.mkfifo(parts[-1], 0o600, dir_fd=parent)
            # A read-only non-blocking open of a FIFO returns at once and gives an fd to fix up.
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=parent)
        finally:
            os.close(parent)
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, m.mode & 0o7777)
            mt = self._mtime_ns(m)
            os.utime(fd, ns=(mt, mt))
        finally:
            os.close(fd)

    def _whiteout(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        name = parts[-1]
        if name == ".wh..wh..opq":
            fd = self._open_dir(parts[:-1], create=True)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            return
        real = name[len(".wh."):]
        if name.startswith(".wh..wh.") or real in ("", ".", ".."):
            raise UnsafeContent(f"invalid whiteout entry {m.name!r}")
        uid, gid = self._owner(m)
        self._wait_for((*parts[:-1], real))  # a file still being written there goes first
        parent = self._open_dir(parts[:-1], create=True)
        try:
            self._clear(parent, real, [*parts[:-1], real], keep_dir=False)
            # overlayfs represents a deleted lower file as a 0/0 character device.
            os.mknod(real, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
            os.chown(real, uid, gid, dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)

    # -- the end -----------------------------------------------------------------------------

    def finish(self) -> None:
        """Apply directory modes and mtimes, deepest first, now that all children exist."""
        self._drain()
        self._drop_fds()
        for parts, (mode, mt) in sorted(self.dirs.items(), key=lambda kv: -len(kv[0])):
            try:
                fd = self._open_dir(parts, create=False)
            except (FileNotFoundError, UnsafeContent):
                continue  # replaced by a later entry
            try:
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mt, mt))
            finally:
                os.close(fd)
        self._drop_fds()
