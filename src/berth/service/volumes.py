"""Named volumes (directories Berth owns, outliving containers), bind and tmpfs mounts."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.runtime.oci.rootfs import mounted_at, unmount
from berth.service import grants
from berth.service.context import Context
from berth.service.events import volume_event
from berth.service.filters import labels_match
from berth.service.hub import Hub
from berth.service.idmaps import IdMaps
from berth.service.names import new_id
from berth.service.paging import Listing, PageRequest, Sort, listing, marker_position, page_rows
from berth.service.quotas import QuotaService, disk_usage
from berth.service.selectors import Selector, from_label_filters
from berth.service.specs import MountRequest, VolumeCreate
from berth.store.db import Store
from berth.store.models import Container, Volume
from berth.volume.options import HostMount, plan

ANONYMOUS_LABEL = "berth.anonymous"
VOLUME_SORT = Sort(("name", "created_at"), "name", "asc")


class VolumeService:
    hub: Hub | None = None  # set by the daemon: volume events go out through it

    def __init__(self, store: Store, root: Path, host: str, berth_root: Path,
                 idmaps: IdMaps, quotas: QuotaService | None = None) -> None:
        self.store = store
        self.root = root  # <--root>/volumes
        self.host = host
        self.berth_root = berth_root.resolve()
        self.idmaps = idmaps  # a volume belongs to its project's container root
        self.quotas = quotas

    def data_dir(self, project_id: str, name: str) -> Path:
        return self.root / project_id / name / "_data"

    def create(self, ctx: Context, req: VolumeCreate) -> Volume:
        return self._ensure(ctx, req)[0]

    def _ensure(self, ctx: Context, req: VolumeCreate) -> tuple[Volume, bool]:
        """The volume, and whether this call made it."""
        name = req.name or new_id()
        if req.options:
            self._check_options(ctx, req.options)
        disk = self.quotas.measure_disk(ctx.project_id) if self.quotas else None
        with self.store.session() as s:
            if self.quotas is not None:
                self.quotas.lock(s, ctx.project_id)  # first: concurrent checks run in turn
            existing = s.get(Volume, (ctx.project_id, name))
            if existing is not None:
                return existing, False  # Docker: creating an existing volume returns it
            if self.quotas is not None:
                self.quotas.check(s, ctx.project_id, {"volumes": 1}, disk=disk)
            vol = Volume(project_id=ctx.project_id, name=name, driver="local", host=self.host,
                         labels=req.labels, created_at=time.time(), options=dict(req.options))
            s.add(vol)
            self._make_dir(ctx.project_id, name)
        self._event("create", vol)
        return vol, True

    def _check_options(self, ctx: Context, options: dict[str, str]) -> None:
        """A tmpfs's ids must be the project's; a bind's directory must exist, be outside
        Berth's storage, and the project must be allowed host paths."""
        mount = plan(options, self.idmaps.for_project(ctx.project_id))
        if mount is None or mount.fstype != "bind":
            return
        # The grant first: without it a tenant learns nothing about the host's paths.
        grants.check(ctx, grants.of_project(self.store, ctx.project_id), {"mounts": [
            {"type": "bind", "source": mount.source}]})
        if not Path(mount.source).is_dir():
            raise InvalidArgument(f"volume option device={mount.source}: not a directory on "
                                  "this host")
        self.check_bind_source(mount.source)

    def host_mount(self, vol: Volume) -> HostMount | None:
        """What the volume's options mount on its data directory (None: nothing); a bind's
        directory as it resolves now."""
        mount = plan(vol.options or {}, self.idmaps.for_project(vol.project_id))
        if mount is not None and mount.fstype == "bind":
            mount = HostMount("bind", str(Path(mount.source).resolve()), mount.flags, "",
                              mount.readonly)
        return mount

    def size(self, vol: Volume) -> int:
        """Bytes the volume takes on Berth's disk: none for a tmpfs or a host directory."""
        if vol.options:
            return 0
        return disk_usage(self.data_dir(vol.project_id, vol.name))

    def _remove_dir(self, project_id: str, name: str) -> None:
        """The volume's directory, never through a mount still on it: rmtree would empty the
        tmpfs or, worse, the host directory a bind volume shows."""
        data = self.data_dir(project_id, name)
        unmount(data)
        if mounted_at(data):
            raise Conflict(f"volume {name} is still mounted on this host: retry once its "
                           "containers have stopped")
        shutil.rmtree(self.root / project_id / name, ignore_errors=True)

    def _event(self, action: str, vol: Volume) -> None:
        if self.hub is not None:
            self.hub.publish(volume_event(vol.project_id, action, vol.name, vol.labels))

    def _make_dir(self, project_id: str, name: str) -> None:
        data = self.data_dir(project_id, name)
        data.mkdir(parents=True, exist_ok=True)
        data.parent.chmod(0o700)
        idmap = self.idmaps.for_project(project_id)
        if idmap is not None:
            # Container root is an unprivileged host uid: give it the volume's top directory.
            os.chown(data, idmap.host_base, idmap.host_base)

    def get(self, ctx: Context, name: str) -> Volume:
        with self.store.session() as s:
            vol = s.get(Volume, (ctx.project_id, name))
        if vol is None:
            raise NotFound(f"no such volume: {name}")
        return vol

    def list(self, ctx: Context, filters: dict[str, list[str]] | None = None, *,
             selector: Selector | None = None, page: PageRequest | None = None,
             all_projects: bool = False) -> Listing:
        """By name unless page says otherwise; with all_projects (admins only) every
        project's. Without page: the whole list."""
        across = all_projects and ctx.is_admin
        filters = filters or {}
        key, desc = VOLUME_SORT.choose(page)
        scope = select(Volume)
        if not across:
            scope = scope.where(Volume.project_id == ctx.project_id)
        q = scope
        by_labels = from_label_filters(filters.get("label", []))
        for sel in (selector, by_labels):
            if sel:
                q = q.where(sel.sql(lambda k: Volume.labels[k].as_string()))
        for value in filters.get("name", []):  # LIKE narrows (case-insensitive in SQLite)
            q = q.where(Volume.name.contains(value, autoescape=True))

        def keep(vol: Volume) -> bool:
            return (by_labels is not None or labels_match(vol.labels, filters.get("label", [])))\
                and all(v in vol.name for v in filters.get("name", []))

        order: tuple[Any, ...] = (Volume.name,) if key == "name" else \
            (getattr(Volume, key), Volume.name)
        if across:
            order = (*order, Volume.project_id)
        with self.store.session() as s:
            after = None
            if page is not None and page.marker is not None:
                project, slash, name = page.marker.rpartition("/")
                where = Volume.name == name
                if slash:
                    where = and_(where, Volume.project_id == project)
                after = marker_position(s, scope, order, where, page.marker)
            rows, more = page_rows(s, q, order, desc, page.limit if page else None, after,
                                   keep if filters else None)
        return listing(rows, more, lambda vol: f"{vol.project_id}/{vol.name}"
                       if across else vol.name)

    def users(self, ctx: Context, name: str) -> list[str]:
        """Names of the containers that mount this volume."""
        return [name for _, name in self.user_ids(ctx, name)]

    def user_ids(self, ctx: Context, name: str) -> list[tuple[str, str]]:
        """(id, name) of the containers that mount this volume."""
        with self.store.session() as s:
            return [(c.id, c.name) for c in mounting(s, ctx.project_id, name)]

    def remove(self, ctx: Context, name: str, force: bool = False) -> None:
        gone = self.get(ctx, name)
        users = self.users(ctx, name)
        if users:
            raise Conflict(f"volume {name} is in use by container {users[0]}: remove the "
                           "container first")
        self._remove_dir(ctx.project_id, name)
        with self.store.session() as s:
            vol = s.get(Volume, (ctx.project_id, name))
            if vol is not None:
                s.delete(vol)
        self._event("destroy", gone)

    def prune(self, ctx: Context, filters: dict[str, list[str]] | None = None) -> list[str]:
        """Remove the volumes no container uses; filters (Docker's): label, label!."""
        filters = filters or {}
        unknown = set(filters) - {"label", "label!"}
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}: use label or label!")
        removed = []
        for vol in self.list(ctx, {"label": filters["label"]} if "label" in filters else None):
            if any(labels_match(vol.labels, [x]) for x in filters.get("label!", [])):
                continue
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
        gone = []
        with self.store.session() as s:
            for name in names:
                vol = s.get(Volume, (ctx.project_id, name))
                if vol is not None:
                    s.delete(vol)
                    gone.append(vol)
        for name in names:
            self._remove_dir(ctx.project_id, name)
        for vol in gone:
            self._event("destroy", vol)

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
                labels = {**m.volume_labels, **({ANONYMOUS_LABEL: "true"} if anonymous else {})}
                vol, made = self._ensure(ctx, VolumeCreate(
                    name=m.source or None, labels=labels, options=m.volume_options))
                if made:
                    created.append(vol.name)
                item["volume"] = vol.name
                item["anonymous"] = anonymous
                item["source"] = str(self.data_dir(ctx.project_id, vol.name))
                mount = self.host_mount(vol)
                if mount is not None:  # the agent mounts it there before the container runs
                    item["host_mount"] = mount.as_dict()
            else:
                opts = []
                if m.tmpfs_size:
                    opts.append(f"size={m.tmpfs_size}")
                opts.append(f"mode={oct(m.tmpfs_mode if m.tmpfs_mode is not None else 0o1777)[2:]}")
                if m.tmpfs_noexec:
                    opts.append("noexec")
                item["options"] = opts
            out.append(item)
        return out, created


def mounting(s: Session, project_id: str, name: str) -> list[Container]:
    """The project's containers that mount the volume ``name`` (in the session's view)."""
    rows = s.scalars(select(Container).where(Container.project_id == project_id))
    return [c for c in rows if any(m.get("type") == "volume" and m.get("volume") == name
                                   for m in c.spec.get("mounts", []))]
