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


def unpack_context(spool: BinaryIO, tmp_root: str) -> Path:
    """Extract the (spooled, seekable) context; refuses traversal entries, absolute names,
    links out and devices with nothing written (service/fsextract's checks)."""
    from berth.service.fsextract import check_archive, extract

    check_archive(spool)
    spool.seek(0)
    top = Path(tempfile.mkdtemp(dir=tmp_root, prefix="build-ctx-"))
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            extract(spool, fd, None, keep_owner=False, no_overwrite_dir=False)
        finally:
            os.close(fd)
        apply_ignore(top)
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise
    return top


def apply_ignore(top: Path, keep: tuple[str, ...] = ("Dockerfile", ".dockerignore")) -> None:
    """Delete what .dockerignore excludes (the Dockerfile and .dockerignore stay: the builder
    reads them, Docker's COPY would not see them when excluded either way)."""
    ignore_file = top / ".dockerignore"
    try:
        st = os.lstat(ignore_file)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        return
    rules = DockerIgnore.from_text(ignore_file.read_text(errors="replace"))
    _prune(top, "", rules, keep)


def _prune(top: Path, rel: str, rules: DockerIgnore, keep: tuple[str, ...]) -> None:
    here = top / rel if rel else top
    for name in sorted(os.listdir(here)):
        path = f"{rel}/{name}" if rel else name
        full = here / name
        is_dir = stat.S_ISDIR(os.lstat(full).st_mode)
        if path in keep:
            continue
        if rules.excluded(path, is_dir):
            if is_dir and rules.may_contain_included(path):
                _prune(top, path, rules, keep)
            elif is_dir:
                shutil.rmtree(full)
            else:
                full.unlink()
        elif is_dir:
            _prune(top, path, rules, keep)
