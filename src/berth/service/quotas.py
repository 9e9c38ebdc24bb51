"""Per-project quotas: limits beside usage, checked atomically at every create that counts.

=============  ==============================================================================
containers     how many containers the project has (in any state)
vcpus          the sum of its containers' ``cpus`` (a container without a CPU limit counts 1)
memory         bytes: the sum of its containers' memory limits; with a memory quota, every
               container must set one
volumes        how many volumes it has
images         bytes: the sum of its images' sizes (checked when an image is recorded: pull,
               import/load, commit, build-base)
disk           bytes of its containers' writable layers and its volumes, *measured* on the host
               when a container or volume is created: a create is refused once the measured use
               has reached the limit, but nothing is reserved, and what runs may write past it
=============  ==============================================================================

A limit of -1 (or none) is unlimited. Atomic: each check runs in the store transaction of the
insert it guards, after bumping ``projects.quota_serial``; that UPDATE takes SQLite's write lock
or PostgreSQL's row lock on the project first, so the checks of one project run one at a time
and each sees what the ones before it committed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from berth.errors import BerthError, InvalidArgument, NotFound
from berth.store.db import Store
from berth.store.models import Action, Container, Image, Project, Quota, Volume

RESOURCES = ("containers", "vcpus", "memory", "disk", "volumes", "images")
UNLIMITED = -1
MAX_LIMIT = {"containers": 1_000_000, "vcpus": 100_000, "memory": 2**60, "disk": 2**60,
             "volumes": 1_000_000, "images": 2**60}
BYTES = frozenset({"memory", "disk", "images"})
MILLI = 1000  # vcpus are counted in thousandths of a CPU
Demand = Mapping[str, int | None]  # resource -> amount (vcpus in thousandths)


class QuotaExceeded(BerthError):
    status = 403


# -- pure logic ---------------------------------------------------------------------------


def validate_limits(limits: Mapping[str, Any]) -> dict[str, int]:
    """{resource: limit} as asked; a 400 naming the first bad one."""
    out: dict[str, int] = {}
    for resource, value in limits.items():
        if resource not in MAX_LIMIT:
            raise InvalidArgument(f"unknown quota resource {resource!r}: use "
                                  f"{', '.join(RESOURCES)}")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{resource}: the limit must be an integer (-1: unlimited)")
        if value < UNLIMITED:
            raise InvalidArgument(f"{resource}: a limit cannot be negative (-1: unlimited)")
        if value > MAX_LIMIT[resource]:
            raise InvalidArgument(f"{resource}: a limit of {value} is absurd (at most "
                                  f"{MAX_LIMIT[resource]})")
        out[resource] = value
    return out


def human(resource: str, amount: int) -> str:
    """An amount in the resource's own unit (bytes, thousandths of a vCPU, a count)."""
    if resource == "vcpus":
        return f"{amount / MILLI:g}"
    if resource not in BYTES:
        return str(amount)
    value, unit = float(amount), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(value) < 1024 or unit == "EiB":
            break
        value /= 1024
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


def capacity(resource: str, limit: int) -> int:
    """A limit in the unit usage is counted in."""
    return limit * MILLI if resource == "vcpus" else limit


def excess(resource: str, limit: int, in_use: int, requested: int | None) -> str | None:
    """Why ``requested`` more does not fit, or None when it does. ``requested`` None: a
    measured resource, refused once its use has reached the limit."""
    if limit == UNLIMITED:
        return None
    cap = capacity(resource, limit)
    if requested is None:
        if in_use < cap:
            return None
        return (f"quota exceeded: {resource}: {human(resource, in_use)} of "
                f"{human(resource, cap)} in use (measured on the host): free some first")
    if in_use + requested <= cap:
        return None
    return (f"quota exceeded: {resource}: {human(resource, requested)} requested, "
            f"{human(resource, in_use)} of {human(resource, cap)} in use")


def millicpus(cpus: float | None) -> int:
    return MILLI if cpus is None else max(1, round(cpus * MILLI))


