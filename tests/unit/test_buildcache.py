"""Build cache selection rules (service/buildcache.py): which records keep-storage drops,
and which layer a step made."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from berth.service.buildcache import CacheEntry, _beyond, step_layer


def entry(key: str, size: int, touched: float, used: float | None = None) -> CacheEntry:
    return CacheEntry(key=key, image_id=f"sha256:{key}", description="", size=size,
                      in_use=False, final=False, shared=False, created_at=touched,
                      last_used_at=used, usage_count=1 if used else 0)


def test_keep_storage_drops_the_least_recently_used_until_within() -> None:
    a = entry("a", 100, touched=1.0)
    b = entry("b", 100, touched=2.0)
    c = entry("c", 100, touched=0.5, used=3.0)  # made first, used last
    every = [a, b, c]
    assert [e.key for e in _beyond(every, every, keep=200)] == ["a"]
    assert [e.key for e in _beyond(every, every, keep=100)] == ["a", "b"]
    assert _beyond(every, every, keep=300) == []
    assert [e.key for e in _beyond(every, every, keep=0)] == ["a", "b", "c"]


def test_keep_storage_counts_records_it_may_not_remove() -> None:
    """A record in use still takes room: the others go first to make up for it."""
    kept = entry("kept", 250, touched=0.1)
    a, b = entry("a", 100, touched=1.0), entry("b", 100, touched=2.0)
    assert [e.key for e in _beyond([kept, a, b], [a, b], keep=350)] == ["a"]
    assert [e.key for e in _beyond([kept, a, b], [a, b], keep=200)] == ["a", "b"]


def image(layers: list[dict[str, Any]], history: Any) -> Any:
    return SimpleNamespace(layers=layers, config={"history": history})


def test_the_layer_a_step_made() -> None:
    top = {"digest": "sha256:b", "size": 7}
    layers = [{"digest": "sha256:a", "size": 5}, top]
    assert step_layer(image(layers, [{}, {"created_by": "RUN x"}])) == top
    # a step that only set metadata made no layer, whatever the top layer is
    assert step_layer(image(layers, [{}, {}, {"empty_layer": True}])) is None
    assert step_layer(image([], [{"empty_layer": False}])) is None
    # a config without a usable history: the top layer is the last step's
    assert step_layer(image(layers, None)) == top
    assert step_layer(image(layers, "junk")) == top
