"""Mounting a volume's tmpfs or bind on its data directory while containers use it (the
agent takes it away with rootfs.unmount when the last one stops: Docker's local driver does
the same, so a tmpfs volume starts empty each time it is first used again)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from berth.errors import RuntimeFailure
from berth.runtime.oci.rootfs import mounted_at, unmount
from berth.volume.options import MS_BIND, MS_RDONLY, MS_REMOUNT, HostMount

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: Path, fstype: str | None, flags: int, data: str) -> None:
    rc = _libc.mount(source.encode(), os.fsencode(target),
                     fstype.encode() if fstype else None, flags, data.encode() or None)
    if rc != 0:
        err = ctypes.get_errno()
        raise RuntimeFailure(f"cannot mount the volume's {fstype or 'bind'} on {target}: "
                             f"{os.strerror(err)}")


def ensure(target: Path, m: HostMount) -> None:
    """Mount m on target unless it is there already (a container using it runs)."""
    if mounted_at(target):
        return
    if m.fstype == "tmpfs":
        _mount("tmpfs", target, "tmpfs", m.flags, m.data)
        return
    if not os.path.isdir(m.source):  # gone since the volume was made
        raise RuntimeFailure(f"the volume's host directory {m.source} does not exist")
    _mount(m.source, target, None, m.flags, "")
    if m.readonly:
        try:
            _mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, "")
        except RuntimeFailure:
            unmount(target)
            raise

