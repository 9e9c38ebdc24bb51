"""The signature extension's list parser: bounded, strict about what it keeps, and quiet about
entries of other kinds (as containers/image is)."""

from __future__ import annotations

import base64
import json

import pytest

from berth.errors import UnsafeContent, UpstreamFailure
from berth.image.registry.sigext import parse_list
from berth.image.signature.common import MAX_SIGNATURES

DIGEST = "sha256:" + "ab" * 32


def entry(data: bytes, **kw: object) -> dict[str, object]:
    doc: dict[str, object] = {"schemaVersion": 2, "type": "atomic",
                              "name": f"{DIGEST}@{'0' * 32}",
                              "content": base64.b64encode(data).decode()}
    doc.update(kw)
    return doc


def test_atomic_schema_2_entries_are_kept_in_order_others_skipped() -> None:
    doc = {"signatures": [entry(b"one"), entry(b"other", type="cosign"),
                          entry(b"old", schemaVersion=1), entry(b"two")]}
    assert [c for _, c in parse_list(json.dumps(doc).encode(), "r")] == [b"one", b"two"]
    assert parse_list(b"{}", "r") == []
    assert parse_list(b'{"signatures": []}', "r") == []


@pytest.mark.parametrize("doc, reason", [
    (b"[]", "expected"),
    (b"nope", "not JSON"),
    (b'{"signatures": "x"}', "expected"),
    (json.dumps({"signatures": [entry(b"x", content=5)]}).encode(), "lacks"),
    (json.dumps({"signatures": [entry(b"x", name=None)]}).encode(), "lacks"),
    (json.dumps({"signatures": [entry(b"x", content="@@@")]}).encode(), "not base64"),
    (json.dumps({"signatures": [entry(b"")]}).encode(), "empty"),
])
def test_malformed_lists_are_refused_naming_the_source(doc: bytes, reason: str) -> None:
    with pytest.raises(UpstreamFailure, match=reason) as exc:
        parse_list(doc, "registry r.example")
    assert "registry r.example" in exc.value.message


def test_too_many_or_too_large_signatures_are_refused() -> None:
    many = {"signatures": [entry(b"s%d" % i) for i in range(MAX_SIGNATURES + 1)]}
    with pytest.raises(UnsafeContent, match="more than"):
        parse_list(json.dumps(many).encode(), "r")
    huge = {"signatures": [entry(b"x", content="A" * (6 << 20))]}
    with pytest.raises(UnsafeContent, match="larger than"):
        parse_list(json.dumps(huge).encode(), "r")