def container_demand(spec: Mapping[str, Any]) -> dict[str, int | None]:
    """What a new container counts against: memory None when it sets no limit."""
    return {"containers": 1, "vcpus": millicpus(spec.get("cpus")),
            "memory": spec.get("memory")}


def update_demand(params: Mapping[str, Any]) -> dict[str, int | None]:
    """What a container counts once an update's new limits apply (only those it changes)."""
    out: dict[str, int | None] = {}
    if params.get("cpus") is not None:
        out["vcpus"] = millicpus(params["cpus"])
    if params.get("memory") is not None:
        out["memory"] = params["memory"]
    return out


def container_usage(rows: Iterable[tuple[str, float | None, int | None]],
                    updates: Iterable[tuple[str, Mapping[str, Any]]]
                    ) -> dict[str, tuple[int, int]]:
    """Container id -> (thousandths of vCPUs, memory bytes), with the limits of updates still
    queued (in order) taken as already applied."""
    out = {cid: (millicpus(cpus), memory or 0) for cid, cpus, memory in rows}
    for cid, params in updates:
        if cid in out:
            cpu, mem = out[cid]
            if params.get("cpus") is not None:
                cpu = millicpus(params["cpus"])
            if params.get("memory") is not None:
                mem = params["memory"]
            out[cid] = (cpu, mem)
    return out


def disk_usage(path: Path, skip: Collection[str] = ()) -> int:
    """Bytes allocated under ``path``, like du: blocks, each inode once, no symlink followed,
    no directory in ``skip`` (mount points: a volume's tmpfs or host directory)."""
    total, seen, stack = 0, set(), [path]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:  # gone meanwhile, or not a directory
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False) and entry.path not in skip:
                    stack.append(entry.path)
    return total


# -- the service --------------------------------------------------------------------------


