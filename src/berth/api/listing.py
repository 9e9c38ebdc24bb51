"""What every list of the native API shares: ?limit, ?marker, ?sort_key, ?sort_dir, ?selector,
and the next page's marker in the X-Berth-Next-Marker header.

A list is still a JSON array (what the CLI and SDK always consumed); a page with more after it
says where the next one starts in the header, and the last page has no such header. Without
?limit a page holds up to 100 items (at most 1000 with ?limit).
"""

# No `from __future__ import annotations` here: the dependency's annotations are built per
# resource (its own sort keys) and FastAPI reads them at route definition time.

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import JSONResponse

from berth.service.paging import DEFAULT_LIMIT, MAX_LIMIT, Listing, PageRequest, Sort
from berth.service.selectors import MAX_LENGTH

NEXT_MARKER = "X-Berth-Next-Marker"
# Declared on every list route, so the OpenAPI document (and schemathesis) knows the header.
PAGED: dict[int | str, dict[str, Any]] = {200: {"headers": {NEXT_MARKER: {
    "description": "present when more items follow: pass it as ?marker= for the next page",
    "schema": {"type": "string"}}}}}

SelectorParam = Annotated[str | None, Query(
    max_length=MAX_LENGTH,
    description="label selector, Kubernetes grammar: app=web,tier!=db,env in (a,b),"
                "env notin (c),key,!key")]


def paging(sort: Sort) -> Callable[..., PageRequest]:
    """A dependency reading one resource's paging and sorting parameters."""
    keys = Literal[sort.keys]  # type: ignore[valid-type]

    def page(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT,
                                    description="most items in this page")] = DEFAULT_LIMIT,
        marker: Annotated[str | None, Query(
            min_length=1, max_length=400,
            description="the last item of the previous page (its X-Berth-Next-Marker); "
                        "unknown: 400")] = None,
        sort_key: Annotated[keys | None, Query(  # type: ignore[valid-type]
            description=f"default {sort.default_key}")] = None,
        sort_dir: Annotated[Literal["asc", "desc"] | None, Query(
            description=f"default {sort.default_dir} for {sort.default_key}, else asc")
        ] = None,
    ) -> PageRequest:
        return PageRequest(limit=limit, marker=marker, sort_key=sort_key, sort_dir=sort_dir)

    return page


def paged(items: Listing, view: Callable[[Any], Any] | None = None) -> JSONResponse:
    """The page as a JSON array, and where the next one starts (if one does)."""
    body: Iterable[Any] = items if view is None else (view(item) for item in items)
    headers = {NEXT_MARKER: items.next_marker} if items.next_marker else None
    return JSONResponse(list(body), headers=headers)
