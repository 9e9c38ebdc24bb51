"""Pods: containers sharing one network namespace (one address, one hostname, localhost
between them) and optionally IPC and PID, as in Kubernetes and podman.

A pod is a row plus its infra container: an ordinary container of the project (so it outlives
berthd, is re-adopted, and is counted by quotas) that runs catatonit from the project's
``berth-pause`` image and holds the namespaces. The pod's networks, addresses and published
ports are the infra container's endpoint rows; a member joins its namespaces at start
(agent/ops.py). Start starts the infra container first; stop stops the members first; the pod
row goes with its infra container (in the agent's delete, in one transaction).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.errors import BerthError, Conflict, InvalidArgument
from berth.service import runopts
from berth.service.context import Context
from berth.service.filters import labels_match
from berth.service.names import new_id
from berth.service.refs import find_by_ref
from berth.service.selectors import Selector
from berth.service.specs import (
    ContainerCreate,
    PortPublish,
    RestartPolicy,
    check_hostname,
    validate_labels,
    validate_name,
)
from berth.store.models import Action, Container, Pod

SHAREABLE = ("ipc", "pid")  # beyond the network and UTS namespaces every pod shares
POD_FILTERS = {"name", "id", "label", "status"}
ACTION_WAIT = 120.0  # seconds a pod operation waits for one container's action


class PodCreate(runopts.DnsRequest):
    """POST /v1/pods. Its DNS servers get the names its networks do not know (its members'
    --dns); its search domains and options are its members' unless they name their own."""

    model_config = ConfigDict(extra="forbid")

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    hostname: str | None = None
    # Bridge networks (name -> aliases); none given: the project's "bridge".
    networks: dict[str, list[str]] = Field(default_factory=dict, max_length=64)
    ip_addresses: dict[str, str] = Field(default_factory=dict, max_length=64)
    ports: list[PortPublish] = Field(default_factory=list, max_length=256)
    # Namespaces the members share besides network and UTS: "ipc", "pid".
    share: list[str] = Field(default_factory=lambda: ["ipc"], max_length=4)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_name(v, "pod")

    _labels = field_validator("labels")(validate_labels)
    _hostname = field_validator("hostname")(check_hostname)

    @field_validator("share")
    @classmethod
    def _share(cls, v: list[str]) -> list[str]:
        for kind in v:
            if kind not in (*SHAREABLE, "net", "uts"):
                raise ValueError(f"cannot share namespace {kind!r}: use ipc or pid (net and "
                                 "uts are always shared)")
        return sorted({k for k in v if k in SHAREABLE})


@dataclass(frozen=True)
class PodMember:
    id: str
    name: str
    status: str
    infra: bool = False


@dataclass
class PodView:
    id: str
    project_id: str
    name: str
    labels: dict[str, str]
    hostname: str
    shared: list[str]
    created_at: float
    infra_id: str
    status: str  # Created, Running, Degraded, Paused, Exited (podman's words)
    members: list[PodMember] = field(default_factory=list)


def find_pod(s: Session, ctx: Context, ref: str) -> Pod:
    """By id, name, or a unique id prefix, in the caller's project."""
    return find_by_ref(s, Pod, ctx.project_id, ref, "pod")


def pod_status(infra: Container | None, members: list[Container]) -> str:
    states = [m.status for m in members]
    live = [s for s in states if s in ("running", "restarting")]
    if infra is None or (infra.status == "created" and not live):
        return "Created"
    if infra.status == "paused" or (states and all(s == "paused" for s in states)):
        return "Paused"
    if infra.status not in ("running", "paused", "restarting") and not live:
        return "Exited"
    if all(s in ("running", "restarting") for s in states):
        return "Running"
    return "Degraded"


