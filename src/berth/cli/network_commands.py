"""`berth network`: the project's bridge networks and the containers on them."""

from __future__ import annotations

import argparse

from berth.cli import convert
from berth.cli.output import each, emit, inspect_each, labels_text
from berth.cli.pod_commands import listing
from berth.client import Client

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

NETWORK_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("NETWORK ID", lambda n: n["id"][:12]),
    ("NAME", lambda n: n["name"]),
    ("DRIVER", lambda n: n["driver"]),
    ("SUBNET", lambda n: n["subnet"] or ""),
    ("GATEWAY", lambda n: n["gateway"] or ""),
    ("INTERNAL", lambda n: "yes" if n["internal"] else ""),
]


def _network_fields(n: dict[str, Any]) -> dict[str, Any]:
    """A network row as docker's network ls --format names its fields, beside Berth's."""
    return {**n, "ID": n["id"][:12], "Scope": "local", "IPv6": False, "CreatedAt": n["created"],
            "Labels": labels_text(n.get("labels"))}


def cmd_network(client: Client, args: argparse.Namespace) -> int:
    sub, networks = args.network_cmd, client.networks
    if sub == "create":
        net = networks.create(args.name, **convert.network_spec(args))
        if args.output == "table":
            print(net["id"])
        else:
            emit(net, args.output)
    elif sub == "ls":
        listing(networks.list(args.filter, selector=args.selector), args, NETWORK_COLUMNS,
                _network_fields, {"id": "NETWORK ID"})
    elif sub == "inspect":
        return inspect_each(args.networks, networks.get, args.output, args.format)
    elif sub == "rm":
        return each(args.networks, networks.remove)
    elif sub == "connect":
        networks.connect(args.network, args.container, args.alias, args.ip)
    elif sub == "disconnect":
        networks.disconnect(args.network, args.container)
    elif sub == "prune":
        for name in networks.prune(args.filter)["removed"]:
            print(f"deleted: {name}")
    return 0


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {"network": cmd_network}
