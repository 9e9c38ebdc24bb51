"""What each `berth` command does, on top of the SDK."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from berth.cli import convert, image_commands
from berth.cli.output import (
    OUTPUT_KINDS,
    ago,
    each,
    emit,
    emit_rows,
    human_size,
    inspect_each,
    labels_text,
    output_kind,
    status_text,
)
from berth.client import APIError, Client

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator
    from typing import Any

EXIT_FRAME = 3
CONTAINER_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("CONTAINER ID", lambda c: c["id"][:12]),
    ("IMAGE", lambda c: c["image"]),
    ("COMMAND", lambda c: _command(c, 22)),
    ("CREATED", lambda c: ago(c["created"])),
    ("STATUS", status_text),
    ("PORTS", lambda c: ports_text(c)),
    ("NAMES", lambda c: c["name"]),
]
FULL_CONTAINER_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [  # ps --no-trunc
    ("CONTAINER ID", lambda c: c["id"]),
    ("IMAGE", lambda c: c["image"]),
    ("COMMAND", lambda c: _command(c)),
    *CONTAINER_COLUMNS[3:],
]


def _command(c: dict[str, Any], width: int | None = None) -> str:
    """The container's command in quotes, as docker's ps shows it: cut to width if given."""
    text = " ".join(c["config"].get("command") or [])
    if width is not None and len(text) > width:
        return f'"{text[: width - 1]}…"'
    return f'"{text}"'


def _fmt(args: argparse.Namespace) -> str:
    return args.output


def dispatch(client: Client, args: argparse.Namespace) -> int:
    if args.cmd in ("pod", "service"):  # their modules load only when named
        from berth.cli.pod_commands import COMMANDS as more
    elif args.cmd in ("cp", "diff", "export", "port"):
        from berth.cli.file_commands import COMMANDS as more
    elif args.cmd == "network":
        from berth.cli.network_commands import COMMANDS as more
    else:
        more = COMMANDS
    return more[args.cmd](client, args) or 0


# -- containers -----------------------------------------------------------------------------

def cmd_run(client: Client, args: argparse.Namespace) -> int:
    spec = convert.container_spec(args)
    keys = _detach_keys(args)  # refused before anything is made
    attached = _attached_streams(args)
    with _cidfile(args.cidfile) as note_id:
        if args.detach:
            box = _pulling(client, args, lambda: client.containers.create(spec, start=True))
            note_id(box["id"])
            print(box["id"])
            return 0
        outputs = {n for n, name in ((1, "stdout"), (2, "stderr")) if name in attached}
        if args.tty or args.interactive:
            from berth.cli.interactive import run_interactive

            # As `docker run -i`: the end of our input is the end of the container's.
            spec["stdin_once"] = bool(args.interactive)
            box = _pulling(client, args, lambda: client.containers.create(spec, start=False))
            note_id(box["id"])
            with _signals_to(client, args.sig_proxy and not args.tty, box["id"]):
                return run_interactive(client, box, args.tty, keys,
                                       stdin="stdin" in attached, outputs=outputs)
        return _pulling(client, args, lambda: _run_attached(client, spec, args.sig_proxy,
                                                            note_id, outputs))


STREAMS = ("stdin", "stdout", "stderr")


def _attached_streams(args: argparse.Namespace) -> set[str]:
    """docker run -a: the streams we attach to (default: stdout and stderr, stdin with -i;
    input reaches the container only with -i, as docker's)."""
    if not args.attach:
        return {"stdout", "stderr", *(["stdin"] if args.interactive else [])}
    if args.detach:
        raise convert.UsageError("conflicting options: -a/--attach and -d/--detach")
    streams = {name.lower() for name in args.attach}
    unknown = sorted(streams - set(STREAMS))
    if unknown:
        raise convert.UsageError(f"invalid --attach {unknown[0]}: valid streams are stdin, "
                                 "stdout and stderr")
    return streams if args.interactive else streams - {"stdin"}


@contextlib.contextmanager
def _cidfile(path: str | None) -> Iterator[Callable[[str], None]]:
    """Docker's --cidfile: the file is made first (one that is there may be another
    container's), gets the id once it is known, and goes again if no container came."""
    if not path:
        yield lambda _cid: None
        return
    try:
        f = open(path, "x", encoding="ascii")  # noqa: SIM115 (kept open across the create)
    except FileExistsError:
        raise convert.UsageError(f"container ID file {path} exists: is its container still "
                                 "running? Remove the file first") from None
    except OSError as e:
        raise convert.UsageError(f"cannot write the container ID file {path}: "
                                 f"{e.strerror or e}") from None
    noted: list[str] = []

    def note(cid: str) -> None:
        f.write(cid)
        f.flush()
        noted.append(cid)

    try:
        yield note
    except BaseException:
        if not noted:
            import os

            os.unlink(path)
        raise
    finally:
        f.close()


def _signals_to(client: Client, enabled: bool, container: str = "") -> Any:
    """Docker's --sig-proxy: while attached, the signals we get go to the container."""
    if not enabled:
        return contextlib.nullcontext()
    from berth.cli.sigproxy import SignalProxy

    return SignalProxy(client.containers.kill, container)


def _run_attached(client: Client, spec: dict[str, Any], sig_proxy: bool,
                  note_id: Callable[[str], None], outputs: set[int]) -> int:
    with _signals_to(client, sig_proxy) as proxy:
        stream = client.containers.run_attached(spec)
        if proxy:
            proxy.target(stream.container_id)
        note_id(stream.container_id)
        return _stream_until_exit(stream, outputs)


def _pulling(client: Client, args: argparse.Namespace, act: Callable[[], Any]) -> Any:
    """Docker's --pull: "missing" pulls an image the project lacks, then tries again."""
    if args.pull == "always":
        image_commands.show_progress(client.images.pull(args.image, args.platform), args.quiet)
        return act()
    try:
        return act()
    except APIError as e:
        if args.pull == "never" or e.status != 404 or not e.message.startswith(
                "no such image"):
            raise
    try:
        image_commands.show_progress(client.images.pull(args.image, args.platform), args.quiet)
    except APIError as e:  # one line: what was missing, and why fetching it failed
        raise APIError(e.status, f"no such image {args.image} here, and pulling it failed: "
                       f"{e.message}", e.body) from None
    return act()


def _stream_until_exit(frames: Iterator[tuple[int, bytes]],
                       outputs: Collection[int] = (1, 2)) -> int:
    """outputs: the streams shown (1 stdout, 2 stderr; run -a leaves some out)."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for stream, data in frames:
        if stream == EXIT_FRAME:
            final = json.loads(data)
            out.flush()
            if final.get("oom_killed"):
                sys.stderr.write("berth: the container was killed: out of memory\n")
            return int(final.get("exit_code") or 0)
        if stream not in outputs:
            continue
        target = err if stream == 2 else out
        target.write(data)
        target.flush()
    sys.stderr.write("berth: the output stream ended before the container's exit was known\n")
    return 125


def cmd_create(client: Client, args: argparse.Namespace) -> int:
    spec = convert.container_spec(args)
    with _cidfile(args.cidfile) as note_id:
        box = _pulling(client, args, lambda: client.containers.create(spec, start=False))
        note_id(box["id"])
    print(box["id"])
    return 0


def cmd_start(client: Client, args: argparse.Namespace) -> int:
    """start -a: this run's output (not an earlier run's) and exit code; -i: with our input
    too, on its terminal when it has one, as `run -it` (the detach keys leave it running)."""
    if args.attach or args.interactive:
        if len(args.containers) != 1:
            raise convert.UsageError("start --attach and --interactive take exactly one "
                                     "container")
        keys = _detach_keys(args)
        box = client.containers.get(args.containers[0])
        tty = bool(box["config"].get("tty"))
        with _signals_to(client, args.sig_proxy and not tty, box["id"]):
            if args.interactive:
                from berth.cli.interactive import run_interactive

                return run_interactive(client, box, tty, keys)
            return _stream_until_exit(client.containers.start_attached(box["id"]))
    return each(args.containers, client.containers.start)


def cmd_stop(client: Client, args: argparse.Namespace) -> int:
    return each(args.containers, lambda n: client.containers.stop(n, args.time, args.signal))


def cmd_restart(client: Client, args: argparse.Namespace) -> int:
    return each(args.containers,
                lambda n: client.containers.restart(n, args.time, args.signal))


def cmd_kill(client: Client, args: argparse.Namespace) -> int:
    return each(args.containers, lambda n: client.containers.kill(n, args.signal))


def cmd_pause(client: Client, args: argparse.Namespace) -> int:
    return each(args.containers, client.containers.pause)


def cmd_unpause(client: Client, args: argparse.Namespace) -> int:
    return each(args.containers, client.containers.unpause)


def cmd_rm(client: Client, args: argparse.Namespace) -> int:
    return each(args.containers,
                 lambda n: client.containers.remove(n, args.force, args.volumes))


def cmd_rename(client: Client, args: argparse.Namespace) -> int:
    client.containers.rename(args.container, args.new_name)
    return 0


def cmd_wait(client: Client, args: argparse.Namespace) -> int:
    failed = 0
    for name in args.containers:
        try:
            print(client.containers.wait(name)["exit_code"])
        except APIError as e:
            sys.stderr.write(f"berth: {e.message}\n")
            failed = 1
    return failed


def cmd_inspect(client: Client, args: argparse.Namespace) -> int:
    """docker inspect: an object of any kind, the first found in INSPECT_TYPES' order (the
    names of different kinds may be alike), or only of --type."""
    from berth.cli.parser import INSPECT_TYPES

    getters: dict[str, Callable[[str], Any]] = {
        "container": lambda name: client.containers.get(name, size=args.size),
        "image": client.images.get, "network": client.networks.get,
        "volume": client.volumes.get, "pod": client.pods.get, "service": client.services.get}
    if args.type is not None:
        return inspect_each(args.objects, getters[args.type], _fmt(args), args.format)
    return inspect_each(args.objects,
                        lambda name: first_found([getters[k] for k in INSPECT_TYPES], name),
                        _fmt(args), args.format)


def first_found(getters: list[Callable[[str], Any]], name: str) -> Any:
    """What the first getter that knows ``name`` answers; a name one kind refuses (400: not
    a valid image reference, say) is looked for among the next kinds."""
    for get in getters:
        try:
            return get(name)
        except APIError as e:
            if e.status not in (400, 404):
                raise
    raise APIError(404, f"no such object: {name}")


def cmd_ps(client: Client, args: argparse.Namespace) -> int:
    last = 1 if args.latest else args.last
    if last is not None and last < 0:
        raise convert.UsageError(f"invalid --last {last}: a number of containers")
    # Newest first, as the API lists them: -n/-l look at every state, as docker's do.
    # As docker's: a template that shows the size asks for it.
    size = args.size or ".Size" in (args.format or "")
    rows = client.containers.list(all=args.all or last is not None, filters=args.filter,
                                  size=size)
    if last is not None:
        rows = rows[:last]
    width = None if args.no_trunc else 12
    if args.quiet:
        for c in rows:
            print(c["id"][:width])
        return 0
    columns = FULL_CONTAINER_COLUMNS if args.no_trunc else CONTAINER_COLUMNS
    if args.size:
        columns = [*columns, ("SIZE", size_text)]
    emit_rows(rows, args, columns, ps_fields, PS_TITLES)
    return 0


PS_TITLES = {"id": "CONTAINER ID", "runningfor": "CREATED", "createdat": "CREATED AT"}


def ps_fields(c: dict[str, Any]) -> dict[str, Any]:
    """A container as docker's ps --format names its fields, beside Berth's own."""
    return {**c, "ID": c["id"][:12], "Image": c["image"],
            "Command": _command(c, 20),
            "CreatedAt": c["created"], "RunningFor": ago(c["created"]),
            "Ports": ports_text(c), "State": c["state"]["status"], "Status": status_text(c),
            "Names": c["name"], "Labels": labels_text(c.get("labels")), "Size": size_text(c),
            "Networks": ",".join(sorted(c.get("networks") or {}))}


def size_text(c: dict[str, Any]) -> str:
    """docker ps -s: the writable layer's size and, in brackets, that and the image's."""
    if "size_rw" not in c:
        return ""
    return f"{human_size(c['size_rw'])} (virtual {human_size(c['size_root_fs'])})"


def ports_text(c: dict[str, Any]) -> str:
    """Published ports as docker's ps shows them: 0.0.0.0:8080->80/tcp."""
    return ", ".join(f"{p.get('host_ip') or '0.0.0.0'}:{p['host_port']}->"
                     f"{p['container_port']}/{p['proto']}" for p in c.get("ports") or []
                     if p.get("host_port"))


