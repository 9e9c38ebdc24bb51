"""Images: list, inspect, history, tag, remove, prune, pull, push, save, load, commit.

Names may hold slashes (``127.0.0.1:5000/team/app:v1``), so the per-image routes take a
``{name:path}`` and end in a fixed word (``/json``, ``/history``, ...). The shapes are in
api/docker/imageshapes.py, the progress streams in api/docker/imageprogress.py; the work is
the service layer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from berth.api.docker import imageshapes as shapes
from berth.api.docker.imageprogress import PullLines, PushLines
from berth.api.docker.routes.common import Ctx, Svc, parse_filters, read_json, truthy
from berth.api.progress import progress_response
from berth.api.spool import spool_body
from berth.errors import Conflict, InvalidArgument, NotFound, Unsupported
from berth.image.reference import Reference, parse_reference, validate_tag
from berth.service.images import IMAGE_FILTERS, ImageInUse
from berth.service.registry import registry_reference

router = APIRouter()
MAX_ARCHIVE = 64 * 1024**3
STREAM_TYPE = "application/json"  # dockerd's type for its JSON message streams
_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{4,64}")
Changes = Annotated[list[str] | None, Query()]


# -- reading ----------------------------------------------------------------------------------

@router.get("/images/json")
def list_images(svc: Svc, ctx: Ctx, filters: str | None = None, filter: str | None = None,
                all: str | None = None, digests: str | None = None) -> list[dict[str, Any]]:
    """``all`` adds build steps' results (build cache, hidden otherwise); ``digests`` only
    changes what the CLI prints."""
    wanted = parse_filters(filters)
    if filter:  # API < 1.25: a bare reference pattern
        wanted.setdefault("reference", []).append(filter)
    unknown = sorted(set(wanted) - IMAGE_FILTERS)
    if unknown:
        raise InvalidArgument(f"invalid filter '{unknown[0]}': images take "
                              f"{', '.join(sorted(IMAGE_FILTERS))}")
    return [shapes.list_item(img, tags) for img, tags in
            svc.images.list(ctx, wanted, intermediate=truthy(all))]


@router.get("/images/search")
def search(ctx: Ctx, term: str | None = None) -> None:
    raise Unsupported("image search is not available: this Berth daemon has no search index "
                      "configured (look the image up in your registry instead)")


@router.get("/images/get", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-tar": {}}}})
def save_many(svc: Svc, ctx: Ctx, names: Annotated[list[str] | None, Query()] = None
              ) -> StreamingResponse:
    if not names:
        raise InvalidArgument("name at least one image to save (names=...)")
    return StreamingResponse(svc.images.save(ctx, names, "docker-archive"),
                             media_type="application/x-tar")


@router.get("/images/{name:path}/get", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-tar": {}}}})
def save_one(name: str, svc: Svc, ctx: Ctx) -> StreamingResponse:
    return StreamingResponse(svc.images.save(ctx, [name], "docker-archive"),
                             media_type="application/x-tar")


@router.get("/images/{name:path}/json")
def inspect(name: str, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    img = svc.images.resolve(ctx, name)
    return shapes.inspect(img, svc.images.tags_of(ctx, img.id))


@router.get("/images/{name:path}/history")
def history(name: str, svc: Svc, ctx: Ctx) -> list[dict[str, Any]]:
    img = svc.images.resolve(ctx, name)
    return shapes.history(svc.images.history(ctx, img.id), svc.images.tags_of(ctx, img.id))


# -- names ------------------------------------------------------------------------------------

def _new_name(repo: str | None, tag: str | None) -> str:
    if not repo:
        raise InvalidArgument("repo is required: the new name's repository")
    ref = parse_reference(repo)
    if ref.digest is not None:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {repo}")
    if tag:
        ref = replace(ref, tag=validate_tag(tag))
    return ref.with_default_tag().familiar()


@router.post("/images/{name:path}/tag", status_code=201)
def tag(name: str, svc: Svc, ctx: Ctx, repo: str | None = None,
        tag: str | None = None) -> Response:
    svc.images.tag(ctx, name, _new_name(repo, tag))
    return Response(status_code=201)


def _conflict(name: str, exc: ImageInUse) -> Conflict:
    """dockerd's wording, which scripts match on."""
    short = exc.image_id.removeprefix("sha256:")[:12]
    if exc.container_id is None:
        return Conflict(f"conflict: unable to delete {short} (must be forced) - image is "
                        "referenced in multiple repositories")
    if _IMAGE_ID.fullmatch(name):
        return Conflict(f"conflict: unable to delete {short} (must be forced) - image is "
                        f"being used by container {exc.container_id[:12]}")
    return Conflict(f'conflict: unable to remove repository reference "{name}" (must force) '
                    f"- container {exc.container_id[:12]} is using its referenced image {short}")


