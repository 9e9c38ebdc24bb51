"""`berth cp`, `export`, `diff` and `port`: a container's files and published ports.

Copying out writes what a container made onto this host, so the tar is treated as hostile:
it is spooled and checked whole first, then extracted with the same unpacker the daemon uses
for layers (every write relative to a directory fd, never through a symlink). Without -a the
files are the caller's and lose set-user/group-ID bits; a path is replaced only once its new
content is complete.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import shutil
import stat
import sys
import tarfile
import tempfile

from berth.cli.convert import UsageError, digits
from berth.cli.output import emit, write_archive, write_chunks
from berth.client import Client
from berth.client.transport import read_chunks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

GO_DIR, GO_SYMLINK = 1 << 31, 1 << 27  # Docker's path stat uses Go's os.FileMode bits
CHANGE_LETTER = {"added": "A", "modified": "C", "deleted": "D"}


def split_cp_arg(arg: str) -> tuple[str | None, str]:
    """(container, path) for CONTAINER:PATH; (None, path) for a local path. As docker: an
    absolute path, or one whose part before the colon starts with ".", is local."""
    if arg.startswith("/"):
        return None, arg
    name, colon, path = arg.partition(":")
    if not colon or name.startswith("."):
        return None, arg
    if not name:
        raise UsageError(f"no container named in {arg!r}")
    if not path:
        raise UsageError(f"no path in the container given in {arg!r}")
    return name, path


def cmd_cp(client: Client, args: argparse.Namespace) -> int:
    src_box, src = split_cp_arg(args.src)
    dst_box, dst = split_cp_arg(args.dest)
    if src_box and dst_box:
        raise UsageError("copying between containers is not supported: copy through this host")
    if not src_box and not dst_box:
        raise UsageError("one of SRC and DEST must be CONTAINER:PATH")
    if src_box:
        copy_out(client, src_box, src, dst, archive=args.archive, follow=args.follow_link)
    else:
        assert dst_box is not None
        copy_in(client, src, dst_box, dst, archive=args.archive, follow=args.follow_link)
    return 0


# -- out of a container ---------------------------------------------------------------------

def copy_out(client: Client, box: str, path: str, dest: str, *, archive: bool,
             follow: bool) -> None:
    rename = None
    if follow:  # -L: copy what a symlink leads to, under the link's own name
        st = client.containers.stat_path(box, path)
        if st["mode"] & GO_SYMLINK and st.get("linkTarget"):
            path, rename = st["linkTarget"], posixpath.basename(path.rstrip("/"))
    st, chunks = client.containers.get_archive(box, path)
    if dest == "-":
        if sys.stdout.isatty():
            raise UsageError("refusing to write an archive to a terminal: redirect it")
        write_chunks(chunks, sys.stdout.buffer)
        return
    is_dir = bool(st["mode"] & GO_DIR)
    top = st["name"]  # the archive's first entry: the base name, or "." (contents)
    want = rename or top
    try:
        here = os.stat(dest)
    except FileNotFoundError:
        here = None
    except OSError as e:
        raise UsageError(f"cannot use {dest}: {e.strerror}") from None
    if here is not None and stat.S_ISDIR(here.st_mode):
        if want == top or top == ".":
            _extract_into(chunks, dest, archive)  # DEST/<name>, or the contents into DEST
            return
        target = os.path.join(dest, want)
    elif here is not None:
        if is_dir:
            raise UsageError(f"cannot copy a directory onto the file {dest}")
        target = dest
    else:
        if dest.endswith(("/", "/.")) and not is_dir:
            raise UsageError(f"{dest}: no such directory")
        target = os.path.normpath(dest)  # "new/" or "new/.": the directory "new"
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise UsageError(f"{parent}: no such directory")
    _extract_as(chunks, top, target, parent, archive)


def _extract_as(chunks: Iterable[bytes], top: str, target: str, parent: str,
                archive: bool) -> None:
    """Extract beside ``target``, then move the result into place: an interrupted or refused
    copy leaves ``target`` as it was."""
    if os.path.isdir(target) and not os.path.islink(target):
        raise UsageError(f"{target} is a directory already: remove it, or copy into it")
    try:
        scratch = tempfile.mkdtemp(prefix=".berth-cp-", dir=parent)
    except OSError as e:
        raise UsageError(f"cannot write in {parent}: {e.strerror}") from None
    try:
        if top == ".":  # a directory's contents: a new directory made here holds them
            made = os.path.join(scratch, "d")
            os.mkdir(made, 0o777 & ~_umask())
        else:
            made = scratch
        _extract_into(chunks, made, archive)
        os.replace(made if top == "." else os.path.join(scratch, top), target)
    except OSError as e:
        raise UsageError(f"cannot write {target}: {e.strerror}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _extract_into(chunks: Iterable[bytes], directory: str, archive: bool) -> None:
    from berth.errors import BerthError
    from berth.service import fsextract

    with tempfile.TemporaryFile(prefix="berth-cp-") as spool:
        write_chunks(chunks, spool)
        try:
            spool.seek(0)
            fsextract.check_archive(spool)
            spool.seek(0)
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fsextract.extract(spool, fd, None, keep_owner=archive, no_overwrite_dir=True,
                                  owner=None if archive else (os.getuid(), os.getgid()),
                                  keep_setid=archive)
            finally:
                os.close(fd)
        except BerthError as e:
            raise UsageError(f"refused the copy: {e.message}") from None
        except OSError as e:
            raise UsageError(f"cannot write into {directory}: {e.strerror}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- into a container -----------------------------------------------------------------------

def copy_in(client: Client, src: str, box: str, path: str, *, archive: bool,
            follow: bool) -> None:
    def put(where: str, tar: Iterable[bytes]) -> None:
        client.containers.put_archive(box, where, tar, copy_uid_gid=archive)

    if src == "-":  # a tar on stdin, extracted into the directory PATH
        put(path, read_chunks(sys.stdin.buffer))
        return
    try:
        local = os.stat(src) if follow else os.lstat(src)
    except OSError as e:
        raise UsageError(f"cannot read {src}: {e.strerror}") from None
    contents = stat.S_ISDIR(local.st_mode) and (src == "." or src.endswith("/."))
    name = posixpath.basename(os.path.normpath(src))
    from berth.client import APIError

    try:
        there = client.containers.stat_path(box, path)
    except APIError as e:
        if e.status != 404:
            raise
        there = None
    if there is not None and there["mode"] & GO_DIR:
        where, arcname = path, name
    elif there is not None:
        if stat.S_ISDIR(local.st_mode):
            raise UsageError(f"cannot copy a directory onto the file {box}:{path}")
        where, arcname = posixpath.dirname(path.rstrip("/")) or "/", posixpath.basename(path)
    else:
        if path.endswith("/") and not stat.S_ISDIR(local.st_mode):
            raise UsageError(f"{box}:{path}: no such directory")
        clean = path.rstrip("/") or "/"
        where, arcname = posixpath.dirname(clean) or "/", posixpath.basename(clean)
    if contents and there is not None and there["mode"] & GO_DIR:
        arcname = "."
    put(where, _tar_of(src, arcname, follow))


def _tar_of(src: str, arcname: str, follow: bool) -> Iterator[bytes]:
    """A tar of ``src`` (a file or a tree, symlinks in it kept as links; -L follows ``src``
    itself) under ``arcname``. It is spooled first: an unreadable file fails the copy before
    anything reaches the container."""
    spool = tempfile.TemporaryFile(prefix="berth-cp-")  # noqa: SIM115 (the iterator closes it)
    try:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tf:
            _add(tf, os.path.realpath(src) if follow else src, arcname)
    except OSError as e:
        spool.close()
        raise UsageError(f"cannot read {e.filename or src}: {e.strerror}") from None
    spool.seek(0)
    return read_chunks(spool, close=True)


def _add(tf: tarfile.TarFile, path: str, name: str) -> None:
    info = tf.gettarinfo(path, name)
    if info is None:  # a socket: nothing a tar can carry (as docker cp, left out)
        return
    if info.isreg():
        with open(path, "rb") as f:
            tf.addfile(info, f)
        return
    tf.addfile(info)
    if info.isdir():
        for entry in sorted(os.listdir(path)):
            _add(tf, os.path.join(path, entry), posixpath.join(name, entry))


# -- export, diff, port ---------------------------------------------------------------------

def cmd_export(client: Client, args: argparse.Namespace) -> int:
    if args.file is None and sys.stdout.isatty():  # before asking the daemon for anything
        raise UsageError("refusing to write an archive to a terminal: use -o FILE or redirect")
    write_archive(client.containers.export(args.container), args.file)
    return 0


def cmd_diff(client: Client, args: argparse.Namespace) -> int:
    found = client.containers.changes(args.container)
    if args.output != "table":
        emit(found, args.output)
        return 0
    for change in found:
        print(f"{CHANGE_LETTER[change['kind']]} {change['path']}")
    return 0


def cmd_port(client: Client, args: argparse.Namespace) -> int:
    box = client.containers.get(args.container)
    ports: list[dict[str, Any]] = box.get("ports") or []
    if args.port:
        number, _, proto = args.port.partition("/")
        if not digits(number):
            raise UsageError(f"invalid port {args.port!r}: use PORT or PORT/PROTO")
        proto = proto or "tcp"
        ports = [p for p in ports
                 if p["container_port"] == int(number) and p["proto"] == proto]
        if not ports:
            raise UsageError(f"no public port {number}/{proto} published for "
                             f"{box['name']}")
    if args.output != "table":
        emit(ports, args.output)
        return 0
    for p in ports:
        host = f"[{p['host_ip']}]" if ":" in p["host_ip"] else p["host_ip"]
        line = f"{host or '0.0.0.0'}:{p['host_port']}"
        print(line if args.port else f"{p['container_port']}/{p['proto']} -> {line}")
    return 0


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "cp": cmd_cp, "export": cmd_export, "diff": cmd_diff, "port": cmd_port,
}
