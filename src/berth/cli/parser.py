"""The `berth` command line: every command and option, nothing else (no imports of the SDK)."""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn


def _limits(p: argparse.ArgumentParser) -> None:
    """The resource limits, as run and create take them and update changes them."""
    p.add_argument("-m", "--memory", help="memory limit, e.g. 64m")
    p.add_argument("--memory-swap", help="memory+swap limit, -1 for unlimited")
    p.add_argument("--memory-reservation", metavar="SIZE",
                   help="a soft memory limit, enforced under pressure")
    p.add_argument("--cpus", type=float)
    p.add_argument("--cpu-period", type=int, metavar="USEC",
                   help="with --cpu-quota: CPU time per period (default 100000)")
    p.add_argument("--cpu-quota", type=int, metavar="USEC", help="CPU time allowed per period")
    p.add_argument("-c", "--cpu-shares", type=int)
    p.add_argument("--cpuset-cpus", metavar="LIST", help='CPUs it may use, e.g. "0-2,4"')
    p.add_argument("--cpuset-mems", metavar="LIST", help="memory nodes it may use")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--blkio-weight", type=int, metavar="N",
                   help="block IO weight, 10 to 1000 (0: unset)")


def _block_io(p: argparse.ArgumentParser) -> None:
    """Per-device block IO limits (at create only: runc cannot change them live)."""
    p.add_argument("--blkio-weight-device", action="append", default=[],
                   metavar="DEVICE:WEIGHT", help="a disk's weight (its IO scheduler: bfq)")
    for flag, unit, what in (("read-bps", "RATE", "bytes read (1mb, 512k, ...)"),
                             ("write-bps", "RATE", "bytes written"),
                             ("read-iops", "IOPS", "reads"), ("write-iops", "IOPS", "writes")):
        p.add_argument(f"--device-{flag}", action="append", default=[],
                       metavar=f"DEVICE:{unit}", help=f"a disk's {what} per second, at most")


def _fixed_settings(p: argparse.ArgumentParser) -> None:
    """docker's options whose only values Berth honours are its own behaviour
    (berth.fixedsettings): a docker command line naming them works, any other value is
    refused by name."""
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="no-new-privileges (always on)")
    for flag, values in (("userns", "private"), ("cgroupns", "private"), ("runtime", "runc"),
                         ("isolation", "default"), ("volume-driver", "local")):
        p.add_argument(f"--{flag}", metavar=values, help=argparse.SUPPRESS)
    p.add_argument("--memory-swappiness", type=int, help=argparse.SUPPRESS)
    p.add_argument("--oom-kill-disable", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--privileged", action="store_true",
                   help="every capability, no seccomp filter or masked paths, the host's "
                   "devices; still in its user namespace (admins, or the privileged grant)")
    p.add_argument("--device", action="append", default=[], metavar="HOST[:CONTAINER][:rwm]",
                   help="a host device (admins, or the project's 'devices' grant)")


