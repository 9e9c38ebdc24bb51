"""Reading tar streams from untrusted blobs: decompression, hashing and size bounds.

Shared by layer unpacking and archive import. tarfile parses headers here but never touches
the filesystem; every header and the stream as a whole has a byte budget.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from berth.errors import UnsafeContent

CHUNK = 1 << 20
HEADER_BUDGET = 2 << 20  # most bytes one header (with its pax/longname records) may take
TRAILER_BUDGET = 1 << 20  # padding allowed after the end-of-archive marker


class _Prefixed:
    """A stream with bytes already peeked from its start put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0 or n >= len(self._head):
                data, self._head = self._head, b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(CHUNK if n is None or n < 0 else n)


def compression_of(head: bytes) -> str:
    """"gzip", "zstd", "xz", "bzip2" or "" (plain) from a blob's first bytes."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"BZh"):
        return "bzip2"
    return ""


def decompressed(stream: BinaryIO) -> BinaryIO:
    """The uncompressed tar bytes of a blob (plain or gzip'd), whatever it was stored as."""
    head = b""
    while len(head) < 6:
        more = stream.read(6 - len(head))
        if not more:
            break
        head += more
    src = _Prefixed(head, stream)
    kind = compression_of(head)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[arg-type]
    if kind == "zstd":
        raise UnsafeContent("zstd layers are not supported yet")
    if kind:
        raise UnsafeContent(f"{kind} compressed layers are not supported")
    return src  # type: ignore[return-value]


class ZeroTail:
    """A tar stream whose writer may not have finished it (the docker CLI sends a build
    context whose last member is neither padded nor followed by the end-of-archive blocks, and
    dockerd accepts it): after the real end, the zeros a finished tar would have had.
    ``real_size`` (once the real end is reached) lets a reader refuse a member whose data
    would have come from these zeros."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._seen = 0
        self._tail: bytes | None = None
        self.real_size: int | None = None

    def read(self, n: int = -1) -> bytes:
        if self._tail is None:
            data = self._src.read(CHUNK if n is None or n < 0 else n)
            if data:
                self._seen += len(data)
                return data
            self.real_size = self._seen
            self._tail = b"\0" * ((-self._seen) % 512 + 1024)
        size = len(self._tail) if n is None or n < 0 else n
        data, self._tail = self._tail[:size], self._tail[size:]
        return data


class BoundedReader:
    """Hashes and counts everything read, turns decompression errors into UnsafeContent and
    enforces a byte budget (so a huge pax header cannot make tarfile buffer gigabytes)."""

    def __init__(self, src: BinaryIO, what: str = "layer") -> None:
        self._src = src
        self._sha = hashlib.sha256()
        self.what = what
        self.pos = 0
        self.budget_end: int | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._src.read(CHUNK if n is None or n < 0 else n)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnsafeContent(f"corrupt {self.what}: {exc}") from None
        self.pos += len(data)
        self._sha.update(data)
        if self.budget_end is not None and self.pos > self.budget_end:
            raise UnsafeContent(f"{self.what} exceeds a size bound (a tar header, trailer or "
                                "the whole uncompressed stream is too large)")
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


def compute_diff_id(stream: BinaryIO, max_bytes: int = 64 << 30) -> str:
    """sha256 of the uncompressed bytes of a layer blob, without extracting it."""
    reader = BoundedReader(decompressed(stream), "layer")
    reader.budget_end = max_bytes
    reader.drain()
    return reader.digest()


class _TarInfo(tarfile.TarInfo):
    """Notes when tarfile meets a real end-of-archive block: tarfile otherwise treats a
    truncated or garbled header after the first as a silent end of the archive."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EOFHeaderError:
            tarfile_.berth_saw_end = True  # type: ignore[attr-defined]
            raise


def _bad_header(reader: BoundedReader, exc: ValueError) -> UnsafeContent:
    # tarfile lets int() and unpacking errors out of its GNU sparse and pax parsing.
    return UnsafeContent(f"corrupt {reader.what}: bad tar header ({exc})")


def iter_tar(reader: BoundedReader) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Stream a tar's members with bounded headers; the caller must consume each member's
    data before the next and should map tarfile.TarError to UnsafeContent."""
    reader.budget_end = reader.pos + HEADER_BUDGET
    try:  # opening reads the first header; the with below closes it
        tf = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115
            fileobj=reader, mode="r|", tarinfo=_TarInfo, encoding="utf-8",
            errors="surrogateescape")
    except ValueError as exc:
        raise _bad_header(reader, exc) from None
    with tf:
        while True:
            reader.budget_end = reader.pos + HEADER_BUDGET
            try:
                member = tf.next()
            except ValueError as exc:
                raise _bad_header(reader, exc) from None
            if member is None:
                break
            if member.size < 0:  # a pax "size" may say anything: it would refund size bounds
                raise UnsafeContent(f"corrupt {reader.what}: negative size for "
                                    f"{member.name!r}")
            reader.budget_end = None  # member data is bounded by the caller
            yield member, tf
            tf.members.clear()  # stream mode would otherwise keep every header
        if not getattr(tf, "berth_saw_end", False):
            raise UnsafeContent(f"corrupt {reader.what}: truncated tar or bad header")
    reader.budget_end = reader.pos + TRAILER_BUDGET
    reader.drain()
