"""Networks: list, inspect, create, remove, prune, connect, disconnect.

Bridge networks of the project (service/networks.py): a subnet each, an address for each
container on them (service/endpoints.py), shown as Docker shows them.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from berth.api.deps import Services
from berth.api.docker.routes.common import Ctx, Svc, parse_filters, read_json
from berth.api.errors import validation_message
from berth.api.views import iso
from berth.errors import InvalidArgument, Unsupported
from berth.service.context import Context
from berth.service.networks import NetworkCreate, NetworkService, NetworkView

router = APIRouter()
CREATE_FIELDS = {"Name", "CheckDuplicate", "Driver", "Internal", "Attachable", "Ingress",
                 "IPAM", "EnableIPv6", "Options", "Labels", "Scope", "ConfigOnly",
                 "ConfigFrom"}
POOL_FIELDS = {"Subnet": "subnet", "Gateway": "gateway", "IPRange": "ip_range"}
# Endpoint settings a connect may name only empty (the addresses are Berth's to give).
UNHONOURED_ENDPOINT = ("Links", "MacAddress", "DriverOpts", "IPAddress",
                       "IPPrefixLen", "GlobalIPv6Address", "IPv6Gateway", "Gateway")


def networks_of(svc: Services) -> NetworkService:
    if svc.networks is None:
        raise Unsupported("this daemon keeps no networks")
    return svc.networks


def network_shape(svc: Services, ctx: Context, net: NetworkView, *,
                  containers: bool) -> dict[str, Any]:
    members: dict[str, Any] = {}
    if containers:
        rows = networks_of(svc).members(ctx, net)
        states = networks_of(svc).states([r.id for r, _ in rows])
        for row, _aliases in rows:
            at = next((a for a in states[row.id].attachments if a.network_id == net.id), None)
            endpoint = hashlib.sha256(f"{net.id}/{row.id}".encode()).hexdigest()
            members[row.id] = {"Name": row.name, "EndpointID": endpoint,
                               "MacAddress": at.mac if at else "",
                               "IPv4Address": f"{at.address}/{at.prefixlen}" if at else "",
                               "IPv6Address": ""}
    ipam = net.ipam or {}
    pools = [{key: pool[field] for key, field in POOL_FIELDS.items() if pool.get(field)}
             for pool in ipam.get("config", [])]
    return {"Name": net.name, "Id": net.id, "Created": iso(net.created_at), "Scope": "local",
            "Driver": net.driver, "EnableIPv6": net.enable_ipv6,
            "IPAM": {"Driver": ipam.get("driver", "default"), "Options": ipam.get("options")
                     or None, "Config": pools},
            "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": members,
            "Options": dict(net.options), "Labels": dict(net.labels)}


@router.get("/networks")
def list_networks(svc: Svc, ctx: Ctx, filters: str | None = None) -> list[dict[str, Any]]:
    nets = networks_of(svc).list(ctx, parse_filters(filters))
    return [network_shape(svc, ctx, n, containers=False) for n in nets]


@router.get("/networks/{ref}")
def inspect(ref: str, svc: Svc, ctx: Ctx, scope: str | None = None) -> dict[str, Any]:
    if scope not in (None, "", "local"):
        raise InvalidArgument(f"invalid scope {scope!r}: networks here are local")
    net = networks_of(svc).get(ctx, ref)
    return network_shape(svc, ctx, net, containers=True)


def _create_request(body: dict[str, Any]) -> NetworkCreate:
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field: {unknown[0]}")
    if not isinstance(body.get("Name"), str) or not body["Name"]:
        raise InvalidArgument("missing field: Name")
    if body.get("Ingress"):
        raise InvalidArgument("ingress networks are swarm's: not supported")
    config_from = body.get("ConfigFrom") or {}
    if not isinstance(config_from, dict):
        raise InvalidArgument("ConfigFrom: expected an object")
    if body.get("ConfigOnly") or config_from.get("Network"):
        raise InvalidArgument("config-only networks are not supported")
    if body.get("Scope") not in (None, "", "local"):
        raise InvalidArgument(f"network scope {body['Scope']!r} is not supported: only local")
    ipam_in = body.get("IPAM") or {}
    if not isinstance(ipam_in, dict):
        raise InvalidArgument("IPAM: expected an object")
    pools = []
    pool_list = ipam_in.get("Config") or []
    if not isinstance(pool_list, list):
        raise InvalidArgument("IPAM.Config: expected a list of objects")
    for pool in pool_list:
        if not isinstance(pool, dict):
            raise InvalidArgument("IPAM.Config: expected a list of objects")
        if pool.get("AuxiliaryAddresses"):
            raise InvalidArgument("IPAM auxiliary addresses are not supported")
        extra = sorted(set(pool) - set(POOL_FIELDS) - {"AuxiliaryAddresses"})
        if extra:
            raise InvalidArgument(f"unknown field: IPAM.Config.{extra[0]}")
        pools.append({field: pool[key] for key, field in POOL_FIELDS.items() if pool.get(key)})
    ipam = {"driver": ipam_in.get("Driver") or "default", "config": pools,
            "options": ipam_in.get("Options") or {}}
    try:
        return NetworkCreate(name=body["Name"], driver=body.get("Driver") or "bridge",
                             labels=body.get("Labels") or {}, options=body.get("Options") or {},
                             internal=bool(body.get("Internal")),
                             attachable=bool(body.get("Attachable")),
                             enable_ipv6=bool(body.get("EnableIPv6")), ipam=ipam)
    except ValidationError as e:
        raise InvalidArgument(validation_message(list(e.errors()))) from None


@router.post("/networks/create", status_code=201)
async def create(request: Request, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    req = _create_request(await read_json(request))
    # Names are unique per project whether or not CheckDuplicate asks for it.
    net = networks_of(svc).create(ctx, req)
    return {"Id": net.id, "Warning": ""}


@router.delete("/networks/{ref}", status_code=204)
def remove(ref: str, svc: Svc, ctx: Ctx) -> Response:
    networks_of(svc).remove(ctx, ref)
    return Response(status_code=204)


@router.post("/networks/prune")
def prune(svc: Svc, ctx: Ctx, filters: str | None = None) -> dict[str, Any]:
    return {"NetworksDeleted": networks_of(svc).prune(ctx, parse_filters(filters))}


def _container_of(body: dict[str, Any]) -> str:
    ref = body.get("Container")
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument("missing field: Container")
    return ref


@router.post("/networks/{ref}/connect")
async def connect(ref: str, request: Request, svc: Svc, ctx: Ctx) -> Response:
    body = await read_json(request)
    row = svc.containers.get(ctx, _container_of(body))
    endpoint = body.get("EndpointConfig") or {}
    if not isinstance(endpoint, dict):
        raise InvalidArgument("EndpointConfig: expected an object")
    ipam = endpoint.get("IPAMConfig") or {}
    if not isinstance(ipam, dict) or any(v for k, v in ipam.items() if k != "IPv4Address"):
        raise InvalidArgument("EndpointConfig.IPAMConfig: only IPv4Address is supported")
    address = ipam.get("IPv4Address") or None
    if address is not None and not isinstance(address, str):
        raise InvalidArgument("EndpointConfig.IPAMConfig.IPv4Address: expected a string")
    for key in UNHONOURED_ENDPOINT:
        value = endpoint.get(key)
        if value and not (isinstance(value, dict) and not any(value.values())):
            raise InvalidArgument(f"EndpointConfig.{key} is not supported by Berth")
    aliases = endpoint.get("Aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InvalidArgument("EndpointConfig.Aliases: expected a list of names")
    _, applied = await asyncio.to_thread(networks_of(svc).connect, ctx, ref, row, aliases,
                                         address)
    await svc.hub.applied(applied)  # as docker's: answered once the interface is up
    return Response(status_code=200)


@router.post("/networks/{ref}/disconnect")
async def disconnect(ref: str, request: Request, svc: Svc, ctx: Ctx) -> Response:
    body = await read_json(request)
    row = svc.containers.get(ctx, _container_of(body))
    _, applied = await asyncio.to_thread(networks_of(svc).disconnect, ctx, ref, row)
    await svc.hub.applied(applied)
    return Response(status_code=200)
