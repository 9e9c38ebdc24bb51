"""Container operations: validate, record desired state and an action, wake the agent.

Nothing here calls a runtime. The agent carries out each action and reports the outcome in the
action's row; callers that want Docker's synchronous semantics wait for it (`wait_action`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.runtime.base import Capability, LogLimits
from berth.service import blkio, devices, endpoints, grants, health, ipam, nsmodes
from berth.service.context import Context, find_action
from berth.service.events import container_event
from berth.service.filters import PruneFilter, labels_match
from berth.service.hub import Hub
from berth.service.images import ImageService
from berth.service.names import new_id, random_name
from berth.service.paging import (
    Listing,
    PageRequest,
    Sort,
    listing,
    marker_position,
    page_rows,
)
from berth.service.quotas import QuotaService, container_demand, update_demand
from berth.service.selectors import Selector, from_label_filters
from berth.service.specs import (
    DEFAULT_LOG_LIMITS,
    ContainerCreate,
    ContainerUpdate,
    LogOptions,
    parse_signal,
    validate_name,
)
from berth.service.volumes import VolumeService
from berth.store.db import Store
from berth.store.models import Action, Container, Image, Pod

# Statuses in which a container has a live process.
LIVE = ("running", "paused", "restarting")
STOPPED = ("created", "exited", "dead")
PRUNE_FILTERS = {"label", "label!", "until"}
ENDS_INFRA = ("stop", "restart", "kill")  # refused for a pod's infra while its members run
CONTAINER_FILTERS = {"status", "label", "name", "id", "ancestor", "health", "exited", "before",
                     "since", "network", "volume"}
CONTAINER_SORT = Sort(("created_at", "name", "status", "id"), "created_at", "desc")
ACTION_SORT = Sort(("id", "started_at"), "id", "asc")
# Actions the agent carries out, and the capability each one needs from the backend.
NEEDS = {"pause": Capability.PAUSE, "unpause": Capability.PAUSE, "update": Capability.UPDATE}


class ContainerService:
    def __init__(self, store: Store, hub: Hub, host: str, capabilities: frozenset[Capability],
                 images: ImageService, volumes: VolumeService,
                 admit: Callable[[Context, Image], None] | None = None,
                 quotas: QuotaService | None = None,
                 log_defaults: LogLimits = DEFAULT_LOG_LIMITS) -> None:
        self.store = store
        self.log_defaults = log_defaults  # berthd --log-max-size, --log-max-files
        self.quotas = quotas  # checked in the transaction that inserts the container
        self.admit = admit  # the signature policy's say on a pulled image, at every create
        self.hub = hub
        self.host = host
        self.capabilities = capabilities
        self.images = images
        self.volumes = volumes

    # -- lookups -------------------------------------------------------------------------

    def get(self, ctx: Context, ref: str) -> Container:
        with self.store.session() as s:
            return self._find(s, ctx, ref)

    @staticmethod
    def _find(s: Session, ctx: Context, ref: str) -> Container:
        """By full id, by name, or by a unique id prefix (as Docker resolves them)."""
        ref = ref.lstrip("/")
        if not ref:
            raise NotFound("no such container: (empty name)")
        q = select(Container).where(Container.project_id == ctx.project_id)
        row = s.scalars(q.where(Container.id == ref)).first()
        if row is None:
            row = s.scalars(q.where(Container.name == ref)).first()
        if row is None and all(c in "0123456789abcdef" for c in ref):
            matches = s.scalars(q.where(Container.id.startswith(ref)).limit(2)).all()
            if len(matches) > 1:
                raise InvalidArgument(f"multiple containers match the prefix {ref!r}")
            row = matches[0] if matches else None
        if row is None:
            raise NotFound(f"no such container: {ref}")
        return row

    def list(self, ctx: Context, all_: bool = False,
             filters: dict[str, list[str]] | None = None, *, selector: Selector | None = None,
             page: PageRequest | None = None, all_projects: bool = False) -> Listing:
        """Live containers (all_: every one), newest first unless page says otherwise; with
        all_projects (admins only) those of every project. Without page: the whole list."""
        across = all_projects and ctx.is_admin
        filters = filters or {}
        unknown = set(filters) - CONTAINER_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}: use "
                                  f"{', '.join(sorted(CONTAINER_FILTERS))}")
        key, desc = CONTAINER_SORT.choose(page)
        scope = select(Container)
        if not across:
            scope = scope.where(Container.project_id == ctx.project_id)
        q = scope
        if "status" in filters:
            q = q.where(Container.status.in_(filters["status"]))
        elif not all_:
            q = q.where(Container.status.in_(LIVE))
        if "health" in filters:
            q = q.where(health.sql_filter(Container.health, filters["health"]))
        if "ancestor" in filters:
            q = q.where(or_(Container.image_ref.in_(filters["ancestor"]),
                            Container.image_id.in_(filters["ancestor"])))
        # name and id: LIKE narrows in SQL (case-insensitive in SQLite), Python decides.
        if "name" in filters:
            q = q.where(or_(*(Container.name.contains(v.lstrip("/"), autoescape=True)
                              for v in filters["name"])))
        if "id" in filters:
            q = q.where(or_(*(Container.id.startswith(v, autoescape=True)
                              for v in filters["id"])))
        if "exited" in filters:
            q = q.where(Container.status == "exited",
                        func.coalesce(Container.exit_code, 0).in_(_exit_codes(filters["exited"])))
        for mark_filter, newer in (("before", False), ("since", True)):
            for ref in filters.get(mark_filter, []):
                mark = self.get(ctx, ref)
                q = q.where(Container.id != mark.id,
                            Container.created_at > mark.created_at if newer else
                            Container.created_at < mark.created_at)
        by_labels = from_label_filters(filters.get("label", []))
        for sel in (selector, by_labels):
            if sel:
                q = q.where(sel.sql(lambda k: Container.labels[k].as_string()))
        rest = {k: v for k, v in filters.items()
                if k in ("name", "id", "network", "volume") or (k == "label" and by_labels is None)}
        keep = (lambda row: _matches(row, rest)) if rest else None
        order = (Container.id,) if key == "id" else (getattr(Container, key), Container.id)
        with self.store.session() as s:
            after = None
            if page is not None and page.marker is not None:
                marker = page.marker
                after = marker_position(s, scope, order, or_(Container.id == marker,
                                                             Container.name == marker), marker)
            rows, more = page_rows(s, q, order, desc, page.limit if page else None, after, keep)
        return listing(rows, more, lambda row: row.id)

    def prunable(self, ctx: Context, filters: dict[str, list[str]] | None = None
                 ) -> list[Container]:
        """The stopped containers a prune removes; filters (Docker's): label, label!, until
        (created before)."""
        filters = filters or {}
        unknown = set(filters) - PRUNE_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}: use label, label! "
                                  "or until")
        chosen = PruneFilter.parse(filters)
        return [row for row in self.list(ctx, True)
                if row.status in STOPPED and row.desired != "removed"
                and chosen.matches(row.labels or {}, row.created_at)]

    def actions(self, ctx: Context, ref: str, page: PageRequest | None = None) -> Listing:
        """The container's actions log, oldest first unless page says otherwise."""
        key, desc = ACTION_SORT.choose(page)
        order = (Action.id,) if key == "id" else (getattr(Action, key), Action.id)
        with self.store.session() as s:
            row = self._find(s, ctx, ref)
            scope = select(Action).where(Action.container_id == row.id,
                                         Action.project_id == row.project_id)
            after = None
            if page is not None and page.marker is not None:
                if not page.marker.isdigit() or len(page.marker) > 18:
                    raise InvalidArgument(f"invalid marker {page.marker!r}: an action id")
                after = marker_position(s, scope, order, Action.id == int(page.marker),
                                        page.marker)
            acts, more = page_rows(s, scope, order, desc, page.limit if page else None, after)
        return listing(acts, more, lambda act: str(act.id))

    def host_count(self, host: str) -> int:
        """Containers of every project placed on ``host``."""
        with self.store.session() as s:
            return s.scalar(select(func.count()).select_from(Container).where(
                Container.host == host)) or 0

    def counts(self, ctx: Context) -> dict[str, int]:
        """How many of the project's containers are in each state (one query)."""
        with self.store.session() as s:
            rows = s.execute(select(Container.status, func.count()).where(
                Container.project_id == ctx.project_id).group_by(Container.status)).all()
        by = {status: n for status, n in rows}
        total = sum(by.values())
        running, paused = by.get("running", 0), by.get("paused", 0)
        return {"containers": total, "running": running, "paused": paused,
                "stopped": total - running - paused}

    def action(self, ctx: Context, action_id: int) -> Action:
        return find_action(self.store, ctx, action_id)

    # -- create --------------------------------------------------------------------------

    def create(self, ctx: Context, req: ContainerCreate, start: bool = False, *,
               internal: dict[str, Any] | None = None,
               with_row: Callable[[Session, Container], None] | None = None,
               ) -> tuple[Container, Action]:
        """``internal``: spec keys only Berth sets (a pod's infra container); ``with_row``
        adds rows that belong with the container to its transaction (the pod)."""
        if req.tty and Capability.TTY not in self.capabilities:
            raise InvalidArgument("this host's runtime does not support a tty")
        if (req.oom_score_adj or 0) < 0:
            # It would shield the container at its neighbours' expense, and inside a user
            # namespace runc cannot lower it anyway.
            raise InvalidArgument(f"oom_score_adj {req.oom_score_adj}: below 0 is not allowed "
                                  "(0 to 1000: higher, the OOM killer takes it first)")
        spec = req.model_dump(mode="json")
        blkio.resolve_devices(spec, self.capabilities)  # a limit the host cannot apply: 400
        spec["log"] = (req.log or LogOptions()).merged(self.log_defaults)
        spec.update(internal or {})
        if req.pod is not None:
            from berth.service.pods import find_pod

            with self.store.session() as s:
                pod = find_pod(s, ctx, req.pod)
                spec.update(pod_id=pod.id, pod_infra=pod.infra_id,
                            pod_shared=list(pod.shared), hostname=pod.hostname)
                infra = s.get(Container, pod.infra_id)
                for key in ("dns_search", "dns_options"):  # the pod's, unless its own
                    if not spec.get(key) and infra is not None:
                        spec[key] = list(infra.spec.get(key) or [])
        if req.network_of is not None:
            target = self._named_in(ctx, "network_of", req.network_of)
            # Its UTS namespace too: the hostname is the one it has.
            spec.update(netns_of=target.id,
                        hostname=target.spec.get("hostname") or target.id[:12])
        self._resolve_joined(ctx, spec)
        if grants.needed(spec):  # before anything looks at a host path
            grants.check(ctx, self._grants(ctx.project_id), spec)
        devices.resolve(spec)
        image = self.images.resolve(ctx, req.image)
        spec["healthcheck"] = health.merge(spec.get("healthcheck"), image.config)
        if req.publish_all:
            spec["ports"] = endpoints.publish_all(spec, image.config)
        if self.admit is not None:
            self.admit(ctx, image)
        for mount in req.mounts:
            if mount.type == "bind":
                self.volumes.check_bind_source(mount.source)
        now = time.time()
        cid = new_id()
        name = req.name or random_name()
        with self.store.session() as s:
            self._check_name_free(s, ctx, name)
        spec["mounts"], new_volumes = self.volumes.prepare_mounts(ctx, req.mounts)
        try:
            if grants.needed({"mounts": spec["mounts"]}):  # volumes over host directories
                grants.check(ctx, self._grants(ctx.project_id), {"mounts": spec["mounts"]})
            if req.volumes_from:
                spec["mounts"] += self._mounts_from(ctx, req.volumes_from, spec["mounts"])
        except BaseException:
            self.volumes.discard(ctx, new_volumes)
            raise
        try:
            row, act = self._insert(ctx, req, spec, cid, name, image.id, now, start, with_row)
        except BaseException:
            self.volumes.discard(ctx, new_volumes)  # a refused create leaves nothing behind
            raise
        self.hub.kick_agent(cid)
        return row, act

    def _resolve_joined(self, ctx: Context, spec: dict[str, Any]) -> None:
        """pid_mode / ipc_mode container:NAME -> container:<id>, a container of the project.
        Its IPC must be shareable, as Docker's must (its /dev/shm is kept on the host)."""
        for field in nsmodes.JOINABLE:
            ref = nsmodes.joined(spec.get(field))
            if ref is None:
                continue
            target = self._named_in(ctx, field, ref)
            if field == "ipc_mode" and target.spec.get("ipc_mode") != "shareable":
                raise InvalidArgument(
                    f"ipc_mode: the IPC namespace of container {target.name} is not "
                    "shareable (create it with ipc_mode shareable, docker's --ipc "
                    "shareable)")
            spec[field] = nsmodes.CONTAINER + target.id
        if len(nsmodes.container_joins(spec)) > 1:  # by id: names and prefixes may differ
            raise InvalidArgument(nsmodes.ONE_CONTAINER)

    def _named_in(self, ctx: Context, field: str, ref: str) -> Container:
        """The project's container a request field names; not there: a 400 naming the field
        (a 404 would read as "no such image")."""
        with self.store.session() as s:
            try:
                return self._find(s, ctx, ref)
            except NotFound as e:
                raise InvalidArgument(f"{field}: {e.message}") from None

    def _mounts_from(self, ctx: Context, refs: list[str], own: list[dict[str, Any]],
                     ) -> list[dict[str, Any]]:
        """The volume and bind mounts of other containers (docker's --volumes-from): with
        their modes unless ":ro" or ":rw" says otherwise, at targets the container does not
        mount itself. An anonymous volume stays its first owner's: removing this container
        never removes it."""
        taken = {m["target"] for m in own}
        out = []
        for item in refs:
            ref, _, mode = item.partition(":")
            source = self._named_in(ctx, "volumes_from", ref)
            for m in source.spec.get("mounts") or []:
                if m.get("type") not in ("volume", "bind") or m["target"] in taken:
                    continue
                taken.add(m["target"])
                readonly = m.get("readonly", False) if not mode else mode == "ro"
                out.append({**m, "readonly": readonly, "anonymous": False,
                            "from": source.id})
        if grants.needed({"mounts": out}):  # grants may have changed since
            grants.check(ctx, self._grants(ctx.project_id), {"mounts": out})
        return out

    def _grants(self, project_id: str) -> list[str]:
        return grants.of_project(self.store, project_id)

    @staticmethod
    def _check_name_free(s: Session, ctx: Context, name: str, owner: str | None = None) -> None:
        """Refuse a name another container of the project has (owner may keep its own)."""
        taken = s.scalars(select(Container).where(
            Container.project_id == ctx.project_id, Container.name == name)).first()
        if taken is not None and taken.id != owner:
            raise Conflict(f'the container name "{name}" is already in use by container '
                           f'{taken.id[:12]}: remove or rename that container first')

    def _insert(self, ctx: Context, req: ContainerCreate, spec: dict[str, Any], cid: str,
                name: str, image_id: str, now: float, start: bool,
                with_row: Callable[[Session, Container], None] | None = None,
                ) -> tuple[Container, Action]:
        disk = self.quotas.measure_disk(ctx.project_id) if self.quotas else None
        with self.store.session() as s:
            if self.quotas is not None:  # first in the transaction: checks run in turn
                self.quotas.admit(s, ctx.project_id, container_demand(spec), disk=disk)
            row = Container(
                id=cid, project_id=ctx.project_id, name=name, host=self.host,
                image_id=image_id, image_ref=req.image, spec=spec, labels=req.labels,
                created_at=now, desired="running" if start else "created", status="creating",
                pid=0, exit_code=None, oom_killed=False, error="", restart_count=0,
                stopped_by_user=False,
            )
            s.add(row)
            if spec.get("pod_id") and s.get(Pod, spec["pod_id"]) is None:
                raise NotFound(f"pod {req.pod} was removed meanwhile")
            if with_row is not None:
                with_row(s, row)
            endpoints.attach_new(s, ctx.project_id, cid, spec, ipam.host_port_free)
            act = self._add_action(s, ctx, row, "create", {})
            if start:
                act = self._add_action(s, ctx, row, "start", {})
            try:
                s.flush()
            except IntegrityError:  # a concurrent create took the name after our check
                raise Conflict(f'the container name "{name}" is already in use') from None
        return row, act

    # -- actions the agent carries out ---------------------------------------------------

    def start(self, ctx: Context, ref: str) -> Action:
        return self._queue(ctx, ref, "start", {}, desired="running")

    def stop(self, ctx: Context, ref: str, timeout: int | None = None,
             signal: str | None = None) -> Action:
        """``signal``: instead of the container's stop signal (docker stop --signal)."""
        return self._queue(ctx, ref, "stop", _stop_params(timeout, signal), desired="stopped")

    def restart(self, ctx: Context, ref: str, timeout: int | None = None,
                signal: str | None = None) -> Action:
        return self._queue(ctx, ref, "restart", _stop_params(timeout, signal),
                           desired="running")

    def kill(self, ctx: Context, ref: str, signal: str | int = "SIGKILL") -> Action:
        return self._queue(ctx, ref, "kill", {"signal": parse_signal(signal)})

    def pause(self, ctx: Context, ref: str) -> Action:
        return self._queue(ctx, ref, "pause", {}, desired="paused")

    def unpause(self, ctx: Context, ref: str) -> Action:
        return self._queue(ctx, ref, "unpause", {}, desired="running")

    def update(self, ctx: Context, ref: str, req: ContainerUpdate) -> Action:
        if req.blkio_weight:
            blkio.check_weight(self.capabilities)
        return self._queue(ctx, ref, "update", req.model_dump(mode="json", exclude_none=True))

    def remove(self, ctx: Context, ref: str, force: bool = False,
               volumes: bool = False, *, of_pod: bool = False) -> Action:
        """``of_pod``: the pod's own removal takes its infra container."""
        if not of_pod:
            with self.store.session() as s:
                row = self._find(s, ctx, ref)
                pod = s.get(Pod, row.spec["infra_of"]) if row.spec.get("infra_of") else None
                if pod is not None:
                    raise Conflict(f"container {row.name} is the infra container of pod "
                                   f"{pod.name}: remove the pod instead")
        return self._queue(ctx, ref, "remove", {"force": force, "volumes": volumes})

    def rename(self, ctx: Context, ref: str, new_name: str) -> Container:
        new_name = validate_name(new_name.lstrip("/"))
        with self.store.session() as s:
            row = self._find(s, ctx, ref)
            self._check_name_free(s, ctx, new_name, owner=row.id)
            old = row.name
            row.name = new_name
            act = self._add_action(s, ctx, row, "rename", {"from": old, "to": new_name})
            act.state, act.finished_at = "success", time.time()
        self.hub.publish(container_event(row, "rename", oldName=old))
        return row

    def _queue(self, ctx: Context, ref: str, action: str, params: dict[str, Any],
               desired: str | None = None) -> Action:
        needed = NEEDS.get(action)
        if needed is not None and needed not in self.capabilities:
            raise InvalidArgument(f"{action}: this host's runtime lacks the '{needed}' capability")
        quotas = self.quotas if action == "update" and update_demand(params) else None
        with self.store.session() as s:
            if quotas is not None:  # first in the transaction: checks run in turn
                quotas.lock(s, ctx.project_id)
            row = self._find(s, ctx, ref)
            if row.desired == "removed" and action != "remove":
                raise Conflict(f"container {row.name} is being removed")
            if action in ENDS_INFRA and row.spec.get("infra_of"):
                self._check_pod_idle(s, row, action)
            if quotas is not None:  # the container's new limits in place of its old ones
                quotas.check(s, ctx.project_id, update_demand(params), replacing=row.id)
            act = self._add_action(s, ctx, row, action, params)
            cid = row.id
        self.hub.kick_agent(cid)
        return act

    @staticmethod
    def _check_pod_idle(s: Session, infra: Container, action: str) -> None:
        """A pod's infra container holds its members' namespaces: stopped alone it would
        come back with new ones, its members left behind in the old (without the pod's
        address). The pod's own stop and restart take the members first."""
        live = [name for name, spec in s.execute(select(Container.name, Container.spec).where(
                    Container.project_id == infra.project_id, Container.status.in_(LIVE)))
                if (spec or {}).get("pod_infra") == infra.id]
        if live:
            pod = s.get(Pod, infra.spec["infra_of"])
            instead = "restart" if action == "restart" else "stop"
            raise Conflict(f"container {infra.name} is the infra container of pod "
                           f"{pod.name if pod else infra.spec['infra_of']}, whose containers "
                           f"run ({', '.join(sorted(live))}): {instead} the pod instead")

    @staticmethod
    def _add_action(s: Session, ctx: Context, row: Container, action: str,
                    params: dict[str, Any]) -> Action:
        act = Action(project_id=ctx.project_id, container_id=row.id, action=action,
                     params=params, request_id=ctx.request_id, user=ctx.user, state="pending",
                     message="", error_status=0, result={}, started_at=time.time())
        s.add(act)
        s.flush()
        return act

    # -- waiting -------------------------------------------------------------------------

    async def wait_action(self, ctx: Context, action_id: int,
                          timeout: float | None = None) -> Action | None:
        def finished() -> Action | None:
            act = self.action(ctx, action_id)
            return act if act.state in ("success", "error") else None

        return await self.hub.wait_until(finished, timeout)

    async def wait_exit(self, ctx: Context, ref: str, condition: str = "not-running",
                        timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the container stops (or is removed, for condition 'removed');
        returns its exit: {"exit_code", "oom_killed", "error"}."""
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid wait condition {condition!r}: use not-running, "
                                  "next-exit or removed")
        try:
            first = self.get(ctx, ref)
        except NotFound:
            with self.store.session() as s:  # removed already (auto-remove): its last exit
                q = select(Action.id).where(Action.container_id == ref,
                                            Action.project_id == ctx.project_id)
                if s.scalars(q.limit(1)).first() is None:
                    raise
                return self._exit_after_removal(s, ref)
        cid, seen_finish = first.id, first.finished_at

        def check() -> dict[str, Any] | None:
            with self.store.session() as s:
                row = s.get(Container, cid)
                if row is None:
                    return self._exit_after_removal(s, cid)
            if condition == "removed":
                return None
            if condition == "next-exit" and (row.finished_at == seen_finish or
                                             row.status in LIVE):
                return None
            if row.status not in ("created", "exited", "dead"):
                return None
            if row.status == "created" and condition == "next-exit":
                return None
            return {"exit_code": row.exit_code, "oom_killed": row.oom_killed,
                    "error": row.error}

        return await self.hub.wait_until(check, timeout)

    @staticmethod
    def _exit_after_removal(s: Session, cid: str) -> dict[str, Any]:
        q = select(Action).where(Action.container_id == cid, Action.action == "remove",
                                 Action.state == "success").order_by(Action.id.desc())
        act = s.scalars(q.limit(1)).first()
        if act is not None and act.result:
            return dict(act.result)
        return {"exit_code": None, "oom_killed": False, "error": ""}


def _matches(row: Container, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key == "status" and row.status not in values:
            return False
        if key == "name" and not any(v.lstrip("/") in row.name for v in values):
            return False
        if key == "id" and not any(row.id.startswith(v) for v in values):
            return False
        if key == "ancestor" and not any(v in (row.image_ref, row.image_id) for v in values):
            return False
        if key == "label" and not labels_match(row.labels, values):
            return False
        if key == "network" and not set(network_names(row.spec)) & set(values):
            return False
        if key == "volume" and not _mount_points(row.spec) & set(values):
            return False
    return True


def _exit_codes(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise InvalidArgument(f"invalid filter 'exited={','.join(values)}': expected exit "
                              "codes") from None


def network_names(spec: dict[str, Any]) -> list[str]:
    """The networks a container is on by name: its user-defined ones, else host or none."""
    named = list(spec.get("networks") or {})
    if named:
        return named
    return ["host" if spec.get("network") == "host" else "none"]


def _mount_points(spec: dict[str, Any]) -> set[str]:
    """Docker's volume filter matches a volume's name or any mount's target."""
    mounts = spec.get("mounts") or []
    return {m["volume"] for m in mounts if m.get("volume")} | {m["target"] for m in mounts}


def _stop_params(timeout: int | None, signal: str | None) -> dict[str, Any]:
    if timeout is not None and not -1 <= timeout <= 3600:
        raise InvalidArgument("timeout: must be between -1 and 3600 seconds")
    params: dict[str, Any] = {"timeout": timeout}
    if signal:
        params["signal"] = parse_signal(signal)
    return params
