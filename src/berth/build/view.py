"""A read-only view of an image's filesystem (its unpacked layers, overlaid), for COPY --from,
--chown names and "is the destination a directory?"."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from berth.build.paths import resolve
from berth.image.layers import LayerStore
from berth.image.types import ImageManifest
from berth.paths import HostPaths
from berth.runtime.base import IdMapping
from berth.runtime.oci import fsview
from berth.runtime.oci.layout import ContainerLayout


class ImageView:
    def __init__(self, root: str) -> None:
        self.root = root

    def real(self, path: str) -> str:
        return resolve(self.root, path, clamp=True)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(os.path.join(self.root, self.real(path)))

    def exists(self, path: str) -> bool:
        return os.path.lexists(os.path.join(self.root, self.real(path)))

    def read_text(self, path: str, limit: int = 1 << 20) -> str:
        try:
            fd = os.open(os.path.join(self.root, self.real(path)),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return ""
        with os.fdopen(fd, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")


@contextlib.contextmanager
def image_view(paths: HostPaths, layers: LayerStore, image: ImageManifest,
               idmap: IdMapping | None) -> Iterator[ImageView]:
    dirs: list[Path] = [layers.ensure(layer, idmap) for layer in image.layers]
    lay = ContainerLayout(paths, "build" + secrets.token_hex(16))  # no upper dir: read-only
    with fsview.read_view(lay, dirs, paths.run_root / "fsviews") as fd:
        yield ImageView(f"/proc/self/fd/{fd}")


def lookup_ids(view: ImageView, spec: str, line_what: str) -> tuple[int, int]:
    """--chown=user[:group]: numbers, or names from the image's /etc/passwd and /etc/group."""
    from berth.errors import InvalidArgument

    user, _, group = spec.partition(":")

    def find(name: str, table: str, field: int) -> int:
        if name.isdigit():
            return int(name)
        for row in view.read_text(table).splitlines():
            cols = row.split(":")
            if len(cols) > field and cols[0] == name and cols[field].isdigit():
                return int(cols[field])
        kind = 'user' if 'passwd' in table else 'group'
        raise InvalidArgument(f"{line_what}: unable to find {kind} "
                              f"{name}: no matching entries in {table}")

    uid = find(user, "/etc/passwd", 2)
    if group:
        return uid, find(group, "/etc/group", 2)
    if user.isdigit():
        return uid, uid
    for row in view.read_text("/etc/passwd").splitlines():
        cols = row.split(":")
        if len(cols) > 3 and cols[0] == user and cols[3].isdigit():
            return uid, int(cols[3])
    return uid, uid
