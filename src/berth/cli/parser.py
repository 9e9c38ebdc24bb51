"""The `berth` command line: every command and option, nothing else (no imports of the SDK)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from typing import NoReturn


def _container_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="container name (unique in the project)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="KEY=VALUE lines; # comments; a bare KEY takes this shell's value")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-h", "--hostname")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-v", "--volume", action="append", default=[],
                   metavar="SRC:DST[:ro]", help="named volume or host path (bind) mount")
    p.add_argument("--mount", action="append", default=[],
                   metavar="type=bind|volume|tmpfs,source=…,target=…[,readonly]")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:size=64m,mode=1777]")
    p.add_argument("-m", "--memory", help="memory limit, e.g. 64m")
    p.add_argument("--memory-swap", help="memory+swap limit, -1 for unlimited")
    p.add_argument("--cpus", type=float)
    p.add_argument("--cpu-shares", type=int)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--restart", default="no", help="no | on-failure[:N] | always | unless-stopped")
    p.add_argument("--entrypoint")
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--network", default="none", choices=["none", "host"])
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


COMMAND_HELP: dict[str, str] = {
    "info": "show the daemon and host",
    "run": "create and start a container",
    "create": "create a container",
    "start": "start containers",
    "stop": "stop containers (SIGTERM, then SIGKILL)",
    "restart": "restart containers",
    "kill": "send a signal to containers",
    "pause": "freeze containers",
    "unpause": "thaw containers",
    "wait": "wait for containers to stop; print exit codes",
    "inspect": "show containers in detail",
    "rm": "remove containers",
    "rename": "rename a container",
    "ps": "list containers",
    "logs": "show a container's output",
    "exec": "run a command in a running container",
    "top": "show a container's processes",
    "stats": "show CPU, memory, pids and IO of containers",
    "update": "change limits of containers",
    "actions": "show a container's actions log",
    "events": "stream events",
    "image": "manage images",
    "images": "list images",
    "volume": "manage volumes",
}
_GLOBAL_WITH_VALUE = ("-H", "--host", "-o", "--output")


def _selected(argv: list[str]) -> str | None:
    """The command named on the line, found without parsing (None: show them all)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _GLOBAL_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return token if token in COMMAND_HELP else None
    return None


class _Parser(argparse.ArgumentParser):
    """A usage error is one line and exit 125, as docker's CLI does."""

    def error(self, message: str) -> NoReturn:
        self.exit(125, f"berth: {message} (see '{self.prog} --help')\n")


def build(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser. Given the command line, only the named command gets its arguments: the
    CLI's start-up time is part of every `berth run`, and argparse is slow to build."""
    root = _Parser(prog="berth", description="Berth: OCI containers as a service.")
    root.add_argument("-H", "--host", help="daemon address (BERTH_HOST; default "
                      "unix:///run/berth/berth.sock)")
    root.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    root.add_argument("--version", action="store_true")
    # -o/--output also after the command ("berth ps -o json"), as users type it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", choices=["table", "json", "yaml"],
                        default=argparse.SUPPRESS)
    sub = root.add_subparsers(dest="cmd", metavar="COMMAND")
    only = _selected(argv) if argv is not None else None
    for name, help_ in COMMAND_HELP.items():
        p = sub.add_parser(name, help=help_, parents=[common],
                           add_help=name not in ("run", "create"))
        if only is None or only == name:
            _ARGS[name](p, common)
    return root


def _run(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--help", action="help")
    p.add_argument("-d", "--detach", action="store_true", help="print the id and return")
    _container_options(p)


def _create(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--help", action="help")
    _container_options(p)


def _start(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("containers", nargs="+")


def _stop_or_restart(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", type=int, help="seconds to wait before SIGKILL")
    p.add_argument("containers", nargs="+")


def _kill(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="SIGKILL")
    p.add_argument("containers", nargs="+")


def _containers(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+")


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
    p.add_argument("-f", "--filter", action="append", default=[],
                   metavar="status=…|label=k[=v]|name=…|id=…|ancestor=…")


def _logs(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("container")


def _exec(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("-u", "--user", default="")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _one_container(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("container")


def _stats(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("containers", nargs="+")


def _update(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--memory")
    p.add_argument("--memory-swap")
    p.add_argument("--cpus", type=float)
    p.add_argument("--cpu-shares", type=int)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--restart")
    p.add_argument("containers", nargs="+")


def _events(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("--type")


def _nothing(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    pass


def _image(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    img = p.add_subparsers(dest="image_cmd", metavar="COMMAND", required=True)

    def sub(name: str, help_: str) -> argparse.ArgumentParser:
        return img.add_parser(name, help=help_, parents=[common])

    q = sub("import", "import a docker-archive or OCI layout tarball")
    q.add_argument("file", help="path, or - for standard input")
    q = sub("build-base", "build a base image from the host (offline)")
    q.add_argument("kind", choices=["busybox"])
    q.add_argument("--tag")
    sub("ls", "list images")
    q = sub("inspect", "show an image")
    q.add_argument("images", nargs="+")
    q = sub("rm", "remove images")
    q.add_argument("-f", "--force", action="store_true")
    q.add_argument("images", nargs="+")
    q = sub("tag", "name an image")
    q.add_argument("source")
    q.add_argument("target")


def _volume(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    vol = p.add_subparsers(dest="volume_cmd", metavar="COMMAND", required=True)

    def sub(name: str, help_: str) -> argparse.ArgumentParser:
        return vol.add_parser(name, help=help_, parents=[common])

    q = sub("create", "create a named volume")
    q.add_argument("name", nargs="?")
    q.add_argument("-l", "--label", action="append", default=[])
    q = sub("ls", "list volumes")
    q.add_argument("-f", "--filter", action="append", default=[])
    q.add_argument("-q", "--quiet", action="store_true")
    q = sub("inspect", "show volumes")
    q.add_argument("volumes", nargs="+")
    q = sub("rm", "remove volumes")
    q.add_argument("volumes", nargs="+")
    sub("prune", "remove volumes no container uses")


_ARGS = {
    "info": _nothing, "run": _run, "create": _create, "start": _start,
    "stop": _stop_or_restart, "restart": _stop_or_restart, "kill": _kill,
    "pause": _containers, "unpause": _containers, "wait": _containers,
    "inspect": _containers, "rm": _rm, "rename": _rename, "ps": _ps, "logs": _logs,
    "exec": _exec, "top": _one_container, "stats": _stats, "update": _update,
    "actions": _one_container, "events": _events, "image": _image, "images": _nothing,
    "volume": _volume,
}
