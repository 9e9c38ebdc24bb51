"""A container's (or pod's) place on the project's networks, inside the caller's transaction:
join (an address, its aliases), leave, publish host ports. The rows are the truth the agent
makes real on the host (agent/netops.py) and the DNS responder answers from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.service import ipam
from berth.service.networks import bridge_row, make_real, predefined_id
from berth.store.models import Endpoint, Network, PortBinding

NOT_JOINABLE = ("none", "host")


@dataclass(frozen=True)
class PortRequest:
    """-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]; host_port 0 = an ephemeral one."""

    container_port: int
    proto: str = "tcp"
    host_ip: str = ipam.ANY
    host_port: int = 0


def find_network(s: Session, project_id: str, ref: str) -> Network:
    if ref in ("bridge", predefined_id(project_id, "bridge")):
        return bridge_row(s, project_id)
    row = s.scalars(select(Network).where(Network.project_id == project_id,
                                          (Network.id == ref) | (Network.name == ref))).first()
    if row is None:
        raise NotFound(f"network {ref} not found")
    return row


def join(s: Session, project_id: str, owner_id: str, ref: str, aliases: list[str],
         wanted_ip: str | None) -> Endpoint:
    """Put the owner on the network with an address (``wanted_ip`` or the next free one)."""
    if ref in NOT_JOINABLE:
        raise InvalidArgument(f"network {ref} has no addresses to join")
    ipam.lock(s)
    net = find_network(s, project_id, ref)
    make_real(s, net)
    mine = s.scalars(select(Endpoint).where(Endpoint.owner_id == owner_id)).all()
    if any(e.network_id == net.id for e in mine):
        raise Conflict(f"already on network {net.name}")
    wanted = ipam.parse_ip(wanted_ip, f"address on network {net.name}") if wanted_ip else None
    address = ipam.allocate_address(s, net, wanted)
    used = {e.ifname for e in mine}
    ifname = next(f"eth{i}" for i in range(len(mine) + 1) if f"eth{i}" not in used)
    ep = Endpoint(owner_id=owner_id, network_id=net.id, project_id=project_id,
                  address=str(address), aliases=list(aliases), ifname=ifname,
                  created_at=time.time())
    s.add(ep)
    s.flush()
    return ep


def leave(s: Session, owner_id: str, network_id: str) -> None:
    ep = s.get(Endpoint, (owner_id, network_id))
    if ep is not None:
        s.delete(ep)


def publish(s: Session, project_id: str, owner_id: str, ports: list[PortRequest],
            available: ipam.PortCheck | None = None) -> list[PortBinding]:
    """Reserve each host port; a port another binding (of any project) holds is refused."""
    if not ports:
        return []
    ipam.lock(s)
    out = []
    for p in ports:
        port = ipam.bind_port(s, p.host_ip, p.host_port, p.proto, available)
        row = PortBinding(host_ip=p.host_ip, host_port=port, proto=p.proto, owner_id=owner_id,
                          project_id=project_id, container_port=p.container_port)
        s.add(row)
        s.flush()  # the next port of this same request sees it
        out.append(row)
    return out


def attach_new(s: Session, project_id: str, owner_id: str, spec: dict[str, Any],
               available: ipam.PortCheck | None = None) -> None:
    """At create: every network the spec names, then its published ports (which need one)."""
    nets = {k: v for k, v in (spec.get("networks") or {}).items() if k not in NOT_JOINABLE}
    ips = spec.get("ip_addresses") or {}
    for name, aliases in nets.items():
        join(s, project_id, owner_id, name, list(aliases or []), ips.get(name))
    ports = [PortRequest(**p) for p in spec.get("ports") or []]
    if ports and not nets:
        raise InvalidArgument("published ports need a network: the container is on "
                              f"{spec.get('network') or 'none'}")
    publish(s, project_id, owner_id, ports, available)


def publish_all(spec: dict[str, Any], image_config: dict[str, Any]) -> list[dict[str, Any]]:
    """-P: the spec's ports plus an ephemeral host port for every other exposed port."""
    exposed = set(spec.get("exposed_ports") or []) | set(
        (image_config.get("config") or {}).get("ExposedPorts") or {})
    ports = list(spec.get("ports") or [])
    done = {f"{p['container_port']}/{p.get('proto', 'tcp')}" for p in ports}
    for item in sorted(exposed - done):
        port, _, proto = item.partition("/")
        if port.isdigit() and (proto or "tcp") in ("tcp", "udp"):
            ports.append({"container_port": int(port), "proto": proto or "tcp",
                          "host_ip": ipam.ANY, "host_port": 0})
    return ports


def network_owner(spec: dict[str, Any] | None, container_id: str) -> str:
    """Whose endpoints a container has: its pod's infra container's, or its own."""
    return str((spec or {}).get("pod_infra") or container_id)


def endpoints_of(s: Session, owner_id: str) -> list[tuple[Endpoint, Network]]:
    rows = s.execute(select(Endpoint, Network).join(Network, Network.id == Endpoint.network_id)
                     .where(Endpoint.owner_id == owner_id).order_by(Endpoint.ifname)).all()
    return [(e, n) for e, n in rows]


def has_addresses(s: Session, spec: dict[str, Any] | None, container_id: str) -> bool:
    """Endpoints of its own or of its pod's: only then do the container's start, stop and
    removal change what a network sync derives (ports, names, service backends)."""
    return bool(endpoints_of(s, network_owner(spec, container_id)))


def ports_of(s: Session, owner_id: str) -> list[PortBinding]:
    return list(s.scalars(select(PortBinding).where(PortBinding.owner_id == owner_id)
                          .order_by(PortBinding.container_port, PortBinding.proto)))


@dataclass(frozen=True)
class Attachment:
    """One network a container is on, as the APIs show it."""

    network: str
    network_id: str
    address: str
    prefixlen: int
    gateway: str
    mac: str
    aliases: list[str]


@dataclass(frozen=True)
class Published:
    container_port: int
    proto: str
    host_ip: str
    host_port: int


@dataclass
class NetState:
    attachments: list[Attachment]
    ports: list[Published]


def mac_for(address: str) -> str:
    """Docker's scheme: 02:42 then the IPv4 address, stable for an address."""
    return "02:42:" + ":".join(f"{int(b):02x}" for b in address.split("."))


def net_states(s: Session, owner_ids: list[str]) -> dict[str, NetState]:
    """The addresses and published ports of these containers (or pods), by owner."""
    out = {oid: NetState([], []) for oid in owner_ids}
    if not owner_ids:
        return out
    for ep, net in s.execute(select(Endpoint, Network).join(
            Network, Network.id == Endpoint.network_id).where(
            Endpoint.owner_id.in_(owner_ids)).order_by(Endpoint.ifname)).all():
        prefix = int(str(net.subnet).rpartition("/")[2]) if net.subnet else 0
        out[ep.owner_id].attachments.append(Attachment(
            network=net.name, network_id=net.id, address=ep.address, prefixlen=prefix,
            gateway=net.gateway or "", mac=mac_for(ep.address), aliases=list(ep.aliases or [])))
    for b in s.scalars(select(PortBinding).where(PortBinding.owner_id.in_(owner_ids))
                       .order_by(PortBinding.container_port, PortBinding.proto)):
        out[b.owner_id].ports.append(Published(b.container_port, b.proto, b.host_ip,
                                               b.host_port))
    return out
