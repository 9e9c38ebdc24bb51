"""Builds in the SDK: tar a context directory (honouring .dockerignore) and stream it."""

from __future__ import annotations

import os

from berth.client.images import _progress
from berth.client.transport import Transport, read_chunks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any


def tar_context(path: str) -> IO[bytes]:
    """The directory as a tar in a temp file; what .dockerignore excludes is left out (the
    Dockerfile and .dockerignore always go: the daemon reads them)."""
    import tarfile
    import tempfile

    from berth.build.ignore import DockerIgnore

    rules = None
    ignore = os.path.join(path, ".dockerignore")
    if os.path.isfile(ignore):
        with open(ignore, encoding="utf-8", errors="replace") as f:
            rules = DockerIgnore.from_text(f.read())
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, path, "", rules)
    out.seek(0)
    return out


def _add(tf: Any, top: str, rel: str, rules: Any) -> None:
    for name in sorted(os.listdir(os.path.join(top, rel) if rel else top)):
        path = f"{rel}/{name}" if rel else name
        full = os.path.join(top, path)
        is_dir = os.path.isdir(full) and not os.path.islink(full)
        skip = rules is not None and path not in ("Dockerfile", ".dockerignore") and \
            rules.excluded(path, is_dir)
        if skip and not (is_dir and rules.may_contain_included(path)):
            continue
        if not skip:
            info = tf.gettarinfo(full, path)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(full, "rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)
        if is_dir:
            _add(tf, top, path, rules)


class Builds:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def build(self, context_dir: str, tags: list[str] | None = None,
              dockerfile: str = "Dockerfile", target: str | None = None,
              no_cache: bool = False, pull: bool = False,
              build_args: dict[str, str] | None = None,
              labels: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Progress lines ({"stream": text}, ...); the last is {"status": "done", "id": ...}.
        A failed build raises APIError."""
        with tar_context(context_dir) as body:
            params = {"tag": tags or None, "dockerfile": dockerfile, "target": target,
                      "no_cache": no_cache or None, "pull": pull or None,
                      "build_arg": [f"{k}={v}" for k, v in (build_args or {}).items()] or None,
                      "label": [f"{k}={v}" for k, v in (labels or {}).items()] or None}
            resp = self._t.open("POST", "/v1/build", params, raw=read_chunks(body))
            yield from _progress(resp)

    def prune(self, all: bool = False, filters: list[str] | None = None,
              keep_storage: int = 0) -> dict[str, Any]:
        """Drop build cache: {"removed": [keys], "reclaimed": bytes}. all: records of images
        a build ended at too; filters: "until=24h", "id=PREFIX"; keep_storage: bytes of the
        most recently used records to keep."""
        return self._t.call("POST", "/v1/build/prune",
                            {"all": all or None, "filter": filters or None,
                             "keep_storage": keep_storage or None})