def _container_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="container name (unique in the project)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="KEY=VALUE lines; # comments; a bare KEY takes this shell's value")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-h", "--hostname")
    p.add_argument("--domainname", help="its domain name (hostname -d)")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--label-file", action="append", default=[], metavar="FILE",
                   help="KEY[=VALUE] lines; # comments")
    p.add_argument("--cidfile", metavar="FILE", help="write the container's id to FILE "
                   "(which must not exist)")
    p.add_argument("-v", "--volume", action="append", default=[],
                   metavar="SRC:DST[:ro]", help="named volume or host path (bind) mount")
    p.add_argument("--mount", action="append", default=[],
                   metavar="type=bind|volume|tmpfs,source=…,target=…[,readonly]")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:size=64m,mode=1777]")
    _limits(p)
    _block_io(p)
    p.add_argument("--restart", default="no", help="no | on-failure[:N] | always | unless-stopped")
    p.add_argument("--entrypoint")
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--network", "--net", default="none",
                   help="none (loopback only, the default) | host | bridge (the project's) | "
                   "a network's name | container:NAME (share that container's)")
    p.add_argument("--pid", metavar="MODE",
                   help="private (the default) | host | container:NAME (share its processes)")
    p.add_argument("--ipc", metavar="MODE",
                   help="private (the default) | shareable (others may join it) | none (no "
                   "/dev/shm) | host | container:NAME (a shareable one's)")
    p.add_argument("--uts", metavar="MODE", help="private (the default) | host (the host's "
                   "hostname)")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[], metavar="NAME",
                   help="another name the container answers to on its network")
    p.add_argument("--ip", help="a fixed IPv4 address on the network")
    p.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[IP:][HOST_PORT:]PORT[/PROTO]", help="publish a port (needs a network)")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish every exposed port on an ephemeral host port")
    p.add_argument("--expose", action="append", default=[], metavar="PORT[-PORT][/PROTO]",
                   help="a port it listens on (-P publishes it)")
    p.add_argument("--pod", help="join this pod: its network, hostname and IPC "
                   "(see `berth pod create`)")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--init", action="store_true",
                   help="run a tiny init as PID 1 (reaps zombies, forwards signals)")
    p.add_argument("--add-host", action="append", default=[], metavar="NAME:IP",
                   help="an /etc/hosts line (IP host-gateway: the network's gateway)")
    p.add_argument("--dns", action="append", default=[], metavar="IP",
                   help="a nameserver (on a network: where its DNS sends other names)")
    p.add_argument("--dns-search", action="append", default=[], metavar="DOMAIN")
    p.add_argument("--dns-option", action="append", default=[], metavar="OPTION")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
                   help="an rlimit, e.g. nofile=1024:2048")
    p.add_argument("--group-add", action="append", default=[], metavar="GROUP",
                   help="a supplementary group (a name in the image, or a gid)")
    p.add_argument("--shm-size", metavar="SIZE", help="/dev/shm's size (default 64m)")
    p.add_argument("--oom-score-adj", type=int, metavar="N",
                   help="0 to 1000: higher, the OOM killer takes it first")
    p.add_argument("--sysctl", action="append", default=[], metavar="KEY=VALUE",
                   help="a sysctl of its own namespaces (net.*, kernel.shm*, ...)")
    p.add_argument("--volumes-from", action="append", default=[],
                   metavar="CONTAINER[:ro|rw]", help="mount another container's volumes too")
    p.add_argument("--log-driver", metavar="DRIVER",
                   help="json-file, local or k8s-file: Berth keeps every log itself")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="max-size=SIZE (per file; -1: none), max-file=N (files kept)")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    for flag in ("interval", "timeout", "start-period", "start-interval"):
        p.add_argument(f"--health-{flag}", metavar="DURATION", help="e.g. 30s, 500ms")
    p.add_argument("--health-cmd", help="command run by /bin/sh -c to check health")
    p.add_argument("--health-retries", type=int, help="failures in a row to be unhealthy")
    p.add_argument("--no-healthcheck", action="store_true", help="disable the image's check")
    p.add_argument("--pull", choices=["missing", "always", "never"], default="missing",
                   help="pull the image from its registry first (default: when missing)")
    p.add_argument("--platform", metavar="OS/ARCH",
                   help="the platform to pull from a multi-platform image (linux/ARCH)")
    p.add_argument("-q", "--quiet", action="store_true", help="pull without progress")
    _fixed_settings(p)
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


