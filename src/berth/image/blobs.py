"""Content-addressed blob storage: ``<root>/sha256/<hex>``, verified on every write.

A blob only appears under its digest after its bytes were hashed, its size bounded and the file
fsynced; writes go to a temp file in ``<root>/tmp`` and are renamed into place, so a reader
never sees a partial blob and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from berth import jsontext
from berth.errors import InvalidArgument, NotFound, UnsafeContent

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_HEX_RE = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20
DEFAULT_MAX_BLOB = 64 << 30
DEFAULT_MAX_JSON = 4 << 20


def validate_digest(digest: str) -> str:
    """Return the hex part of a ``sha256:<64 lowercase hex>`` digest; anything else is refused,
    so a digest can never smuggle a path component into the store."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise InvalidArgument(f"invalid digest: {digest!r} (expected sha256:<64 hex digits>)")
    return digest[7:]


@dataclass(frozen=True)
class SpooledBlob:
    """Bytes written and hashed into the store's temp area but not yet committed."""

    path: Path
    digest: str
    size: int


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._dir = self.root / "sha256"
        self._tmp = self.root / "tmp"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    @property
    def tmp_dir(self) -> Path:
        """Scratch space on the same filesystem as the blobs (for spools and imports)."""
        return self._tmp

    def path(self, digest: str) -> Path:
        return self._dir / validate_digest(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def spool(self, stream: BinaryIO, max_size: int = DEFAULT_MAX_BLOB,
              dir: Path | None = None) -> SpooledBlob:
        """Copy ``stream`` to a temp file (hashing and bounding it) without committing it."""
        fd, name = tempfile.mkstemp(dir=dir or self._tmp, prefix="blob-")
        path = Path(name)
        try:
            sha = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_size:
                        raise UnsafeContent(f"blob is larger than the limit of {max_size} bytes")
                    sha.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return SpooledBlob(path, "sha256:" + sha.hexdigest(), size)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def commit(self, spooled: SpooledBlob, expected_digest: str | None = None) -> str:
        """Move a spooled blob into place under its digest (checking it if asked)."""
        try:
            if expected_digest is not None and spooled.digest != expected_digest:
                raise UnsafeContent(
                    f"digest mismatch: expected {expected_digest}, content is {spooled.digest}")
            dest = self.path(spooled.digest)
            os.chmod(spooled.path, 0o644)
            os.replace(spooled.path, dest)  # identical content if it already existed
            self._fsync_dir()
            return spooled.digest
        except BaseException:
            spooled.path.unlink(missing_ok=True)
            raise

    def put(self, stream: BinaryIO, expected_digest: str | None = None,
            max_size: int = DEFAULT_MAX_BLOB) -> tuple[str, int]:
        if expected_digest is not None:
            validate_digest(expected_digest)
        spooled = self.spool(stream, max_size)
        self.commit(spooled, expected_digest)
        return spooled.digest, spooled.size

    def put_bytes(self, data: bytes, expected_digest: str | None = None) -> tuple[str, int]:
        return self.put(io.BytesIO(data), expected_digest, max_size=max(len(data), 1))

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read_bytes(self, digest: str, max_bytes: int = DEFAULT_MAX_JSON) -> bytes:
        with self.open(digest) as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsafeContent(f"blob {digest} is larger than {max_bytes} bytes")
        return data

    def read_json(self, digest: str, max_bytes: int = DEFAULT_MAX_JSON) -> Any:
        data = self.read_bytes(digest, max_bytes)
        try:
            return jsontext.loads(data)
        except ValueError as exc:  # nesting too deep included
            raise UnsafeContent(f"blob {digest} is not valid JSON: {exc}") from None

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def iter_digests(self) -> Iterator[str]:
        for entry in os.scandir(self._dir):
            if _HEX_RE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                yield "sha256:" + entry.name

    def cleanup_tmp(self) -> None:
        """Remove temp files left by writes interrupted by a crash (call at daemon start)."""
        for entry in os.scandir(self._tmp):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def _fsync_dir(self) -> None:
        fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
