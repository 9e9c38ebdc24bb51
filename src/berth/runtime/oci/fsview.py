"""Reaching a container's filesystem from the host, running or not.

* Running: ``/proc/<pid>/root`` of its init is its root as it sees it, volumes and tmpfs
  mounts included. The pid is pinned with a pidfd, so a pid reused by another process (one
  of the host's, say) is noticed and never used.
* Stopped, to read: a read-only overlay of its upper dir over its image layers, mounted for the
  time of the request under the run root (no upper dir: the container's own is not touched).
* Stopped, to write: its own overlay (upper and work dirs), mounted where it is mounted when
  it runs; the caller holds the container's lock so that it cannot start meanwhile.
Every mount is undone on the way out, errors included.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import select
from collections.abc import Iterator
from pathlib import Path

from berth.errors import Conflict, RuntimeFailure
from berth.runtime.base import IdMapping
from berth.runtime.oci import rootfs
from berth.runtime.oci.layout import ContainerLayout
from berth.runtime.oci.procutil import proc_in_cgroup

MS_RDONLY = 1
ROOT_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)


def live_root(pid: int, cgroup_suffix: str) -> int | None:
    """An O_PATH fd of the root of process ``pid`` if it is (still) in the container's
    cgroup; None otherwise."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except OSError as exc:  # a kernel before 5.3: check the cgroup before and after instead
        if exc.errno != errno.ENOSYS:
            raise
        return _live_root_unpinned(pid, cgroup_suffix)
    try:
        if not proc_in_cgroup(pid, cgroup_suffix):
            return None
        try:
            fd = os.open(f"/proc/{pid}/root", ROOT_FLAGS)
        except (FileNotFoundError, ProcessLookupError):
            return None
        # pidfd is readable once that process has exited: then the pid may have been reused
        # between our checks and the open, and the fd is not to be trusted.
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if poller.poll(0):
            os.close(fd)
            return None
        return fd
    finally:
        os.close(pidfd)


def _live_root_unpinned(pid: int, cgroup_suffix: str) -> int | None:
    if not proc_in_cgroup(pid, cgroup_suffix):
        return None
    try:
        fd = os.open(f"/proc/{pid}/root", ROOT_FLAGS)
    except (FileNotFoundError, ProcessLookupError):
        return None
    if not proc_in_cgroup(pid, cgroup_suffix):  # a host process may have taken the pid
        os.close(fd)
        return None
    return fd


def mounted_rootfs(lay: ContainerLayout) -> int | None:
    """An O_PATH fd of the container's overlay as mounted on the host (its rootfs without
    what is mounted into it), or None when it is not mounted."""
    if not rootfs.mounted_at(lay.rootfs):
        return None
    return os.open(lay.rootfs, ROOT_FLAGS | os.O_NOFOLLOW)


def _mount(target: Path, options: str, flags: int) -> None:
    if len(options) >= 4096:
        raise RuntimeFailure("too many image layers for one overlay mount")
    if _libc.mount(b"overlay", os.fsencode(target), b"overlay", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise RuntimeFailure(f"mount overlay on {target.name}: {os.strerror(err)}")


@contextlib.contextmanager
def read_view(lay: ContainerLayout, layers: list[Path], scratch: Path) -> Iterator[int]:
    """An O_PATH fd of a read-only view of a stopped container's filesystem."""
    lowers = [str(p) for p in reversed(layers)]
    if lay.upper.is_dir():
        lowers.insert(0, str(lay.upper))
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = scratch / f"{lay.cid[:12]}-{secrets.token_hex(4)}"
    target.mkdir(mode=0o700)
    try:
        if not lowers:
            lowers = [str(target)]  # no layers at all: an empty directory
        if len(lowers) == 1:
            fd = os.open(lowers[0], ROOT_FLAGS | os.O_NOFOLLOW)
        else:
            for path in lowers:
                if any(c in path for c in ",:\\"):
                    raise RuntimeFailure("a layer path is not usable in overlay options")
            _mount(target, f"lowerdir={':'.join(lowers)}", MS_RDONLY)
            fd = os.open(target, ROOT_FLAGS | os.O_NOFOLLOW)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        rootfs.unmount(target)
        if not rootfs.mounted_at(target):
            target.rmdir()


@contextlib.contextmanager
def write_view(lay: ContainerLayout, layers: list[Path], idmap: IdMapping | None
               ) -> Iterator[int]:
    """An O_PATH fd of a stopped container's own overlay, mounted read-write where it runs.
    The caller holds the container's lock (it must not start meanwhile)."""
    if rootfs.mounted_at(lay.rootfs):
        raise Conflict(f"container {lay.cid[:12]} is starting or stopping: try again")
    for d in (lay.dir, lay.rootfs, lay.upper, lay.work, lay.empty_lower):
        d.mkdir(mode=0o711 if d == lay.dir else 0o755, parents=True, exist_ok=True)
    if idmap is not None:  # as create makes them: the overlay root takes the upper's owner
        for d in (lay.upper, lay.work, lay.rootfs):
            os.chown(d, idmap.host_base, idmap.host_base)
    rootfs.mount_overlay(lay.rootfs, rootfs.overlay_options(layers, lay.upper, lay.work,
                                                            lay.empty_lower))
    try:
        fd = os.open(lay.rootfs, ROOT_FLAGS | os.O_NOFOLLOW)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        rootfs.unmount(lay.rootfs)