COMMAND_HELP: dict[str, str] = {
    "info": "show the daemon and host",
    "version": "show the client's and the daemon's versions",
    "run": "create and start a container",
    "create": "create a container",
    "start": "start containers",
    "stop": "stop containers (SIGTERM, then SIGKILL)",
    "restart": "restart containers",
    "kill": "send a signal to containers",
    "pause": "freeze containers",
    "unpause": "thaw containers",
    "wait": "wait for containers to stop; print exit codes",
    "inspect": "show containers, images, networks, volumes, pods or services in detail",
    "rm": "remove containers",
    "rename": "rename a container",
    "ps": "list containers",
    "logs": "show a container's output",
    "exec": "run a command in a running container",
    "attach": "attach to a running container's input and output (ctrl-p ctrl-q detaches)",
    "top": "show a container's processes (ps options after it: aux, -o pid,args, …)",
    "stats": "show CPU, memory, pids and IO of containers",
    "update": "change limits of containers",
    "actions": "show a container's actions log",
    "container": "manage containers (`container ls` = ps, `container rm`, …; and prune)",
    "system": "disk use (df) and pruning what nothing uses",
    "builder": "manage the build cache (prune)",
    "cp": "copy files between a container and this host",
    "diff": "show what a container changed in its image's files",
    "export": "write a container's filesystem to a tar archive",
    "port": "show a container's published ports",
    "events": "stream events",
    "image": "manage images",
    "images": "list images",
    "pull": "pull an image from a registry",
    "build": "build an image from a Dockerfile",
    "push": "push an image to a registry",
    "login": "log in to a registry (the project keeps the credentials)",
    "logout": "forget a registry login",
    "commit": "make an image from a container's changes",
    "save": "write images to a tar archive",
    "load": "load images from a tar archive",
    "import": "make an image from a root filesystem tarball (as `export` writes)",
    "history": "show an image's layers and how they were made",
    "tag": "name an image",
    "rmi": "remove images",
    "volume": "manage volumes",
    "network": "manage networks",
    "pod": "manage pods (containers sharing a network and hostname)",
    "service": "manage services (a virtual IP over the containers a selector picks)",
    "project": "manage projects, their members and grants",
    "user": "manage users",
    "token": "manage API tokens",
    "whoami": "show who the credentials name and the project they act in",
    "quota": "show or set the project's quotas",
    "context": "manage named endpoints and credentials (like docker contexts)",
    "completion": "print a bash or zsh completion script",
}
_GLOBAL_WITH_VALUE = ("-H", "--host", "-o", "--output", "--token", "--project", "--context",
                      "--tls-ca", "--tls-cert", "--tls-key")


# docker's `container VERB` (its management command): the top-level command each verb is.
CONTAINER_VERBS = {
    **{verb: verb for verb in (
        "attach", "commit", "cp", "create", "diff", "exec", "export", "inspect", "kill", "logs",
        "pause", "port", "ps", "rename", "restart", "rm", "run", "start", "stats", "stop",
        "top", "unpause", "update", "wait", "actions")},
    "ls": "ps", "list": "ps", "remove": "rm",
}
# Other `GROUP VERB` spellings of docker's: its list/remove aliases, and verbs it files under
# a group that Berth has at the top level.
_LIST_REMOVE = {"list": "ls", "remove": "rm"}
_GROUP_ALIASES: dict[str, dict[str, str]] = {
    "image": {**_LIST_REMOVE, "build": "build"}, "volume": _LIST_REMOVE,
    "network": _LIST_REMOVE, "pod": _LIST_REMOVE, "service": _LIST_REMOVE,
    "project": _LIST_REMOVE, "context": _LIST_REMOVE, "user": {"list": "ls"},
    "token": {"list": "ls"}, "system": {"info": "info", "events": "events"},
}
_TOP_LEVEL_FROM_GROUP = {("image", "build"), ("system", "info"), ("system", "events")}
_OUTPUT_OPTIONS = ("-o", "--output")


def _command_at(argv: list[str]) -> int | None:
    """Where the command is named on the line, found without parsing."""
    skip = False
    for at, token in enumerate(argv):
        if skip:
            skip = False
        elif token in _GLOBAL_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return at
    return None


def _selected(argv: list[str]) -> str | None:
    """The command named on the line (None: show them all)."""
    at = _command_at(argv)
    return argv[at] if at is not None and argv[at] in COMMAND_HELP else None


