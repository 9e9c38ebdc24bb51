"""Networks as Docker names them: the predefined bridge, host and none of every project, and
user-defined bridge networks (rows), with the containers that name them.

A bridge network gets its subnet here, host-wide and never overlapping another (service/ipam);
the project's own "bridge" becomes a row the first time a container joins it. A container's
place on a network is an endpoint row (its address, its aliases), made in the same transaction
as the container or the connect. The host side (bridge, veth, NAT, DNS) is the agent's job
(agent/netops.py, network/).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from berth.errors import Conflict, InvalidArgument, NotFound, PolicyDenied, Unsupported
from berth.service import ipam
from berth.service.context import Context
from berth.service.events import network_event
from berth.service.filters import PruneFilter, bool_filter, labels_match
from berth.service.hub import HostChange, Hub
from berth.service.names import new_id
from berth.service.specs import validate_labels, validate_name
from berth.store.db import Store
from berth.store.models import Container, Endpoint, Network

PREDEFINED = {"bridge": "bridge", "host": "host", "none": "null"}  # name -> driver
DRIVERS = ("bridge",)  # what a user-defined network may use
NETWORK_FILTERS = {"name", "id", "label", "driver", "type", "dangling", "scope"}
MAX_SUBNETS = 16
MTU_OPTION = "com.docker.network.driver.mtu"


class IpamPool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None

    @model_validator(mode="after")
    def _addresses(self) -> IpamPool:
        net = None
        if self.subnet is not None:
            try:
                net = ipaddress.ip_network(self.subnet, strict=True)
            except ValueError as e:
                raise ValueError(f"invalid subnet {self.subnet!r}: {e}") from None
        if self.ip_range is not None:
            try:
                rng = ipaddress.ip_network(self.ip_range, strict=True)
            except ValueError as e:
                raise ValueError(f"invalid ip range {self.ip_range!r}: {e}") from None
            if net is None or not rng.subnet_of(net):  # type: ignore[arg-type]
                raise ValueError(f"ip range {self.ip_range} is not inside the subnet")
        if self.gateway is not None:
            try:
                gw = ipaddress.ip_address(self.gateway)
            except ValueError as e:
                raise ValueError(f"invalid gateway {self.gateway!r}: {e}") from None
            if net is None or gw not in net:
                raise ValueError(f"gateway {self.gateway} is not inside the subnet")
        return self


class Ipam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: str = "default"
    config: list[IpamPool] = Field(default_factory=list, max_length=MAX_SUBNETS)
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("driver")
    @classmethod
    def _driver(cls, v: str) -> str:
        if v != "default":
            raise ValueError(f"IPAM driver {v!r} is not supported: only 'default'")
        return v


class NetworkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    driver: str = "bridge"
    labels: dict[str, str] = Field(default_factory=dict)
    options: dict[str, str] = Field(default_factory=dict)
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    ipam: Ipam = Field(default_factory=Ipam)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_name(v, "network")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return validate_labels(v)

    @field_validator("options")
    @classmethod
    def _options(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > 64 or any(len(k) > 256 or len(x) > 4096 for k, x in v.items()):
            raise ValueError("too many or too long driver options")
        return v


@dataclass(frozen=True)
class NetworkView:
    """A network, predefined or user-defined, as the APIs show it."""

    id: str
    project_id: str
    name: str
    driver: str
    created_at: float
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    ipam: dict[str, Any] = field(default_factory=dict)
    predefined: bool = False
    subnet: str | None = None
    gateway: str | None = None
    mtu: int = 1500


def predefined_id(project_id: str, name: str) -> str:
    """Stable per project, so a predefined network has one id everywhere it is shown."""
    return hashlib.sha256(f"berth-network/{project_id}/{name}".encode()).hexdigest()


def container_networks(spec: dict[str, Any]) -> dict[str, list[str]]:
    """The networks a container's spec names (name -> aliases); a container that names none
    is on its mode's predefined network (none or host)."""
    raw = spec.get("networks") or {}
    out: dict[str, list[str]] = {}
    for name, value in raw.items():
        aliases = value.get("aliases") if isinstance(value, dict) else value
        out[name] = list(aliases or [])
    if not out:
        out[spec.get("network") or "none"] = []
    return out


