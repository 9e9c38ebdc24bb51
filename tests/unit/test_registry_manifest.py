"""Validation of manifests, indexes and configs a registry sends (pure, no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from berth.errors import InvalidArgument, NotFound, UnsafeContent
from berth.image.registry import mediatypes as mt
from berth.image.registry.config import RegistryLimits
from berth.image.registry.manifest import (
    Descriptor,
    Platform,
    check_json_depth,
    document_media_type,
    load_json,
    parse_image_config,
    parse_image_manifest,
    parse_index,
)
from berth.image.registry.platforms import select

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
LIMITS = RegistryLimits()


def manifest(**layer_extra: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": D1, "size": 10},
            "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": D2, "size": 5,
                        **layer_extra}]}


def test_good_manifest() -> None:
    config, layers = parse_image_manifest(manifest(), LIMITS, "m")
    assert config == Descriptor(mt.OCI_CONFIG, D1, 10)
    assert layers == [Descriptor(mt.OCI_LAYER_GZIP, D2, 5)]


@pytest.mark.parametrize("extra,words", [
    ({"urls": ["https://example.com/layer"]}, "external 'urls'"),
    ({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}, "foreign"),
    ({"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"},
     "non-distributable"),
    ({"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd"}, "zstd"),
    ({"mediaType": "application/x-evil"}, "unknown media type"),
    ({"digest": "sha512:" + "a" * 128}, "unsupported digest"),
    ({"digest": "sha256:../../etc/passwd"}, "unsupported digest"),
    ({"size": -1}, "outside"),
    ({"size": "5"}, "wrong type"),
    ({"size": True}, "wrong type"),
])
def test_bad_layers_are_refused(extra: dict[str, Any], words: str) -> None:
    with pytest.raises(UnsafeContent, match=words):
        parse_image_manifest(manifest(**extra), LIMITS, "m")


def test_layer_count_is_bounded() -> None:
    doc = manifest()
    doc["layers"] = doc["layers"] * 3
    with pytest.raises(UnsafeContent, match="more than the limit of 2"):
        parse_image_manifest(doc, RegistryLimits(max_layers=2), "m")


def test_non_image_config_is_refused() -> None:
    doc = manifest()
    doc["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    with pytest.raises(UnsafeContent, match="not a container image"):
        parse_image_manifest(doc, LIMITS, "m")


def test_schema1_is_refused_clearly() -> None:
    with pytest.raises(InvalidArgument, match="schema 1"):
        document_media_type({"schemaVersion": 1, "fsLayers": []}, None, "m")
    with pytest.raises(InvalidArgument, match="schema 1"):
        document_media_type({"schemaVersion": 2}, next(iter(mt.DOCKER_SCHEMA1)), "m")


def test_media_type_from_body_or_header() -> None:
    assert document_media_type({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST},
                               "text/plain", "m") == mt.DOCKER_MANIFEST
    assert document_media_type({"schemaVersion": 2, "manifests": []},
                               mt.DOCKER_LIST + "; charset=utf-8", "m") == mt.DOCKER_LIST
    assert document_media_type({"schemaVersion": 2, "config": {}}, None, "m") == mt.OCI_MANIFEST
    with pytest.raises(UnsafeContent, match="not an image manifest"):
        document_media_type({"schemaVersion": 2, "mediaType": "application/json"}, None, "m")


def test_json_depth_is_bounded_before_parsing() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(UnsafeContent, match="nested deeper"):
        load_json(deep.encode(), 32, "m")
    # brackets inside strings do not count
    check_json_depth(json.dumps({"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}), 3, "m")
    with pytest.raises(UnsafeContent, match="not a JSON object"):
        load_json(b"[]", 32, "m")
    with pytest.raises(UnsafeContent, match="UTF-8"):
        load_json(b"\xff\xfe", 32, "m")


def test_config_diff_ids_must_pair_with_layers() -> None:
    cfg = {"architecture": "amd64", "os": "linux",
           "rootfs": {"type": "layers", "diff_ids": [D1, D2]}}
    doc, diff_ids = parse_image_config(json.dumps(cfg).encode(), 2, LIMITS, "c")
    assert diff_ids == [D1, D2] and doc["os"] == "linux"
    with pytest.raises(UnsafeContent, match="2 diff_ids but the manifest has 3"):
        parse_image_config(json.dumps(cfg).encode(), 3, LIMITS, "c")
    cfg["rootfs"]["diff_ids"] = ["sha256:xyz", D2]
    with pytest.raises(UnsafeContent, match="invalid diff_id"):
        parse_image_config(json.dumps(cfg).encode(), 2, LIMITS, "c")


def index_of(*platforms: tuple[str, str, str | None]) -> list[Descriptor]:
    doc = {"schemaVersion": 2, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + f"{i:x}" * 64, "size": 100,
         "platform": {"os": o, "architecture": a, **({"variant": v} if v else {})}}
        for i, (o, a, v) in enumerate(platforms)]}
    return parse_index(doc, LIMITS, "idx")


def test_platform_selection() -> None:
    entries = index_of(("linux", "amd64", None), ("linux", "arm", "v6"), ("linux", "arm", "v7"),
                       ("linux", "arm64", "v8"))
    assert select(entries, ("linux", "amd64", None), "idx").platform == Platform("linux",
                                                                                  "amd64")
    assert select(entries, ("linux", "arm", "v7"), "idx").platform.variant == "v7"
    assert select(entries, ("linux", "arm64", None), "idx").platform.architecture == "arm64"
    with pytest.raises(NotFound, match="available: linux/amd64, linux/arm/v6"):
        select(entries, ("linux", "s390x", None), "idx")
    with pytest.raises(NotFound, match="platform windows/amd64"):
        select(entries, ("windows", "amd64", None), "idx")


def test_index_entries_are_bounded() -> None:
    with pytest.raises(UnsafeContent, match="more than 1 manifests"):
        parse_index({"manifests": [{}, {}]}, RegistryLimits(max_index_entries=1), "idx")
