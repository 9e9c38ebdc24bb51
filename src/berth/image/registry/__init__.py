"""OCI distribution-spec registry client: pull and push images, read manifests, tags and
small blobs. Synchronous (httpx.Client); a daemon runs pulls in a worker thread."""

from berth.image.registry.client import ManifestInfo, RegistryClient
from berth.image.registry.config import Credentials, CredentialsFn, RegistryConfig, RegistryLimits
from berth.image.registry.manifest import Descriptor, Platform
from berth.image.registry.platforms import host_platform
from berth.image.registry.pull import PulledImage, pull
from berth.image.registry.push import push

__all__ = [
    "Credentials",
    "CredentialsFn",
    "Descriptor",
    "ManifestInfo",
    "Platform",
    "PulledImage",
    "RegistryClient",
    "RegistryConfig",
    "RegistryLimits",
    "host_platform",
    "pull",
    "push",
]
