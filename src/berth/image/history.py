"""An image's history as ``docker history`` shows it: one row per step, newest first.

Rows hold only plain values, so ``dataclasses.asdict`` (or ``vars``) gives JSON.

The config's ``history`` list has one entry per build step; entries without ``empty_layer``
produced the layers, in order. Configs come from anywhere, so nothing in them is trusted to
be well formed: a missing or short history still gives one row per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from berth.image.types import LayerRef


@dataclass(frozen=True)
class HistoryEntry:
    created: str | None  # RFC 3339, as the config has it
    created_by: str
    size: int  # the layer's (stored) size; 0 for a step that changed no files
    comment: str
    empty_layer: bool
    layer: str | None  # digest of the layer blob this step produced, if any
    diff_id: str | None  # and that layer's diff_id
    id: str | None = None  # the image id, on the newest row only (older steps have none)


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return value if isinstance(value, str) else ""


def _row(entry: dict[str, Any], layer: LayerRef | None, *, empty: bool) -> HistoryEntry:
    created = entry.get("created")
    return HistoryEntry(created=created if isinstance(created, str) and created else None,
                        created_by=_text(entry, "created_by"),
                        size=layer.size if layer else 0, comment=_text(entry, "comment"),
                        empty_layer=empty, layer=layer.digest if layer else None,
                        diff_id=layer.diff_id if layer else None)


def image_history(config: dict[str, Any], layers: list[LayerRef], *,
                  image_id: str | None = None) -> list[HistoryEntry]:
    """History rows, newest first, each non-empty step paired with its layer.

    Steps are matched to layers from the top: when a base image carried no history (and a
    later commit added some), its layers get rows of their own below the recorded steps, and
    non-empty steps beyond the layers there are (a broken config) show no layer.
    """
    raw = config.get("history") if isinstance(config, dict) else None
    entries = [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []
    steps = [i for i, e in enumerate(entries) if e.get("empty_layer") is not True]
    spare = max(0, len(layers) - len(steps))
    paired = dict(zip(reversed(steps), reversed(layers[spare:]), strict=False))
    rows = [_row({}, layer, empty=False) for layer in layers[:spare]]
    rows += [_row(e, paired.get(i), empty=e.get("empty_layer") is True)
             for i, e in enumerate(entries)]
    rows.reverse()
    if rows and image_id:
        rows[0] = replace(rows[0], id=image_id)
    return rows