def expand_aliases(argv: list[str]) -> list[str]:
    """The line with docker's other spellings of a command made Berth's own:
    `container ls -a` is `ps -a`, `image list` is `image ls`, `system info` is `info`.
    Only the words are swapped, so each command keeps one parser and one behaviour."""
    at = _command_at(argv)
    if at is None or argv[at] not in ("container", *_GROUP_ALIASES):
        return argv
    group = argv[at]
    verb_at, skip = None, False  # the verb may follow -o json (`container -o json ls`)
    for i in range(at + 1, len(argv)):
        if skip:
            skip = False
        elif argv[i] in _OUTPUT_OPTIONS:
            skip = True
        elif not argv[i].startswith("-"):
            verb_at = i
            break
    if verb_at is None:
        return argv
    verb = argv[verb_at]
    rest = argv[at + 1:verb_at] + argv[verb_at + 1:]
    if group == "container":
        if verb not in CONTAINER_VERBS:
            return argv
        return [*argv[:at], CONTAINER_VERBS[verb], *rest]
    target = _GROUP_ALIASES[group].get(verb)
    if target is None:
        return argv
    if (group, verb) in _TOP_LEVEL_FROM_GROUP:
        return [*argv[:at], target, *rest]
    return [*argv[:verb_at], target, *argv[verb_at + 1:]]


class _Formatter(argparse.HelpFormatter):
    """argparse's, given the width itself: argparse would import shutil for it (with its
    compression modules), 2-3 ms of every `berth run` that never prints help."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            width = _terminal_columns() - 2  # argparse's own margin
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    columns = os.environ.get("COLUMNS", "")
    if columns.isascii() and columns.isdigit() and 0 < int(columns) < 10**6:
        return int(columns)
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
        return 80


class _Parser(argparse.ArgumentParser):
    """A usage error is one line and exit 125, as docker's CLI does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        # docker takes no abbreviations: `--pid host` must not be read as `--pids-limit host`
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # "--label=--" means the value "--"; Python 3.11's argparse drops it as the end of
        # options and stores a list where a string belongs.
        if action.nargs is None and action.option_strings and arg_strings == ["--"]:
            return self._get_value(action, "--")
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> NoReturn:
        # A boolean flag given a value other than a boolean (go_bool_flag: --sig-proxy=maybe)
        message = message.replace("ignored explicit argument", "expected true or false, got")
        self.exit(125, f"berth: {message} (see '{self.prog} --help')\n")


