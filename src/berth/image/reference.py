"""Image references ("busybox", "localhost:5000/a/b:1.0", "x@sha256:..."), Docker's grammar.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component [ "/" path-component ]*
    component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [\\w][\\w.-]{0,127}
    digest     := "sha256:" 64 lowercase hex

The first part is a domain only if it has a "." or ":" or is "localhost"; a name without one
lives on Docker Hub, where a single-component name gets the "library/" prefix.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from berth.errors import InvalidArgument

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
DEFAULT_TAG = "latest"
MAX_NAME = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)  # Go's \w: [0-9A-Za-z_], no other letters
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_PORT = re.compile(r":([0-9]+)\Z")


def _invalid(text: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid reference format: {why}: {text!r}")


@dataclass(frozen=True)
class Reference:
    registry: str | None  # None: Docker Hub
    repository: str  # path at the registry ("library/busybox" on Docker Hub)
    tag: str | None = None
    digest: str | None = None

    @property
    def domain(self) -> str:
        return self.registry or DOCKER_HUB

    @property
    def name(self) -> str:
        """The short repository name: "busybox", "user/app", "localhost:5000/app". It parses
        back to the same repository: Docker Hub's "library/a/b" and "my.org/app" keep
        what would otherwise read as another repository or a registry domain."""
        if self.registry is not None:
            return f"{self.registry}/{self.repository}"
        short = self.repository.removeprefix("library/")
        if "/" in short and short != self.repository:
            short = self.repository  # "library/a/b": "a/b" would be user a's repository
        first, sep, _ = short.partition("/")
        if sep and ("." in first or first == "localhost"):
            return f"{DOCKER_HUB}/{short}"
        return short

    def familiar(self) -> str:
        """The name as Docker shows it: "busybox:latest", "localhost:5000/app@sha256:..."."""
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_default_tag(self) -> Reference:
        """Add the "latest" tag to a reference that names neither a tag nor a digest."""
        if self.tag is None and self.digest is None:
            return replace(self, tag=DEFAULT_TAG)
        return self

    def __str__(self) -> str:
        out = f"{self.domain}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def validate_tag(tag: str) -> str:
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise InvalidArgument(f"invalid tag format: {tag!r}")
    return tag


def parse_reference(text: str) -> Reference:
    if not isinstance(text, str) or not text:
        raise _invalid(str(text), "empty reference")
    if any(c.isspace() for c in text) or "\x00" in text:
        raise _invalid(text, "contains whitespace")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise _invalid(text, "digest must be sha256:<64 lowercase hex>")
    tag = None
    # A ":" after the last "/" is a tag; before it, it belongs to a domain's port.
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise _invalid(text, "invalid tag")
    if not rest:
        raise _invalid(text, "missing repository name")
    if len(rest) > MAX_NAME:  # checked again on the full name: this bounds the regexes' work
        raise _invalid(text, f"repository name longer than {MAX_NAME} characters")
    registry: str | None = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN.fullmatch(first):
            raise _invalid(text, "invalid registry domain")
        if first.startswith("["):  # the pattern lets "[:]" through; URL parsers do not
            try:
                ipaddress.IPv6Address(first[1:first.index("]")])
            except ValueError:
                raise _invalid(text, "invalid IPv6 address") from None
        port = _PORT.search(first)
        if port and int(port.group(1)) > 65535:  # the socket layer would wrap it to another
            raise _invalid(text, "registry port out of range")
        # Host names are case-insensitive: one spelling, so that trust-policy scopes (string
        # matches), stored credentials and image names agree -- "REG.example.com/x" must not
        # slip past a policy written for reg.example.com.
        registry, path = first.lower(), remainder
    else:
        path = rest
    components = path.split("/")
    for comp in components:
        if not _COMPONENT.fullmatch(comp):
            if _COMPONENT.fullmatch(comp.lower()):
                raise _invalid(text, "repository name must be lowercase")
            raise _invalid(text, "invalid repository name")
    if registry in _HUB_ALIASES:
        registry = None
    if registry is None and len(components) == 1:
        path = f"library/{path}"
    ref = Reference(registry=registry, repository=path, tag=tag, digest=digest)
    # Docker bounds the normalised name, so that every spelling of a reference agrees
    if len(f"{ref.domain}/{ref.repository}") > MAX_NAME:
        raise _invalid(text, f"repository name longer than {MAX_NAME} characters")
    return ref


def normalize_tag_reference(text: str) -> str:
    """A "name:tag" string in its familiar form, e.g. "docker.io/library/a" -> "a:latest"."""
    ref = parse_reference(text)
    if ref.digest is not None:
        raise _invalid(text, "a tag cannot contain a digest")
    return ref.with_default_tag().familiar()
