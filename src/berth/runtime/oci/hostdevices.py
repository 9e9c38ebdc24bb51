"""The host's device nodes a privileged container gets, as Docker's --privileged gives them:
every character and block device under /dev but those each container has its own of. In a
user namespace they are bind mounts of the host's nodes, so container root (an unprivileged
host user) opens only what their host owners and modes let anyone open."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from berth.runtime.base import DeviceNode

# Each container has its own of these (runc's default nodes, its devpts, its tmpfs and mqueue).
OWN_DIRS = frozenset({"pts", "shm", "mqueue", "fd"})
OWN_NODES = frozenset({"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"})


def host_devices(dev: Path = Path("/dev")) -> list[DeviceNode]:
    found = []
    for top, dirs, files in os.walk(dev):  # symlinks are not followed
        here = Path(top)
        if here == dev:
            dirs[:] = [d for d in dirs if d not in OWN_DIRS]
        for name in sorted(files):
            if here == dev and name in OWN_NODES:
                continue
            path = here / name
            try:
                st = path.lstat()
            except OSError:  # gone meanwhile
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                node = str(Path("/dev") / path.relative_to(dev))
                found.append(DeviceNode(source=str(path), path=node,
                                        kind="c" if stat.S_ISCHR(st.st_mode) else "b",
                                        major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                                        access="rwm"))
    return found


def with_host_devices(asked: tuple[DeviceNode, ...]) -> tuple[DeviceNode, ...]:
    """The host's devices and the ones asked for; where both go to one path, the asked."""
    taken = {d.path for d in asked}
    return tuple(d for d in host_devices() if d.path not in taken) + asked
