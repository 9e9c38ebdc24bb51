"""Parsing and validating manifests, indexes and image configs sent by a registry.

Pure functions over bytes: every count, size and nesting depth is bounded, and each error
names where the bad document came from (``where``: "host/repo@digest").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidArgument, UnsafeContent
from berth.image.registry import mediatypes as mt
from berth.image.registry.config import RegistryLimits

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# A string runs to its closing quote or, unterminated, to the end of the text: a pattern that
# could fail would be retried from every later quote (quadratic on an opening quote followed
# by many escaped ones).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


def check_json_depth(text: str, max_depth: int, where: str) -> None:
    """Refuse JSON nested deeper than ``max_depth`` before json.loads recurses into it."""
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise UnsafeContent(f"{where}: JSON nested deeper than {max_depth} levels")
        else:
            depth -= 1


def load_json(data: bytes, max_depth: int, where: str) -> dict[str, Any]:
    """A JSON object from untrusted bytes (UTF-8, bounded depth)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeContent(f"{where}: not UTF-8 JSON") from None
    check_json_depth(text, max_depth, where)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UnsafeContent(f"{where}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UnsafeContent(f"{where}: not a JSON object")
    return doc


def _field(obj: dict[str, Any], key: str, typ: type, where: str, required: bool = True) -> Any:
    value = obj.get(key)
    if value is None:
        if required:
            raise UnsafeContent(f"{where}: missing {key!r}")
        return None
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
        raise UnsafeContent(f"{where}: {key!r} has the wrong type")
    return value


def document_media_type(doc: dict[str, Any], content_type: str | None, where: str) -> str:
    """The media type of a manifest: its own mediaType field, else the Content-Type header.
    Schema 1 (deprecated, unsigned-by-digest) is refused here."""
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise UnsafeContent(f"{where}: 'mediaType' has the wrong type")
    header = (content_type or "").split(";")[0].strip().lower()
    if doc.get("schemaVersion") == 1 or header in mt.DOCKER_SCHEMA1 \
            or declared in mt.DOCKER_SCHEMA1:
        raise InvalidArgument(f"{where} uses the Docker schema 1 manifest format, which Berth "
                              "does not support; push the image again with a current tool")
    if doc.get("schemaVersion") != 2:
        raise UnsafeContent(f"{where}: unsupported manifest schemaVersion")
    if isinstance(declared, str) and declared:
        media_type = declared
    elif "manifests" in doc:
        media_type = header if header in mt.INDEXES else mt.OCI_INDEX
    else:
        media_type = header if header in mt.MANIFESTS else mt.OCI_MANIFEST
    if media_type not in mt.MANIFESTS | mt.INDEXES:
        raise UnsafeContent(f"{where}: not an image manifest or index "
                            f"(media type {media_type[:100]!r})")
    return media_type


def parse_descriptor(obj: Any, where: str, max_size: int) -> Descriptor:
    if not isinstance(obj, dict):
        raise UnsafeContent(f"{where}: descriptor is not a JSON object")
    media_type = _field(obj, "mediaType", str, where)
    digest = _field(obj, "digest", str, where)
    size = _field(obj, "size", int, where)
    if not _DIGEST.fullmatch(digest):
        raise UnsafeContent(f"{where}: unsupported digest {digest[:80]!r} "
                            "(expected sha256:<64 hex>)")
    if size < 0 or size > max_size:
        raise UnsafeContent(f"{where}: {digest} has size {size}, outside 0..{max_size}")
    platform = None
    plat = obj.get("platform")
    if plat is not None:
        if not isinstance(plat, dict):
            raise UnsafeContent(f"{where}: platform is not a JSON object")
        platform = Platform(str(_field(plat, "os", str, where)),
                            str(_field(plat, "architecture", str, where)),
                            _field(plat, "variant", str, where, required=False) or None)
    return Descriptor(media_type, digest, size, platform)


def parse_index(doc: dict[str, Any], limits: RegistryLimits, where: str) -> list[Descriptor]:
    entries = _field(doc, "manifests", list, where)
    if len(entries) > limits.max_index_entries:
        raise UnsafeContent(f"{where}: more than {limits.max_index_entries} manifests")
    return [parse_descriptor(e, f"{where}: manifests[{i}]", limits.max_manifest_bytes)
            for i, e in enumerate(entries)]


def parse_image_manifest(doc: dict[str, Any], limits: RegistryLimits,
                         where: str) -> tuple[Descriptor, list[Descriptor]]:
    """The config and layer descriptors of an image manifest, each one checked."""
    config = parse_descriptor(_field(doc, "config", dict, where), f"{where}: config",
                              limits.max_config_bytes)
    if config.media_type not in mt.CONFIGS:
        raise UnsafeContent(f"{where} is not a container image (its config has media type "
                            f"{config.media_type[:100]!r})")
    raw_layers = _field(doc, "layers", list, where)
    if len(raw_layers) > limits.max_layers:
        raise UnsafeContent(f"{where} has {len(raw_layers)} layers, more than the limit of "
                            f"{limits.max_layers}")
    layers = []
    for i, raw in enumerate(raw_layers):
        at = f"{where}: layer {i}"
        layer = parse_descriptor(raw, at, limits.max_blob_bytes)
        if raw.get("urls") is not None:
            raise UnsafeContent(f"{at} ({layer.digest}) has external 'urls'; Berth only "
                                "downloads layers from the registry itself")
        if mt.is_foreign(layer.media_type):
            raise UnsafeContent(f"{at} ({layer.digest}) is a foreign / non-distributable "
                                f"layer ({layer.media_type[:100]}), which Berth refuses")
        if layer.media_type == mt.OCI_LAYER_ZSTD:
            raise UnsafeContent(f"{at} ({layer.digest}) is zstd compressed, which Berth does "
                                "not support yet")
        if layer.media_type not in mt.LAYERS:
            raise UnsafeContent(f"{at} ({layer.digest}) has unknown media type "
                                f"{layer.media_type[:100]!r}")
        layers.append(layer)
    return config, layers


def parse_image_config(data: bytes, layer_count: int, limits: RegistryLimits,
                       where: str) -> tuple[dict[str, Any], list[str]]:
    """The image config and its diff_ids, which must pair one-to-one with the layers."""
    doc = load_json(data, limits.max_json_depth, where)
    rootfs = _field(doc, "rootfs", dict, where)
    if rootfs.get("type") != "layers":
        raise UnsafeContent(f"{where}: rootfs.type must be 'layers'")
    diff_ids = _field(rootfs, "diff_ids", list, where)
    for d in diff_ids:
        if not isinstance(d, str) or not _DIGEST.fullmatch(d):
            raise UnsafeContent(f"{where}: invalid diff_id {str(d)[:80]!r}")
    if len(diff_ids) != layer_count:
        raise UnsafeContent(f"{where}: the config lists {len(diff_ids)} diff_ids but the "
                            f"manifest has {layer_count} layers")
    for key in ("os", "architecture"):
        _field(doc, key, str, where, required=False)
    return doc, diff_ids
