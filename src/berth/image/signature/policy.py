"""containers-policy.json(5): parse a signature policy strictly and find the rules for an image.

    {"default": [requirements...],
     "transports": {"docker": {"": [...], "registry.example/ns": [...], ...}, ...}}

For an image only the most specific configured scope applies (exact image, repository,
namespaces, host[:port], wildcarded domains, the transport default ""), else "default".
Unknown fields, duplicated keys, wrong types, empty requirement lists, unknown requirement or
identity types and malformed scopes refuse the whole file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.errors import InvalidArgument
from berth.image.reference import Reference

from .common import MAX_POLICY_SIZE
from .identity import scope_search_order, validate_docker_scope
from .requirements import Requirement, parse_requirements
from .strictjson import expect_object, kind_of, load_strict

KNOWN_TRANSPORTS = frozenset({
    "atomic", "containers-storage", "dir", "docker", "docker-archive", "docker-daemon", "oci",
    "oci-archive", "ostree", "sif", "tarball",
})
_DOCKER_LIKE = {"docker", "atomic"}
_PATH_SCOPED = {"dir", "oci", "oci-archive", "docker-archive", "ostree", "sif"}


@dataclass(frozen=True)
class ScopeMatch:
    """The requirements that apply to an image, and which part of the policy supplied them."""

    transport: str
    scope: str | None  # None: the policy's global "default"; "": the transport's default
    requirements: tuple[Requirement, ...]

    def describe(self) -> str:
        if self.scope is None:
            return "the policy's default"
        if self.scope == "":
            return f"the {self.transport} transport default"
        return f"{self.transport} scope '{self.scope}'"


@dataclass(frozen=True)
class Policy:
    """A parsed policy; ``origin`` names it in refusals ("host policy", "project acme policy")."""

    default: tuple[Requirement, ...]
    transports: Mapping[str, Mapping[str, tuple[Requirement, ...]]] = field(
        default_factory=dict)
    origin: str = "policy"

    def lookup(self, ref: Reference, transport: str = "docker") -> ScopeMatch:
        """The most specific scope configured for ``ref`` (docker-style transports only)."""
        if transport not in _DOCKER_LIKE:
            raise InvalidArgument(f"policy lookup by image reference is only defined for the "
                                  f"docker transport, not {transport!r}")
        scopes = self.transports.get(transport)
        if scopes is not None:
            for scope in scope_search_order(ref):
                if scope in scopes:
                    return ScopeMatch(transport, scope, scopes[scope])
            if "" in scopes:
                return ScopeMatch(transport, "", scopes[""])
        return ScopeMatch(transport, None, self.default)

    def requirements_for(self, ref: Reference) -> list[Requirement]:
        """The requirements an image pulled over the docker transport must all satisfy."""
        return list(self.lookup(ref).requirements)


def _validate_scope(transport: str, scope: Any, where: str) -> str:
    if not isinstance(scope, str):  # JSON keys are strings; kept for non-JSON callers
        raise InvalidArgument(f"{where}: scope must be a string")
    if scope == "":
        return scope
    if transport in _DOCKER_LIKE:
        try:
            validate_docker_scope(scope)
        except ValueError as e:
            raise InvalidArgument(f"{where}: invalid {transport} scope {scope!r}: {e}") from None
    elif transport in _PATH_SCOPED and (not scope.startswith("/") or scope == "/"):
        raise InvalidArgument(f"{where}: invalid {transport} scope {scope!r}: must be an "
                              "absolute path other than \"/\" (use \"\" for the transport "
                              "default)")
    return scope


def parse_policy(data: bytes, *, base_dir: Path | None = None,
                 origin: str = "policy") -> Policy:
    """Parse policy.json bytes; raise InvalidArgument naming the offending field.

    Key paths must be absolute; when ``base_dir`` is given (the directory of the policy file)
    relative key paths are resolved against it instead of being refused.
    """
    doc = load_strict(data, origin, MAX_POLICY_SIZE)
    try:
        expect_object(doc, "policy", required={"default"}, optional={"transports"})
        default = parse_requirements(doc["default"], "default", base_dir)
        transports: dict[str, dict[str, tuple[Requirement, ...]]] = {}
        raw = doc.get("transports", {})
        if not isinstance(raw, dict):
            raise InvalidArgument(f"transports: expected an object, got {kind_of(raw)}")
        for name, scopes in raw.items():
            where = f"transports.{name}"
            if name not in KNOWN_TRANSPORTS:
                raise InvalidArgument(f"{where}: unknown transport {name!r}")
            if not isinstance(scopes, dict):
                raise InvalidArgument(f"{where}: expected an object of scopes, "
                                      f"got {kind_of(scopes)}")
            parsed: dict[str, tuple[Requirement, ...]] = {}
            for scope, reqs in scopes.items():
                scope_where = f'{where}["{scope}"]'
                _validate_scope(name, scope, scope_where)
                parsed[scope] = tuple(parse_requirements(reqs, scope_where, base_dir))
            transports[name] = parsed
    except InvalidArgument as e:
        raise InvalidArgument(f"{origin}: {e.message}") from None
    return Policy(tuple(default), transports, origin)


def load_policy(path: Path | str, *, origin: str | None = None) -> Policy:
    """Read and parse a policy file (bounded); relative key paths in it are refused."""
    path = Path(path)
    name = origin or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_POLICY_SIZE + 1)
    except OSError as e:
        raise InvalidArgument(f"cannot read policy {str(path)!r}: {e.strerror or e}") from None
    return parse_policy(data, origin=name)
