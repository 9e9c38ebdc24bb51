"""Berth's pull and push progress events as Docker's JSON message stream.

Each renderer is handed, in order, the service's progress events, then the work's result
(``Finished``) or its failure, and returns the lines the docker CLI shows. Failures mid-stream
are Docker's ``{"errorDetail": {"message": m}, "error": m}`` (the CLI reads errorDetail).
"""

from __future__ import annotations

import logging
from typing import Any

from berth.api.progress import Finished
from berth.errors import BerthError, out_of_space
from berth.image.reference import Reference

log = logging.getLogger("berth.api.docker")
BAR = 50

_PULL_STATUS = {"waiting": "Pulling fs layer", "downloading": "Downloading",
                "verifying": "Verifying Checksum", "done": "Download complete",
                "exists": "Already exists"}
_PUSH_STATUS = {"waiting": "Preparing", "pushing": "Pushing", "exists": "Layer already exists",
                "done": "Pushed"}


def human_size(n: float) -> str:
    """Docker's units.HumanSize: decimal units, about four significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.4g}{unit}"
        n /= 1000
    return f"{n:.4g}TB"  # pragma: no cover - the loop always returns


def progress_bar(current: int, total: int) -> str:
    """"[=====>     ]  1.2MB/3.4MB", as dockerd's JSONProgress renders it."""
    if total <= 0:
        return human_size(current)
    done = min(BAR, int(BAR * current / total))
    return f"[{'=' * done}>{' ' * (BAR - done)}] {human_size(current):>8}/{human_size(total)}"


def error_line(exc: BaseException) -> dict[str, Any]:
    exc = out_of_space(exc) or exc
    if isinstance(exc, BerthError):
        message = exc.message
    else:
        log.error("image work failed", exc_info=exc)
        message = f"internal error: {type(exc).__name__}: {exc}"
    return {"errorDetail": {"message": message}, "error": message}


def _layer_line(status: str, event: dict[str, Any], with_bar: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"status": status, "progressDetail": {}, "id": event["id"]}
    if with_bar:
        current, total = int(event.get("current") or 0), int(event.get("total") or 0)
        line["progressDetail"] = {"current": current, "total": total}
        line["progress"] = progress_bar(current, total)
    return line


class PullLines:
    """Render a pull of ``ref``; ``before`` is the id its name had before (for "up to
    date"). A layer downloaded is "Pull complete" once the whole pull has stored and recorded
    it: Berth unpacks layers after the pull (docker shows "Extracting" in between)."""

    def __init__(self, ref: Reference, name: str, before: str | None) -> None:
        self.ref = ref
        self.name = name  # as the user asked: "busybox:latest", "x@sha256:..."
        self.before = before
        self.downloaded: list[str] = []  # layer ids, in the order their downloads finished

    def __call__(self, item: Any) -> list[dict[str, Any]]:
        if isinstance(item, Finished):
            image = item["image"]
            fresh = image.id != self.before
            word = "Downloaded newer image" if fresh else "Image is up to date"
            return [*({"status": "Pull complete", "progressDetail": {}, "id": layer}
                      for layer in self.downloaded),
                    {"status": f"Digest: {item['digest']}"},
                    {"status": f"Status: {word} for {self.name}"}]
        if isinstance(item, BaseException):
            return [error_line(item)]
        status = item.get("status")
        if status == "resolved":
            return [{"status": f"Pulling from {self.ref.repository}",
                     "id": self.ref.tag or self.ref.digest or "latest"}]
        if "id" not in item or status not in _PULL_STATUS:
            return []
        if status == "done" and item["id"] not in self.downloaded:
            self.downloaded.append(item["id"])
        return [_layer_line(_PULL_STATUS[status], item, status == "downloading")]


class PushLines:
    """Render pushes to ``target`` (one per tag, each ending with a "pushed" event that the
    route reports); the image's config blob is not a layer and is not shown."""

    def __init__(self, target: Reference, config_digests: set[str]) -> None:
        self.target = target
        self.config_digests = config_digests
        self.started = False

    def __call__(self, item: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.started:
            self.started = True
            out.append({"status": "The push refers to repository "
                                  f"[{self.target.domain}/{self.target.repository}]"})
        if isinstance(item, Finished):
            return out
        if isinstance(item, BaseException):
            return [*out, error_line(item)]
        if item.get("status") == "pushed":
            tag, digest, size = item["tag"], item["digest"], item["size"]
            return [*out, {"status": f"{tag}: digest: {digest} size: {size}"},
                    {"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest,
                                                   "Size": size}}]
        status = item.get("status")
        if "id" not in item or item.get("digest") in self.config_digests:
            return out
        if status == "mounted":
            return [*out, _layer_line(f"Mounted from {item.get('mounted_from', '')}", item,
                                      False)]
        if status not in _PUSH_STATUS:
            return out
        return [*out, _layer_line(_PUSH_STATUS[status], item, status == "pushing")]