def build(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser. Given a command line that names a command, only that command is built:
    the CLI's start-up time is part of every `berth run`, and argparse is slow to build
    (45 sub-parsers cost 14 ms). Without one, every command is listed for help and errors."""
    root = _Parser(prog="berth", description="Berth: OCI containers as a service.")
    root.add_argument("-H", "--host", help="daemon address (BERTH_HOST; default "
                      "unix:///run/berth/berth.sock)")
    root.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    root.add_argument("--token", help="API token (BERTH_TOKEN)")
    root.add_argument("--project", help="act in this project (BERTH_PROJECT)")
    root.add_argument("--context", help="take host and credentials from this named context "
                      "(BERTH_CONTEXT; default: the current one, see `berth context`)")
    for name, what in (("ca", "CA that signed the daemon's certificate"),
                       ("cert", "client certificate"), ("key", "client certificate's key")):
        root.add_argument(f"--tls-{name}", metavar="FILE",
                          help=f"{what} (BERTH_TLS_{name.upper()})")
    root.add_argument("--version", action="store_true")
    # -o/--output also after the command ("berth ps -o json"), as users type it.
    common = _Parser(add_help=False)
    common.add_argument("-o", "--output", choices=["table", "json", "yaml"],
                        default=argparse.SUPPRESS)
    sub = root.add_subparsers(dest="cmd", metavar="COMMAND")
    only = _selected(argv) if argv is not None else None
    for name, help_ in COMMAND_HELP.items():
        if only is not None and only != name:
            continue
        p = sub.add_parser(name, help=help_, parents=[] if name in ("save", "export") else [common],
                           add_help=name not in ("run", "create"))
        (_ARGS.get(name) or _more_args(name))(p, common)
    return root


def _more_args(name: str) -> Callable[[argparse.ArgumentParser, argparse.ArgumentParser], None]:
    if name in ("network", "pod", "service"):
        from berth.cli.parser_pods import ARGS
    else:
        from berth.cli.parser_identity import ARGS

    return ARGS[name]


_GO_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_GO_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def go_bool_flag(p: argparse.ArgumentParser, flag: str, default: bool, help: str) -> None:
    """A boolean flag as docker's (Go's) are: ``--flag`` alone is true and never takes the
    next word (``attach --sig-proxy web``); ``--flag=false`` sets it. argparse matches an
    option string exactly before it splits at "=", so each spelling is an option of its own."""
    dest = flag.lstrip("-").replace("-", "_")
    p.add_argument(flag, dest=dest, action="store_const", const=True, default=default,
                   help=help)
    for words, value in ((_GO_TRUE, True), (_GO_FALSE, False)):
        p.add_argument(*(f"{flag}={w}" for w in words), dest=dest, action="store_const",
                       const=value, help=argparse.SUPPRESS)


def _sig_proxy(p: argparse.ArgumentParser) -> None:
    go_bool_flag(p, "--sig-proxy", True, "pass the signals we get on to the container "
                 "(without -t); --sig-proxy=false: keep them")


def _detach_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detach-keys", metavar="KEYS", help="the keys that detach, in docker's "
                   "notation (default: ctrl-p,ctrl-q; e.g. ctrl-x,x)")


def _run(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--help", action="help")
    p.add_argument("-d", "--detach", action="store_true", help="print the id and return")
    p.add_argument("-a", "--attach", action="append", default=[], metavar="STREAM",
                   help="only these of stdin, stdout, stderr (repeatable; default: stdout and "
                   "stderr, and stdin with -i)")
    _sig_proxy(p)
    _detach_keys(p)
    _container_options(p)


def _create(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--help", action="help")
    _container_options(p)


def _start(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attach", action="store_true",
                   help="stream its output until it exits; its exit code is ours")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="attached, with our input as its (start -ai: back into a shell)")
    _sig_proxy(p)
    _detach_keys(p)
    p.add_argument("containers", nargs="+")


def _stop_or_restart(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", type=int, help="seconds to wait before SIGKILL")
    p.add_argument("-s", "--signal", help="send this instead of the container's stop signal")
    p.add_argument("containers", nargs="+")


def _kill(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="SIGKILL")
    p.add_argument("containers", nargs="+")


def _containers(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+")


INSPECT_TYPES = ("container", "image", "network", "volume", "pod", "service")


def _inspect(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    add_format(p)
    p.add_argument("--type", choices=INSPECT_TYPES,
                   help="only this kind (else the first kind with that name, in this order)")
    p.add_argument("-s", "--size", action="store_true",
                   help="containers: with size_rw and size_root_fs (bytes on disk)")
    p.add_argument("objects", nargs="+", metavar="NAME")


def add_list_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", metavar="TEMPLATE", help="a Go template for each row "
                   "('table TEMPLATE': with a header); or table, json, yaml as -o")


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", metavar="TEMPLATE",
                   help="a Go template per object, e.g. '{{.State.Pid}}' or '{{json .Config}}'")


def _rm(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes too")
    p.add_argument("containers", nargs="+")


def _rename(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("container")
    p.add_argument("new_name")


def _ps(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="status, label=K[=V], name, id, ancestor, health, exited=CODE, "
                   "before/since=CONTAINER, network, volume (a name or a mount's target)")
    p.add_argument("-n", "--last", type=int, metavar="N",
                   help="the N most recently created containers (any state)")
    p.add_argument("-l", "--latest", action="store_true",
                   help="the most recently created container (any state)")
    p.add_argument("--no-trunc", action="store_true", help="whole ids and commands")
    p.add_argument("-s", "--size", action="store_true",
                   help="what each takes on disk: its writable layer (and with its image)")
    p.add_argument("--format", metavar="TEMPLATE",
                   help="a Go template per container, e.g. 'table {{.ID}}\\t{{.Names}}' "
                   "(docker's fields: ID, Image, Command, CreatedAt, RunningFor, Ports, State, "
                   "Status, Size, Names, Labels, Networks; and Berth's own); or table, json, "
                   "yaml as -o")


def _logs(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("container")


def _exec(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true",
                   help="start the command and return; its output goes nowhere")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="KEY=VALUE lines (-e wins)")
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("-u", "--user", default="")
    p.add_argument("--privileged", action="store_true", help=argparse.SUPPRESS)  # refused
    _detach_keys(p)
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _one_container(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("container")


def _top(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS OPTIONS",
                   help="options for the host's ps, as docker top takes them (default: -ef)")


def _container(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="container_cmd", metavar="COMMAND", required=True)
    # expand_aliases makes `container VERB` the top-level command before parsing; these are
    # here for `container --help` and shell completion.
    for verb, command in CONTAINER_VERBS.items():
        same = "" if verb == command else f" (= berth {command})"
        q = sub.add_parser(verb, help=COMMAND_HELP[command] + same,
                           parents=[] if command == "export" else [common],
                           add_help=command not in ("run", "create"))
        _ARGS[command](q, common)
    q = sub.add_parser("prune", help="remove stopped containers", parents=[common])
    q.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="label=K[=V], label!=K[=V], until=24h|DATE")
    q.add_argument("-f", "--force", action="store_true", help="(no prompt is asked anyway)")


def _system(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="system_cmd", metavar="COMMAND", required=True)
    q = sub.add_parser("prune", parents=[common],
                       help="remove stopped containers, unused networks, dangling images and "
                       "build cache")
    q.add_argument("-a", "--all", action="store_true",
                   help="every image no container uses, not only dangling ones; all build "
                   "cache")
    q.add_argument("--volumes", action="store_true", help="and volumes no container uses")
    q.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="label=K[=V], label!=K[=V], until=24h|DATE")
    q.add_argument("-f", "--force", action="store_true", help="(no prompt is asked anyway)")
    q = sub.add_parser("df", parents=[common], help="show the disk images, containers, "
                       "volumes and build cache take")
    q.add_argument("-v", "--verbose", action="store_true", help="each of them too")


def _builder(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="builder_cmd", metavar="COMMAND", required=True)
    q = sub.add_parser("prune", parents=[common], help="remove build cache: the records of "
                       "build steps and the images only they kept")
    q.add_argument("-a", "--all", action="store_true", help="also the records of images a "
                   "build ended at (those images stay)")
    q.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="until=24h|DATE (not used since), id=PREFIX")
    q.add_argument("--keep-storage", metavar="SIZE",
                   help="keep the most recently used cache up to this size (e.g. 1gb)")
    q.add_argument("-f", "--force", action="store_true", help="(no prompt is asked anyway)")


def _attach(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stdin", action="store_true", help="do not send our input")
    _sig_proxy(p)
    _detach_keys(p)
    p.add_argument("container")


def _cp(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--archive", action="store_true",
                   help="keep owners (uid/gid) and set-id bits as they are")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="copy what SRC links to, not the link")
    p.add_argument("src", metavar="SRC", help="CONTAINER:PATH, a local path, or - (a tar)")
    p.add_argument("dest", metavar="DEST", help="CONTAINER:PATH, a local path, or - (a tar)")


def _export(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", dest="file", metavar="FILE",
                   help="write to FILE (default: standard output)")
    p.add_argument("container")


def _port(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("container")
    p.add_argument("port", nargs="?", metavar="PORT[/PROTO]")


def _stats(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stream", action="store_true")
    add_list_format(p)
    p.add_argument("containers", nargs="*", help="default: every running container")


def _update(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    _limits(p)
    p.add_argument("--restart")
    p.add_argument("containers", nargs="+")


def _events(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--type", help="container, image, volume or network")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="type=, container=, image=, volume=, network= (a name or id), "
                   "event= (die, start, ...), label=KEY[=VALUE]")
    p.add_argument("--since", metavar="TIME", help="replay the recent events since then "
                   "(unix seconds, RFC 3339, or a duration before now: 10m)")
    p.add_argument("--until", metavar="TIME", help="stop then (same forms)")
    p.add_argument("--format", metavar="TEMPLATE",
                   help="a Go template for each event, or json (a line each)")


def _nothing(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    pass


def _pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platform", help="OS/ARCH[/VARIANT] (default: this host's)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("image")


def _build(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--tag", action="append", default=[], help="name:tag (repeatable)")
    p.add_argument("-f", "--file", default=None,
                   help="the Dockerfile (default: CONTEXT/Dockerfile; - reads it from stdin)")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--target", help="build up to this stage")
    p.add_argument("--no-cache", action="store_true", help="do not reuse cached steps")
    p.add_argument("--pull", action="store_true", help="pull the base images first")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("build_context", metavar="CONTEXT",
                   help="the build context directory, or - (stdin: a Dockerfile alone, or a "
                   "context archive)")


def _push(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sign-by", metavar="FINGERPRINT",
                   help="sign with this GPG key of the daemon's keyring (simple signing)")
    p.add_argument("--sign-by-sigstore-key", metavar="PATH",
                   help="sign with this sigstore private key (a path on the daemon host)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")
    p.add_argument("destination", nargs="?", help="push under this name instead")


def _login(p: argparse.ArgumentParser) -> None:
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password", help="insecure: prefer --password-stdin")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("registry")


def _logout(p: argparse.ArgumentParser) -> None:
    p.add_argument("registry")


def _commit(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[],
                   help="Dockerfile instruction: CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, USER, "
                   "WORKDIR, VOLUME, STOPSIGNAL")
    p.add_argument("-m", "--message", default="")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-p", "--pause", default="true", choices=["true", "false"],
                   help="freeze the container while committing (default true)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?", help="NAME[:TAG]")


def _save(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", dest="file",
                   help="write to this file (default: standard output)")
    p.add_argument("--format", choices=["docker-archive", "oci-archive"],
                   default="docker-archive")
    p.add_argument("images", nargs="+")


def _load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", default="-", help="read this file (default: stdin)")
    p.add_argument("-q", "--quiet", action="store_true")


def _import_args(fmt: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        p.set_defaults(import_format=fmt)
        p.add_argument("-c", "--change", action="append", default=[],
                       help="Dockerfile instruction for the image's config: CMD, ENTRYPOINT, "
                       "ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL")
        p.add_argument("-m", "--message", default="", help="the image's history comment")
        p.add_argument("file", help="path, or - for standard input")
        p.add_argument("reference", nargs="?", help="NAME[:TAG] for the image")

    return add


def _history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    add_list_format(p)
    p.add_argument("image")


def _tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("target")


def _rmi(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("images", nargs="+")


def _ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="reference=GLOB, label=KEY[=VALUE], dangling=true|false, before=, since=")
    p.add_argument("-q", "--quiet", action="store_true", help="print only image ids")
    p.add_argument("-a", "--all", action="store_true",
                   help="build steps' results too (build cache)")
    p.add_argument("--digests", action="store_true")
    add_list_format(p)


def _image_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="every image no container uses, not only dangling ones")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="until=24h|DATE (made before), label=K[=V], label!=K[=V]")
    p.add_argument("-f", "--force", action="store_true", help="(no prompt is asked anyway)")


def _sign(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sign-by", metavar="FINGERPRINT")
    p.add_argument("--sign-by-sigstore-key", metavar="PATH")
    p.add_argument("image", help="a pulled or pushed image (its registry name)")


def _policy(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--set", metavar="FILE", help="the project's policy.json (stricter "
                       "than the host's, never instead of it)")
    group.add_argument("--unset", action="store_true")


IMAGE_VERBS = {
    "pull": ("pull an image from a registry", _pull),
    "push": ("push an image to a registry", _push),
    "ls": ("list images", _ls),
    "inspect": ("show images", lambda p: (add_format(p), p.add_argument("images", nargs="+"))),
    "history": ("show an image's history", _history),
    "tag": ("name an image", _tag),
    "untag": ("remove names from images", lambda p: p.add_argument("images", nargs="+")),
    "rm": ("remove images", _rmi),
    "prune": ("remove dangling images (-a: every image no container uses)", _image_prune),
    "save": ("write images to a tar archive", _save),
    "load": ("load images from a tar archive", _load),
    "import": ("import a root filesystem tarball as an image (or a docker-archive or OCI "
               "layout's images)", _import_args("auto")),
    "commit": ("make an image from a container's changes", _commit),
    "build-base": ("build a base image from the host (offline)", None),
    "sign": ("sign an image in its registry", _sign),
    "verify": ("check an image against the signature policy", lambda p: p.add_argument(
        "image")),
    "policy": ("show or set the project's signature policy", _policy),
}


def _build_base(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=["busybox"])
    p.add_argument("--tag")


def _image(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    img = p.add_subparsers(dest="image_cmd", metavar="COMMAND", required=True)
    for name, (help_, add) in IMAGE_VERBS.items():
        q = img.add_parser(name, help=help_, parents=[] if name == "save" else [common])
        (add or _build_base)(q)


def _image_alias(verb: str, add: Callable[[argparse.ArgumentParser], None]
                 ) -> Callable[[argparse.ArgumentParser, argparse.ArgumentParser], None]:
    """`berth pull` is `berth image pull`, as in docker."""

    def build(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
        p.set_defaults(image_cmd=verb)
        add(p)

    return build


def _login_args(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    _login(p)


def _logout_args(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    _logout(p)


def _images(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.set_defaults(image_cmd="ls")
    _ls(p)


def _volume(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    vol = p.add_subparsers(dest="volume_cmd", metavar="COMMAND", required=True)

    def sub(name: str, help_: str) -> argparse.ArgumentParser:
        return vol.add_parser(name, help=help_, parents=[common])

    q = sub("create", "create a named volume")
    q.add_argument("name", nargs="?")
    q.add_argument("-l", "--label", action="append", default=[])
    q.add_argument("-d", "--driver", choices=["local"], default="local")
    q.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="type=tmpfs o=size=64m,uid=1000 | type=none o=bind device=/host/dir")
    q = sub("ls", "list volumes")
    q.add_argument("-f", "--filter", action="append", default=[])
    q.add_argument("-q", "--quiet", action="store_true")
    add_list_format(q)
    q = sub("inspect", "show volumes")
    add_format(q)
    q.add_argument("volumes", nargs="+")
    q = sub("rm", "remove volumes")
    q.add_argument("volumes", nargs="+")
    sub("prune", "remove volumes no container uses")


_ARGS = {
    "info": _nothing, "version": _nothing, "run": _run, "create": _create, "start": _start,
    "stop": _stop_or_restart, "restart": _stop_or_restart, "kill": _kill,
    "pause": _containers, "unpause": _containers, "wait": _containers,
    "inspect": _inspect, "rm": _rm, "rename": _rename, "ps": _ps, "logs": _logs,
    "exec": _exec, "attach": _attach, "top": _top, "stats": _stats,
    "update": _update, "actions": _one_container, "container": _container, "system": _system,
    "builder": _builder, "cp": _cp,
    "diff": _one_container, "export": _export, "port": _port, "events": _events,
    "image": _image, "images": _images, "volume": _volume, "pull": _image_alias("pull", _pull),
    "build": _image_alias("build", _build), "push": _image_alias("push", _push),
    "login": _login_args, "logout": _logout_args,
    "commit": _image_alias("commit", _commit), "save": _image_alias("save", _save),
    "load": _image_alias("load", _load), "import": _image_alias("import", _import_args("rootfs")),
    "history": _image_alias("history", _history),
    "tag": _image_alias("tag", _tag), "rmi": _image_alias("rm", _rmi),
}
