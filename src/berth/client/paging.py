"""Paged lists in the SDK: one page when the caller gives a limit, every page otherwise.

The API answers a list as a JSON array and names the next page's start in the
X-Berth-Next-Marker header. ``list()`` without ``limit`` follows those markers and returns
everything (as before pagination existed); with ``limit`` it returns one page, whose
``next_marker`` is what to pass as ``marker`` for the next.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any

    from berth.client.transport import Transport

NEXT_MARKER = "X-Berth-Next-Marker"
PAGE_MAX = 1000  # the most the API gives in one page


class Page(list):
    """A list of items and ``next_marker``: None on the last page."""

    next_marker: str | None = None


def sort_params(sort: str | None) -> dict[str, str]:
    """"created_at" or "created_at:desc" -> the API's sort_key and sort_dir."""
    if not sort:
        return {}
    key, _, direction = sort.partition(":")
    return {"sort_key": key, **({"sort_dir": direction} if direction else {})}


def fetch(t: Transport, path: str, params: dict[str, Any], *, limit: int | None = None,
          marker: str | None = None, sort: str | None = None,
          selector: str | None = None) -> Page:
    base = {**params, **sort_params(sort), "selector": selector or None}
    if limit is not None:
        return _page(t, path, {**base, "limit": limit, "marker": marker})
    out = Page()
    while True:
        page = _page(t, path, {**base, "limit": PAGE_MAX, "marker": marker})
        out.extend(page)
        if not page.next_marker:
            return out
        marker = page.next_marker


def _page(t: Transport, path: str, params: dict[str, Any]) -> Page:
    resp = t.open("GET", path, params)
    page = Page(json.loads(resp.read() or b"[]"))
    page.next_marker = resp.getheader(NEXT_MARKER) or None
    return page
