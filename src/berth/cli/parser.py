"""The `berth` command line: every command and option, nothing else (no imports of the SDK)."""

from __future__ import annotations

import argparse


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


def build() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="berth", description="Berth: OCI containers as a service.")
    root.add_argument("-H", "--host", help="daemon address (BERTH_HOST; default "
                      "unix:///run/berth/berth.sock)")
    root.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    root.add_argument("--version", action="store_true")
    # -o/--output also after the command ("berth ps -o json"), as users type it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", choices=["table", "json", "yaml"],
                        default=argparse.SUPPRESS)
    sub = root.add_subparsers(dest="cmd", metavar="COMMAND")

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, parents=[common],
                              add_help=name not in ("run", "create"))

    cmd("info", "show the daemon and host")
    for name, what in (("run", "create and start a container"), ("create", "create a container")):
        p = cmd(name, what)
        p.add_argument("--help", action="help")
        if name == "run":
            p.add_argument("-d", "--detach", action="store_true", help="print the id and return")
        _container_options(p)

    p = cmd("start", "start containers")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("containers", nargs="+")
    for name, what in (("stop", "stop containers (SIGTERM, then SIGKILL)"),
                       ("restart", "restart containers")):
        p = cmd(name, what)
        p.add_argument("-t", "--time", type=int, help="seconds to wait before SIGKILL")
        p.add_argument("containers", nargs="+")
    p = cmd("kill", "send a signal to containers")
    p.add_argument("-s", "--signal", default="SIGKILL")
    p.add_argument("containers", nargs="+")
    for name, what in (("pause", "freeze containers"), ("unpause", "thaw containers"),
                       ("wait", "wait for containers to stop; print exit codes"),
                       ("inspect", "show containers in detail")):
        p = cmd(name, what)
        p.add_argument("containers", nargs="+")
    p = cmd("rm", "remove containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes too")
    p.add_argument("containers", nargs="+")
    p = cmd("rename", "rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    p = cmd("ps", "list containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[],
                   metavar="status=…|label=k[=v]|name=…|id=…|ancestor=…")
    p = cmd("logs", "show a container's output")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("container")
    p = cmd("exec", "run a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("-u", "--user", default="")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = cmd("top", "show a container's processes")
    p.add_argument("container")
    p = cmd("stats", "show CPU, memory, pids and IO of containers")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("containers", nargs="+")
    p = cmd("update", "change limits of containers")
    p.add_argument("-m", "--memory")
    p.add_argument("--memory-swap")
    p.add_argument("--cpus", type=float)
    p.add_argument("--cpu-shares", type=int)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--restart")
    p.add_argument("containers", nargs="+")
    p = cmd("actions", "show a container's actions log")
    p.add_argument("container")
    p = cmd("events", "stream events")
    p.add_argument("--type")

    img = cmd("image", "manage images").add_subparsers(dest="image_cmd", metavar="COMMAND",
                                                        required=True)

    def img_parser(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002
        return img.add_parser(name, help=help, parents=[common])

    p = img_parser("import", help="import a docker-archive or OCI layout tarball")
    p.add_argument("file", help="path, or - for standard input")
    p = img_parser("build-base", help="build a base image from the host (offline)")
    p.add_argument("kind", choices=["busybox"])
    p.add_argument("--tag")
    img_parser("ls", help="list images")
    p = img_parser("inspect", help="show an image")
    p.add_argument("images", nargs="+")
    p = img_parser("rm", help="remove images")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("images", nargs="+")
    p = img_parser("tag", help="name an image")
    p.add_argument("source")
    p.add_argument("target")
    cmd("images", "list images")

    vol = cmd("volume", "manage volumes").add_subparsers(dest="volume_cmd", metavar="COMMAND",
                                                         required=True)

    def vol_parser(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002
        return vol.add_parser(name, help=help, parents=[common])

    p = vol_parser("create", help="create a named volume")
    p.add_argument("name", nargs="?")
    p.add_argument("-l", "--label", action="append", default=[])
    p = vol_parser("ls", help="list volumes")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("-q", "--quiet", action="store_true")
    p = vol_parser("inspect", help="show volumes")
    p.add_argument("volumes", nargs="+")
    p = vol_parser("rm", help="remove volumes")
    p.add_argument("volumes", nargs="+")
    vol_parser("prune", help="remove volumes no container uses")
    return root
