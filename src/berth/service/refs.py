"""Finding a project's object by what a user calls it: its id, its name, or an id prefix."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.errors import InvalidArgument, NotFound

Row = TypeVar("Row")
HEX = frozenset("0123456789abcdef")


def find_by_ref(s: Session, model: type[Row], project_id: str, ref: str, kind: str) -> Row:
    """The row of ``model`` (with id, name and project_id columns) that ``ref`` names: an
    exact id or name first, then a unique id prefix; NotFound says "no such <kind>"."""
    m: Any = model
    q = select(m).where(m.project_id == project_id)
    row = s.scalars(q.where((m.id == ref) | (m.name == ref))).first()
    if row is None and ref and set(ref) <= HEX:
        found = s.scalars(q.where(m.id.startswith(ref))).all()
        if len(found) > 1:
            raise InvalidArgument(f"{kind} {ref} is ambiguous ({len(found)} {kind}s have that "
                                  "id prefix)")
        row = found[0] if found else None
    if row is None:
        raise NotFound(f"no such {kind}: {ref}")
    return row  # type: ignore[no-any-return]
