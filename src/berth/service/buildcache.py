"""A project's build cache: which image each Dockerfile step led to, as BuildKit keeps it.

A step's result is an image marked intermediate (store/models.py): listings hide it, image
prune leaves it alone. This module looks steps up for the builder, lists the cache for
`system df`, and prunes it (`builder prune`): the records, and the intermediate images no
record or container needs any more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from berth.errors import InvalidArgument
from berth.service.filters import PruneFilter
from berth.store.models import BuildCache, Container, Image

if TYPE_CHECKING:
    from berth.service.context import Context
    from berth.service.images import ImageService
    from berth.store.db import Store

# docker builder prune's filters that mean something here: build cache has no labels, so
# `label=` matches nothing and `label!=` everything (docker system prune passes them on).
PRUNE_FILTERS = {"until", "unused-for", "id", "label", "label!"}


@dataclass(frozen=True)
class CacheEntry:
    key: str  # sha256 hex of the step (parent image, instruction, sources, args)
    image_id: str
    description: str  # the step, as the image's history tells it
    size: int  # bytes of the layer the step made (0 for a step that only sets metadata)
    in_use: bool  # a container runs on its image
    final: bool  # its image is also someone's image (a build ended there, or it is tagged)
    shared: bool  # what the step made is part of someone's image too: pruning frees none of it
    created_at: float
    last_used_at: float | None
    usage_count: int

    @property
    def last_touched(self) -> float:
        return self.last_used_at or self.created_at


def step_layer(image: Image) -> dict[str, Any] | None:
    """The layer the image's last step made, or None for a step that only set metadata."""
    history = image.config.get("history")
    last = history[-1] if isinstance(history, list) and history else None
    if not image.layers or (isinstance(last, dict) and last.get("empty_layer")):
        return None
    return image.layers[-1]


def _size(layer: dict[str, Any] | None) -> int:
    size = layer.get("size") if layer is not None else None
    return size if isinstance(size, int) and size > 0 else 0


def _description(image: Image | None) -> str:
    history = image.config.get("history") if image is not None else None
    last = history[-1] if isinstance(history, list) and history else None
    text = last.get("created_by") if isinstance(last, dict) else None
    return text if isinstance(text, str) else ""


class BuildCacheService:
    def __init__(self, store: Store, images: ImageService) -> None:
        self.store, self.images = store, images

    # -- the builder's side ----------------------------------------------------------------

    def lookup(self, ctx: Context, key: str) -> str | None:
        """The image a step led to before, noting the use; None for a miss."""
        with self.store.session() as s:
            row = s.get(BuildCache, (ctx.project_id, key))
            if row is None:
                return None
            row.last_used_at, row.usage_count = time.time(), row.usage_count + 1
            return row.image_id

    def remember(self, ctx: Context, key: str, image_id: str) -> None:
        now = time.time()
        with self.store.session() as s:
            row = s.get(BuildCache, (ctx.project_id, key))
            if row is None:
                s.add(BuildCache(project_id=ctx.project_id, key=key, image_id=image_id,
                                 created_at=now, usage_count=0))
            else:  # built again (--no-cache): the new result replaces the old
                row.image_id, row.created_at, row.last_used_at = image_id, now, None
                row.usage_count = 0

    # -- what `system df` shows ------------------------------------------------------------

    def entries(self, ctx: Context) -> list[CacheEntry]:
        """The project's cache, oldest use first (a record whose image is gone is a miss,
        left out: prune drops it)."""
        with self.store.session() as s:
            rows = s.scalars(select(BuildCache).where(
                BuildCache.project_id == ctx.project_id)).all()
            ids = {row.image_id for row in rows}
            images = {img.id: img for img in s.scalars(select(Image).where(
                Image.project_id == ctx.project_id, Image.id.in_(ids)))} if ids else {}
            used = set(s.scalars(select(Container.image_id).where(
                Container.project_id == ctx.project_id)).all())
            held = {layer.get("digest") for layers in s.scalars(select(Image.layers).where(
                Image.project_id == ctx.project_id, Image.intermediate.is_(False)))
                for layer in layers} if rows else set()
            out = []
            for row in rows:
                image = images.get(row.image_id)
                if image is None:
                    continue
                layer = step_layer(image)
                out.append(CacheEntry(
                    key=row.key, image_id=row.image_id, description=_description(image),
                    size=_size(layer), in_use=image.id in used, final=not image.intermediate,
                    shared=not image.intermediate or (layer is not None and
                                                     layer.get("digest") in held),
                    created_at=row.created_at, last_used_at=row.last_used_at,
                    usage_count=row.usage_count))
        return sorted(out, key=lambda e: (e.last_touched, e.key))

    # -- builder prune ---------------------------------------------------------------------

    def prune(self, ctx: Context, all_: bool = False,
              filters: dict[str, list[str]] | None = None,
              keep_storage: int = 0) -> dict[str, Any]:
        """Drop cache records and the intermediate images nothing needs any more.

        By default only what is build cache and nothing else (records whose image is no
        one's image); all_: records of images a build ended at too (those images stay).
        filters: until / unused-for (not used since), id (a key prefix), label, label!.
        keep_storage: keep the most recently used records up to that many bytes. Records in
        use (a container runs on the image) stay. Returns the keys removed and the bytes
        freed."""
        wanted = dict(filters or {})
        unknown = sorted(set(wanted) - PRUNE_FILTERS)
        if unknown:
            raise InvalidArgument(f"invalid build cache filter {unknown[0]!r}: use "
                                  f"{', '.join(sorted(PRUNE_FILTERS))}")
        if keep_storage < 0:
            raise InvalidArgument("keep-storage: must not be negative")
        chosen = PruneFilter.parse(
            {**wanted, "until": wanted.get("until", []) + wanted.get("unused-for", [])})
        entries = self.entries(ctx)
        candidates = [e for e in entries if not e.in_use and (all_ or not e.final)
                      and chosen.matches({}, e.last_touched)
                      and all(e.key.startswith(prefix) for prefix in wanted.get("id", []))]
        if keep_storage:
            candidates = _beyond(entries, candidates, keep_storage)
        doomed = {e.key for e in candidates}
        with self.store.session() as s:
            for row in s.scalars(select(BuildCache).where(
                    BuildCache.project_id == ctx.project_id)).all():
                if row.key in doomed or s.get(Image, (ctx.project_id, row.image_id)) is None:
                    s.delete(row)  # pruned, or a miss for good (its image is gone)
            s.flush()
            kept = set(s.scalars(select(BuildCache.image_id).where(
                BuildCache.project_id == ctx.project_id)).all())
            # every intermediate image no record points at: pruned records' and orphans'
            # (a record rebuilt with --no-cache points at the new result)
            loose = [] if keep_storage or wanted else list(s.scalars(select(Image.id).where(
                Image.project_id == ctx.project_id, Image.intermediate.is_(True))).all())
        images = {e.image_id for e in candidates if not e.final} | set(loose)
        done = self.images.delete_unused(ctx, sorted(images - kept))
        return {"removed": sorted(doomed), "reclaimed": done["reclaimed"]}


def _beyond(entries: list[CacheEntry], candidates: list[CacheEntry],
            keep: int) -> list[CacheEntry]:
    """The least recently used candidates whose removal brings the cache within keep bytes."""
    total = sum(e.size for e in entries)
    out = []
    for e in sorted(candidates, key=lambda e: (e.last_touched, e.key)):
        if total <= keep:
            break
        out.append(e)
        total -= e.size
    return out
