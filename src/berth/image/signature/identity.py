"""Docker image identities: policy scopes for a reference, and "signedIdentity" matching.

A docker scope (containers-policy.json(5), containers-registries.d(5)) is a reference in its
fully expanded form ("docker.io/library/busybox:latest"), one of its prefixes (repository,
namespaces, host[:port]) or a wildcarded domain ("*.example.com"). The most specific one that is
configured wins; ``scope_search_order`` lists them in that order.

A signedIdentity decides whether the identity a signature claims (its "docker-reference") is
acceptable for the image being pulled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from berth.errors import InvalidArgument
from berth.image.reference import Reference, parse_reference

from .strictjson import expect_object, expect_str

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_WILDCARD = re.compile(rf"\*\.{_LABEL}(?:\.{_LABEL})*")
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io"}


def full_name(ref: Reference) -> str:
    """"docker.io/library/busybox", "127.0.0.1:5000/a/b": the fully expanded repository."""
    return f"{ref.domain}/{ref.repository}"


def image_exact(ref: Reference) -> str:
    """The fully expanded name:tag (or name@digest) of an image; the tag wins if it has both,
    because its digest is checked against the manifest separately."""
    ref = ref.with_default_tag()
    if ref.tag:
        return f"{full_name(ref)}:{ref.tag}"
    return f"{full_name(ref)}@{ref.digest}"


def _signed_exact(ref: Reference) -> str | None:
    """A claimed identity's exact form; None when it names no single image."""
    if (ref.tag is None) == (ref.digest is None):
        return None
    return f"{full_name(ref)}:{ref.tag}" if ref.tag else f"{full_name(ref)}@{ref.digest}"


def policy_identities(ref: Reference) -> list[str]:
    """The exact-image scopes of ``ref``: its digest form, then its tag form."""
    ref = ref.with_default_tag()
    out = []
    if ref.digest:
        out.append(f"{full_name(ref)}@{ref.digest}")
    if ref.tag:
        out.append(f"{full_name(ref)}:{ref.tag}")
    return out


def policy_namespaces(ref: Reference) -> list[str]:
    """Repository, parent namespaces, host[:port], then wildcarded parent domains."""
    name = full_name(ref)
    out = []
    while True:
        out.append(name)
        slash = name.rfind("/")
        if slash < 0:
            break
        name = name[:slash]
    if name.startswith("["):  # an IPv6 literal has no parent domains
        return out
    host = name.split(":", 1)[0]
    while "." in host:
        host = host.split(".", 1)[1]
        out.append(f"*.{host}")
    return out


def scope_search_order(ref: Reference) -> list[str]:
    """Every docker scope that can match ``ref``, most specific first."""
    return policy_identities(ref) + policy_namespaces(ref)


def _is_registry_host(text: str) -> bool:
    """A host[:port] that a reference can name: it has a "." or ":", or is localhost (a bare
    first component like "busybox" is a Docker Hub namespace, never a host)."""
    if not _DOMAIN.fullmatch(text):
        return False
    return "." in text or ":" in text or text == "localhost"


def validate_docker_scope(scope: str, *, allow_image: bool = True,
                          allow_wildcard: bool = True) -> None:
    """Raise ValueError unless ``scope`` is a well-formed, fully expanded docker scope."""
    if scope.startswith("*."):
        if not allow_wildcard:
            raise ValueError("a wildcard is not allowed here")
        if not _WILDCARD.fullmatch(scope):
            raise ValueError("a wildcard scope must look like '*.example.com'")
        return
    if "*" in scope:
        raise ValueError("'*' is only allowed as a leading '*.' of a domain")
    if "/" not in scope:
        if not _is_registry_host(scope):
            raise ValueError("not a registry host[:port] (a host needs a '.' or a port, or is "
                             "localhost; images use the fully expanded form, e.g. "
                             "docker.io/library/busybox)")
        if scope in _HUB_ALIASES:
            raise ValueError("use the canonical docker.io host")
        return
    rest, digest, tag = scope, None, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise ValueError("a digest must be sha256:<64 lowercase hex>")
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise ValueError("not a valid tag")
    if (tag or digest) and not allow_image:
        raise ValueError("must not contain a tag or digest")
    if tag and digest:
        raise ValueError("must not contain both a tag and a digest")
    domain, _, path = rest.partition("/")
    if not _is_registry_host(domain):
        raise ValueError("must start with a registry host[:port] (use the fully expanded "
                         "form, e.g. docker.io/library/busybox)")
    if domain in _HUB_ALIASES:
        raise ValueError("use the canonical docker.io host")
    if not all(_COMPONENT.fullmatch(c) for c in path.split("/")):
        raise ValueError("not a valid repository path")


def _matches_prefix(name: str, prefix: str) -> bool:
    """Whether repository ``name`` is ``prefix`` or lies under it (at a "/" boundary)."""
    if len(name) == len(prefix):
        return name == prefix
    return name.startswith(prefix) and len(name) > len(prefix) and name[len(prefix)] == "/"


