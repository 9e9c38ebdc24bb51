"""`berth pod` and `berth service`, on top of the SDK (pods: containers sharing a network
namespace; services: a virtual IP over the containers and pods a label selector picks)."""

from __future__ import annotations

import argparse

from berth.cli import convert
from berth.cli.output import ago, each, emit, emit_rows, inspect_each
from berth.client import Client

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def listing(rows: list[dict[str, Any]], args: argparse.Namespace,
            columns: list[tuple[str, Callable[[dict], Any]]],
            fields: Callable[[dict], dict[str, Any]] | None = None,
            titles: dict[str, str] | None = None) -> None:
    if args.quiet:
        for row in rows:
            print(row["id"][:12])
        return
    emit_rows(rows, args, columns, fields, titles)


# -- pods -----------------------------------------------------------------------------------

def _members(pod: dict[str, Any]) -> int:
    """Its containers, the infra container not counted."""
    return sum(1 for c in pod["containers"] if not c.get("infra"))


def _address(pod: dict[str, Any]) -> str:
    return next((n["address"] for n in pod.get("networks", {}).values() if n.get("address")),
                "")


POD_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("POD ID", lambda p: p["id"][:12]),
    ("NAME", lambda p: p["name"]),
    ("STATUS", lambda p: p["status"]),
    ("CREATED", lambda p: ago(p["created"])),
    ("ADDRESS", _address),
    ("CONTAINERS", _members),
]


def _pod_fields(p: dict[str, Any]) -> dict[str, Any]:
    """A pod row as podman's pod ps --format names its fields, beside Berth's own."""
    members = _members(p)
    return {**p, "ID": p["id"][:12], "Created": ago(p["created"]), "Address": _address(p),
            "NumberOfContainers": members, "Containers": members,
            "InfraID": (p.get("infra_container_id") or "")[:12]}


def cmd_pod(client: Client, args: argparse.Namespace) -> int:
    sub, pods = args.pod_cmd, client.pods
    if sub == "create":
        pod = pods.create(args.name, **convert.pod_spec(args))
        if args.output == "table":
            print(pod["id"])
        else:
            emit(pod, args.output)
    elif sub == "ls":
        listing(pods.list(args.filter, selector=args.selector), args, POD_COLUMNS,
                _pod_fields, {"id": "POD ID"})
    elif sub == "inspect":
        return inspect_each(args.pods, pods.get, args.output, args.format)
    elif sub == "start":
        return each(args.pods, pods.start)
    elif sub == "stop":
        return each(args.pods, lambda n: pods.stop(n, args.time))
    elif sub == "restart":
        return each(args.pods, lambda n: pods.restart(n, args.time))
    elif sub == "rm":
        return each(args.pods, lambda n: pods.remove(n, args.force))
    return 0


# -- services -------------------------------------------------------------------------------

def service_ports(svc: dict[str, Any]) -> str:
    """80->8080/tcp, 53/udp (the target shown only when it differs)."""
    return ", ".join(
        f"{p['port']}{'' if p['target_port'] == p['port'] else '->' + str(p['target_port'])}"
        f"/{p['proto']}" for p in svc["ports"])


SERVICE_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("NAME", lambda s: s["name"]),
    ("VIP", lambda s: s["vip"]),
    ("PORTS", service_ports),
    ("SELECTOR", lambda s: s["selector"]),
    ("BACKENDS", lambda s: len(s["backends"])),
]


def cmd_service(client: Client, args: argparse.Namespace) -> int:
    sub, services = args.service_cmd, client.services
    if sub == "create":
        svc = services.create(args.name, args.selector,
                              [convert.parse_service_port(p) for p in args.port],
                              convert.parse_kv(args.label, "label"))
        if args.output == "table":
            print(svc["id"], svc["vip"])
        else:
            emit(svc, args.output)
    elif sub == "ls":
        listing(services.list(args.filter, selector=args.selector), args, SERVICE_COLUMNS,
                lambda s: {**s, "ID": s["id"][:12], "Ports": service_ports(s)})
    elif sub == "inspect":
        return inspect_each(args.services, services.get, args.output, args.format)
    elif sub == "rm":
        return each(args.services, services.remove)
    return 0


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "pod": cmd_pod, "service": cmd_service}
