"""The signed JSON payloads: "atomic container signature" and "cosign container image signature".

Both carry the same claims (containers-signature(5)): a manifest digest and a claimed docker
reference in ``critical``, free-form extras in ``optional``. Parsing is strict: anything unknown
in ``critical`` refuses the signature. These functions only ever see payloads whose signature was
already verified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from berth import __version__
from berth.errors import InvalidArgument
from berth.units import fits_int64

from .common import MAX_SIGNATURE_SIZE, SignatureRejected, is_valid_digest
from .strictjson import expect_object, kind_of, load_strict

SIMPLE_TYPE = "atomic container signature"
COSIGN_TYPE = "cosign container image signature"
DEFAULT_CREATOR = f"berth {__version__}"


@dataclass(frozen=True)
class SignedClaims:
    """What a verified signature says about the image."""

    manifest_digest: str
    docker_reference: str
    creator: str | None = None
    timestamp: int | None = None


def _parse_optional(value: Any, *, allow_null: bool) -> tuple[str | None, int | None]:
    if value is None and allow_null:  # cosign writes "optional": null without annotations
        return None, None
    if not isinstance(value, dict):
        raise SignatureRejected(f"invalid signature payload: optional is {kind_of(value)}")
    creator = value.get("creator")
    if creator is not None and not isinstance(creator, str):
        raise SignatureRejected("invalid signature payload: optional.creator is not a string")
    timestamp = value.get("timestamp")
    if timestamp is not None:
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            raise SignatureRejected("invalid signature payload: optional.timestamp is not a "
                                    "number")
        if isinstance(timestamp, float):
            if not timestamp.is_integer():
                raise SignatureRejected("invalid signature payload: optional.timestamp is not "
                                        "an integer")
            timestamp = int(timestamp)
        if not fits_int64(timestamp):
            raise SignatureRejected("invalid signature payload: optional.timestamp is out of "
                                    "range")
    return creator, timestamp


def parse_payload(data: bytes, expected_type: str) -> SignedClaims:
    """Parse a verified payload of ``expected_type``; raise SignatureRejected if malformed."""
    try:
        doc = load_strict(data, "signature payload", MAX_SIGNATURE_SIZE)
        expect_object(doc, "signature payload", required={"critical", "optional"})
        critical = expect_object(doc["critical"], "critical",
                                 required={"type", "image", "identity"})
        if critical["type"] != expected_type:
            raise SignatureRejected(f"unrecognized signature type {critical['type']!r} "
                                    f"(expected {expected_type!r})")
        image = expect_object(critical["image"], "critical.image",
                              required={"docker-manifest-digest"})
        identity = expect_object(critical["identity"], "critical.identity",
                                 required={"docker-reference"})
    except InvalidArgument as e:
        raise SignatureRejected(f"invalid signature payload: {e.message}") from None
    digest = image["docker-manifest-digest"]
    if not is_valid_digest(digest):
        raise SignatureRejected("invalid signature payload: "
                                "critical.image.docker-manifest-digest is not a digest")
    reference = identity["docker-reference"]
    if not isinstance(reference, str) or not reference:
        raise SignatureRejected("invalid signature payload: "
                                "critical.identity.docker-reference is not a string")
    creator, timestamp = _parse_optional(doc["optional"], allow_null=expected_type == COSIGN_TYPE)
    return SignedClaims(digest, reference, creator, timestamp)


def build_payload(signature_type: str, manifest_digest: str, docker_reference: str, *,
                  creator: str | None, timestamp: int | None) -> bytes:
    """Serialize claims the way containers/image does (sorted keys, no spaces)."""
    if not is_valid_digest(manifest_digest):
        raise InvalidArgument(f"invalid manifest digest: {manifest_digest!r}")
    optional: dict[str, Any] = {}
    if creator is not None:
        optional["creator"] = creator
    if timestamp is not None:
        optional["timestamp"] = int(timestamp)
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": signature_type,
        },
        "optional": optional,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
