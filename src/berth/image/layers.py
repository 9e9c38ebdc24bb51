"""Unpacked layers: ``<root>/<idmap key or "host">/<diff_id hex>``, each unpacked once.

A layer is unpacked into ``.tmp-*`` beside its final place, checked against its diff_id, synced
and renamed; the final directory existing is what "complete" means. An flock per layer makes
concurrent callers (threads or processes) unpack it only once. The directories are shared
read-only by every container using the layer (as overlayfs lowerdirs): never write into them.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from berth.errors import UnsafeContent
from berth.image.blobs import BlobStore, validate_digest
from berth.image.types import LayerRef
from berth.image.unpack import UnpackLimits, unpack_layer
from berth.runtime.base import IdMapping

TMP_PREFIX = ".tmp-"
HOST_KEY = "host"


def _idmap_key(idmap: IdMapping | None) -> str:
    if idmap is None:
        return HOST_KEY
    if idmap.host_base < 0 or idmap.size <= 0:
        raise ValueError(f"invalid id mapping {idmap}")
    return idmap.key


def _syncfs(path: Path) -> None:
    """Flush the unpacked files before the rename publishes them (one syncfs, not an fsync
    per file)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Delete a tree Berth created (layers hold read-only dirs and whiteout device nodes)."""

    def make_writable_and_retry(func, p, _exc):  # type: ignore[no-untyped-def]
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
        func(p)

    if path.is_symlink() or not path.exists():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    shutil.rmtree(path, onerror=make_writable_and_retry)


class LayerStore:
    def __init__(self, root: Path, blobs: BlobStore, limits: UnpackLimits = UnpackLimits()) -> None:
        self.root = Path(root)
        self.blobs = blobs
        self.limits = limits
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, diff_id: str, idmap: IdMapping | None) -> Path | None:
        p = self.root / _idmap_key(idmap) / validate_digest(diff_id)
        return p if p.is_dir() else None

    def ensure(self, layer: LayerRef, idmap: IdMapping | None) -> Path:
        """The unpacked directory of ``layer`` under ``idmap``, unpacking it if needed."""
        hexid = validate_digest(layer.diff_id)
        validate_digest(layer.digest)
        parent = self.root / _idmap_key(idmap)
        final = parent / hexid
        if final.is_dir():
            return final
        parent.mkdir(parents=True, exist_ok=True)
        with self._lock(parent, hexid):
            if final.is_dir():  # another caller finished it while we waited
                return final
            tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f"{TMP_PREFIX}{hexid[:12]}-"))
            try:
                with self.blobs.open(layer.digest) as f:
                    diff_id = unpack_layer(f, tmp, idmap=idmap, limits=self.limits)
                if diff_id != layer.diff_id:
                    raise UnsafeContent(f"layer {layer.digest}: diff_id mismatch: the config "
                                        f"says {layer.diff_id}, the content is {diff_id}")
                # The layer root becomes the container's "/": owned by its root, 0755.
                base = idmap.host_base if idmap else 0
                os.chown(tmp, base, base)
                os.chmod(tmp, 0o755)
                _syncfs(tmp)
                os.rename(tmp, final)
            except BaseException:
                remove_tree(tmp)
                raise
        return final

    def remove(self, diff_id: str) -> None:
        """Remove a layer's unpacked copies under every id mapping."""
        hexid = validate_digest(diff_id)
        for parent in self._key_dirs():
            final = parent / hexid
            if not final.exists():
                continue
            with self._lock(parent, hexid):
                if not final.exists():
                    continue
                # Rename first: a crash half way leaves a temp dir, never a damaged layer.
                doomed = Path(tempfile.mkdtemp(dir=parent, prefix=f"{TMP_PREFIX}rm-"))
                os.rename(final, doomed / "layer")
                remove_tree(doomed)

    def cleanup_incomplete(self) -> None:
        """Remove temp dirs left by unpacks or removals interrupted by a crash."""
        for parent in self._key_dirs():
            for entry in os.scandir(parent):
                if entry.name.startswith(TMP_PREFIX):
                    remove_tree(Path(entry.path))

    def iter_layers(self) -> Iterator[tuple[str, str]]:
        """(idmap key, diff_id) of every complete unpacked layer."""
        for parent in self._key_dirs():
            for entry in os.scandir(parent):
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                    yield parent.name, "sha256:" + entry.name

    def _key_dirs(self) -> list[Path]:
        return [Path(e.path) for e in os.scandir(self.root)
                if e.is_dir(follow_symlinks=False)]

    @contextlib.contextmanager
    def _lock(self, parent: Path, hexid: str) -> Iterator[None]:
        fd = os.open(parent / f".{hexid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