def _view(row: Network) -> NetworkView:
    shown = dict(row.ipam or {"driver": "default"})
    if row.subnet:  # what was allocated, as Docker shows an automatic pool
        pool = {"subnet": row.subnet, "gateway": row.gateway}
        if row.ip_range:
            pool["ip_range"] = row.ip_range
        shown["config"] = [pool]
    return NetworkView(id=row.id, project_id=row.project_id, name=row.name, driver=row.driver,
                       created_at=row.created_at, labels=dict(row.labels or {}),
                       options=dict(row.options or {}), internal=row.internal,
                       attachable=row.attachable, enable_ipv6=row.enable_ipv6,
                       ipam=shown, predefined=row.builtin, subnet=row.subnet,
                       gateway=row.gateway, mtu=row.mtu)


def _mtu(options: dict[str, str]) -> int:
    text = options.get(MTU_OPTION)
    if text is None:
        return 1500
    try:
        mtu = int(text)
    except ValueError:
        raise InvalidArgument(f"option {MTU_OPTION}: {text!r} is not a number") from None
    if not 576 <= mtu <= 65535:
        raise InvalidArgument(f"option {MTU_OPTION}: {mtu} is outside 576-65535")
    return mtu


def make_real(s: Any, row: Network, wanted: ipam.IPv4Network | None = None) -> None:
    """Give a network its subnet and gateway (the caller holds ipam.lock)."""
    if row.subnet is not None:
        return
    subnet = ipam.choose_subnet(s, wanted, ipam.host_routes())
    row.subnet, row.gateway = str(subnet), str(ipam.default_gateway(subnet))


def bridge_row(s: Any, project_id: str) -> Network:
    """The project's own "bridge" network, made real the first time it is needed."""
    nid = predefined_id(project_id, "bridge")
    row = s.get(Network, nid)
    if row is None:
        row = Network(id=nid, project_id=project_id, name="bridge", driver="bridge",
                      labels={}, options={}, internal=False, attachable=False,
                      enable_ipv6=False, ipam={"driver": "default"}, created_at=time.time(),
                      mtu=1500, builtin=True)
        make_real(s, row)
        s.add(row)
        s.flush()
    return row


