"""Persistent network namespaces kept as files (what ``ip netns add`` does, in Berth's own dir).

A namespace is pinned by bind-mounting its nsfs file onto an ordinary empty file, e.g.
``RUN_ROOT/netns/<id>``. It then lives without any process: runc joins it later through
``{"type": "network", "path": ...}``, it survives berthd being killed, and only :func:`remove`
(or a reboot, which also empties the tmpfs RUN_ROOT) ends it.

How the namespace is made: a short-lived dedicated thread calls ``unshare(CLONE_NEWNET)``
(network namespaces are per task, so only that thread moves), brings its loopback up and
bind-mounts ``/proc/thread-self/ns/net`` onto the file; then the thread ends. berthd is a
multi-threaded asyncio process, so we never fork it: pyroute2's own ``netns.create`` and
``IPRoute(netns=...)`` fork a child (``ChildProcess``), and its ``setns`` helpers act on the
calling thread with no way back. :func:`run_in` uses the same trick (a fresh thread that
``setns()``-es and dies) to run netlink code inside a namespace.

Mount propagation: iproute2 bind-mounts /run/netns onto itself and makes it *shared* so that
removing a namespace unmounts the copies in mount namespaces cloned since (otherwise those
copies keep the namespace alive). We do not add a mount of our own for the directory: the
namespace files follow the propagation of the mount that holds RUN_ROOT (shared on systemd hosts,
which gives iproute2's behaviour; private elsewhere, where nothing propagates either way), and
runc's containers drop their copies when they pivot_root. A self-bind would be one more mount to
create, track and clean up for no gain; bind-mounting nsfs works under either propagation.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

# One create/remove at a time in this process, so two callers cannot stack two mounts on a file.
_lock = threading.Lock()


def _check(rc: int, what: str, path: Path | str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", str(path))


def is_netns(path: Path) -> bool:
    """True when *path* is (a bind mount of) a network namespace file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError:  # ENOTTY: an ordinary file (not mounted yet, or unmounted)
        return False
    finally:
        os.close(fd)


def _run_in_thread(body: Callable[[], T]) -> T:
    """Run *body* in a new thread and return its result (or raise its exception) here."""
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(body())
        except BaseException as e:  # re-raised in the caller's thread
            failure.append(e)

    t = threading.Thread(target=target, name="berth-netns", daemon=True)
    t.start()
    t.join()
    if failure:
        raise failure[0]
    return result[0]


def _loopback_up() -> None:
    """Set lo up in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def create(path: Path) -> None:
    """Create a persistent network namespace at *path* (loopback up). Idempotent.

    If *path* already holds a namespace nothing happens; a leftover plain file (a crash between
    creating the file and mounting onto it) is reused.
    """
    with _lock:
        if is_netns(path):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o444))

        def make() -> None:
            # This thread alone enters the new namespace and then ends: the bind mount keeps
            # the namespace alive, and the rest of the process never leaves the host's.
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)", path)
            _loopback_up()
            src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
            _check(_libc.mount(src, os.fsencode(path), None, MS_BIND, None), "bind mount", path)

        _run_in_thread(make)


def pin(source: str, path: Path) -> None:
    """Bind-mount an existing namespace (``/proc/PID/ns/net``) at *path*: a stable name for
    it while its process lives (and after, until :func:`remove`). Idempotent; a pin of
    another namespace at *path* is replaced."""
    with _lock:
        if is_netns(path):
            if os.stat(path).st_ino == os.stat(source).st_ino:
                return
            _check(_libc.umount2(os.fsencode(path), MNT_DETACH), "umount", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o444))
        _check(_libc.mount(os.fsencode(source), os.fsencode(path), None, MS_BIND, None),
               "bind mount", path)


def remove(path: Path) -> None:
    """Unmount and delete the namespace file at *path*. Idempotent (missing is fine).

    The namespace itself ends when nothing else holds it (no process inside, no other mount).
    """
    with _lock:
        for _ in range(16):  # stacked mounts from an older bug or a race elsewhere
            if not is_netns(path):
                break
            rc = _libc.umount2(os.fsencode(path), MNT_DETACH)
            if rc != 0 and ctypes.get_errno() != errno.EINVAL:
                _check(rc, "umount", path)
        path.unlink(missing_ok=True)


def run_in(path: Path, fn: Callable[[], T]) -> T:
    """Call *fn* in a short-lived thread that has joined the network namespace at *path*.

    Sockets *fn* opens (a netlink socket, say) belong to that namespace. The thread ends
    afterwards, so no thread of this process is left in the wrong namespace.
    """
    if not is_netns(path):
        raise FileNotFoundError(errno.ENOENT, "not a network namespace", str(path))

    def body() -> T:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), "setns", path)
        finally:
            os.close(fd)
        return fn()

    return _run_in_thread(body)
