"""Bounds, digests and the internal refusal type shared by the signature modules.

Signatures and their payloads come from whoever controls a registry or a lookaside server, so
every size and count here is bounded before anything is parsed.
"""

from __future__ import annotations

import hashlib
import re

MAX_SIGNATURE_SIZE = 4 << 20  # one signature blob (GPG message or cosign payload)
MAX_SIGNATURES = 64  # signatures considered for one image
MAX_KEY_FILE = 1 << 20  # one keyring / public key file named by a policy
MAX_POLICY_SIZE = 4 << 20  # a policy.json or a registries.d file
MAX_MANIFEST_SIZE = 4 << 20  # a cosign signature artifact manifest

_DIGEST_FORMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = re.compile(r"(sha256|sha384|sha512):([0-9a-f]+)")


class SignatureRejected(Exception):
    """One signature was not accepted; ``reason`` says why, fit to show a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_valid_digest(digest: object) -> bool:
    """True for ``<sha256|sha384|sha512>:<lowercase hex of the right length>``."""
    if not isinstance(digest, str):
        return False
    m = _DIGEST_RE.fullmatch(digest)
    return m is not None and len(m.group(2)) == _DIGEST_FORMS[m.group(1)]


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """The go-digest string of ``data`` with ``algorithm`` (one of sha256/sha384/sha512)."""
    if algorithm not in _DIGEST_FORMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def digest_matches(digest: str, data: bytes) -> bool:
    """Whether ``digest`` (any supported algorithm) is the digest of ``data``."""
    if not is_valid_digest(digest):
        return False
    return compute_digest(data, digest.split(":", 1)[0]) == digest