@router.delete("/images/{name:path}")
def remove(name: str, svc: Svc, ctx: Ctx, force: str | None = None,
           noprune: str | None = None) -> list[dict[str, str]]:
    """``noprune`` keeps untagged parents: Berth's images have none, so it changes nothing."""
    try:
        return shapes.removal(svc.images.remove(ctx, name, truthy(force)))
    except ImageInUse as e:
        raise _conflict(name, e) from None


@router.post("/images/prune")
def prune(svc: Svc, ctx: Ctx, filters: str | None = None) -> dict[str, Any]:
    done = svc.images.prune(ctx, False, parse_filters(filters))
    return {"ImagesDeleted": shapes.removal(done["removed"]),
            "SpaceReclaimed": done["reclaimed"]}


# -- registries -------------------------------------------------------------------------------

def _pull_name(from_image: str, tag: str | None) -> Reference:
    ref = parse_reference(from_image)
    if tag:
        if tag.startswith("sha256:"):
            return parse_reference(f"{replace(ref, tag=None, digest=None)}@{tag}")
        return replace(ref, tag=validate_tag(tag), digest=None)
    if ref.tag is None and ref.digest is None:
        raise Unsupported("pulling every tag of a repository (docker pull --all-tags) is not "
                          "supported: name a tag")
    return ref


@router.post("/images/create")
async def create(request: Request, svc: Svc, ctx: Ctx, fromImage: str | None = None,
                 fromSrc: str | None = None, repo: str | None = None, tag: str | None = None,
                 message: str | None = None, platform: str | None = None,
                 changes: Changes = None) -> Response:
    """Pull ``fromImage`` (docker pull), streaming Docker's progress messages; a refusal
    before the first byte (bad name, unknown image, the signature policy) is a plain error."""
    if fromSrc is not None:
        return await _import(request, svc, ctx, fromSrc, repo, tag, message, changes or [])
    if not fromImage:
        raise InvalidArgument("fromImage is required: the image to pull")
    ref = registry_reference(str(_pull_name(fromImage, tag)))
    name = ref.familiar()
    auth = shapes.registry_auth(request.headers.get("x-registry-auth"))
    before = None
    with contextlib.suppress(NotFound):
        before = svc.images.resolve(ctx, name).id
    act = await asyncio.to_thread(svc.pulls.record, ctx, name, platform or None)

    def work(report: Any) -> dict[str, Any]:
        return svc.pulls.run(ctx, act, name, platform or None, report, auth=auth)

    return await progress_response(work, PullLines(ref, name, before), STREAM_TYPE)


async def _import(request: Request, svc: Svc, ctx: Ctx, src: str, repo: str | None,
                  tag: str | None, message: str | None, changes: list[str]) -> Response:
    """docker import: the body is a root filesystem tarball (fromSrc=-); a one-layer image."""
    from berth.service.rootfs import import_rootfs

    if src != "-":
        raise Unsupported("importing from a URL is not supported: send the tarball as the "
                          "body (fromSrc=-)")
    reference = _new_name(repo, tag) if repo else None
    spool = await _spool(request, svc)
    try:
        img = await asyncio.to_thread(import_rootfs, svc.images, ctx, spool, reference,
                                      changes, message or "")
    finally:
        spool.close()
    return StreamingResponse(iter([json.dumps({"status": img.id}).encode() + b"\n"]),
                             media_type=STREAM_TYPE)


