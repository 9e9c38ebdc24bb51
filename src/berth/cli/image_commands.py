"""`berth image …` and its docker-style aliases (pull, push, login, save, load, commit, …)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from berth.cli.convert import UsageError
from berth.cli.output import (
    ago,
    emit,
    emit_rows,
    human_size,
    inspect_each,
    output_kind,
    write_archive,
)
from berth.client import APIError, Client

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, BinaryIO

IMAGE_COLUMNS: list[tuple[str, Callable[[dict], Any]]] = [
    ("REPOSITORY", lambda r: r["repo"]), ("TAG", lambda r: r["tag"]),
    ("IMAGE ID", lambda r: r["id"][7:19]), ("CREATED", lambda r: ago(r["created"])),
    ("SIZE", lambda r: human_size(r["size"])),
]


def _fmt(args: argparse.Namespace) -> str:
    return getattr(args, "output", "table") or "table"


def cmd_images(client: Client, args: argparse.Namespace) -> int:
    images = client.images.list(getattr(args, "filter", None),
                                all=getattr(args, "all", False))
    if getattr(args, "quiet", False):
        for img in images:
            print(img["id"][7:19])
        return 0
    if output_kind(args) in ("json", "yaml"):  # the images themselves, not a row per tag
        emit(images, output_kind(args))
        return 0
    rows = []
    for img in images:
        for tag in img["tags"] or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            rows.append({**img, "repo": repo, "tag": t})
    columns = list(IMAGE_COLUMNS)
    if getattr(args, "digests", False):
        columns.insert(2, ("DIGEST", _digest))
    emit_rows(rows, args, columns, _image_fields, {"id": "IMAGE ID",
                                                   "createdsince": "CREATED",
                                                   "createdat": "CREATED AT"})
    return 0


def _digest(r: dict[str, Any]) -> str:
    return next((d.split("@")[1] for d in r["repo_digests"] if d.startswith(r["repo"] + "@")),
                "<none>")


def _image_fields(r: dict[str, Any]) -> dict[str, Any]:
    """An image row as docker's images --format names its fields, beside Berth's own."""
    return {**r, "ID": r["id"][7:19], "Repository": r["repo"], "Tag": r["tag"],
            "Digest": _digest(r), "CreatedSince": ago(r["created"]), "CreatedAt": r["created"],
            "Size": human_size(r["size"])}


# -- registries -----------------------------------------------------------------------------

def show_progress(events: Iterator[dict[str, Any]], quiet: bool) -> dict[str, Any]:
    """Draw a bar per layer on a terminal, docker-like lines otherwise; return the last event."""
    last: dict[str, Any] = {}
    if quiet:
        for last in events:  # noqa: B007 - the last event carries the result
            pass
        return last
    if not sys.stderr.isatty():
        for last in events:
            if last.get("status") in ("exists", "done", "pushed", "mounted") and last.get("id"):
                word = {"exists": "Already exists", "done": "Complete",
                        "mounted": "Mounted"}.get(last["status"], "Pushed")
                sys.stderr.write(f"{last['id']}: {word}\n")
            elif last.get("message"):
                sys.stderr.write(f"{last['message']}\n")
        return last
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  transient=False, console=_stderr_console()) as bars:
        for last in events:
            layer = last.get("id")
            if not layer:
                if last.get("message"):
                    bars.console.print(last["message"])
                continue
            total = last.get("total") or None
            if layer not in tasks:
                tasks[layer] = bars.add_task(layer, total=total)
            word = last.get("status", "")
            bars.update(tasks[layer], description=f"{layer} {word}", total=total,
                        completed=last.get("current") or 0)
            if word in ("exists", "done", "pushed", "mounted"):
                bars.update(tasks[layer], completed=total or 1, total=total or 1)
    return last


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stderr)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"{what} {item!r}: expected KEY=VALUE")
        out[key] = value if eq else os.environ.get(key, "")
    return out


# What a build context from stdin begins with when it is an archive (tar, gzip, bzip2, xz)
# rather than a Dockerfile.
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def _is_archive(data: bytes) -> bool:
    return data.startswith(_ARCHIVE_MAGIC) or data[257:262] == b"ustar"


def build_sources(context: str, file: str | None, stdin: Any) -> dict[str, Any]:
    """docker build's ways to give the context and Dockerfile: a directory (-f a file in
    it, or outside it, or - for stdin), or - for stdin holding a Dockerfile alone or a
    context archive. Build's keyword arguments."""
    if context == "-":
        if file == "-":
            raise UsageError("build: stdin cannot hold both the context (-) and the "
                             "Dockerfile (-f -)")
        data = stdin.read()
        if _is_archive(data):
            import io

            return {"context_dir": None, "context_tar": io.BytesIO(data),
                    "dockerfile": file or "Dockerfile"}
        return {"context_dir": None, "dockerfile_text": data}
    if not os.path.isdir(context):
        raise UsageError(f"build: {context} is not a directory")
    if file == "-":
        return {"context_dir": context, "dockerfile_text": stdin.read()}
    if not file:
        return {"context_dir": context}
    rel = os.path.relpath(os.path.abspath(file), os.path.abspath(context))
    if not rel.startswith(".."):
        return {"context_dir": context, "dockerfile": rel}
    try:  # a Dockerfile outside the context goes with it, as the docker CLI sends it
        with open(file, "rb") as f:
            return {"context_dir": context, "dockerfile_text": f.read()}
    except OSError as e:
        raise UsageError(f"build: cannot read the Dockerfile {file}: {e.strerror}") from None