class QuotaService:
    def __init__(self, store: Store, volumes_root: Path | None = None,
                 writable_dir: Callable[[str], Path] | None = None) -> None:
        self.store = store
        self.volumes_root = volumes_root  # <root>/volumes/<project>/<name>
        self.writable_dir = writable_dir  # a container's writable layer on this host

    # -- limits and usage -------------------------------------------------------------------

    @staticmethod
    def _limits(s: Session, project_id: str) -> dict[str, int]:
        rows = s.scalars(select(Quota).where(Quota.project_id == project_id)).all()
        return {q.resource: q.limit for q in rows if q.limit != UNLIMITED}

    def limits(self, project_id: str) -> dict[str, int]:
        with self.store.session() as s:
            return self._limits(s, project_id)

    def set_limits(self, project_id: str, limits: Mapping[str, Any]) -> None:
        checked = validate_limits(limits)
        with self.store.session() as s:
            if s.get(Project, project_id) is None:
                raise NotFound(f"no such project: {project_id}")
            for resource, limit in checked.items():
                row = s.get(Quota, (project_id, resource))
                if limit == UNLIMITED:
                    if row is not None:
                        s.delete(row)
                elif row is None:
                    s.add(Quota(project_id=project_id, resource=resource, limit=limit))
                else:
                    row.limit = limit

    def report(self, project_id: str) -> dict[str, dict[str, int | float]]:
        """{resource: {"limit": n, "in_use": m}}; vcpus in CPUs, bytes in bytes."""
        with self.store.session() as s:
            limits = self._limits(s, project_id)
            seen: dict[str, dict[str, tuple[int, int]]] = {}
            used = {r: self._in_use(s, project_id, r, None, seen)
                    for r in RESOURCES if r != "disk"}
        used["disk"] = self._measure(project_id)
        out: dict[str, dict[str, int | float]] = {}
        for resource in RESOURCES:
            amount: int | float = used[resource]
            if resource == "vcpus":
                amount = round(amount / MILLI, 3)
            out[resource] = {"limit": limits.get(resource, UNLIMITED), "in_use": amount}
        return out

    def _in_use(self, s: Session, project_id: str, resource: str,
                replacing: str | None = None,
                seen: dict[str, dict[str, tuple[int, int]]] | None = None) -> int:
        """Current use of a counted resource (``replacing``: leave that container out;
        ``seen``: where to keep the containers' limits between calls)."""
        if resource == "containers":
            return s.scalar(select(func.count()).select_from(Container).where(
                Container.project_id == project_id)) or 0
        if resource == "volumes":
            return s.scalar(select(func.count()).select_from(Volume).where(
                Volume.project_id == project_id)) or 0
        if resource == "images":
            return int(s.scalar(select(func.coalesce(func.sum(Image.size), 0)).where(
                Image.project_id == project_id)) or 0)
        if resource in ("vcpus", "memory"):
            index = 0 if resource == "vcpus" else 1
            seen = {} if seen is None else seen
            if "usage" not in seen:
                seen["usage"] = self._containers(s, project_id)
            usage = seen["usage"]
            return sum(v[index] for cid, v in usage.items() if cid != replacing)
        raise ValueError(f"{resource} is measured, not counted")

    @staticmethod
    def _containers(s: Session, project_id: str) -> dict[str, tuple[int, int]]:
        rows = s.execute(select(Container.id, Container.spec["cpus"], Container.spec["memory"])
                         .where(Container.project_id == project_id)).all()
        updates = s.execute(select(Action.container_id, Action.params).where(
            Action.project_id == project_id, Action.action == "update",
            Action.state.in_(("pending", "running"))).order_by(Action.id)).all()
        return container_usage([tuple(r) for r in rows], [tuple(u) for u in updates])

    def _measure(self, project_id: str) -> int:
        total = 0
        if self.writable_dir is not None:
            with self.store.session() as s:
                ids = s.scalars(select(Container.id).where(
                    Container.project_id == project_id)).all()
            for cid in ids:
                # A container never started on this host has written nothing yet.
                with contextlib.suppress(BerthError):
                    total += disk_usage(self.writable_dir(cid))
        if self.volumes_root is not None:
            from berth.runtime.oci.rootfs import mount_points

            total += disk_usage(self.volumes_root / project_id, mount_points())
        return total

    def measure_disk(self, project_id: str) -> int | None:
        """The project's measured disk use, or None when it has no disk limit. Call it
        before the checking transaction: measuring walks directories."""
        if "disk" not in self.limits(project_id):
            return None
        return self._measure(project_id)

    # -- the checks -------------------------------------------------------------------------

    @staticmethod
    def lock(s: Session, project_id: str) -> None:
        """Take the project's quota lock for the rest of the transaction: the first statement
        of it, so that SQLite takes its write lock before reading anything."""
        s.execute(update(Project).where(Project.id == project_id)
                  .values(quota_serial=Project.quota_serial + 1)
                  .execution_options(synchronize_session=False))

    def check(self, s: Session, project_id: str, demand: Demand, *,
              disk: int | None = None, replacing: str | None = None) -> None:
        """Refuse (403) what does not fit; ``lock`` must have been taken in ``s``. ``disk``:
        the use measured beforehand; ``replacing``: the container an update changes."""
        limits = self._limits(s, project_id)
        if not limits:
            return
        seen: dict[str, dict[str, tuple[int, int]]] = {}
        for resource, amount in demand.items():
            limit = limits.get(resource, UNLIMITED)
            if limit == UNLIMITED:
                continue
            if amount is None:  # only memory: a container without a memory limit
                raise QuotaExceeded(
                    f"project {project_id} has a memory quota ({human('memory', limit)}): "
                    "set a memory limit on the container (memory, e.g. --memory 256m)")
            in_use = self._in_use(s, project_id, resource, replacing, seen)
            message = excess(resource, limit, in_use, amount)
            if message is not None:
                raise QuotaExceeded(message)
        if disk is not None and "disk" in limits:
            message = excess("disk", limits["disk"], disk, None)
            if message is not None:
                raise QuotaExceeded(message)

    def admit(self, s: Session, project_id: str, demand: Demand, *,
              disk: int | None = None) -> None:
        """``lock`` then ``check``: call it first thing in the inserting transaction."""
        self.lock(s, project_id)
        self.check(s, project_id, demand, disk=disk)
