"""What a project's images, containers and volumes take on disk (docker system df).

Measured by walking directories, so it costs time with many files: an on-demand report, not
something a listing does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from berth.errors import BerthError
from berth.service.quotas import disk_usage

if TYPE_CHECKING:
    from berth.service.buildcache import BuildCacheService, CacheEntry
    from berth.service.containers import ContainerService
    from berth.service.context import Context
    from berth.service.images import ImageService
    from berth.service.quotas import QuotaService
    from berth.service.volumes import VolumeService
    from berth.store.models import Container, Image, Volume

RUNNING = ("running", "paused", "restarting")


@dataclass
class DiskUse:
    images: list[tuple[Image, list[str], int]]  # image, its tags, containers made from it
    # container, bytes of its writable layer, those and its image's (see container_sizes)
    containers: list[tuple[Container, int, int]]
    volumes: list[tuple[Volume, int, int]]  # volume, bytes, containers mounting it
    build_cache: list[CacheEntry]

    @property
    def layers_size(self) -> int:
        return sum(image.size for image, _, _ in self.images)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per kind: how many, how many in use, their size, and what removing the unused
        ones would free (images share layers: an estimate, as docker's)."""
        return {
            "images": _kind([(image.size, users > 0) for image, _, users in self.images]),
            "containers": _kind([(size, row.status in RUNNING)
                                 for row, size, _ in self.containers]),
            "volumes": _kind([(size, users > 0) for _, size, users in self.volumes]),
            "build_cache": {
                **_kind([(e.size, e.in_use) for e in self.build_cache]),
                # a step's layer that an image holds too is that image's to free
                "reclaimable": sum(e.size for e in self.build_cache
                                   if not (e.in_use or e.shared))},
        }


def _kind(items: list[tuple[int, bool]]) -> dict[str, int]:
    return {"total": len(items), "active": sum(1 for _, used in items if used),
            "size": sum(size for size, _ in items),
            "reclaimable": sum(size for size, used in items if not used)}


def measure(ctx: Context, containers: ContainerService, images: ImageService,
            volumes: VolumeService, quotas: QuotaService | None,
            cache: BuildCacheService | None = None) -> DiskUse:
    rows = list(containers.list(ctx, True))
    made_from: dict[str, int] = {}
    for row in rows:
        made_from[row.image_id] = made_from.get(row.image_id, 0) + 1
    sizes = container_sizes(rows, images, quotas)
    return DiskUse(
        images=[(image, list(tags), made_from.get(image.id, 0))
                for image, tags in images.list(ctx)],
        containers=[(row, *sizes[row.id]) for row in rows],
        volumes=[(vol, volumes.size(vol),
                  len(volumes.users(ctx, vol.name))) for vol in volumes.list(ctx)],
        build_cache=cache.entries(ctx) if cache is not None else [])


def container_sizes(rows: Iterable[Container], images: ImageService,
                    quotas: QuotaService | None) -> dict[str, tuple[int, int]]:
    """Container id -> (bytes its writable layer takes, those plus its image's): docker's
    SizeRw and SizeRootFs. Walks each writable layer: only ever done when asked for."""
    rows = list(rows)
    image_size = images.sizes({row.image_id for row in rows})
    writable = quotas.writable_dir if quotas is not None else None
    out = {}
    for row in rows:
        rw = _measured(writable, row.id)
        out[row.id] = (rw, rw + image_size.get(row.image_id, 0))
    return out


def _measured(path_of: Any, cid: str) -> int:
    if path_of is None:
        return 0
    try:
        return disk_usage(path_of(cid))
    except BerthError:  # a container never started here has written nothing
        return 0