def cmd_build(client: Client, args: argparse.Namespace) -> int:
    sources = build_sources(args.build_context, args.file, sys.stdin.buffer)
    last: dict = {}
    for event in client.builds.build(tags=args.tag, target=args.target,
                                     no_cache=args.no_cache, pull=args.pull,
                                     build_args=_pairs(args.build_arg, "--build-arg"),
                                     labels=_pairs(args.label, "--label"), **sources):
        if "stream" in event and not args.quiet:
            sys.stdout.write(event["stream"])
            sys.stdout.flush()
        last = event
    if args.quiet:
        print(last.get("id", ""))
    return 0


def cmd_pull(client: Client, args: argparse.Namespace) -> int:
    last = show_progress(client.images.pull(args.image, args.platform), args.quiet)
    image = last["image"]
    if args.quiet:
        print(image["id"])
    else:
        digest = last.get("digest", "")
        if digest:
            print(f"Digest: {digest}")
        print(f"Status: Downloaded image for {last.get('reference', args.image)}")
        print(image["id"])
    return 0


def cmd_push(client: Client, args: argparse.Namespace) -> int:
    last = show_progress(client.images.push(args.image, args.destination, args.sign_by,
                                            args.sign_by_sigstore_key), args.quiet)
    print(f"{last.get('reference', args.image)}: digest: {last.get('digest')}")
    return 0


def cmd_login(client: Client, args: argparse.Namespace) -> int:
    username = args.username
    if username is None:
        if not sys.stdin.isatty():
            raise UsageError("give --username (stdin is not a terminal)")
        username = input("Username: ")
    if args.password_stdin:
        if args.password is not None:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        sys.stderr.write("berth: warning: --password is visible to other users of this host; "
                         "use --password-stdin\n")
        password = args.password
    else:
        if not sys.stdin.isatty():
            raise UsageError("give --password-stdin (stdin is not a terminal)")
        import getpass

        password = getpass.getpass("Password: ")
    if not password:
        raise UsageError("empty password")
    answer = client.registries.login(args.registry, username, password)
    print(f"Login Succeeded ({answer['registry']})")
    return 0


def cmd_logout(client: Client, args: argparse.Namespace) -> int:
    client.registries.logout(args.registry)
    print(f"Removing login credentials for {args.registry}")
    return 0


# -- archives and commits -------------------------------------------------------------------

def cmd_save(client: Client, args: argparse.Namespace) -> int:
    if args.file is None and sys.stdout.isatty():  # before asking the daemon for anything
        raise UsageError("refusing to write an archive to a terminal: use -o FILE or redirect")
    write_archive(client.images.save(args.images, args.format), args.file)
    return 0


def cmd_load(client: Client, args: argparse.Namespace) -> int:
    source = getattr(args, "input", None) or getattr(args, "file", "-")
    if source == "-":
        imported = client.images.import_archive(sys.stdin.buffer)
    else:
        try:
            with open(source, "rb") as f:
                imported = client.images.import_archive(f)
        except OSError as e:
            raise UsageError(f"cannot read {source}: {e.strerror}") from None
    for img in imported:
        if getattr(args, "quiet", False):
            print(img["id"])
        else:
            print(f"Loaded image: {', '.join(img['tags']) or img['id']}")
    return 0


def cmd_import(client: Client, args: argparse.Namespace) -> int:
    """`import` (docker's): a root filesystem; `image import`: that, or an image archive."""
    def send(stream: BinaryIO) -> list[dict[str, Any]]:
        return client.images.import_tarball(stream, args.reference, args.change, args.message,
                                            args.import_format)

    if args.file == "-":
        imported = send(sys.stdin.buffer)
    else:
        try:
            with open(args.file, "rb") as f:
                imported = send(f)
        except OSError as e:
            raise UsageError(f"cannot read {args.file}: {e.strerror}") from None
    for img in imported:
        print(img["id"] if args.import_format == "rootfs" else
              f"Loaded image: {', '.join(img['tags']) or img['id']}")
    return 0


def cmd_commit(client: Client, args: argparse.Namespace) -> int:
    img = client.images.commit(args.container, args.repository, args.change, args.message,
                               args.author, args.pause == "true")
    print(img["id"])
    return 0


