""""Simple signing" (containers-signature(5)): a GPG-signed "atomic container signature".

``sign_simple`` produces what ``skopeo copy --sign-by`` writes to a lookaside store;
``verify_simple`` authenticates such a blob against trusted keys and only then parses it.
"""

from __future__ import annotations

import time
from pathlib import Path

from berth.image.reference import parse_reference

from .gpg import GpgKeyring, gpg_sign
from .payload import DEFAULT_CREATOR, SIMPLE_TYPE, SignedClaims, build_payload, parse_payload


def verify_simple(keyring: GpgKeyring, signature: bytes) -> SignedClaims:
    """The claims of ``signature`` if a trusted key made it; else SignatureRejected."""
    verified = keyring.verify(signature)
    return parse_payload(verified.plaintext, SIMPLE_TYPE)


def sign_simple(manifest_digest: str, docker_reference: str, key_fingerprint: str,
                gnupg_home: Path | str, *, passphrase_file: Path | str | None = None,
                creator: str | None = DEFAULT_CREATOR, timestamp: int | None = None) -> bytes:
    """Sign a claim that ``docker_reference`` is the image with ``manifest_digest``.

    The reference is written fully expanded ("docker.io/library/busybox:latest"); the key must
    be named by its full fingerprint and be usable from ``gnupg_home`` (its agent is started
    by gpg as needed).
    """
    identity = str(parse_reference(docker_reference))
    if timestamp is None:
        timestamp = int(time.time())
    payload = build_payload(SIMPLE_TYPE, manifest_digest, identity, creator=creator,
                            timestamp=timestamp)
    return gpg_sign(payload, key_fingerprint, gnupg_home, passphrase_file=passphrase_file)
