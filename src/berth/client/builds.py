"""Builds in the SDK: tar a context directory (honouring .dockerignore) and stream it."""

from __future__ import annotations

import os

from berth.client.images import _progress
from berth.client.transport import Transport, read_chunks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any


def tar_context(path: str | None, dockerfile_text: bytes | None = None) -> tuple[IO[bytes], str]:
    """The directory (None: no context) as a tar in a temp file, and the Dockerfile's name in
    it. What .dockerignore excludes is left out (the Dockerfile and .dockerignore always go:
    the daemon reads them). dockerfile_text (from stdin, or a file outside the directory) goes
    in under a name of its own that .dockerignore hides from COPY, as the docker CLI does."""
    import io
    import secrets
    import tarfile
    import tempfile

    from berth.build.ignore import DockerIgnore

    ignore_text: str | None = None
    ignore = os.path.join(path, ".dockerignore") if path is not None else None
    if ignore is not None and os.path.isfile(ignore):
        with open(ignore, encoding="utf-8", errors="replace") as f:
            ignore_text = f.read()
    rules = DockerIgnore.from_text(ignore_text) if ignore_text is not None else None
    name = "Dockerfile"
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        extra: dict[str, bytes] = {}
        if dockerfile_text is not None:
            name = f".dockerfile.{secrets.token_hex(10)}"
            hidden = (ignore_text if ignore_text is not None else ".dockerignore\n") + \
                f"\n{name}\n"
            extra = {name: dockerfile_text, ".dockerignore": hidden.encode()}
        if path is not None:
            _add(tf, path, "", rules, set(extra))
        for member, data in extra.items():
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out, name


def _add(tf: Any, top: str, rel: str, rules: Any, leave_out: set[str]) -> None:
    for name in sorted(os.listdir(os.path.join(top, rel) if rel else top)):
        path = f"{rel}/{name}" if rel else name
        if path in leave_out:  # sent in another form
            continue
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
            _add(tf, top, path, rules, leave_out)


class Builds:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def build(self, context_dir: str | None, tags: list[str] | None = None,
              dockerfile: str = "Dockerfile", target: str | None = None,
              no_cache: bool = False, pull: bool = False,
              build_args: dict[str, str] | None = None,
              labels: dict[str, str] | None = None, *,
              dockerfile_text: bytes | None = None,
              context_tar: IO[bytes] | None = None) -> Iterator[dict[str, Any]]:
        """Progress lines ({"stream": text}, ...); the last is {"status": "done", "id": ...}.
        A failed build raises APIError. The context: the directory (None: none), or
        context_tar, a tar (maybe compressed) sent as it is; dockerfile_text: the Dockerfile
        itself, when it is not the file ``dockerfile`` of the context."""
        if context_tar is not None:
            body = context_tar
        else:
            body, name = tar_context(context_dir, dockerfile_text)
            if dockerfile_text is not None:
                dockerfile = name
        with body:
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
