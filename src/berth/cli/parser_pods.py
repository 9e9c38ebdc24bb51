"""Arguments of `berth pod`, `berth service` and `berth network`. Imported only when one of
them is on the command line (or for --help and completion)."""

from __future__ import annotations

import argparse

from berth.cli.parser import add_format, add_list_format

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable


def _verbs(p: argparse.ArgumentParser, common: argparse.ArgumentParser, dest: str
           ) -> Callable[..., argparse.ArgumentParser]:
    subs = p.add_subparsers(dest=dest, metavar="COMMAND", required=True)

    def sub(name: str, help_: str, with_common: bool = True) -> argparse.ArgumentParser:
        return subs.add_parser(name, help=help_, parents=[common] if with_common else [])

    return sub


def _listing(q: argparse.ArgumentParser, filters: str) -> None:
    q.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help=filters)
    q.add_argument("--selector", metavar="SELECTOR",
                   help="their labels, Kubernetes grammar: app=web,tier!=db,env in (a,b)")
    q.add_argument("-q", "--quiet", action="store_true", help="print only ids")
    add_list_format(q)


def _pod(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = _verbs(p, common, "pod_cmd")
    q = sub("create", "create a pod (print its id)")
    q.add_argument("name")
    q.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    q.add_argument("--hostname", help="its members' hostname (default: the pod's name)")
    q.add_argument("--network", action="append", default=[], metavar="NET[:ALIAS,ALIAS]",
                   help="a bridge network to join, with aliases (repeatable; default: the "
                   "project's bridge)")
    q.add_argument("--ip", action="append", default=[], metavar="[NET=]IP",
                   help="a fixed IPv4 address (NET= when it joins several networks)")
    q.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[IP:][HOST_PORT:]PORT[/PROTO]", help="publish a port of the pod")
    q.add_argument("--dns", action="append", default=[], metavar="IP",
                   help="a server for the names its networks do not know")
    q.add_argument("--dns-search", action="append", default=[], metavar="DOMAIN",
                   help="its members' search domain (unless they name their own)")
    q.add_argument("--dns-option", action="append", default=[], metavar="OPTION",
                   help="its members' resolver option (unless they name their own)")
    q.add_argument("--share", action="append", metavar="ipc,pid",
                   help="namespaces shared besides network and UTS (default: ipc; none: "
                   "neither)")
    q.add_argument("--start", action="store_true", help="start it now")
    _listing(sub("ls", "list pods"), "name=…, id=…, label=k[=v], status=running|exited|…")
    inspect = sub("inspect", "show pods in detail")
    add_format(inspect)
    inspect.add_argument("pods", nargs="+", metavar="POD")
    sub("start", "start pods (the infra container, then the members)").add_argument(
        "pods", nargs="+", metavar="POD")
    for verb, help_ in (("stop", "stop pods (the members, then the infra container)"),
                        ("restart", "restart pods")):
        q = sub(verb, help_)
        q.add_argument("-t", "--time", type=int, help="seconds to wait before SIGKILL")
        q.add_argument("pods", nargs="+", metavar="POD")
    q = sub("rm", "remove pods, their containers with them")
    q.add_argument("-f", "--force", action="store_true", help="even with running containers")
    q.add_argument("pods", nargs="+", metavar="POD")


def _service(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = _verbs(p, common, "service_cmd")
    q = sub("create", "create a service (print its id and virtual IP)")
    q.add_argument("name")
    q.add_argument("--selector", required=True, metavar="SELECTOR",
                   help="the containers and pods it balances over, by label: app=web")
    q.add_argument("-p", "--port", action="append", default=[], required=True,
                   metavar="PORT[:TARGET_PORT][/PROTO]", help="a port of the virtual IP, and "
                   "the backends' port it goes to (repeatable)")
    q.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    _listing(sub("ls", "list services"), "name=…, id=…, label=k[=v]")
    inspect = sub("inspect", "show services and their backends")
    add_format(inspect)
    inspect.add_argument("services", nargs="+", metavar="SERVICE")
    sub("rm", "remove services").add_argument("services", nargs="+", metavar="SERVICE")


def _network(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = _verbs(p, common, "network_cmd")
    # Not -o/--output here: -o is docker's --opt (say `berth -o json network create`).
    q = sub("create", "create a bridge network (print its id)", with_common=False)
    q.add_argument("name")
    q.add_argument("-d", "--driver", default="bridge", choices=["bridge"])
    q.add_argument("--subnet", metavar="CIDR", help="IPv4 subnet (default: a free one)")
    q.add_argument("--gateway", metavar="IP")
    q.add_argument("--ip-range", metavar="CIDR", help="give addresses from this part only")
    q.add_argument("--internal", action="store_true", help="no route out of the network")
    q.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    q.add_argument("-o", "--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="driver option, e.g. mtu=1400")
    _listing(sub("ls", "list networks"), "name=…, id=…, label=k[=v], driver=…, "
             "type=custom|builtin, dangling=true|false")
    inspect = sub("inspect", "show networks and their containers")
    add_format(inspect)
    inspect.add_argument("networks", nargs="+", metavar="NETWORK")
    sub("rm", "remove networks").add_argument("networks", nargs="+", metavar="NETWORK")
    q = sub("connect", "put a container on a network")
    q.add_argument("--alias", action="append", default=[], metavar="NAME",
                   help="another name it answers to there (repeatable)")
    q.add_argument("--ip", metavar="IP", help="a fixed IPv4 address (default: the next free)")
    q.add_argument("network")
    q.add_argument("container")
    q = sub("disconnect", "take a container off a network")
    q.add_argument("network")
    q.add_argument("container")
    q = sub("prune", "remove the networks no container uses")
    q.add_argument("--filter", action="append", default=[], metavar="label=…|label!=…|until=…")
    # docker's -f skips its prompt; berth asks nothing, so it is accepted and changes nothing
    q.add_argument("-f", "--force", action="store_true", help=argparse.SUPPRESS)


ARGS = {"pod": _pod, "service": _service, "network": _network}
