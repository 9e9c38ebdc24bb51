"""A container's files: copy out (a tar of a path and its stat), copy in (extract a tar into a
directory), export (the whole root filesystem) and changes (what differs from the image).

Paths follow ``docker cp``: absolute in the container, ``..`` cleaned lexically, every symlink
in the directory part followed inside the container's root (never the host's); the last
component is followed only for a path ending in ``/`` or ``/.`` (copy out) and always when
copying in (the extraction point). A running container is seen as it sees itself, volumes
included; a stopped one through its own layers (see runtime/oci/fsview.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from berth.errors import BerthError, Conflict, InvalidArgument, NotFound, UnsafeContent
from berth.image.types import LayerRef
from berth.runtime.base import IdMapping
from berth.service import fsdiff, fsextract
from berth.service.archives import pipe_stream
from berth.service.context import Context
from berth.service.fstar import TreeWriter, is_kernel_fs, open_tar, path_stat
from berth.service.idmaps import IdMaps
from berth.service.inroot import open_in_root, resolved_path
from berth.store.models import Container, Image

if TYPE_CHECKING:
    from pathlib import Path

    from berth.agent.hostops import HostOps
    from berth.service.containers import ContainerService

MAX_UPLOAD = (fsextract.LIMITS.max_total_bytes + (1 << 30))  # data plus generous headers
SPOOL_CHUNK = 1 << 20


@dataclass(frozen=True)
class CopyPath:
    """A path as ``docker cp`` means it."""

    asked: str
    norm: str  # absolute, lexically clean
    follow: bool  # resolve the last component too (it ended in "/" or "/.")
    name: str  # the name its archive entries start with

    @classmethod
    def parse(cls, path: str) -> CopyPath:
        if not path:
            raise InvalidArgument("path is required")
        if "\x00" in path or len(path) > 4096:
            raise InvalidArgument("path: invalid (NUL byte, or longer than 4096 bytes)")
        norm = posixpath.normpath("/" + path.lstrip("/"))
        dot = path == "." or path.endswith("/.")
        follow = dot or path.endswith("/") or norm == "/"
        name = "." if dot else "/" if norm == "/" else posixpath.basename(norm)
        return cls(path, norm, follow, name)


@dataclass(frozen=True)
class _Target:
    row: Container
    layers: list[Path]
    idmap: IdMapping | None


class ContainerFiles:
    def __init__(self, containers: ContainerService, hostops: HostOps, idmaps: IdMaps) -> None:
        self.containers = containers
        self.hostops = hostops
        self.idmaps = idmaps

    # -- finding the container and its layers ----------------------------------------------

    def _target(self, ctx: Context, ref: str) -> _Target:
        row = self.containers.get(ctx, ref)
        if row.status in ("creating", "removing") or row.desired == "removed":
            raise Conflict(f"container {row.name} is {row.status}: try again when it is done")
        idmap = self.idmaps.for_project(row.project_id)
        images = self.containers.images
        with self.containers.store.session() as s:
            image = s.get(Image, (row.project_id, row.image_id))
        if image is None:
            raise Conflict(f"the image of container {row.name} is gone")
        assert images.layers is not None
        with images.content.using():
            layers = [images.layers.ensure(LayerRef(**layer), idmap) for layer in image.layers]
        return _Target(row, layers, idmap)

    @contextlib.contextmanager
    def _root(self, t: _Target, *, writable: bool = False, mounts: bool = True
              ) -> Iterator[int]:
        with self.hostops.backend.open_root(t.row.id, t.layers, t.idmap, writable=writable,
                                            mounts=mounts) as fd:
            yield fd

    # -- copy out ---------------------------------------------------------------------------

    def _locate(self, root_fd: int, p: CopyPath, ref: str) -> tuple[int, str]:
        """(a directory fd, the name in it) for the path; the fd is the caller's to close.
        The name is "." when the path itself was resolved."""
        try:
            if p.follow:
                return open_in_root(root_fd, p.norm, os.O_PATH | os.O_DIRECTORY), "."
            parent = open_in_root(root_fd, posixpath.dirname(p.norm),
                                  os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            raise NotFound(f"Could not find the file {p.asked} in container {ref}") from None
        except NotADirectoryError:
            raise InvalidArgument(f"{p.asked}: not a directory") from None
        except OSError as exc:
            raise InvalidArgument(f"cannot resolve {p.asked}: {exc.strerror}") from None
        return parent, posixpath.basename(p.norm)

    def _stat(self, root_fd: int, p: CopyPath, ref: str) -> dict[str, Any]:
        fd, name = self._locate(root_fd, p, ref)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise NotFound(f"Could not find the file {p.asked} in container {ref}") from None
        finally:
            os.close(fd)
        link = ""
        if not p.follow and (st.st_mode & 0o170000) == 0o120000:
            link = resolved_path(root_fd, p.norm)
        return path_stat(p.name, st, link)

    async def stat(self, ctx: Context, ref: str, path: str) -> dict[str, Any]:
        """Docker's ContainerPathStat of ``path`` (HEAD /archive)."""
        p = CopyPath.parse(path)

        def run() -> dict[str, Any]:
            t = self._target(ctx, ref)
            with self._root(t) as root_fd:
                return self._stat(root_fd, p, ref)

        return await asyncio.to_thread(run)

    async def archive(self, ctx: Context, ref: str, path: str
                      ) -> tuple[dict[str, Any], Iterator[bytes]]:
        """The path's stat and a tar of it (GET /archive); a missing path is a 404 before
        any byte is sent."""
        p = CopyPath.parse(path)
        t = await asyncio.to_thread(self._target, ctx, ref)

        def stat_it() -> dict[str, Any]:
            with self._root(t) as root_fd:
                return self._stat(root_fd, p, ref)

        st = await asyncio.to_thread(stat_it)

        def write(out: BinaryIO) -> None:
            with self._root(t) as root_fd:
                fd, name = self._locate(root_fd, p, ref)
                try:
                    tf = open_tar(out)
                    TreeWriter(tf, t.idmap).add(fd, name, p.name)
                    tf.close()
                finally:
                    os.close(fd)

        return st, pipe_stream(write)

    async def export(self, ctx: Context, ref: str) -> Iterator[bytes]:
        """A tar of the container's root filesystem (without its volumes)."""
        t = await asyncio.to_thread(self._target, ctx, ref)

        def write(out: BinaryIO) -> None:
            with self._root(t, mounts=False) as root_fd:
                tf = open_tar(out)
                TreeWriter(tf, t.idmap, one_filesystem=True).add(root_fd, ".", "")
                tf.close()

        return pipe_stream(write)

    # -- copy in ----------------------------------------------------------------------------

    async def put_archive(self, ctx: Context, ref: str, path: str, body: AsyncIterator[bytes],
                          *, no_overwrite_dir: bool = False, copy_uidgid: bool = False) -> None:
        """Extract the tar ``body`` into the directory ``path`` (PUT /archive). The body is
        spooled to disk and checked whole first: a hostile one leaves nothing behind."""
        p = CopyPath.parse(path)
        t = await asyncio.to_thread(self._target, ctx, ref)
        with tempfile.TemporaryFile(prefix="cp-") as spool:
            await _spool(body, spool)
            await asyncio.to_thread(self._extract, t, p, ref, spool, no_overwrite_dir,
                                    copy_uidgid)
        self.containers.hub.publish({
            "type": "container", "action": "extract-to-dir", "id": t.row.id,
            "name": t.row.name, "image": t.row.image_ref, "project_id": t.row.project_id,
            "labels": dict(t.row.labels or {}), "time": _now()})

    def _extract(self, t: _Target, p: CopyPath, ref: str, spool: BinaryIO,
                 no_overwrite_dir: bool, copy_uidgid: bool) -> None:
        spool.seek(0)
        try:
            fsextract.check_archive(spool)
        except UnsafeContent as exc:
            raise UnsafeContent(f"refused archive: {exc.message}") from None
        spool.seek(0)
        running = t.row.status in ("running", "paused", "restarting")
        if not running and (t.row.spec or {}).get("readonly_rootfs"):
            raise InvalidArgument("container rootfs is marked read-only")
        with self._root(t, writable=True) as root_fd:
            dest = self._extraction_point(root_fd, p, ref)
            try:
                fsextract.extract(spool, dest, t.idmap, keep_owner=copy_uidgid,
                                  no_overwrite_dir=no_overwrite_dir)
            except UnsafeContent as exc:
                raise UnsafeContent(f"refused archive: {exc.message}") from None
            except BerthError:
                raise
            except OSError as exc:
                if exc.errno == errno.EROFS:
                    raise InvalidArgument("container rootfs is marked read-only") from None
                raise InvalidArgument(f"cannot extract into {p.asked}: {exc.strerror}") \
                    from None
            finally:
                os.close(dest)

    @staticmethod
    def _extraction_point(root_fd: int, p: CopyPath, ref: str) -> int:
        try:
            fd = open_in_root(root_fd, p.norm, os.O_PATH)
        except FileNotFoundError:
            raise NotFound(f"Could not find the file {p.asked} in container {ref}") from None
        except OSError as exc:
            raise InvalidArgument(f"cannot resolve {p.asked}: {exc.strerror}") from None
        try:
            if (os.fstat(fd).st_mode & 0o170000) != 0o040000:
                raise InvalidArgument("extraction point is not a directory")
            if is_kernel_fs(fd):
                raise InvalidArgument(f"{p.asked} is on a kernel filesystem (proc, sysfs, "
                                      "cgroup): refusing to write into it")
            return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)

    # -- changes ----------------------------------------------------------------------------

    async def changes(self, ctx: Context, ref: str) -> list[dict[str, Any]]:
        """[{"Path", "Kind"}]: 0 modified, 1 added, 2 deleted (docker diff)."""

        def run() -> list[dict[str, Any]]:
            t = self._target(ctx, ref)
            try:
                upper = self.hostops.backend.changes_dir(t.row.id)
            except NotFound:
                return []  # never started: no writable layer yet
            return fsdiff.changes(upper, t.layers)

        return await asyncio.to_thread(run)


async def _spool(body: AsyncIterator[bytes], spool: BinaryIO) -> None:
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in body:
        size += len(chunk)
        if size > MAX_UPLOAD:
            raise InvalidArgument(f"archive larger than {MAX_UPLOAD} bytes")
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= SPOOL_CHUNK:
            await asyncio.to_thread(spool.write, b"".join(pending))
            pending, pending_size = [], 0
    if pending:
        await asyncio.to_thread(spool.write, b"".join(pending))
    if size == 0:
        raise InvalidArgument("request body is empty: expected a tar archive")


def _now() -> float:
    import time

    return time.time()
