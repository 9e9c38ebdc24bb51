"""Commit: a container's filesystem changes and config edits become a new image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from berth.errors import Conflict
from berth.image.blobs import BlobStore
from berth.image.reference import normalize_tag_reference
from berth.service.context import Context
from berth.service.idmaps import IdMaps
from berth.service.images import ImageService

if TYPE_CHECKING:
    from berth.agent.hostops import HostOps
    from berth.api.routes.images import CommitRequest
    from berth.service.containers import ContainerService
    from berth.store.models import Image


class CommitService:
    def __init__(self, containers: ContainerService, images: ImageService, hostops: HostOps,
                 blobs: BlobStore, idmaps: IdMaps) -> None:
        self.containers = containers
        self.images = images
        self.hostops = hostops
        self.blobs = blobs
        self.idmaps = idmaps

    def commit(self, ctx: Context, req: CommitRequest) -> Image:
        from berth.image.changes import parse_changes
        from berth.image.commit import commit_image

        asked = parse_changes(req.changes)  # refuse a bad --change before any work
        tag = normalize_tag_reference(req.reference) if req.reference else None
        row = self.containers.get(ctx, req.container)
        if row.status in ("creating", "removing"):
            raise Conflict(f"container {row.name} is {row.status}: try again when it is done")
        base = self.images.manifest_of(ctx, row.image_id)
        changes = combine(from_container(row.spec), asked)
        with self.images.content.using():
            layer = self.hostops.commit_changes(row.id, self.blobs,
                                                self.idmaps.for_project(row.project_id),
                                                req.pause)
            manifest = commit_image(base, layer, self.blobs, changes=changes,
                                    author=req.author, comment=req.message,
                                    created_by=f"berth commit {row.name}")
            return self.images.record(ctx, manifest, [tag] if tag else [])


def from_container(spec: dict[str, Any]) -> dict[str, Any]:
    """What the container was run with, as config changes: docker commits the container's
    config (its command, env, user, …), not just the image's."""
    out: dict[str, Any] = {}
    if spec.get("entrypoint") is not None:
        out["Entrypoint"] = spec["entrypoint"]
        out["Cmd"] = spec.get("command") or []
    elif spec.get("command"):
        out["Cmd"] = spec["command"]
    if spec.get("env"):
        out["Env"] = list(spec["env"])
    if spec.get("labels"):
        out["Labels"] = dict(spec["labels"])
    for key, field in (("User", "user"), ("WorkingDir", "workdir"),
                       ("StopSignal", "stop_signal")):
        if spec.get(field):
            out[key] = spec[field]
    return out


def combine(container: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    """The user's --change instructions win; env and labels merge key by key."""
    out = {**container, **asked}
    if "Env" in container and "Env" in asked:
        out["Env"] = [*container["Env"], *asked["Env"]]
    if "Labels" in container and "Labels" in asked:
        out["Labels"] = {**container["Labels"], **asked["Labels"]}
    if "Entrypoint" in asked and "Cmd" not in asked:
        out.pop("Cmd", None)  # a new ENTRYPOINT alone resets CMD, as in a Dockerfile
    return out
