"""Pagination and sorting for every list: limit + marker (keyset, in SQL), sort_key/sort_dir.

A page is ordered by the chosen key, then by tie-breakers that make the order total (ids), so
the next page starts strictly after the previous page's last item: ``(key, id) > (its key,
its id)``. That is one indexed range scan however deep the page, and items created or removed
meanwhile never shift a page (unlike offsets). The marker names the last item of the previous
page; it must still be visible to the caller, else the request is refused (400).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session

from berth.errors import InvalidArgument

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100  # a page without ?limit; the SDK follows the markers for callers who want all
SORT_DIRS = ("asc", "desc")
_BATCH, _MAX_BATCH = 200, 5000  # rows read at a time when some filter runs in Python


@dataclass(frozen=True)
class PageRequest:
    """What a caller asked for; None means the resource's default."""

    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    sort_key: str | None = None
    sort_dir: str | None = None


class Listing(list):
    """One page of a list: the items, and ``next_marker`` (None on the last page)."""

    next_marker: str | None = None


@dataclass(frozen=True)
class Sort:
    """A resource's sorting: the keys callers may use, and its default order."""

    keys: tuple[str, ...]
    default_key: str
    default_dir: str

    def choose(self, page: PageRequest | None) -> tuple[str, bool]:
        """(sort key, descending?). An omitted sort_dir is the default order's direction for
        the default key, else ascending."""
        page = page or PageRequest()
        if not 1 <= page.limit <= MAX_LIMIT:
            raise InvalidArgument(f"limit: must be 1 to {MAX_LIMIT}, not {page.limit}")
        key = page.sort_key or self.default_key
        if key not in self.keys:
            raise InvalidArgument(f"invalid sort_key {key!r}: use {', '.join(self.keys)}")
        direction = page.sort_dir or (self.default_dir if key == self.default_key else "asc")
        if direction not in SORT_DIRS:
            raise InvalidArgument(f"invalid sort_dir {direction!r}: use asc or desc")
        return key, direction == "desc"


def marker_position(s: Session, scope: Select, order: Sequence[Any], where: Any,
                    marker: str) -> tuple[Any, ...]:
    """The sort values of the marker's row, looked up among all the caller may see (not just
    what the filters keep: a container that stopped since still marks its place)."""
    found = s.execute(scope.with_only_columns(*order).where(where).limit(2)).all()
    if not found:
        raise InvalidArgument(f"invalid marker {marker!r}: no such item (it must name the "
                              "last item of the previous page)")
    if len(found) > 1:
        raise InvalidArgument(f"ambiguous marker {marker!r}: several items have that name; "
                              "use the marker the previous page gave (X-Berth-Next-Marker)")
    return tuple(found[0])


def page_rows(s: Session, query: Select, order: Sequence[Any], desc: bool,
              limit: int | None, after: tuple[Any, ...] | None = None,
              keep: Callable[[Any], bool] | None = None) -> tuple[list[Any], bool]:
    """Rows of ``query`` in order, strictly after ``after``, at most ``limit`` (None: all)
    of those ``keep`` accepts. Returns them and whether more follow."""
    ordered = query.order_by(*(c.desc() if desc else c.asc() for c in order))
    out: list[Any] = []
    cursor = after
    grow = _BATCH
    while True:
        q = ordered
        if cursor is not None:
            position = tuple_(*order) < tuple_(*cursor) if desc else \
                tuple_(*order) > tuple_(*cursor)
            q = q.where(position)
        want = None if limit is None else limit + 1 - len(out)
        batch = want if keep is None or want is None else max(want, grow)
        grow = min(grow * 4, _MAX_BATCH)
        rows = s.scalars(q if batch is None else q.limit(batch)).all()
        for row in rows:
            if keep is None or keep(row):
                out.append(row)
                if limit is not None and len(out) > limit:
                    return out[:limit], True
        if batch is None or len(rows) < batch:
            return out, False
        cursor = tuple(_value(rows[-1], c) for c in order)


def _value(row: Any, column: Any) -> Any:
    return getattr(row, column.key)


def listing(items: list[Any], more: bool, marker_of: Callable[[Any], str]) -> Listing:
    page = Listing(items)
    page.next_marker = marker_of(items[-1]) if more and items else None
    return page
