"""Small file-like adapters for writing layers and archives: a hashing writer and an
exact-length reader of a file that may change under us."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

from berth.errors import Conflict


class HashingWriter:
    """A write-only stream that hashes and counts what passes through to ``dest``."""

    def __init__(self, dest: BinaryIO) -> None:
        self.dest = dest
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.dest.write(data)

    def flush(self) -> None:
        self.dest.flush()

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


class ExactReader:
    """A regular file's data, exactly ``size`` bytes: a file that shrank while it was read is
    refused with ``shrank`` (a Conflict: the container is running), one that grew is cut at
    the size its tar header announced."""

    def __init__(self, fd: int, size: int, shrank: str) -> None:
        self.fd, self.left, self.shrank = fd, size, shrank

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = os.read(self.fd, n) if n else b""
        if len(data) < n:
            raise Conflict(self.shrank)
        self.left -= len(data)
        return data
