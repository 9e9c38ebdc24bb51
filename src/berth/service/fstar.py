"""Write part of a container's filesystem as a tar stream (``docker cp`` out, ``export``).

The tree belongs to the container, so it is read as hostile: every lookup is relative to a
directory fd with O_NOFOLLOW (symlink targets are data), files are read exactly as large as
their header says, and host ids are shifted back into the container's range (an id outside it
shows as 65534, as the kernel shows it inside). Kernel filesystems (proc, sysfs, ...) mounted
in the container are listed but never descended into.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from berth.errors import Conflict
from berth.image.streams import ExactReader
from berth.runtime.base import IdMapping

OVERFLOW_ID = 65534
MAX_DEPTH = 512
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# statfs f_type of filesystems whose content is the kernel's, not the container's.
_KERNEL_FS = {0x9FA0, 0x62656572, 0x27E0EB, 0x63677270, 0x1CD1, 0x19800202, 0x73636673,
              0x64626720, 0x74726163, 0xCAFE4A11, 0x6165676C, 0x62656570, 0x42494E4D}
_libc = ctypes.CDLL(None, use_errno=True)

# Go's os.FileMode bits (Docker's stat header carries them).
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE = 1 << 31, 1 << 27, 1 << 26, 1 << 25
GO_SOCKET, GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 24, 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_mode(st_mode: int) -> int:
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFDIR: GO_DIR, stat.S_IFLNK: GO_SYMLINK, stat.S_IFIFO: GO_PIPE,
             stat.S_IFSOCK: GO_SOCKET, stat.S_IFBLK: GO_DEVICE,
             stat.S_IFCHR: GO_DEVICE | GO_CHARDEV}.get(kind, 0)
    for bit, go in ((stat.S_ISUID, GO_SETUID), (stat.S_ISGID, GO_SETGID),
                    (stat.S_ISVTX, GO_STICKY)):
        if st_mode & bit:
            mode |= go
    return mode


def go_time(ns: int) -> str:
    """RFC 3339 with nanoseconds, as Go marshals a time.Time."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def path_stat(name: str, st: os.stat_result, link_target: str = "") -> dict[str, object]:
    """Docker's ContainerPathStat."""
    return {"name": name, "size": st.st_size, "mode": go_mode(st.st_mode),
            "mtime": go_time(st.st_mtime_ns), "linkTarget": link_target}


def _fs_type(fd: int) -> int:
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type comes first (a long)
    if _libc.fstatfs(fd, buf) != 0:
        return 0
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def is_kernel_fs(fd: int) -> bool:
    """Is fd on a filesystem whose content is the kernel's (proc, sysfs, cgroup, ...)?"""
    return _fs_type(fd) in _KERNEL_FS


@dataclass
class TreeWriter:
    tf: tarfile.TarFile
    idmap: IdMapping | None
    one_filesystem: bool = False  # export: the rootfs only, not what is mounted on it

    def __post_init__(self) -> None:
        self.links: dict[tuple[int, int], str] = {}

    def _owner(self, st: os.stat_result) -> tuple[int, int]:
        if self.idmap is None:
            return st.st_uid, st.st_gid
        base, size = self.idmap.host_base, self.idmap.size

        def back(host: int) -> int:
            return host - base if base <= host < base + size else OVERFLOW_ID
        return back(st.st_uid), back(st.st_gid)

    def _info(self, name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode = kind, stat.S_IMODE(st.st_mode)
        info.uid, info.gid = self._owner(st)
        info.mtime = max(0, st.st_mtime_ns // 1_000_000_000)
        info.uname = info.gname = ""
        return info

    def add(self, dir_fd: int, name: str, arcname: str, depth: int = 0) -> None:
        """Write ``name`` (in the directory ``dir_fd``; "." for the directory itself) and,
        for a directory, everything below it, as ``arcname``."""
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            self._dir(dir_fd, name, arcname, st, depth)
        elif stat.S_ISREG(mode):
            self._file(dir_fd, name, arcname, st)
        elif stat.S_ISLNK(mode):
            info = self._info(arcname, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=dir_fd)
            self.tf.addfile(info)
        elif stat.S_ISFIFO(mode):
            self.tf.addfile(self._info(arcname, st, tarfile.FIFOTYPE))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info = self._info(arcname, st, tarfile.CHRTYPE if stat.S_ISCHR(mode)
                              else tarfile.BLKTYPE)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tf.addfile(info)
        # Sockets belong to a running process: left out, as docker does.

    def _dir(self, dir_fd: int, name: str, arcname: str, st: os.stat_result,
             depth: int) -> None:
        if depth > MAX_DEPTH:
            raise Conflict(f"{arcname} nests deeper than {MAX_DEPTH} directories")
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        try:
            # Docker's names: "" (export) none for the top, "." gives "./" and "./x", "/"
            # (the root) gives "/" and "/x", any other "name/" and "name/x".
            if arcname:
                self.tf.addfile(self._info(arcname, st, tarfile.DIRTYPE))
            if self._stays_out(dir_fd, fd, st):
                return
            prefix = "" if not arcname else arcname.rstrip("/") + "/"
            for child in sorted(os.listdir(fd)):
                try:
                    self.add(fd, child, prefix + child, depth + 1)
                except FileNotFoundError:
                    continue  # removed meanwhile (a running container)
        finally:
            os.close(fd)

    def _stays_out(self, parent_fd: int, fd: int, st: os.stat_result) -> bool:
        """A directory to list but not descend into: a kernel filesystem's (proc, sysfs,
        cgroup, ...: the host's information, read as the host's root), or with
        one_filesystem another filesystem mounted on the tree."""
        if is_kernel_fs(fd):
            return True
        return self.one_filesystem and os.fstat(parent_fd).st_dev != st.st_dev

    def _file(self, dir_fd: int, name: str, arcname: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            info = self._info(arcname, st, tarfile.LNKTYPE)
            info.linkname = self.links[key]
            self.tf.addfile(info)
            return
        try:
            pinned = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return  # replaced by a symlink meanwhile
            raise
        try:
            if is_kernel_fs(pinned):  # listed, never read: see _stays_out
                info = self._info(arcname, st, tarfile.REGTYPE)
                self.tf.addfile(info)
                return
            # Reopened through our own fd: the very inode looked at, never a path again.
            fd = os.open(f"/proc/self/fd/{pinned}", READ_FLAGS & ~os.O_NOFOLLOW)
        finally:
            os.close(pinned)
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != key or not stat.S_ISREG(now.st_mode):
                raise Conflict(f"{arcname} was replaced while it was copied")
            info = self._info(arcname, now, tarfile.REGTYPE)
            info.size = now.st_size
            data = ExactReader(fd, now.st_size, f"{arcname} shrank while it was copied")
            self.tf.addfile(info, data)  # type: ignore[arg-type]
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            self.links[key] = arcname


def open_tar(out: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                        encoding="utf-8", errors="surrogateescape")
