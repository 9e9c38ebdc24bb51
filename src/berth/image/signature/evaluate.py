"""Decide whether an image may be used: every given policy must accept it.

Per containers-policy.json(5), all requirements that apply to the image must be satisfied; a
signedBy/sigstoreSigned requirement is satisfied when at least one signature verifies with one of
its keys, is for this very manifest and claims an acceptable identity. Several policies combine
by conjunction, so a project's policy can only narrow what the host's policy allows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from berth.errors import InvalidArgument, PolicyDenied
from berth.image.reference import Reference, parse_reference

from .common import (
    MAX_SIGNATURE_SIZE,
    MAX_SIGNATURES,
    SignatureRejected,
    compute_digest,
    digest_matches,
    is_valid_digest,
)
from .cosign import SigstoreSig
from .gpg import GpgKeyring
from .identity import SignedIdentity, image_exact
from .payload import SignedClaims
from .policy import Policy, ScopeMatch
from .requirements import InsecureAcceptAnything, Reject, Requirement, SignedBy, SigstoreSigned
from .sigstore import verify_sigstore
from .simple import verify_simple


class SignatureSource(Protocol):
    """Where an image's signatures come from; each method is called at most once."""

    def simple_signatures(self) -> list[bytes]:
        """Raw GPG signature blobs (e.g. from a lookaside store)."""
        ...

    def sigstore_signatures(self) -> list[SigstoreSig]:
        """Sigstore signatures (from the registry's ``sha256-<hex>.sig`` artifact)."""
        ...


@dataclass
class StaticSignatures:
    """A SignatureSource over signatures already at hand."""

    simple: list[bytes] = field(default_factory=list)
    sigstore: list[SigstoreSig] = field(default_factory=list)

    def simple_signatures(self) -> list[bytes]:
        return list(self.simple)

    def sigstore_signatures(self) -> list[SigstoreSig]:
        return list(self.sigstore)


class _Fetched:
    """Fetch each kind of signature once, lazily, and bound what came back."""

    def __init__(self, source: SignatureSource) -> None:
        self._source = source
        self._simple: list[bytes] | None = None
        self._sigstore: list[SigstoreSig] | None = None

    @staticmethod
    def _bounded(items: list[bytes], kind: str) -> None:
        if len(items) > MAX_SIGNATURES:
            raise PolicyDenied(f"too many {kind} signatures ({len(items)} > {MAX_SIGNATURES})")
        for item in items:
            if len(item) > MAX_SIGNATURE_SIZE:
                raise PolicyDenied(f"a {kind} signature is larger than {MAX_SIGNATURE_SIZE} "
                                   "bytes")

    def simple(self) -> list[bytes]:
        if self._simple is None:
            sigs = list(self._source.simple_signatures())
            self._bounded(sigs, "GPG")
            self._simple = sigs
        return self._simple

    def sigstore(self) -> list[SigstoreSig]:
        if self._sigstore is None:
            sigs = list(self._source.sigstore_signatures())
            self._bounded([s.payload for s in sigs], "sigstore")
            self._sigstore = sigs
        return self._sigstore


def _accept_claims(claims: SignedClaims, identity: SignedIdentity, image: Reference,
                   manifest_bytes: bytes, manifest_digest: str) -> None:
    """Raise SignatureRejected unless verified ``claims`` fit this manifest and image."""
    if not digest_matches(claims.manifest_digest, manifest_bytes):
        raise SignatureRejected(f"signature is for digest {claims.manifest_digest} not "
                                f"{manifest_digest}")
    try:
        signed = parse_reference(claims.docker_reference)
    except InvalidArgument:
        raise SignatureRejected(f"signed identity {claims.docker_reference!r} is not a valid "
                                "reference") from None
    if not identity.matches(image, signed):
        raise SignatureRejected(f"signed identity {signed} does not match "
                                f"{image_exact(image)} ({identity.type_name})")


def _no_signatures(kind: str) -> PolicyDenied:
    return PolicyDenied(f"no signature from a trusted key (the image has no {kind} signatures)")


