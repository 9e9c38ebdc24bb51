"""Turn a container's overlayfs upper dir into an image layer, and a layer into a new image.

The upper dir is written by the container, so it is read as hostile: nothing is followed (every
lookup is relative to a directory fd with O_NOFOLLOW; symlink targets are data), ids are shifted
back from the host range, sizes and counts are bounded. overlayfs' own markers become OCI ones:
a 0/0 character device is a ``.wh.<name>`` whiteout, an opaque directory gets ``.wh..wh..opq``.
The tar is deterministic for a given tree: sorted entries, no user names, mtimes as on disk.
"""

from __future__ import annotations

import copy
import errno
import gzip
import json
import os
import posixpath
import stat
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from berth.errors import Conflict, InvalidArgument, Unsupported
from berth.image.archive import LAYER_GZIP, oci_manifest_bytes
from berth.image.blobs import BlobStore, SpooledBlob
from berth.image.changes import apply_changes
from berth.image.streams import ExactReader, HashingWriter
from berth.image.types import ImageManifest, LayerRef
from berth.image.unpack import CAPS_PAX, DIR_FLAGS
from berth.runtime.base import IdMapping

OPAQUE_WHITEOUT = ".wh..wh..opq"
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
# A redirected dir or a metacopy file keeps its real content in a lower layer: the upper dir
# alone does not describe the change, so such a tree is refused rather than committed wrongly.
_FOREIGN_XATTRS = ("trusted.overlay.redirect", "user.overlay.redirect",
                   "trusted.overlay.metacopy", "user.overlay.metacopy")
_CAPS_XATTR = "security.capability"
_CAP_REV_MASK, _CAP_REV2, _CAP_REV3 = 0xFF000000, 0x02000000, 0x03000000


@dataclass(frozen=True)
class CommitLimits:
    max_entries: int = 1_000_000
    max_bytes: int = 16 << 30  # regular file data, uncompressed
    max_depth: int = 128


def _caps(fd: int) -> str | None:
    """File capabilities as a v2 xattr (a v3 one names a namespace root id, dropped here)."""
    try:
        raw = os.getxattr(fd, _CAPS_XATTR)
    except OSError:
        return None
    if len(raw) < 20:
        return None
    magic = int.from_bytes(raw[:4], "little")
    if magic & _CAP_REV_MASK not in (_CAP_REV2, _CAP_REV3):
        return None
    magic = (magic & ~_CAP_REV_MASK) | _CAP_REV2
    return (magic.to_bytes(4, "little") + raw[4:20]).decode("utf-8", "surrogateescape")