def _push_targets(svc: Svc, ctx: Ctx, name: str, tag: str | None) -> list[str]:
    ref = parse_reference(name)
    if ref.digest is not None:
        raise InvalidArgument(f"cannot push {name}: name a tag, not a digest")
    if tag:
        return [replace(ref, tag=validate_tag(tag)).familiar()]
    if ref.tag:
        return [ref.familiar()]
    # No tag: every tag of the repository, as dockerd does.
    repo = ref.name
    found = sorted(t for _img, tags in svc.images.list(ctx, {"reference": [repo]})
                   for t in tags if t.rpartition(":")[0] == repo)
    if not found:
        raise NotFound(f"An image does not exist locally with the tag: {repo}")
    return found


@router.post("/images/{name:path}/push")
async def push(name: str, request: Request, svc: Svc, ctx: Ctx,
               tag: str | None = None) -> Response:
    auth = shapes.registry_auth(request.headers.get("x-registry-auth"))
    targets = _push_targets(svc, ctx, name, tag)
    config_ids = {svc.images.resolve(ctx, t).id for t in targets}  # unknown: a 404 now

    def work(report: Any) -> dict[str, Any]:
        for target in targets:
            done = svc.registry.push(ctx, target, None, report, auth=auth)
            report({"status": "pushed", "tag": parse_reference(target).tag,
                    "digest": done["digest"], "size": done["size"]})
        return {}

    lines = PushLines(parse_reference(targets[0]), config_ids)
    return await progress_response(work, lines, STREAM_TYPE)


# -- archives and commits ---------------------------------------------------------------------

async def _spool(request: Request, svc: Svc) -> Any:
    return await spool_body(request, svc.info["tmp"], limit=MAX_ARCHIVE,
                            too_large="archive larger than 64 GiB",
                            empty="empty body: send a tarball")


@router.post("/images/load")
async def load(request: Request, svc: Svc, ctx: Ctx, quiet: str | None = None) -> Response:
    """A docker-archive (or OCI layout) tarball; the images and their names, or a 400 and
    nothing imported."""
    spool = await _spool(request, svc)
    try:
        imported = await asyncio.to_thread(
            lambda: svc.images.import_archive(ctx, spool, archive_names=True))
    finally:
        spool.close()
    lines = []
    for img, tags in imported:
        texts = [f"Loaded image: {t}\n" for t in tags] or [f"Loaded image ID: {img.id}\n"]
        lines += [json.dumps({"stream": text}) + "\n" for text in texts]
    # A stream (chunked), as dockerd sends it: docker-py reads a non-chunked answer as one
    # JSON document.
    return StreamingResponse(iter([line.encode() for line in lines]), media_type=STREAM_TYPE)


@router.post("/commit", status_code=201)
async def commit(request: Request, svc: Svc, ctx: Ctx, container: str | None = None,
                 repo: str | None = None, tag: str | None = None, comment: str | None = None,
                 author: str | None = None, pause: str | None = None,
                 changes: Changes = None) -> JSONResponse:
    """The body (optional) is a container Config whose settings the new image takes; the
    ``changes`` (Dockerfile instructions) apply after it."""
    from berth.api.routes.images import CommitRequest

    if not container:
        raise InvalidArgument("container is required: the container to commit")
    body = await read_json(request, required=False)
    lines = [*shapes.config_changes(body), *(changes or [])]
    reference = _new_name(repo, tag) if repo else None
    if tag and not repo:
        raise InvalidArgument("tag without repo: name the repository too")
    try:
        req = CommitRequest(container=container, reference=reference, changes=lines,
                            message=comment or "", author=author or "",
                            pause=pause is None or truthy(pause))
    except ValidationError as e:
        raise InvalidArgument(f"invalid commit: {e.errors()[0]['loc'][-1]}: "
                              f"{e.errors()[0]['msg']}") from None
    img = await asyncio.to_thread(svc.commits.commit, ctx, req)
    return JSONResponse({"Id": img.id}, status_code=201)
