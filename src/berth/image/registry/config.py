"""What a caller tells the registry client: which hosts are plain HTTP, whose credentials to
use, how patient to be and how much untrusted input to accept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never let a password reach a log through repr()
        return f"Credentials(username={self.username!r}, password=<hidden>)"


CredentialsFn = Callable[[str], Credentials | None]


def no_credentials(host: str) -> Credentials | None:
    """The default lookup: anonymous everywhere."""
    return None


@dataclass(frozen=True)
class RegistryLimits:
    """Bounds on what a registry may send us (a registry may be hostile)."""

    max_manifest_bytes: int = 4 << 20
    max_config_bytes: int = 8 << 20
    max_json_depth: int = 32
    max_layers: int = 1000
    max_index_entries: int = 1000
    max_index_depth: int = 3  # an index naming an index naming a manifest is depth 2
    max_blob_bytes: int = 64 << 30
    max_redirects: int = 5
    max_error_body: int = 16 << 10
    max_token_body: int = 1 << 20
    max_tags: int = 100_000


@dataclass(frozen=True)
class RegistryConfig:
    """``insecure`` hosts ("HOST:PORT" as in the reference) are spoken to over plain HTTP;
    every other host over HTTPS with certificate checks."""

    insecure: frozenset[str] = frozenset()
    ca_bundle: Path | None = None  # extra CA file for private registries (default: system CAs)
    timeout: float = 60.0  # seconds without progress on one request
    connect_timeout: float = 10.0
    attempts: int = 4  # per request or blob download, first try included
    backoff: float = 0.5  # seconds before the 2nd attempt; doubles each time
    max_backoff: float = 8.0
    chunk_size: int = 32 << 20  # uploads bigger than this go up in PATCH chunks of this size
    limits: RegistryLimits = field(default_factory=RegistryLimits)
    user_agent: str = "berth/0.1"

    def scheme_for(self, host: str) -> str:
        return "http" if host in self.insecure else "https"


def api_host(domain: str) -> str:
    """The host that serves the registry API for a reference's domain (Docker Hub's differs)."""
    return DOCKER_HUB_API if domain == DOCKER_HUB else domain