def cmd_history(client: Client, args: argparse.Namespace) -> int:
    entries = client.images.history(args.image)
    if args.quiet:
        for e in entries:
            print(e["id"] or "<missing>")
        return 0
    if output_kind(args) in ("json", "yaml"):
        emit(entries, output_kind(args))
        return 0
    width = None if args.no_trunc else 45

    def created_by(e: dict[str, Any]) -> str:
        text = e["created_by"]
        return text if width is None or len(text) <= width else text[: width - 1] + "…"

    def image(e: dict[str, Any]) -> str:
        return (e["id"] or "<missing>")[: None if args.no_trunc else 19].removeprefix("sha256:")

    def since(e: dict[str, Any]) -> str:
        return ago(e["created"]) if e["created"] else "N/A"

    emit_rows(entries, args, [
        ("IMAGE", image), ("CREATED", since), ("CREATED BY", created_by),
        ("SIZE", lambda e: human_size(e["size"])), ("COMMENT", lambda e: e["comment"])],
        lambda e: {**e, "ID": image(e), "CreatedSince": since(e), "CreatedAt": e["created"],
                   "CreatedBy": created_by(e), "Size": human_size(e["size"]),
                   "Comment": e["comment"]},
        {"id": "IMAGE", "createdsince": "CREATED", "createdat": "CREATED AT",
         "createdby": "CREATED BY"})
    return 0


# -- trust ----------------------------------------------------------------------------------

def cmd_sign(client: Client, args: argparse.Namespace) -> int:
    if not args.sign_by and not args.sign_by_sigstore_key:
        raise UsageError("give --sign-by FINGERPRINT or --sign-by-sigstore-key PATH")
    answer = client.images.sign(args.image, args.sign_by, args.sign_by_sigstore_key)
    print(f"Signed {answer['reference']} ({answer['digest']}): {answer['where']}")
    return 0


def cmd_verify(client: Client, args: argparse.Namespace) -> int:
    answer = client.images.verify(args.image)
    if _fmt(args) != "table":
        emit(answer, _fmt(args))
    else:
        print(f"{answer['reference']}: {answer['result']}")
    return 0


def cmd_policy(client: Client, args: argparse.Namespace) -> int:
    if args.set:
        try:
            with open(args.set, "rb") as f:
                doc = json.loads(f.read())
        except OSError as e:
            raise UsageError(f"cannot read {args.set}: {e.strerror}") from None
        except ValueError as e:
            raise UsageError(f"{args.set} is not JSON: {e}") from None
        client.images.set_policy(doc)
        return 0
    if args.unset:
        client.images.unset_policy()
        return 0
    emit(client.images.policy(), "yaml" if _fmt(args) == "yaml" else "json")
    return 0


# -- the simple ones ------------------------------------------------------------------------

def _each_result(refs: list[str], fn: Callable[[str], list[str]]) -> int:
    failed = 0
    for ref in refs:
        try:
            for line in fn(ref):
                print(line)
        except APIError as e:
            sys.stderr.write(f"berth: {e.message}\n")
            failed = 1
    return failed


def cmd_image(client: Client, args: argparse.Namespace) -> int:
    sub = args.image_cmd
    handler = IMAGE_HANDLERS.get(sub)
    if handler is not None:
        return handler(client, args)
    if sub == "build-base":
        img = client.images.build_base(args.kind, args.tag)
        print(f"{', '.join(img['tags'])} {img['id']}")
    elif sub == "inspect":
        return inspect_each(args.images, client.images.get, _fmt(args), args.format)
    elif sub == "rm":
        return _each_result(args.images, lambda r: [
            line["result"] for line in client.images.remove(r, args.force)])
    elif sub == "untag":
        return _each_result(args.images, lambda r: [
            f"untagged: {client.images.untag(r)['untagged']}"])
    elif sub == "tag":
        client.images.tag(args.source, args.target)
    elif sub == "prune":
        answer = client.images.prune(args.all, args.filter)
        for line in answer["removed"]:
            print(line)
        print(f"Total reclaimed space: {human_size(answer['reclaimed'])}")
    else:
        raise UsageError(f"unknown image command {sub}")
    return 0


def cmd_builder(client: Client, args: argparse.Namespace) -> int:
    """docker builder prune (its only verb here)."""
    from berth.cli.convert import parse_size

    keep = parse_size(args.keep_storage, "--keep-storage") if args.keep_storage else 0
    answer = client.builds.prune(args.all, args.filter, keep)
    if answer["removed"]:
        print("Deleted build cache objects:")
        for key in answer["removed"]:
            print(key[:25])
    print(f"Total reclaimed space: {human_size(answer['reclaimed'])}")
    return 0


IMAGE_HANDLERS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "ls": cmd_images, "pull": cmd_pull, "build": cmd_build, "push": cmd_push,
    "save": cmd_save, "load": cmd_load,
    "import": cmd_import, "commit": cmd_commit, "history": cmd_history, "sign": cmd_sign,
    "verify": cmd_verify, "policy": cmd_policy,
}
