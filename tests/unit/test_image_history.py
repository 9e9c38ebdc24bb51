"""``docker history`` rows from an image config and its layers."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from berth.image.history import HistoryEntry, image_history
from berth.image.types import LayerRef


def layer(n: int) -> LayerRef:
    return LayerRef(f"sha256:{n:064x}", f"sha256:{n + 100:064x}", n * 1000,
                    "application/vnd.oci.image.layer.v1.tar+gzip")


def ids(n: int) -> tuple[str, str]:
    return layer(n).digest, layer(n).diff_id


def step(by: str, *, empty: bool = False, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"created": f"2024-01-0{len(by) % 9 + 1}T00:00:00Z",
                             "created_by": by, **extra}
    if empty:
        entry["empty_layer"] = True
    return entry


def test_steps_pair_with_layers_newest_first() -> None:
    config = {"history": [step("ADD rootfs"), step("ENV A=1", empty=True),
                          step("RUN make", comment="built")]}
    rows = image_history(config, [layer(1), layer(2)], image_id="sha256:" + "f" * 64)
    assert [(r.created_by, r.size, r.empty_layer, r.layer, r.diff_id) for r in rows] == [
        ("RUN make", 2000, False, *ids(2)), ("ENV A=1", 0, True, None, None),
        ("ADD rootfs", 1000, False, *ids(1))]
    assert rows[0].comment == "built" and rows[0].id == "sha256:" + "f" * 64
    assert rows[1].id is None and rows[2].id is None
    assert rows[2].created == "2024-01-02T00:00:00Z"


def test_no_history_gives_one_row_per_layer() -> None:
    for config in ({}, {"history": None}, {"history": "nonsense"}):
        rows = image_history(config, [layer(1), layer(2)])
        assert rows == [
            HistoryEntry(None, "", 2000, "", False, *ids(2)),
            HistoryEntry(None, "", 1000, "", False, *ids(1))]
    assert image_history({}, []) == []


def test_base_without_history_then_a_commit() -> None:
    config = {"history": [step("commit", comment="mine")]}
    rows = image_history(config, [layer(1), layer(2), layer(3)])
    assert [(r.created_by, r.layer) for r in rows] == [
        ("commit", layer(3).digest), ("", layer(2).digest), ("", layer(1).digest)]


def test_more_steps_than_layers_and_junk_entries() -> None:
    config = {"history": [step("lost"), 7, step("ADD"), {"created": 5, "created_by": ["x"]},
                          step("noop", empty=True)]}
    rows = image_history(config, [layer(1), layer(2)])
    assert [(r.created_by, r.size, r.layer, r.empty_layer) for r in rows] == [
        ("noop", 0, None, True), ("", 2000, layer(2).digest, False),
        ("ADD", 1000, layer(1).digest, False), ("lost", 0, None, False)]
    assert rows[1].created is None


def test_empty_commit_row() -> None:
    config = {"history": [step("ADD"), step("", empty=True, comment="no change")]}
    rows = image_history(config, [layer(1)], image_id="sha256:" + "a" * 64)
    assert rows[0] == HistoryEntry("2024-01-01T00:00:00Z", "", 0, "no change", True, None,
                                   None, "sha256:" + "a" * 64)
    assert json.loads(json.dumps(asdict(rows[1])))["layer"] == layer(1).digest