def _first_accepted(count: int, check: Callable[[int], None], kind: str) -> None:
    """Pass if ``check(i)`` accepts any signature; else PolicyDenied listing every reason."""
    if count == 0:
        raise _no_signatures(kind)
    reasons = []
    for i in range(count):
        try:
            check(i)
            return
        except SignatureRejected as e:
            reasons.append(f"signature {i + 1}: {e.reason}")
    if count == 1:
        raise PolicyDenied(reasons[0].split(": ", 1)[1])
    raise PolicyDenied("no acceptable signature: " + "; ".join(reasons))


def _check_signed_by(req: SignedBy, sigs: _Fetched, image: Reference, manifest_bytes: bytes,
                     manifest_digest: str) -> None:
    blobs = sigs.simple()
    if not blobs:  # no need to start gpg
        raise _no_signatures("GPG")
    with GpgKeyring(req.keyrings) as keyring:
        def check(i: int) -> None:
            claims = verify_simple(keyring, blobs[i])
            _accept_claims(claims, req.signed_identity, image, manifest_bytes, manifest_digest)
        _first_accepted(len(blobs), check, "GPG")


def _check_sigstore(req: SigstoreSigned, sigs: _Fetched, image: Reference,
                    manifest_bytes: bytes, manifest_digest: str) -> None:
    items = sigs.sigstore()

    def check(i: int) -> None:
        claims = verify_sigstore(req.public_keys, items[i].payload, items[i].signature_b64)
        _accept_claims(claims, req.signed_identity, image, manifest_bytes, manifest_digest)
    _first_accepted(len(items), check, "sigstore")


def _check_requirement(req: Requirement, match: ScopeMatch, sigs: _Fetched, image: Reference,
                       manifest_bytes: bytes, manifest_digest: str) -> None:
    if isinstance(req, InsecureAcceptAnything):
        return
    if isinstance(req, Reject):
        raise PolicyDenied(f"rejected by policy for {match.describe()}")
    if isinstance(req, SignedBy):
        _check_signed_by(req, sigs, image, manifest_bytes, manifest_digest)
    elif isinstance(req, SigstoreSigned):
        _check_sigstore(req, sigs, image, manifest_bytes, manifest_digest)
    else:  # a Requirement subclass this evaluator does not know: fail closed
        raise PolicyDenied(f"unsupported policy requirement {type(req).__name__}")


def check_image(policies: Sequence[Policy], ref: Reference, manifest_bytes: bytes,
                manifest_digest: str, source: SignatureSource) -> None:
    """Raise PolicyDenied unless every policy accepts the image ``ref`` with this manifest.

    ``manifest_digest`` is what the caller believes the manifest's digest is; it is recomputed
    from ``manifest_bytes``, and so is the digest pinned by ``ref`` if any.
    """
    if not policies:
        raise InvalidArgument("no signature policy given")
    if not is_valid_digest(manifest_digest):
        raise InvalidArgument(f"invalid manifest digest: {manifest_digest!r}")
    actual = compute_digest(manifest_bytes, manifest_digest.split(":", 1)[0])
    if actual != manifest_digest:
        raise PolicyDenied(f"manifest digest mismatch: expected {manifest_digest}, the content "
                           f"is {actual}")
    if ref.digest is not None and not digest_matches(ref.digest, manifest_bytes):
        raise PolicyDenied(f"image {ref} pins digest {ref.digest} but the manifest is "
                           f"{actual}")
    image = ref.with_default_tag()
    sigs = _Fetched(source)
    for policy in policies:
        match = policy.lookup(image)
        for req in match.requirements:
            try:
                _check_requirement(req, match, sigs, image, manifest_bytes, manifest_digest)
            except PolicyDenied as e:
                why = e.message
                if not isinstance(req, Reject):
                    why += f" (required by {match.describe()})"
                raise PolicyDenied(f"image {image_exact(image)} refused by {policy.origin}: "
                                   f"{why}") from None