def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    frames = client.containers.logs(args.container, follow=args.follow, tail=args.tail,
                                    since=args.since, until=args.until,
                                    timestamps=args.timestamps)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for stream, data in frames:
        target = err if stream == 2 else out
        target.write(data)
        target.flush()
    return 0


def cmd_exec(client: Client, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise convert.UsageError("exec needs a command to run")
    if args.privileged:
        raise convert.UsageError("--privileged is not supported by Berth: a command runs "
                                 "with its container's privileges")
    env = convert.env_files(args.env_file) + args.env  # -e wins over a file, as in docker
    from berth.cli.interactive import run_exec

    return run_exec(client, args.container, command, tty=args.tty, stdin=args.interactive,
                    env=env, workdir=args.workdir, user=args.user, detach=args.detach,
                    keys=_detach_keys(args))


def cmd_attach(client: Client, args: argparse.Namespace) -> int:
    from berth.cli.interactive import attach

    keys = _detach_keys(args)
    return attach(client, args.container, args.no_stdin,
                  lambda box: _signals_to(client, args.sig_proxy and not box["config"].get("tty"),
                                          box["id"]), keys)


def _detach_keys(args: argparse.Namespace) -> bytes | None:
    """--detach-keys in docker's notation: "ctrl-p,ctrl-q" (the default), "ctrl-x,x", …
    (None: not given; the parser loads only then, off `berth run`'s path)."""
    if args.detach_keys is None:
        return None
    from berth.detachkeys import parse
    from berth.errors import InvalidArgument

    try:
        return parse(args.detach_keys)
    except InvalidArgument as e:
        raise convert.UsageError(f"--detach-keys: {e.message}") from None


def cmd_container(client: Client, args: argparse.Namespace) -> int:
    removed = client.containers.prune(args.filter)["removed"]  # the only verb: prune
    for cid in removed:
        print(f"deleted: {cid}")
    return 0


def cmd_system(client: Client, args: argparse.Namespace) -> int:
    if args.system_cmd == "df":
        return _disk_usage(client, args)
    return _prune_all(client, args)


DF_KINDS = (("images", "Images"), ("containers", "Containers"), ("volumes", "Local Volumes"),
            ("build_cache", "Build Cache"))


def _disk_usage(client: Client, args: argparse.Namespace) -> int:
    """docker system df: a line per kind; -v: each object too."""
    use = client.disk_usage()
    if _fmt(args) != "table":
        emit(use if args.verbose else use["summary"], _fmt(args))
        return 0

    def reclaimable(s: dict[str, int]) -> str:
        share = f" ({s['reclaimable'] * 100 // s['size']}%)" if s["size"] else ""
        return human_size(s["reclaimable"]) + share

    emit([(title, use["summary"][kind]) for kind, title in DF_KINDS], "table", [
        ("TYPE", lambda r: r[0]), ("TOTAL", lambda r: r[1]["total"]),
        ("ACTIVE", lambda r: r[1]["active"]), ("SIZE", lambda r: human_size(r[1]["size"])),
        ("RECLAIMABLE", lambda r: reclaimable(r[1]))])
    if args.verbose:
        print("\nImages space usage:\n")
        emit(use["images"], "table", [
            ("IMAGE ID", lambda i: i["id"].split(":")[-1][:12]),
            ("TAGS", lambda i: ",".join(i["tags"]) or "<none>"),
            ("SIZE", lambda i: human_size(i["size"])), ("CONTAINERS", lambda i: i["containers"])])
        print("\nContainers space usage:\n")
        emit(use["containers"], "table", [
            ("CONTAINER ID", lambda c: c["id"][:12]), ("IMAGE", lambda c: c["image"]),
            ("SIZE", lambda c: human_size(c["size"])), ("STATUS", lambda c: c["status"]),
            ("NAMES", lambda c: c["name"])])
        print("\nLocal Volumes space usage:\n")
        emit(use["volumes"], "table", [
            ("VOLUME NAME", lambda v: v["name"]), ("LINKS", lambda v: v["containers"]),
            ("SIZE", lambda v: human_size(v["size"]))])
        print("\nBuild cache usage:\n")
        emit(use["build_cache"], "table", [
            ("CACHE ID", lambda e: e["id"][:25]), ("SIZE", lambda e: human_size(e["size"])),
            ("CREATED", lambda e: ago(e["created"])),
            ("LAST USED", lambda e: ago(e["last_used"]) if e["last_used"] else ""),
            ("USAGE", lambda e: e["usage_count"]), ("IN USE", lambda e: e["in_use"]),
            ("SHARED", lambda e: e["shared"]), ("STEP", lambda e: e["description"][:40])])
    return 0


def _prune_all(client: Client, args: argparse.Namespace) -> int:
    """docker system prune: each kind in turn, in the order that frees the next."""
    filters = args.filter
    if args.volumes and any(f.startswith("until=") for f in filters):
        raise convert.UsageError("the until filter is not supported with --volumes")
    sections = [("containers", client.containers.prune(filters)["removed"]),
                ("networks", client.networks.prune(filters)["removed"])]
    if args.volumes:
        sections.append(("volumes", client.volumes.prune(filters)["removed"]))
    images = client.images.prune(args.all, filters)
    sections.append(("images", images["removed"]))
    cache = client.builds.prune(args.all, filters)
    sections.append(("build cache objects", [key[:25] for key in cache["removed"]]))
    for kind, removed in sections:
        if removed:
            print(f"Deleted {kind}:")
            for item in removed:
                print(item)
    print(f"Total reclaimed space: {human_size(images['reclaimed'] + cache['reclaimed'])}")
    return 0


def cmd_top(client: Client, args: argparse.Namespace) -> int:
    ps_args = _take_output_option(args, args.ps_args)
    top = client.containers.top(args.container, " ".join(ps_args) or None)
    if _fmt(args) != "table":
        emit(top, _fmt(args))
        return 0
    cols = [(t, _column(i)) for i, t in enumerate(top["titles"])]
    emit(top["processes"], "table", cols)
    return 0


def _take_output_option(args: argparse.Namespace, words: list[str]) -> list[str]:
    """The words after `top NAME` go to ps, but `-o json` there (no ps format is called
    json, table or yaml) is still our --output, as it was before ps options came."""
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-o", "--output") and i + 1 < len(words) and words[i + 1] in OUTPUT_KINDS:
            args.output = words[i + 1]
            i += 2
            continue
        if word.startswith("--output=") and word.partition("=")[2] in OUTPUT_KINDS:
            args.output = word.partition("=")[2]
        else:
            rest.append(word)
        i += 1
    return rest


def _column(i: int) -> Callable[[list[str]], str]:
    return lambda row: row[i]


def _stats_row(name: str, s: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    cpu = 0.0
    if prev is not None:
        d_cpu = s["cpu_usage_ns"] - prev["cpu_usage_ns"]
        d_sys = s["system_cpu_ns"] - prev["system_cpu_ns"]
        if d_sys > 0:
            cpu = d_cpu / d_sys * s["online_cpus"] * 100
    limit = s.get("memory_limit")
    networks = (s.get("networks") or {}).values()
    return {"id": s["id"], "name": name, "cpu_percent": round(cpu, 2),
            "memory_usage": s["memory_usage"], "memory_limit": limit, "pids": s["pids_current"],
            "net_rx_bytes": sum(n["rx_bytes"] for n in networks),
            "net_tx_bytes": sum(n["tx_bytes"] for n in networks),
            "io_read_bytes": s["io_read_bytes"], "io_write_bytes": s["io_write_bytes"]}


def _mem_usage(r: dict[str, Any]) -> str:
    limit = r["memory_limit"]
    return f"{human_size(r['memory_usage'])} / {human_size(limit) if limit else 'unlimited'}"


def _cpu_perc(r: dict[str, Any]) -> str:
    return f"{r['cpu_percent']:.2f}%"


def _block_io(r: dict[str, Any]) -> str:
    return f"{human_size(r['io_read_bytes'])} / {human_size(r['io_write_bytes'])}"


def _net_io(r: dict[str, Any]) -> str:
    return f"{human_size(r['net_rx_bytes'])} / {human_size(r['net_tx_bytes'])}"


def _mem_perc(r: dict[str, Any]) -> str:
    limit = r["memory_limit"]
    return f"{r['memory_usage'] / limit * 100:.2f}%" if limit else "--"


STATS_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [  # docker's, in docker's order
    ("CONTAINER ID", lambda r: r["id"][:12]),
    ("NAME", lambda r: r["name"]),
    ("CPU %", _cpu_perc),
    ("MEM USAGE / LIMIT", _mem_usage),
    ("MEM %", _mem_perc),
    ("NET I/O", _net_io),
    ("BLOCK I/O", _block_io),
    ("PIDS", lambda r: r["pids"]),
]


def _stats_fields(r: dict[str, Any]) -> dict[str, Any]:
    """A stats row as docker's stats --format names its fields, beside Berth's own."""
    return {**r, "ID": r["id"][:12], "Container": r["name"], "Name": r["name"],
            "CPUPerc": _cpu_perc(r), "MemUsage": _mem_usage(r), "MemPerc": _mem_perc(r),
            "NetIO": _net_io(r), "BlockIO": _block_io(r), "PIDs": r["pids"]}


def cmd_stats(client: Client, args: argparse.Namespace) -> int:
    """The named containers, or every running one (looked up anew each round, as docker
    does: those that start join, those that stop leave)."""
    import time

    def sample() -> dict[str, dict[str, Any]]:
        """name -> a reading, with the container's id (a stats reading does not carry it)."""
        if args.containers:
            return {n: {**client.containers.stats(n), "id": ids.get(n, "")}
                    for n in args.containers}
        out = {}
        for c in client.containers.list(filters=["status=running"]):
            try:
                out[c["name"]] = {**client.containers.stats(c["id"]), "id": c["id"]}
            except APIError:  # stopped or removed since the listing
                continue
        return out

    ids = {n: client.containers.get(n)["id"] for n in args.containers}
    first = sample()
    while True:
        time.sleep(0.5 if args.no_stream else 1.0)
        second = sample()
        rows = [_stats_row(n, s, first.get(n)) for n, s in second.items()]
        if not args.no_stream and output_kind(args) in ("table", "template"):
            sys.stdout.write("\x1b[2J\x1b[H")
        emit_rows(rows, args, STATS_COLUMNS, _stats_fields,
                  {"cpuperc": "CPU %", "memusage": "MEM USAGE / LIMIT", "memperc": "MEM %",
                   "netio": "NET I/O", "blockio": "BLOCK I/O", "container": "CONTAINER",
                   "id": "CONTAINER ID"})
        if args.no_stream:
            return 0
        first = second


def cmd_update(client: Client, args: argparse.Namespace) -> int:
    changes = convert.resources(args)
    if args.restart:
        changes["restart_policy"] = convert.restart_policy(args.restart)
    if not changes:
        raise convert.UsageError("update: give at least one of --memory, --memory-swap, "
                                 "--memory-reservation, --cpus (or --cpu-quota), "
                                 "--cpu-shares, --cpuset-cpus, --cpuset-mems, --pids-limit, "
                                 "--blkio-weight, --restart")
    return each(args.containers, lambda n: client.containers.update(n, changes))


def cmd_actions(client: Client, args: argparse.Namespace) -> int:
    emit(client.containers.actions(args.container), _fmt(args), [
        ("ID", lambda a: a["id"]), ("ACTION", lambda a: a["action"]),
        ("STATE", lambda a: a["state"]), ("USER", lambda a: a["user"]),
        ("REQUEST", lambda a: a["request_id"]), ("STARTED", lambda a: a["started_at"]),
        ("FINISHED", lambda a: a["finished_at"] or ""), ("MESSAGE", lambda a: a["message"]),
    ])
    return 0


_EVENT_OBJECTS = ("container", "image", "volume", "network")


def event_query(filters: list[str], type_: str | None) -> dict[str, Any]:
    """docker events' --filter as the API's query: type, object (a name or id, its type
    implied), action (event=) and selector (label=)."""
    types = [type_] if type_ else []
    query: dict[str, list[str]] = {"object": [], "action": [], "selector": []}
    for item in filters:
        key, eq, value = item.partition("=")
        if not eq or not value:
            raise convert.UsageError(f"invalid --filter {item!r}: expected KEY=VALUE")
        if key == "type":
            types.append(value)
        elif key in _EVENT_OBJECTS:
            query["object"].append(value)
            types.append(key)
        elif key == "event":
            query["action"].append(value)
        elif key == "label":
            query["selector"].append(value)
        else:
            raise convert.UsageError(f"invalid --filter {key!r}: use type, container, image, "
                                     "volume, network, event or label")
    return {"type": list(dict.fromkeys(types)) or None, "object": query["object"] or None,
            "action": query["action"] or None,
            "selector": ",".join(query["selector"]) or None}


def _event_fields(event: dict[str, Any]) -> dict[str, Any]:
    """An event as docker's events --format names its fields, beside Berth's own."""
    attributes = {**(event.get("labels") or {}), "name": event.get("name", "")}
    return {**event, "Actor": {"ID": event["id"], "Attributes": attributes},
            "Time": int(event["time"]), "TimeNano": int(event["time"] * 1e9)}


def cmd_events(client: Client, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    kind = output_kind(args)
    events = client.events(**event_query(args.filter, args.type), since=args.since,
                           until=args.until)
    for event in events:
        if kind == "template":
            from berth.cli.template import render

            print(render(args.format, _event_fields(event)), flush=True)
        elif kind == "table":
            when = datetime.fromtimestamp(event["time"], UTC).isoformat(timespec="microseconds")
            attrs = ", ".join(f"{k}={event[k]}" for k in ("image", "name", "exitCode", "signal")
                              if k in event)
            print(f"{when.replace('+00:00', 'Z')} {event['type']} {event['action']} "
                  f"{event['id']} ({attrs})", flush=True)
        else:
            print(json.dumps(event), flush=True)
    return 0


def cmd_info(client: Client, args: argparse.Namespace) -> int:
    info = client.info()
    if _fmt(args) != "table":
        emit(info, _fmt(args))
        return 0
    for key, value in info.items():
        print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return 0


def cmd_version(client: Client, args: argparse.Namespace) -> int:
    """As `docker version`: the client's versions, then the daemon's, or why it is not there."""
    import platform

    from berth import __version__

    mine = {"version": __version__, "python": platform.python_version(),
            "os/arch": f"{platform.system().lower()}/{platform.machine()}"}
    try:
        info = client.info()
    except APIError:
        if _fmt(args) == "table":
            _print_section("Client", mine)
        raise
    server = {"version": info.get("version"), "api": "v1", "runtime": info.get("runtime"),
              "store": info.get("store"), "host": info.get("host")}
    if _fmt(args) != "table":
        emit({"client": mine, "server": server}, _fmt(args))
        return 0
    _print_section("Client", mine)
    print()
    _print_section("Server", server)
    return 0


def _print_section(title: str, fields: dict[str, Any]) -> None:
    print(f"{title}:")
    for key, value in fields.items():
        print(f"  {key + ':':<10} {value}")


# -- volumes ------------------------------------------------------------------------------

def _volume_fields(v: dict[str, Any]) -> dict[str, Any]:
    """A volume row as docker's volume ls --format names its fields, beside Berth's own."""
    return {**v, "Scope": "local", "Labels": labels_text(v.get("labels"))}


def cmd_volume(client: Client, args: argparse.Namespace) -> int:
    sub = args.volume_cmd
    if sub == "create":
        vol = client.volumes.create(args.name, convert.parse_kv(args.label, "label"),
                                    convert.parse_kv(args.opt, "--opt"))
        print(vol["name"])
    elif sub == "ls":
        vols = client.volumes.list(args.filter)
        if args.quiet:
            for v in vols:
                print(v["name"])
        else:
            emit_rows(vols, args, [("DRIVER", lambda v: v["driver"]),
                                   ("VOLUME NAME", lambda v: v["name"])],
                      _volume_fields, {"name": "VOLUME NAME"})
    elif sub == "inspect":
        return inspect_each(args.volumes, client.volumes.get, _fmt(args), args.format)
    elif sub == "rm":
        return each(args.volumes, client.volumes.remove)
    elif sub == "prune":
        for name in client.volumes.prune()["removed"]:
            print(f"deleted: {name}")
    return 0


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "run": cmd_run, "create": cmd_create, "start": cmd_start, "stop": cmd_stop,
    "restart": cmd_restart, "kill": cmd_kill, "pause": cmd_pause, "unpause": cmd_unpause,
    "rm": cmd_rm, "rename": cmd_rename, "wait": cmd_wait, "inspect": cmd_inspect,
    "ps": cmd_ps, "logs": cmd_logs, "exec": cmd_exec, "attach": cmd_attach,
    "container": cmd_container, "system": cmd_system, "top": cmd_top, "stats": cmd_stats,
    "update": cmd_update, "actions": cmd_actions, "events": cmd_events, "info": cmd_info,
    "version": cmd_version,
    "volume": cmd_volume,
}
for _name in ("image", "images", "pull", "build", "push", "commit", "save", "load", "import",
              "history", "tag", "rmi"):
    COMMANDS[_name] = image_commands.cmd_image
COMMANDS["builder"] = image_commands.cmd_builder
COMMANDS["login"] = image_commands.cmd_login
COMMANDS["logout"] = image_commands.cmd_logout