class PodService:
    def __init__(self, containers: Any, images: Any) -> None:
        self.containers = containers  # ContainerService
        self.images = images  # ImageService
        self.store = containers.store

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _containers(s: Session, project_id: str) -> list[Container]:
        return list(s.scalars(select(Container).where(
            Container.project_id == project_id).order_by(Container.created_at)))

    @staticmethod
    def _view(pod: Pod, rows: list[Container]) -> PodView:
        """The pod as shown; ``rows``: its project's containers."""
        infra = next((r for r in rows if r.id == pod.infra_id), None)
        members = [r for r in rows if (r.spec or {}).get("pod_id") == pod.id]
        shown = [PodMember(infra.id, infra.name, infra.status, True)] if infra else []
        shown += [PodMember(m.id, m.name, m.status) for m in members]
        return PodView(id=pod.id, project_id=pod.project_id, name=pod.name,
                       labels=dict(pod.labels or {}), hostname=pod.hostname,
                       shared=list(pod.shared or []), created_at=pod.created_at,
                       infra_id=pod.infra_id, status=pod_status(infra, members),
                       members=shown)

    def get(self, ctx: Context, ref: str) -> PodView:
        with self.store.session() as s:
            pod = find_pod(s, ctx, ref)
            return self._view(pod, self._containers(s, pod.project_id))

    def list(self, ctx: Context, filters: dict[str, list[str]] | None = None,
             selector: Selector | None = None) -> list[PodView]:
        filters = filters or {}
        unknown = set(filters) - POD_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}: use "
                                  f"{', '.join(sorted(POD_FILTERS))}")
        with self.store.session() as s:
            pods = s.scalars(select(Pod).where(Pod.project_id == ctx.project_id)
                             .order_by(Pod.created_at)).all()
            rows = self._containers(s, ctx.project_id)  # once for every pod
            views = [self._view(p, rows) for p in pods]
        out = []
        for v in views:
            if selector and not selector.matches(v.labels):
                continue
            if "name" in filters and not any(x in v.name for x in filters["name"]):
                continue
            if "id" in filters and not any(v.id.startswith(x) for x in filters["id"]):
                continue
            if "label" in filters and not labels_match(v.labels, filters["label"]):
                continue
            if "status" in filters and v.status.lower() not in \
                    [x.lower() for x in filters["status"]]:
                continue
            out.append(v)
        return out

    # -- changes -------------------------------------------------------------------------

    def create(self, ctx: Context, req: PodCreate) -> PodView:
        """The pod row and its infra container (with the pod's networks and published
        ports) in one transaction: a refusal leaves neither."""
        with self.store.session() as s:
            if s.scalars(select(Pod.id).where(Pod.project_id == ctx.project_id,
                                              Pod.name == req.name)).first() is not None:
                raise Conflict(f"pod {req.name} already exists")
        image = self.images.pause_image(ctx)
        pod_id = new_id()
        networks = req.networks or {"bridge": []}
        # The pod's name resolves to its address on its networks, as a container's does.
        infra_req = ContainerCreate(
            image=image.id, name=f"{req.name}-infra", hostname=req.hostname or req.name,
            labels={"io.berth.pod": req.name}, networks=networks,
            ip_addresses=req.ip_addresses, ports=req.ports, dns=req.dns,
            dns_search=req.dns_search, dns_options=req.dns_options,
            restart_policy=RestartPolicy(name="unless-stopped"),
            # members sharing its IPC share its /dev/shm too (POSIX shared memory)
            ipc_mode="shareable" if "ipc" in req.share else None)

        def add_pod(s: Session, infra: Container) -> None:
            taken = s.scalars(select(Pod.id).where(Pod.project_id == ctx.project_id,
                                                   Pod.name == req.name)).first()
            if taken is not None:
                raise Conflict(f"pod {req.name} already exists")
            s.add(Pod(id=pod_id, project_id=ctx.project_id, name=req.name,
                      labels=req.labels, infra_id=infra.id,
                      hostname=req.hostname or req.name, shared=req.share,
                      created_at=time.time()))
            s.flush()

        self.containers.create(ctx, infra_req, internal={"infra_of": pod_id},
                               with_row=add_pod)
        return self.get(ctx, pod_id)

    async def start(self, ctx: Context, ref: str) -> PodView:
        view = self.get(ctx, ref)
        await self._each(ctx, [view.infra_id], "start")
        await self._each(ctx, [m.id for m in view.members if not m.infra], "start")
        return self.get(ctx, view.id)

    async def stop(self, ctx: Context, ref: str, timeout: int | None = None) -> PodView:
        view = self.get(ctx, ref)
        await self._each(ctx, [m.id for m in view.members if not m.infra], "stop", timeout)
        await self._each(ctx, [view.infra_id], "stop", timeout)
        return self.get(ctx, view.id)

    async def restart(self, ctx: Context, ref: str, timeout: int | None = None) -> PodView:
        # Members leave first and come back after: their namespaces are the new infra's.
        await self.stop(ctx, ref, timeout)
        return await self.start(ctx, ref)

    async def remove(self, ctx: Context, ref: str, force: bool = False) -> str:
        """The pod, its members and its infra container. Running members need ``force``."""
        view = self.get(ctx, ref)
        members = [m for m in view.members if not m.infra]
        running = [m.name for m in members if m.status in ("running", "paused", "restarting")]
        if running and not force:
            raise Conflict(f"pod {view.name} has running containers ({', '.join(running)}): "
                           "stop the pod first or force the removal")
        await self._each(ctx, [m.id for m in members], "remove", force=True)
        act = self.containers.remove(ctx, view.infra_id, force=True, of_pod=True)
        await self._wait(ctx, act)
        return view.id

    async def _each(self, ctx: Context, ids: list[str], action: str,
                    timeout: int | None = None, force: bool = False) -> None:
        """Queue the action on every container, wait for all; the first failure is raised
        (one that finds the work done, a NotModified, is no failure here)."""
        acts = []
        for cid in ids:
            if action == "start":
                acts.append(self.containers.start(ctx, cid))
            elif action == "stop":
                acts.append(self.containers.stop(ctx, cid, timeout))
            else:
                acts.append(self.containers.remove(ctx, cid, force=force))
        done = await asyncio.gather(*(self._wait(ctx, a) for a in acts),
                                    return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _wait(self, ctx: Context, act: Action) -> None:
        done = await self.containers.wait_action(ctx, act.id, ACTION_WAIT)
        if done is None:
            raise Conflict(f"{act.action} of container {act.container_id[:12]} did not "
                           f"finish in {ACTION_WAIT:.0f}s")
        if done.state == "error" and done.error_status != 304:
            err = BerthError(done.message)
            err.status = done.error_status or 500
            raise err
