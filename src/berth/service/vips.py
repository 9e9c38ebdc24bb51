"""Services: a name, a label selector and ports. Each gets a stable virtual IP (host-wide,
from ipam.SERVICE_RANGE) that the agent load-balances with nftables across the project's
matching backends: running containers and pods whose health is not "starting" or
"unhealthy". The backends are derived again at every network sync (agent/netops.py), so
they follow containers and pods as they come, go, and change health.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.errors import Conflict, InvalidArgument
from berth.service import health, ipam
from berth.service.context import Context
from berth.service.endpoints import network_owner
from berth.service.filters import labels_match
from berth.service.hub import Hub
from berth.service.names import new_id
from berth.service.refs import find_by_ref
from berth.service.selectors import Selector, parse_selector
from berth.service.specs import validate_labels, validate_name
from berth.store.db import Store
from berth.store.models import Container, Endpoint, Pod, Service

SERVICE_FILTERS = {"name", "id", "label"}
NOT_READY = (health.STARTING, health.UNHEALTHY)


class ServicePort(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: int = Field(ge=1, le=65535)
    target_port: int | None = Field(None, ge=1, le=65535)  # None: the same as port
    proto: Literal["tcp", "udp"] = "tcp"


class ServiceCreate(BaseModel):
    """POST /v1/services."""

    model_config = ConfigDict(extra="forbid")

    name: str
    selector: str = Field(max_length=4096)
    ports: list[ServicePort] = Field(max_length=64)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # A DNS label too: the service's name resolves inside the project's containers.
        validate_name(v, "service")
        if "_" in v or "." in v:
            raise ValueError(f"invalid service name {v!r}: it is a DNS name, so letters, "
                             "digits and '-'")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return validate_labels(v)


@dataclass(frozen=True)
class Backend:
    kind: str  # "container" | "pod"
    id: str
    name: str
    address: str


@dataclass
class ServiceView:
    id: str
    project_id: str
    name: str
    selector: str
    ports: list[dict[str, Any]]
    vip: str
    labels: dict[str, str]
    created_at: float
    backends: list[Backend] = field(default_factory=list)


def _ready(c: Container) -> bool:
    return c.status == "running" and health.status_of(c.health) not in NOT_READY


def select_backends(selector: Selector, project_id: str, containers: Iterable[Container],
                    pods: Iterable[Pod], addresses: dict[str, str]) -> list[Backend]:
    """The ready backends a selector picks in a project. ``addresses``: owner id -> its
    first address (a pod member's is its infra container's). A container is ready when it
    runs and is not starting or unhealthy; a pod when its infra container runs and it has
    running members, all of them ready."""
    rows = [c for c in containers if c.project_id == project_id]
    out: dict[str, Backend] = {}  # by address: a pod and its member are one backend
    for c in rows:
        spec = c.spec or {}
        if spec.get("infra_of") or not selector.matches(c.labels) or not _ready(c):
            continue
        address = addresses.get(network_owner(spec, c.id))
        if address:
            out.setdefault(address, Backend("container", c.id, c.name, address))
    by_id = {c.id: c for c in rows}
    for p in pods:
        if p.project_id != project_id or not selector.matches(p.labels):
            continue
        infra = by_id.get(p.infra_id)
        members = [c for c in rows if (c.spec or {}).get("pod_id") == p.id
                   and c.status in ("running", "paused", "restarting")]
        address = addresses.get(p.infra_id)
        if infra is None or infra.status != "running" or not address or not members:
            continue
        if all(_ready(m) for m in members):
            out[address] = Backend("pod", p.id, p.name, address)
    return sorted(out.values(), key=lambda b: tuple(int(x) for x in b.address.split(".")))


def first_addresses(endpoints: Iterable[Endpoint]) -> dict[str, str]:
    """Owner id -> the address of its first interface (eth0)."""
    out: dict[str, tuple[str, str]] = {}
    for e in endpoints:
        if e.owner_id not in out or e.ifname < out[e.owner_id][0]:
            out[e.owner_id] = (e.ifname, e.address)
    return {k: v[1] for k, v in out.items()}


class VipServices:
    hub: Hub | None = None  # set by the daemon: a change makes the agent sync its rules

    def __init__(self, store: Store) -> None:
        self.store = store

    def _find(self, s: Session, ctx: Context, ref: str) -> Service:
        return find_by_ref(s, Service, ctx.project_id, ref, "service")

    def _views(self, s: Session, rows: list[Service]) -> list[ServiceView]:
        if not rows:
            return []
        projects = {r.project_id for r in rows}
        containers = s.scalars(select(Container).where(
            Container.project_id.in_(projects))).all()
        pods = s.scalars(select(Pod).where(Pod.project_id.in_(projects))).all()
        addresses = first_addresses(s.scalars(select(Endpoint).where(
            Endpoint.project_id.in_(projects))))
        return [ServiceView(
            id=r.id, project_id=r.project_id, name=r.name, selector=r.selector,
            ports=list(r.ports), vip=r.vip, labels=dict(r.labels or {}),
            created_at=r.created_at,
            backends=select_backends(parse_selector(r.selector), r.project_id, containers,
                                     pods, addresses)) for r in rows]

    def get(self, ctx: Context, ref: str) -> ServiceView:
        with self.store.session() as s:
            return self._views(s, [self._find(s, ctx, ref)])[0]

    def list(self, ctx: Context, filters: dict[str, list[str]] | None = None,
             selector: Selector | None = None) -> list[ServiceView]:
        filters = filters or {}
        unknown = set(filters) - SERVICE_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}: use "
                                  f"{', '.join(sorted(SERVICE_FILTERS))}")
        with self.store.session() as s:
            rows = list(s.scalars(select(Service).where(
                Service.project_id == ctx.project_id).order_by(Service.name)))
            rows = [r for r in rows
                    if (not selector or selector.matches(r.labels))
                    and ("name" not in filters or any(x in r.name for x in filters["name"]))
                    and ("id" not in filters or any(r.id.startswith(x) for x in filters["id"]))
                    and ("label" not in filters or labels_match(r.labels, filters["label"]))]
            return self._views(s, rows)

    def create(self, ctx: Context, req: ServiceCreate) -> ServiceView:
        if not req.ports:
            raise InvalidArgument("a service needs at least one port")
        if not req.selector.strip():
            raise InvalidArgument("a service needs a selector (say app=web): an empty one "
                                  "would select every container of the project")
        selector = parse_selector(req.selector)
        seen = set()
        for p in req.ports:
            if (p.port, p.proto) in seen:
                raise InvalidArgument(f"port {p.port}/{p.proto} is listed twice")
            seen.add((p.port, p.proto))
        ports = [{"port": p.port, "target_port": p.target_port or p.port, "proto": p.proto}
                 for p in req.ports]
        try:
            with self.store.session() as s:
                ipam.lock(s)
                taken = s.scalars(select(Service.id).where(
                    Service.project_id == ctx.project_id, Service.name == req.name)).first()
                if taken is not None:
                    raise Conflict(f"service {req.name} already exists")
                row = Service(id=new_id(), project_id=ctx.project_id, name=req.name,
                              selector=str(selector), ports=ports,
                              vip=str(ipam.allocate_vip(s, ipam.host_routes())),
                              labels=req.labels, created_at=time.time())
                s.add(row)
                s.flush()
                sid = row.id
        except IntegrityError:  # a concurrent create took the name after our check
            raise Conflict(f"service {req.name} already exists") from None
        self._changed()
        return self.get(ctx, sid)

    def remove(self, ctx: Context, ref: str) -> str:
        with self.store.session() as s:
            row = self._find(s, ctx, ref)
            sid = row.id
            s.delete(row)
        self._changed()
        return sid

    def _changed(self) -> None:
        """The host follows (the VIP's rules): answered once it has, as a network connect
        is, so that a removed service's VIP answers no more when the removal returns."""
        if self.hub is not None:
            self.hub.applied_in_thread(self.hub.network_changed())