class SignedIdentity:
    """How a signature's claimed identity must relate to the image's own reference."""

    type_name: ClassVar[str] = ""

    def matches(self, image: Reference, signed: Reference) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class MatchExact(SignedIdentity):
    type_name: ClassVar[str] = "matchExact"

    def matches(self, image: Reference, signed: Reference) -> bool:
        return _signed_exact(signed) == image_exact(image)


@dataclass(frozen=True)
class MatchRepoDigestOrExact(SignedIdentity):
    """Exact for a tagged image; same repository (any tag) for an image pulled by digest."""

    type_name: ClassVar[str] = "matchRepoDigestOrExact"

    def matches(self, image: Reference, signed: Reference) -> bool:
        if signed.tag is None and signed.digest is None:
            return False
        image = image.with_default_tag()
        if image.tag:
            return _signed_exact(signed) == image_exact(image)
        return full_name(signed) == full_name(image)


@dataclass(frozen=True)
class MatchRepository(SignedIdentity):
    type_name: ClassVar[str] = "matchRepository"

    def matches(self, image: Reference, signed: Reference) -> bool:
        return full_name(signed) == full_name(image)


@dataclass(frozen=True)
class ExactReference(SignedIdentity):
    type_name: ClassVar[str] = "exactReference"
    reference: Reference

    def matches(self, image: Reference, signed: Reference) -> bool:
        return _signed_exact(signed) == image_exact(self.reference)


@dataclass(frozen=True)
class ExactRepository(SignedIdentity):
    type_name: ClassVar[str] = "exactRepository"
    repository: Reference

    def matches(self, image: Reference, signed: Reference) -> bool:
        return full_name(signed) == full_name(self.repository)


@dataclass(frozen=True)
class RemapIdentity(SignedIdentity):
    """Rewrite the image's ``prefix`` to ``signed_prefix``, then matchRepoDigestOrExact."""

    type_name: ClassVar[str] = "remapIdentity"
    prefix: str
    signed_prefix: str

    def remap(self, image: Reference) -> Reference | None:
        """The identity the signature must claim; None if the remapped name is invalid."""
        if not _matches_prefix(full_name(image), self.prefix):
            return image
        remapped = self.signed_prefix + image_exact(image)[len(self.prefix):]
        try:
            ref = parse_reference(remapped)
        except InvalidArgument:
            return None
        # Only a result already in canonical form counts ("vendor.io:1" is not docker.io's).
        return ref if image_exact(ref) == remapped else None

    def matches(self, image: Reference, signed: Reference) -> bool:
        remapped = self.remap(image)
        return remapped is not None and MatchRepoDigestOrExact().matches(remapped, signed)


_SIMPLE_IDENTITIES: dict[str, SignedIdentity] = {
    "matchExact": MatchExact(),
    "matchRepoDigestOrExact": MatchRepoDigestOrExact(),
    "matchRepository": MatchRepository(),
}


def _reference_field(obj: dict[str, Any], key: str, where: str) -> Reference:
    text = expect_str(obj[key], f"{where}.{key}")
    try:
        return parse_reference(text)
    except InvalidArgument as e:
        raise InvalidArgument(f"{where}.{key}: {e.message}") from None


def _prefix_field(obj: dict[str, Any], key: str, where: str) -> str:
    text = expect_str(obj[key], f"{where}.{key}")
    try:
        validate_docker_scope(text, allow_image=False, allow_wildcard=False)
    except ValueError as e:
        raise InvalidArgument(f"{where}.{key}: invalid prefix {text!r}: {e}") from None
    return text


def parse_signed_identity(value: Any, where: str) -> SignedIdentity:
    """Parse a policy's "signedIdentity" object (strictly: unknown fields are refused)."""
    obj = expect_object(value, where, required={"type"},
                        optional={"dockerReference", "dockerRepository", "prefix",
                                  "signedPrefix"})
    kind = expect_str(obj["type"], f"{where}.type")
    if kind in _SIMPLE_IDENTITIES:
        expect_object(obj, where, required={"type"})
        return _SIMPLE_IDENTITIES[kind]
    if kind == "exactReference":
        expect_object(obj, where, required={"type", "dockerReference"})
        ref = _reference_field(obj, "dockerReference", where)
        if (ref.tag is None) == (ref.digest is None):
            raise InvalidArgument(f"{where}.dockerReference: must name exactly one tag or "
                                  f"digest: {obj['dockerReference']!r}")
        return ExactReference(ref)
    if kind == "exactRepository":
        expect_object(obj, where, required={"type", "dockerRepository"})
        ref = _reference_field(obj, "dockerRepository", where)
        if ref.tag is not None or ref.digest is not None:
            raise InvalidArgument(f"{where}.dockerRepository: must be a repository without a "
                                  f"tag or digest: {obj['dockerRepository']!r}")
        return ExactRepository(ref)
    if kind == "remapIdentity":
        expect_object(obj, where, required={"type", "prefix", "signedPrefix"})
        return RemapIdentity(_prefix_field(obj, "prefix", where),
                             _prefix_field(obj, "signedPrefix", where))
    raise InvalidArgument(f"{where}.type: unknown signedIdentity type {kind!r}")
