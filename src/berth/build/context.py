"""A build context sent as a tar (maybe compressed): checked whole as hostile input, then
extracted into a private temp dir under Berth's own tmp, .dockerignore applied."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from berth.build.ignore import DockerIgnore
from berth.build.paths import split
from berth.errors import InvalidArgument

MAX_DOCKERFILE = 1 << 20


def unpack_context(spool: BinaryIO, tmp_root: str, dockerfile: str) -> tuple[Path, str]:
    """Extract the (spooled, seekable) context; refuses traversal entries, absolute names,
    links out and devices with nothing written (service/fsextract's checks). Returns the
    directory and the Dockerfile's text, read before .dockerignore applies (Docker: an ignored
    Dockerfile or .dockerignore still reaches the builder, but COPY and ADD never see them)."""
    from berth.service.fsextract import check_archive, extract

    check_archive(spool, end_optional=True)  # the docker CLI may send it unfinished
    spool.seek(0)
    top = Path(tempfile.mkdtemp(dir=tmp_root, prefix="build-ctx-"))
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            extract(spool, fd, None, keep_owner=False, no_overwrite_dir=False,
                    end_optional=True)
        finally:
            os.close(fd)
        text = read_dockerfile(top, dockerfile)
        apply_ignore(top)
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise
    return top, text


def read_dockerfile(top: Path, name: str) -> str:
    parts = split(name)
    if not parts or ".." in parts or name.startswith("/"):
        raise InvalidArgument(f"the Dockerfile {name!r} must be a path inside the context")
    try:
        fd = os.open(top.joinpath(*parts), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        raise InvalidArgument(f"cannot read the Dockerfile {name!r} in the build "
                              "context") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_DOCKERFILE + 1)
    if len(data) > MAX_DOCKERFILE:
        raise InvalidArgument(f"the Dockerfile is larger than {MAX_DOCKERFILE} bytes")
    return data.decode("utf-8", "replace")


def apply_ignore(top: Path) -> None:
    """Delete what .dockerignore excludes (the Dockerfile too, when it says so)."""
    ignore_file = top / ".dockerignore"
    try:
        st = os.lstat(ignore_file)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        return
    rules = DockerIgnore.from_text(ignore_file.read_text(errors="replace"))
    _prune(top, "", rules)


def _prune(top: Path, rel: str, rules: DockerIgnore) -> None:
    here = top / rel if rel else top
    for name in sorted(os.listdir(here)):
        path = f"{rel}/{name}" if rel else name
        full = here / name
        is_dir = stat.S_ISDIR(os.lstat(full).st_mode)
        if rules.excluded(path, is_dir):
            if is_dir and rules.may_contain_included(path):
                _prune(top, path, rules)
            elif is_dir:
                shutil.rmtree(full)
            else:
                full.unlink()
        elif is_dir:
            _prune(top, path, rules)