def _xattr(fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(fd, name)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        raise


class _LayerWriter:
    def __init__(self, tf: tarfile.TarFile, idmap: IdMapping | None,
                 limits: CommitLimits) -> None:
        self.tf, self.idmap, self.limits = tf, idmap, limits
        self.entries = 0
        self.data_bytes = 0
        self.links: dict[tuple[int, int], str] = {}

    def _info(self, name: str, st: os.stat_result, kind: bytes,
              owner: tuple[int, int] | None = None) -> tarfile.TarInfo:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise InvalidArgument(f"the container's changes exceed {self.limits.max_entries} "
                                  "files")
        info = tarfile.TarInfo(name)
        info.type, info.mode = kind, stat.S_IMODE(st.st_mode)
        info.uid, info.gid = owner or self._owner(st, name)
        info.mtime = max(0, st.st_mtime_ns // 1_000_000_000)
        info.uname = info.gname = ""
        return info

    def _owner(self, st: os.stat_result, name: str) -> tuple[int, int]:
        if self.idmap is None:
            return st.st_uid, st.st_gid
        base, size = self.idmap.host_base, self.idmap.size
        if not (base <= st.st_uid < base + size and base <= st.st_gid < base + size):
            raise InvalidArgument(f"{name} is owned by host ids {st.st_uid}:{st.st_gid}, "
                                  "outside the container's user namespace")
        return st.st_uid - base, st.st_gid - base

    def walk(self, dir_fd: int, prefix: str, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise InvalidArgument(f"the container's changes nest deeper than "
                                  f"{self.limits.max_depth} directories")
        for name in sorted(os.listdir(dir_fd)):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            self._entry(dir_fd, name, prefix + name, st, depth)

    def _entry(self, dir_fd: int, name: str, path: str, st: os.stat_result, depth: int) -> None:
        mode = st.st_mode
        if name.startswith(".wh."):
            raise InvalidArgument(f"cannot commit {path}: layers reserve the .wh. prefix for "
                                  "deletions")
        if stat.S_ISCHR(mode) and st.st_rdev == os.makedev(0, 0):
            # overlayfs makes whiteouts as the mounter (host root): their owner is moot.
            wh_name = posixpath.join(posixpath.dirname(path), ".wh." + name)
            self.tf.addfile(self._info(wh_name, st, tarfile.REGTYPE, owner=(0, 0)))
        elif stat.S_ISDIR(mode):
            self._dir(dir_fd, name, path, st, depth)
        elif stat.S_ISREG(mode):
            self._file(dir_fd, name, path, st)
        elif stat.S_ISLNK(mode):
            info = self._info(path, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=dir_fd)
            self.tf.addfile(info)
        elif stat.S_ISFIFO(mode):
            self.tf.addfile(self._info(path, st, tarfile.FIFOTYPE))
        # Sockets belong to a running process, and device nodes are refused by every unpack
        # (ours included): neither is part of an image.

    def _dir(self, dir_fd: int, name: str, path: str, st: os.stat_result, depth: int) -> None:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        try:
            for attr in _FOREIGN_XATTRS:
                if _xattr(fd, attr) is not None:
                    raise Unsupported(f"{path} carries {attr}: overlayfs redirect_dir/metacopy "
                                      "layers cannot be committed")
            self.tf.addfile(self._info(path, st, tarfile.DIRTYPE))
            if any(_xattr(fd, a) == b"y" for a in _OPAQUE_XATTRS):
                opq = self._info(f"{path}/{OPAQUE_WHITEOUT}", st, tarfile.REGTYPE)
                opq.mode = 0o600
                self.tf.addfile(opq)
            self.walk(fd, path + "/", depth + 1)
        finally:
            os.close(fd)

    def _file(self, dir_fd: int, name: str, path: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            info = self._info(path, st, tarfile.LNKTYPE)
            info.linkname = self.links[key]
            self.tf.addfile(info)
            return
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != key or not stat.S_ISREG(now.st_mode):
                raise Conflict(f"{path} was replaced while it was committed; pause the "
                               "container")
            if any(_xattr(fd, a) is not None for a in _FOREIGN_XATTRS[2:]):
                raise Unsupported(f"{path} is an overlayfs metacopy file and cannot be committed")
            self.data_bytes += now.st_size
            if self.data_bytes > self.limits.max_bytes:
                raise InvalidArgument(f"the container's changes exceed {self.limits.max_bytes} "
                                      "bytes")
            info = self._info(path, now, tarfile.REGTYPE)
            info.size = now.st_size
            caps = _caps(fd)
            if caps is not None:
                info.pax_headers = {CAPS_PAX: caps}
            data = ExactReader(fd, now.st_size,
                               f"{path} changed while it was committed; pause the container")
            self.tf.addfile(info, data)  # type: ignore[arg-type]
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            self.links[key] = path


def pack_layer(blobs: BlobStore, prefix: str,
               fill: Callable[[tarfile.TarFile], int]) -> LayerRef | None:
    """A gzip'd layer blob of what ``fill`` writes into the tar (it returns how many entries
    it wrote): hashed as it is written (compressed and plain), synced, committed to the blob
    store. None, and nothing kept, when ``fill`` wrote nothing."""
    fd, name = tempfile.mkstemp(dir=blobs.tmp_dir, prefix=prefix)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw:
            packed = HashingWriter(raw)  # type: ignore[arg-type]
            with gzip.GzipFile(filename="", mode="wb", fileobj=packed,  # type: ignore[arg-type]
                               compresslevel=6, mtime=0) as gz:
                plain = HashingWriter(gz)  # type: ignore[arg-type]
                with tarfile.open(fileobj=plain, mode="w|",  # type: ignore[call-overload]
                                  format=tarfile.PAX_FORMAT, encoding="utf-8",
                                  errors="surrogateescape") as tf:
                    entries = fill(tf)
            raw.flush()
            os.fsync(raw.fileno())
        if entries == 0:
            tmp.unlink()
            return None
        digest = blobs.commit(SpooledBlob(tmp, packed.digest(), packed.size))
        return LayerRef(digest, plain.digest(), packed.size, LAYER_GZIP)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def commit_layer(upper: Path, blobs: BlobStore, *, idmap: IdMapping | None,
                 limits: CommitLimits = CommitLimits()) -> LayerRef | None:
    """Store the changes in an overlayfs upper dir as a gzip'd layer blob.

    Returns None when the upper dir holds no changes: like Docker (whose image builder drops an
    empty diff), the caller then commits an image with an ``empty_layer`` history entry.
    """
    def fill(tf: tarfile.TarFile) -> int:
        root = os.open(upper, DIR_FLAGS)
        try:
            writer = _LayerWriter(tf, idmap, limits)
            writer.walk(root, "", 1)
        finally:
            os.close(root)
        return writer.entries

    return pack_layer(blobs, "commit-", fill)


def _timestamp(created: datetime | str | None) -> str:
    if isinstance(created, str):
        return created
    when = created or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def commit_image(base: ImageManifest, layer: LayerRef | None, blobs: BlobStore, *,
                 changes: dict[str, Any] | None = None, author: str = "", comment: str = "",
                 created: datetime | str | None = None,
                 created_by: str = "") -> ImageManifest:
    """A new image: ``base`` plus ``layer`` (None: no filesystem change), its run config
    edited by ``changes`` (from ``parse_changes``), with one more history entry."""
    config = copy.deepcopy(base.config)
    # Fields describing the base's own build container would be wrong for this image.
    for stale in ("container", "container_config", "parent", "id"):
        config.pop(stale, None)
    rootfs = config.get("rootfs") if isinstance(config.get("rootfs"), dict) else {}
    diff_ids = list(rootfs.get("diff_ids") or [])
    if diff_ids != [la.diff_id for la in base.layers]:
        raise InvalidArgument(f"image {base.id}: its config's diff_ids do not match its layers")
    if layer is not None:
        if not blobs.has(layer.digest):
            raise InvalidArgument(f"layer {layer.digest} is not in the blob store")
        diff_ids.append(layer.diff_id)
    when = _timestamp(created)
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    config["config"] = apply_changes(inner, changes or {})
    config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    config["created"] = when
    if author:
        config["author"] = author
    else:
        config.pop("author", None)
    entry: dict[str, Any] = {"created": when, "created_by": created_by}
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    if layer is None:
        entry["empty_layer"] = True
    history = config.get("history") if isinstance(config.get("history"), list) else []
    config["history"] = [*history, entry]
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    config_digest, config_size = blobs.put_bytes(config_bytes)
    layers = [*base.layers, *([layer] if layer else [])]
    manifest_digest, _ = blobs.put_bytes(oci_manifest_bytes(config_digest, config_size, layers))
    return ImageManifest(id=config_digest, manifest_digest=manifest_digest, config=config,
                         layers=layers)


# -- Docker's --change instructions -----------------------------------------------------------
