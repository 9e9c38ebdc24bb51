"""Downloading one blob into the blob store: streamed, resumable, verified before commit.

The bytes go to a temp file under ``blobs.tmp_dir`` while being hashed and counted; only when
the size equals the descriptor's and the digest matches is the file renamed under its digest.
A dropped connection resumes with ``Range: bytes=N-``; a server that ignores Range (200 instead
of 206) restarts the file from zero. Killed at any point, a download leaves only a temp file,
which ``BlobStore.cleanup_tmp`` removes at start.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from contextlib import closing
from pathlib import Path
from typing import BinaryIO

import httpx

from berth.errors import UnsafeContent, UpstreamFailure
from berth.image.blobs import BlobStore, SpooledBlob
from berth.image.registry import inflight
from berth.image.registry.client import RegistryClient
from berth.image.registry.manifest import Descriptor
from berth.image.registry.progress import BlobProgress

MAX_SHARE_ROUNDS = 3
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def fetch_blob(client: RegistryClient, repo: str, desc: Descriptor, blobs: BlobStore,
               progress: BlobProgress) -> str:
    """Make sure ``desc`` is in ``blobs``: "exists" if it was, "done" once downloaded (by us
    or by a concurrent pull of the same blob that we waited for)."""
    if blobs.has(desc.digest):
        progress.status("exists")
        return "exists"
    key = (str(blobs.root.resolve()), desc.digest)
    for _ in range(MAX_SHARE_ROUNDS):
        flight, leader = inflight.join(key)
        if leader:
            ok = False
            try:
                if not blobs.has(desc.digest):
                    _download(client, repo, desc, blobs, progress, flight)
                ok = True
            finally:
                inflight.land(key, flight, ok)
            progress.status("done")
            return "done"
        progress.status("waiting", 0)
        flight.listen(lambda n: progress.advance(n, "downloading"))
        flight.done.wait()
        if blobs.has(desc.digest):
            progress.status("done")
            return "done"
    raise UpstreamFailure(f"blob {client.where(repo)}@{desc.digest}: a concurrent download "
                          "of it kept failing")


class _Spool:
    """The temp file a download writes, with the hash and count of what it holds."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def reset(self) -> None:
        self.f.seek(0)
        self.f.truncate()
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.f.write(chunk)
        self.sha.update(chunk)
        self.size += len(chunk)


def _download(client: RegistryClient, repo: str, desc: Descriptor, blobs: BlobStore,
              progress: BlobProgress, flight: inflight.Flight) -> None:
    where = f"blob {client.where(repo)}@{desc.digest}"
    fd, name = tempfile.mkstemp(dir=blobs.tmp_dir, prefix="pull-")
    path = Path(name)
    try:
        with os.fdopen(fd, "w+b") as f:
            spool = _Spool(f)
            progress.status("downloading", 0)
            failures = 0
            while True:
                try:
                    _receive(client, repo, desc, spool, progress, flight, where)
                    break
                except httpx.TransportError as exc:
                    failures += 1
                    if failures >= client.config.attempts:
                        raise UpstreamFailure(f"{where}: download failed {failures} times, "
                                              f"last: {type(exc).__name__}") from None
                    client.sleep_before(failures)
            f.flush()
            os.fsync(f.fileno())
        progress.status("verifying", spool.size)
        digest = "sha256:" + spool.sha.hexdigest()
        if digest != desc.digest:
            raise UnsafeContent(f"{where}: the content has digest {digest}; refusing it")
        blobs.commit(SpooledBlob(path, digest, spool.size), desc.digest)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _receive(client: RegistryClient, repo: str, desc: Descriptor, spool: _Spool,
             progress: BlobProgress, flight: inflight.Flight, where: str) -> None:
    """One GET, resuming from what the spool holds. Returns with the whole blob spooled, or
    raises TransportError for a drop (worth resuming) or UnsafeContent for a wrong size."""
    headers = {"Range": f"bytes={spool.size}-"} if spool.size else {}
    with closing(client.open_blob(repo, desc.digest, headers)) as resp:
        if resp.status_code == 206:
            m = _CONTENT_RANGE.fullmatch(resp.headers.get("content-range", "").strip())
            if m is None or int(m.group(1)) != spool.size:
                # A range we did not ask for: start over with a plain request next time.
                spool.reset()
                raise httpx.RemoteProtocolError("unexpected Content-Range")
        elif spool.size:
            spool.reset()  # the server ignored Range: this body starts at byte 0
        length = resp.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) != desc.size - spool.size:
            total = int(length) + spool.size
            raise UnsafeContent(f"{where}: the registry sends {total} bytes but the manifest "
                                f"says {desc.size}")
        for chunk in resp.iter_raw():
            if spool.size + len(chunk) > desc.size:
                raise UnsafeContent(f"{where}: more bytes than the {desc.size} the manifest "
                                    "says")
            spool.write(chunk)
            progress.advance(spool.size)
            flight.report(spool.size)
    if spool.size < desc.size:
        if length is not None:
            raise UnsafeContent(f"{where}: the registry sent {spool.size} bytes but the "
                                f"manifest says {desc.size}")
        raise httpx.RemoteProtocolError("connection closed early")