class NetworkService:
    hub: Hub | None = None  # set by the daemon: network events go out through it

    def __init__(self, store: Store, started_at: float | None = None) -> None:
        self.store = store
        self.started_at = started_at or time.time()  # when the predefined networks "appeared"

    # -- lookups -------------------------------------------------------------------------

    def _predefined(self, ctx: Context) -> list[NetworkView]:
        return [NetworkView(id=predefined_id(ctx.project_id, name), project_id=ctx.project_id,
                            name=name, driver=driver, created_at=self.started_at,
                            predefined=True, ipam={"driver": "default", "config": []})
                for name, driver in PREDEFINED.items()]

    def _all(self, ctx: Context) -> list[NetworkView]:
        with self.store.session() as s:
            rows = s.scalars(select(Network).where(Network.project_id == ctx.project_id)
                             .order_by(Network.name)).all()
            real = [_view(r) for r in rows]
        made = {n.name for n in real if n.predefined}
        builtin = [n for n in self._predefined(ctx) if n.name not in made]
        return [*builtin, *[n for n in real if n.predefined], *[n for n in real
                                                                 if not n.predefined]]

    def get(self, ctx: Context, ref: str) -> NetworkView:
        """By full id, by name, then by a unique id prefix (as Docker resolves them)."""
        every = self._all(ctx)
        for found in ([n for n in every if n.id == ref], [n for n in every if n.name == ref]):
            if found:
                return found[0]
        if len(ref) >= 1 and all(c in "0123456789abcdef" for c in ref):
            found = [n for n in every if n.id.startswith(ref)]
            if len(found) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(found)} matches "
                                      "found on id prefix)")
            if found:
                return found[0]
        raise NotFound(f"network {ref} not found")

    def list(self, ctx: Context, filters: dict[str, list[str]] | None = None
             ) -> list[NetworkView]:
        filters = filters or {}
        unknown = set(filters) - NETWORK_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}: use "
                                  f"{', '.join(sorted(NETWORK_FILTERS))}")
        for kind in filters.get("type", []):
            if kind not in ("custom", "builtin"):
                raise InvalidArgument(f"invalid filter 'type={kind}': use custom or builtin")
        dangling = bool_filter("dangling", filters["dangling"]) if "dangling" in filters \
            else None
        every = self._all(ctx)
        used = self._used_names(ctx, every) if dangling is not None else set()

        def keep(n: NetworkView) -> bool:
            if "name" in filters and not any(v in n.name for v in filters["name"]):
                return False
            if "id" in filters and not any(n.id.startswith(v) for v in filters["id"]):
                return False
            if "driver" in filters and n.driver not in filters["driver"]:
                return False
            if "type" in filters and ("builtin" if n.predefined else "custom") \
                    not in filters["type"]:
                return False
            if "scope" in filters and "local" not in filters["scope"]:
                return False
            if "label" in filters and not labels_match(n.labels, filters["label"]):
                return False
            # Docker: dangling=true is the custom networks no container uses
            return dangling is None or (dangling == (not n.predefined and n.name not in used))

        return [n for n in every if keep(n)]

    def members(self, ctx: Context, net: NetworkView) -> list[tuple[Container, list[str]]]:
        """The project's containers whose spec names this network, with their aliases."""
        with self.store.session() as s:
            rows = s.scalars(select(Container).where(
                Container.project_id == ctx.project_id).order_by(Container.created_at)).all()
        out = []
        for row in rows:
            for key, aliases in container_networks(row.spec or {}).items():
                if key in (net.name, net.id):
                    out.append((row, aliases))
                    break
        return out

    def _used_names(self, ctx: Context, every: Iterable[NetworkView]) -> set[str]:
        with self.store.session() as s:
            specs = s.scalars(select(Container.spec).where(
                Container.project_id == ctx.project_id)).all()
        keys = {k for spec in specs for k in container_networks(spec or {})}
        return {n.name for n in every if n.name in keys or n.id in keys}

    # -- changes -------------------------------------------------------------------------

    def create(self, ctx: Context, req: NetworkCreate) -> NetworkView:
        if req.name in PREDEFINED:
            raise PolicyDenied(f"operation is not permitted on predefined {req.name} network")
        if req.driver not in DRIVERS:
            raise InvalidArgument(f"network driver {req.driver!r} is not supported: Berth "
                                  "has bridge networks only")
        if req.enable_ipv6:
            raise Unsupported("IPv6 networks are not supported: Berth's bridge networks are "
                              "IPv4")
        if len(req.ipam.config) > 1:
            raise InvalidArgument("a network takes one IPv4 subnet (IPAM.Config has "
                                  f"{len(req.ipam.config)})")
        pool = req.ipam.config[0] if req.ipam.config else None
        if pool is not None and pool.subnet is None and (pool.gateway or pool.ip_range):
            raise InvalidArgument("a gateway or an ip range needs the subnet it is in")
        wanted = ipam.parse_subnet(pool.subnet, "subnet") if pool and pool.subnet else None
        row = Network(id=new_id(), project_id=ctx.project_id, name=req.name,
                      driver=req.driver, labels=req.labels, options=req.options,
                      internal=req.internal, attachable=req.attachable,
                      enable_ipv6=req.enable_ipv6,
                      ipam=req.ipam.model_dump(mode="json", exclude_none=True),
                      created_at=time.time(), mtu=_mtu(req.options), builtin=False,
                      ip_range=pool.ip_range if pool else None)
        try:
            with self.store.session() as s:
                ipam.lock(s)
                taken = s.scalars(select(Network.id).where(
                    Network.project_id == ctx.project_id, Network.name == req.name)).first()
                if taken is not None:
                    raise Conflict(f"network with name {req.name} already exists")
                make_real(s, row, wanted)
                if pool is not None and pool.gateway:
                    gw = ipam.parse_ip(pool.gateway, "gateway")
                    if gw in (wanted.network_address, wanted.broadcast_address):  # type: ignore[union-attr]
                        raise InvalidArgument(f"gateway {gw} is the subnet's network or "
                                              "broadcast address")
                    row.gateway = str(gw)
                s.add(row)
                s.flush()
                view = _view(row)
        except IntegrityError:  # a concurrent create took the name after our check
            raise Conflict(f"network with name {req.name} already exists") from None
        self._event("create", view)
        return view

    def remove(self, ctx: Context, ref: str) -> None:
        net = self.get(ctx, ref)
        if net.predefined:
            raise PolicyDenied(f"{net.name} is a pre-defined network and cannot be removed")
        users = self.members(ctx, net)
        if users:
            raise Conflict(f"error while removing network: network {net.name} id {net.id} "
                           f"has active endpoints ({', '.join(r.name for r, _ in users)})")
        with self.store.session() as s:
            row = s.get(Network, net.id)
            if row is not None and row.project_id == ctx.project_id:
                if s.scalars(select(Endpoint.owner_id).where(
                        Endpoint.network_id == net.id)).first() is not None:
                    raise Conflict(f"error while removing network: network {net.name} id "
                                   f"{net.id} has active endpoints")
                s.delete(row)
        if self.hub is not None:
            self.hub.network_changed()  # its bridge goes
        self._event("destroy", net)

    def prune(self, ctx: Context, filters: dict[str, list[str]] | None = None) -> list[str]:
        """Remove the custom networks no container names; filters: label, label!, until."""
        filters = dict(filters or {})
        unknown = set(filters) - {"label", "label!", "until"}
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}: use label, label! "
                                  "or until")
        chosen = PruneFilter.parse(filters)
        removed = []
        for net in self.list(ctx, {"type": ["custom"], "dangling": ["true"]}):
            if not chosen.matches(net.labels, net.created_at):
                continue
            try:
                self.remove(ctx, net.id)
            except (Conflict, NotFound):  # used or removed meanwhile
                continue
            removed.append(net.name)
        return removed

    def connect(self, ctx: Context, ref: str, container: Container,
                aliases: list[str] | None = None, address: str | None = None
                ) -> tuple[NetworkView, HostChange]:
        """Put the container on the network: an address (``address`` or the next free one),
        its aliases; a running container gets its interface now, another at its start. The
        change is done once the host has followed it (docker answers only then)."""
        from berth.service import endpoints

        net = self.get(ctx, ref)
        if net.name in ("host", "none"):
            raise Conflict(f"container cannot be connected to the {net.name} network: it "
                           "shares the host's network or has none")
        for alias in aliases or []:
            validate_name(alias, "network alias")

        if container.spec.get("pod_id"):
            raise Conflict(f"container {container.name} is in a pod and has the pod's "
                           "network: connect the pod's infra container instead")

        def change(nets: dict[str, list[str]], s: Any) -> None:
            if any(k in (net.name, net.id) for k in nets):
                raise Conflict(f"endpoint with name {container.name} already exists in "
                               f"network {net.name}")
            if "host" in nets or container.spec.get("network") == "host":
                raise Conflict("container sharing network namespace with the host cannot be "
                               "connected to any other network")
            nets.pop("none", None)
            nets[net.name] = list(aliases or [])
            endpoints.join(s, ctx.project_id, container.id, net.id, list(aliases or []),
                           address)

        self._change_networks(ctx, container, change)
        applied = self.hub.network_changed(container.id) if self.hub is not None else None
        self._event("connect", net, container=container.id)
        return net, applied

    def disconnect(self, ctx: Context, ref: str, container: Container
                   ) -> tuple[NetworkView, HostChange]:
        net = self.get(ctx, ref)

        from berth.service import endpoints

        def change(nets: dict[str, list[str]], s: Any) -> None:
            keys = [k for k in nets if k in (net.name, net.id)]
            if not keys or net.name in ("host", "none"):
                raise Conflict(f"container {container.name} is not connected to network "
                               f"{net.name}")
            for k in keys:
                del nets[k]
            endpoints.leave(s, container.id, net.id)

        self._change_networks(ctx, container, change)
        applied = self.hub.network_changed(container.id, net.id) if self.hub is not None \
            else None
        self._event("disconnect", net, container=container.id)
        return net, applied

    def _change_networks(self, ctx: Context, container: Container, change: Any) -> None:
        with self.store.session() as s:
            row = s.get(Container, container.id)
            if row is None or row.project_id != ctx.project_id:
                raise NotFound(f"no such container: {container.name}")
            spec = dict(row.spec or {})
            nets = {k: list(v) for k, v in container_networks(spec).items()} \
                if spec.get("networks") else {}
            change(nets, s)
            spec["networks"] = nets
            row.spec = spec  # a new dict: the JSON column sees the change

    def states(self, owner_ids: list[str]) -> dict[str, Any]:
        """Addresses and published ports of these containers (endpoints.NetState by id)."""
        from berth.service.endpoints import net_states

        with self.store.session() as s:
            return net_states(s, owner_ids)

    def _event(self, action: str, net: NetworkView, **extra: Any) -> None:
        if self.hub is not None:
            self.hub.publish(network_event(net.project_id, action, net.id, net.name,
                                           net.labels, driver=net.driver, **extra))
