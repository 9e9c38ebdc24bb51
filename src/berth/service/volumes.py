"""Named volumes (directories Berth owns, outliving containers), bind and tmpfs mounts."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.runtime.base import IdMapping
from berth.service.context import Context
from berth.service.filters import labels_match
from berth.service.names import new_id
from berth.service.specs import MountRequest, VolumeCreate
from berth.store.db import Store
from berth.store.models import Container, Volume

ANONYMOUS_LABEL = "berth.anonymous"


class VolumeService:
    def __init__(self, store: Store, root: Path, host: str, berth_root: Path,
                 idmap: IdMapping | None) -> None:
        self.store = store
        self.root = root  # <--root>/volumes
        self.host = host
        self.berth_root = berth_root.resolve()
        self.idmap = idmap

    def data_dir(self, project_id: str, name: str) -> Path:
        return self.root / project_id / name / "_data"

    def create(self, ctx: Context, req: VolumeCreate) -> Volume:
        return self._ensure(ctx, req)[0]

    def _ensure(self, ctx: Context, req: VolumeCreate) -> tuple[Volume, bool]:
        """The volume, and whether this call made it."""
        name = req.name or new_id()
        with self.store.session() as s:
            existing = s.get(Volume, (ctx.project_id, name))
            if existing is not None:
                return existing, False  # Docker: creating an existing volume returns it
            vol = Volume(project_id=ctx.project_id, name=name, driver="local", host=self.host,
                         labels=req.labels, created_at=time.time())
            s.add(vol)
            self._make_dir(ctx.project_id, name)
        return vol, True

    def _make_dir(self, project_id: str, name: str) -> None:
        data = self.data_dir(project_id, name)
        data.mkdir(parents=True, exist_ok=True)
        data.parent.chmod(0o700)
        if self.idmap is not None:
            # Container root is an unprivileged host uid: give it the volume's top directory.
            os.chown(data, self.idmap.host_base, self.idmap.host_base)

    def get(self, ctx: Context, name: str) -> Volume:
        with self.store.session() as s:
            vol = s.get(Volume, (ctx.project_id, name))
        if vol is None:
            raise NotFound(f"no such volume: {name}")
        return vol

    def list(self, ctx: Context, filters: dict[str, list[str]] | None = None) -> list[Volume]:
        filters = filters or {}
        with self.store.session() as s:
            rows = s.scalars(select(Volume).where(Volume.project_id == ctx.project_id)
                             .order_by(Volume.name)).all()
        return [vol for vol in rows if labels_match(vol.labels, filters.get("label", []))
                and all(v in vol.name for v in filters.get("name", []))]

    def users(self, ctx: Context, name: str) -> list[str]:
        """Names of the containers that mount this volume."""
        with self.store.session() as s:
            rows = s.scalars(select(Container).where(Container.project_id == ctx.project_id))
            return [c.name for c in rows
                    if any(m.get("type") == "volume" and m.get("volume") == name
                           for m in c.spec.get("mounts", []))]

    def remove(self, ctx: Context, name: str, force: bool = False) -> None:
        self.get(ctx, name)
        users = self.users(ctx, name)
        if users:
            raise Conflict(f"volume {name} is in use by container {users[0]}: remove the "
                           "container first")
        with self.store.session() as s:
            vol = s.get(Volume, (ctx.project_id, name))
            if vol is not None:
                s.delete(vol)
        shutil.rmtree(self.root / ctx.project_id / name, ignore_errors=True)

    def prune(self, ctx: Context) -> list[str]:
        removed = []
        for vol in self.list(ctx):
            if not self.users(ctx, vol.name):
                self.remove(ctx, vol.name)
                removed.append(vol.name)
        return removed

    def check_bind_source(self, source: str) -> None:
        path = Path(source)
        if not path.exists():
            raise InvalidArgument(f"bind source path does not exist: {source}")
        real = path.resolve()
        if real == self.berth_root or self.berth_root in real.parents:
            raise InvalidArgument(f"bind source {source} is inside Berth's own storage")

    def discard(self, ctx: Context, names: list[str]) -> None:
        """Undo prepare_mounts' new volumes when the create that asked for them fails."""
        with self.store.session() as s:
            for name in names:
                vol = s.get(Volume, (ctx.project_id, name))
                if vol is not None:
                    s.delete(vol)
        for name in names:
            shutil.rmtree(self.root / ctx.project_id / name, ignore_errors=True)

    def prepare_mounts(self, ctx: Context, mounts: list[MountRequest]
                       ) -> tuple[list[dict[str, Any]], list[str]]:
        """Resolve each mount to what the agent needs; volumes are created on first use.
        Returns the mounts and the names of the volumes this call created."""
        out, created = [], []
        for m in mounts:
            item: dict[str, Any] = {"type": m.type, "target": m.target, "readonly": m.readonly}
            if m.type == "bind":
                item["source"] = str(Path(m.source).resolve())
            elif m.type == "volume":
                anonymous = not m.source
                labels = {ANONYMOUS_LABEL: "true"} if anonymous else {}
                vol, made = self._ensure(ctx, VolumeCreate(name=m.source or None,
                                                           labels=labels))
                if made:
                    created.append(vol.name)
                item["volume"] = vol.name
                item["anonymous"] = anonymous
                item["source"] = str(self.data_dir(ctx.project_id, vol.name))
            else:
                opts = []
                if m.tmpfs_size:
                    opts.append(f"size={m.tmpfs_size}")
                opts.append(f"mode={oct(m.tmpfs_mode if m.tmpfs_mode is not None else 0o1777)[2:]}")
                item["options"] = opts
            out.append(item)
        return out, created
