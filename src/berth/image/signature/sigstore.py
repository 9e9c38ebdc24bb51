"""Sigstore (cosign key-based) signatures: verify and create them with ``cryptography``.

A cosign signature is a JSON payload plus a base64 signature over exactly those bytes (ECDSA
with SHA-256 as DER, RSA PKCS#1 v1.5 with SHA-256, or Ed25519). The signature is checked before
the payload is parsed at all.
"""

from __future__ import annotations

import base64
import binascii
import time

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from berth.errors import InvalidArgument
from berth.image.reference import parse_reference

from .common import MAX_SIGNATURE_SIZE, SignatureRejected
from .payload import COSIGN_TYPE, DEFAULT_CREATOR, SignedClaims, build_payload, parse_payload

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_MAX_SIGNATURE_B64 = 64 << 10
MIN_RSA_BITS = 2048


def load_public_key(pem: bytes) -> PublicKeyTypes:
    """A sigstore public key from PEM; ValueError says why it is unusable."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ValueError(f"not a PEM public key: {e}") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise ValueError(f"unsupported elliptic curve {key.curve.name}")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits is too small")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise ValueError(f"unsupported public key type {type(key).__name__}")


def _verify_raw(key: PublicKeyTypes, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_sigstore(public_keys: tuple[PublicKeyTypes, ...] | list[PublicKeyTypes],
                    payload: bytes, signature_b64: str) -> SignedClaims:
    """Authenticate ``payload`` with any of ``public_keys``, then parse it strictly.

    Raises SignatureRejected when no key verifies it or the payload is malformed.
    """
    if len(payload) > MAX_SIGNATURE_SIZE:
        raise SignatureRejected(f"signature payload larger than {MAX_SIGNATURE_SIZE} bytes")
    if not isinstance(signature_b64, str) or len(signature_b64) > _MAX_SIGNATURE_B64:
        raise SignatureRejected("malformed signature annotation")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRejected("signature annotation is not valid base64") from None
    if not any(_verify_raw(key, signature, payload) for key in public_keys):
        raise SignatureRejected("no signature from a trusted key")
    return parse_payload(payload, COSIGN_TYPE)


def _sign_raw(key: SigningKey, payload: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(payload)
    raise InvalidArgument(f"unsupported signing key type {type(key).__name__}")


def sign_sigstore(manifest_digest: str, docker_reference: str, private_key: SigningKey, *,
                  creator: str | None = DEFAULT_CREATOR,
                  timestamp: int | None = None) -> tuple[bytes, str]:
    """Sign a cosign payload claiming ``docker_reference`` for ``manifest_digest``.

    Returns (payload bytes, base64 signature) — the layer blob and the
    ``dev.cosignproject.cosign/signature`` annotation of a cosign signature artifact. The
    reference is written in its fully expanded form.
    """
    identity = str(parse_reference(docker_reference))
    if timestamp is None:
        timestamp = int(time.time())
    payload = build_payload(COSIGN_TYPE, manifest_digest, identity, creator=creator,
                            timestamp=timestamp)
    return payload, base64.b64encode(_sign_raw(private_key, payload)).decode()
