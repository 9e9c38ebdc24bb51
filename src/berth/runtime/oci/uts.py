"""A created container's domain name, set from outside before it starts.

runc before 1.2 ignores the OCI spec's ``domainname``, and the ``kernel.domainname`` sysctl
(Docker's way) cannot be written from inside a user namespace: /proc/sys/kernel is the
initial namespace root's. setdomainname(2) in the container's UTS namespace works for every
runtime, with or without a user namespace: berthd (root) joins that namespace for it.
"""

from __future__ import annotations

import ctypes
import os
import threading

from berth.errors import RuntimeFailure

CLONE_NEWUTS = 0x04000000
_libc = ctypes.CDLL(None, use_errno=True)


def _join_and_set(pid: int, name: bytes) -> None:
    fd = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWUTS) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)
    if _libc.setdomainname(name, len(name)) != 0:
        raise OSError(ctypes.get_errno(), "setdomainname")


def set_domainname(pid: int, name: str) -> None:
    """In a thread of its own: setns moves only the calling thread (a UTS namespace may be
    joined by one thread of many), and that thread ends there, so berthd's stay as they are."""
    failed: list[OSError] = []

    def run() -> None:
        try:
            _join_and_set(pid, name.encode())
        except OSError as e:
            failed.append(e)

    worker = threading.Thread(target=run, name="set-domainname")
    worker.start()
    worker.join()
    if failed:
        err = failed[0]
        raise RuntimeFailure(f"domainname {name}: {err.strerror or err} "
                             f"({err.args[1] if len(err.args) > 1 else 'setns'})")
