"""Images a project holds: import, build the offline base, tag, list, inspect, remove.

Bytes live in the host's blob store (shared by digest); which project has which image under
which names lives in the store. Removing an image drops the project's record; blobs no image
references any more are garbage collected by `prune_blobs`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.image.blobs import BlobStore
from berth.image.gc import GcReport, ImageContent
from berth.image.layers import LayerStore
from berth.image.reference import parse_reference
from berth.image.types import ImageManifest, LayerRef
from berth.service.archives import pipe_stream
from berth.service.context import Context
from berth.service.events import image_event
from berth.service.filters import (
    PruneFilter,
    bool_filter,
    labels_match,
    reference_matches,
)
from berth.service.guard import ContentGuard
from berth.service.hub import Hub
from berth.service.paging import Listing, PageRequest, Sort, listing, marker_position, page_rows
from berth.service.quotas import QuotaService
from berth.service.selectors import Selector, from_label_filters
from berth.store.db import Store
from berth.store.models import Container, Image, ImageTag


def familiar(ref: str) -> str:
    """'busybox' -> 'busybox:latest'; 'sha256:…' and digests pass through."""
    return parse_reference(ref).with_default_tag().familiar()


class ImageInUse(Conflict):
    """Removal refused: a container uses the image (``container_id``), or (None) it has
    several names; the Docker API words each case as dockerd does."""

    def __init__(self, message: str, container_id: str | None, image_id: str) -> None:
        super().__init__(message)
        self.container_id = container_id
        self.image_id = image_id


IMAGE_FILTERS = {"reference", "label", "dangling", "before", "since"}
IMAGE_SORT = Sort(("created_at", "size", "id"), "created_at", "desc")


_FRACTION = re.compile(r"(\.\d{1,6})\d*")
IMAGE_PRUNE_FILTERS = {"dangling", "label", "label!", "until"}


def config_time(text: Any) -> datetime | None:
    """An RFC 3339 time from an image config (which may carry nanoseconds), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00"), 1))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def made_at(img: Image) -> float:
    """When the image was made, as docker shows it: its config's `created`, else when the
    project got it."""
    when = config_time(img.config.get("created"))
    return when.timestamp() if when is not None else img.created_at


def _labels(img: Image) -> dict[str, str]:
    return (img.config.get("config") or {}).get("Labels") or {}


def as_manifest(image: Image, tags: list[str] | None = None) -> ImageManifest:
    return ImageManifest(id=image.id, manifest_digest=image.manifest_digest,
                         config=image.config,
                         layers=[LayerRef(**layer) for layer in image.layers],
                         repo_tags=tags or [])


def _marker(across: bool, project_id: str, key: str) -> str:
    """An item's marker: its id (or name); across projects, where ids may repeat,
    "project/id"."""
    return f"{project_id}/{key}" if across else key


def _image_marker(marker: str) -> Any:
    project, slash, image_id = marker.rpartition("/")
    if not image_id.startswith("sha256:"):
        image_id = "sha256:" + image_id
    where = Image.id == image_id
    if slash:
        where = and_(where, Image.project_id == project)
    return where


def _tag_name(ref: str) -> str | None:
    """The familiar tag a reference names, or None when it cannot be one (an id)."""
    try:
        return familiar(ref)
    except InvalidArgument:
        return None


PAUSE_TAG = "berth-pause:latest"


class ImageService:
    hub: Hub | None = None  # set by the daemon: image events go out through it

    def __init__(self, store: Store, blobs: BlobStore, layers: LayerStore | None = None,
                 quotas: QuotaService | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.layers = layers
        self.quotas = quotas  # a new image counts against the project's images bytes
        self.content = ContentGuard()

    def resolve(self, ctx: Context, ref: str) -> Image:
        """A tag, a full or short image id (with or without 'sha256:')."""
        with self.store.session() as s:
            hexpart = ref.removeprefix("sha256:")
            if hexpart and all(c in "0123456789abcdef" for c in hexpart) and len(hexpart) >= 4:
                q = select(Image).where(Image.project_id == ctx.project_id,
                                        Image.id.startswith("sha256:" + hexpart))
                found = s.scalars(q.limit(2)).all()
                if len(found) == 1:
                    return found[0]
                if len(found) > 1:
                    raise InvalidArgument(f"ambiguous image id prefix {ref!r}")
            by_digest = self._by_digest(s, ctx, ref)
            if by_digest is not None:
                return by_digest
            name = _tag_name(ref)
            if name is None:
                raise NotFound(f"no such image: {ref}")
            tag = s.get(ImageTag, (ctx.project_id, name))
            image = None if tag is None else s.get(Image, (ctx.project_id, tag.image_id))
        if image is None:
            raise NotFound(f"no such image: {ref}: pull it (berth pull), import it (berth "
                           "load) or build it (berth image build-base) first")
        return image

    @staticmethod
    def _by_digest(s: Any, ctx: Context, ref: str) -> Image | None:
        """NAME@sha256:...: the project's image with that manifest digest, known under that
        repository (pulled from it, or tagged in it), as Docker resolves a digest locally."""
        if "@" not in ref:
            return None
        try:
            wanted = parse_reference(ref)
        except InvalidArgument:
            return None
        if wanted.digest is None:
            return None
        rows = s.scalars(select(Image).where(Image.project_id == ctx.project_id,
                                             Image.manifest_digest == wanted.digest)).all()
        for image in rows:
            names = {parse_reference(d).name for d in image.repo_digests or []}
            names |= {parse_reference(t).name for t in s.scalars(select(ImageTag.name).where(
                ImageTag.project_id == ctx.project_id, ImageTag.image_id == image.id))}
            if wanted.name in names:
                return image
        return None

    def event(self, project_id: str, action: str, image: Image, name: str | None = None,
              **extra: Any) -> None:
        """Tell the events stream (pull, push, tag, untag, delete, import)."""
        if self.hub is not None:
            self.hub.publish(image_event(project_id, action, image.id, name, _labels(image),
                                         **extra))

    def tags_of(self, ctx: Context, image_id: str) -> list[str]:
        with self.store.session() as s:
            q = select(ImageTag.name).where(ImageTag.project_id == ctx.project_id,
                                            ImageTag.image_id == image_id)
            return sorted(s.scalars(q).all())

    def record(self, ctx: Context, manifest: ImageManifest, tags: list[str], *,
               source: str | None = None, source_digest: str | None = None,
               repo_digest: str | None = None,
               signatures: list[dict[str, Any]] | None = None,
               intermediate: bool = False) -> Image:
        """Give the project this image (stored blobs) under these names. A pull also says
        where it came from, under which digest, and with which signatures. intermediate: a
        build step's result, kept as build cache (see Image.intermediate)."""
        try:
            return self._record(ctx, manifest, tags, source, source_digest, repo_digest,
                                signatures, intermediate)
        except IntegrityError:  # a concurrent pull of the same image recorded it first
            return self._record(ctx, manifest, tags, source, source_digest, repo_digest,
                                signatures, intermediate)

    def _record(self, ctx: Context, manifest: ImageManifest, tags: list[str],
                source: str | None, source_digest: str | None, repo_digest: str | None,
                signatures: list[dict[str, Any]] | None, intermediate: bool) -> Image:
        with self.store.session() as s:
            if self.quotas is not None:
                self.quotas.lock(s, ctx.project_id)  # first: concurrent checks run in turn
            image = s.get(Image, (ctx.project_id, manifest.id))
            if image is None:
                if self.quotas is not None:
                    self.quotas.check(s, ctx.project_id, {"images": manifest.size})
                image = Image(project_id=ctx.project_id, id=manifest.id,
                              manifest_digest=manifest.manifest_digest, config=manifest.config,
                              layers=[vars(layer) for layer in manifest.layers],
                              size=manifest.size, created_at=time.time(), repo_digests=[],
                              signatures=[], intermediate=intermediate)
                s.add(image)
            elif image.intermediate and not intermediate:
                image.intermediate = False  # now someone's image, not only a step's result
            if source is not None:
                # The newest pull decides what the policy checks at create time.
                image.source, image.source_digest = source, source_digest
                image.manifest_digest = manifest.manifest_digest
                image.signatures = list(signatures or [])
            if repo_digest is not None and repo_digest not in image.repo_digests:
                image.repo_digests = [*image.repo_digests, repo_digest]
            for name in tags:
                self._set_tag(s, ctx, familiar(name), manifest.id)
        return image

    def add_repo_digest(self, ctx: Context, image_id: str, repo_digest: str) -> None:
        with self.store.session() as s:
            image = s.get(Image, (ctx.project_id, image_id))
            if image is not None and repo_digest not in image.repo_digests:
                image.repo_digests = [*image.repo_digests, repo_digest]

    def manifest_of(self, ctx: Context, image_id: str) -> ImageManifest:
        with self.store.session() as s:
            image = s.get(Image, (ctx.project_id, image_id))
        if image is None:
            raise NotFound(f"no such image: {image_id}")
        return as_manifest(image)

    @staticmethod
    def _set_tag(s, ctx: Context, name: str, image_id: str) -> None:  # noqa: ANN001
        tag = s.get(ImageTag, (ctx.project_id, name))
        if tag is None:
            s.add(ImageTag(project_id=ctx.project_id, name=name, image_id=image_id))
        else:
            tag.image_id = image_id
        image = s.get(Image, (ctx.project_id, image_id))
        if image is not None and image.intermediate:
            image.intermediate = False  # a name makes it someone's image

    def import_archive(self, ctx: Context, stream: BinaryIO, *, archive_names: bool = False
                       ) -> list[tuple[Image, list[str]]]:
        """Each image with its tags (archive_names: only the names the archive gave it, as
        ``docker load`` reports them)."""
        from berth.image.archive import import_archive

        out = []
        with self.content.using():
            for manifest in import_archive(stream, self.blobs):
                image = self.record(ctx, manifest, manifest.repo_tags)
                named = [familiar(t) for t in manifest.repo_tags] if archive_names else \
                    self.tags_of(ctx, image.id)
                out.append((image, named))
                self.event(ctx.project_id, "import", image, (out[-1][1] or [None])[0])
        return out

    def build_base(self, ctx: Context, kind: str, tag: str | None = None,
                   busybox: Path = Path("/bin/busybox")) -> Image:
        if kind != "busybox":
            raise InvalidArgument(f"unknown base image kind {kind!r}: only busybox is built in")
        from berth.image.base import build_busybox_image

        with self.content.using():
            manifest = build_busybox_image(self.blobs, busybox)
            return self.record(ctx, manifest, [tag or "busybox:latest"])

    def pause_image(self, ctx: Context, catatonit: Path = Path("/usr/bin/catatonit")) -> Image:
        """The infra image of the project's pods (built from the host's catatonit, the same
        image every time), tagged as PAUSE_TAG like podman's podman-pause."""
        from berth.image.base import build_pause_image

        with self.content.using():
            return self.record(ctx, build_pause_image(self.blobs, catatonit), [PAUSE_TAG])

    def tag(self, ctx: Context, ref: str, new: str) -> None:
        image = self.resolve(ctx, ref)
        with self.store.session() as s:
            self._set_tag(s, ctx, familiar(new), image.id)
        self.event(ctx.project_id, "tag", image, familiar(new))

    def list(self, ctx: Context, filters: dict[str, list[str]] | None = None, *,
             selector: Selector | None = None, page: PageRequest | None = None,
             all_projects: bool = False, intermediate: bool = False) -> Listing:
        """(image, its tags), newest first unless page says otherwise; with all_projects
        (admins only) every project's; with intermediate, build steps' results too (docker
        images -a). Filters as Docker's: reference (glob), label, dangling, before, since.
        Without page: the whole list."""
        across = all_projects and ctx.is_admin
        filters = filters or {}
        key, desc = IMAGE_SORT.choose(page)
        scope = select(Image)
        if not across:
            scope = scope.where(Image.project_id == ctx.project_id)
        q = scope if intermediate else scope.where(Image.intermediate.is_(False))
        for k in ("before", "since"):
            for ref in filters.get(k, []):
                pivot = self.resolve(ctx, ref).created_at
                q = q.where(Image.created_at < pivot if k == "before" else
                            Image.created_at > pivot)
        by_labels = from_label_filters(filters.get("label", []))
        for sel in (selector, by_labels):
            if sel:
                q = q.where(sel.sql(
                    lambda label: Image.config[("config", "Labels", label)].as_string()))
        dangling = bool_filter("dangling", filters["dangling"]) if "dangling" in filters \
            else None
        order: tuple[Any, ...] = (Image.id,) if key == "id" else (getattr(Image, key), Image.id)
        if across:
            order = (*order, Image.project_id)
        by_id: dict[tuple[str, str], list[str]] = {}

        def names(img: Image) -> list[str]:
            return sorted(by_id.get((img.project_id, img.id), []))

        def keep(img: Image) -> bool:
            tags = names(img)
            if dangling is not None and (not tags) != dangling:
                return False
            if "reference" in filters and not reference_matches(tags, filters["reference"]):
                return False
            return by_labels is not None or labels_match(_labels(img), filters.get("label", []))

        tag_q = select(ImageTag.project_id, ImageTag.image_id, ImageTag.name)
        if not across:
            tag_q = tag_q.where(ImageTag.project_id == ctx.project_id)
        by_tags = dangling is not None or "reference" in filters
        with self.store.session() as s:
            if by_tags:  # the filters need every image's tags
                for project_id, image_id, name in s.execute(tag_q).all():
                    by_id.setdefault((project_id, image_id), []).append(name)
            after = None
            if page is not None and page.marker is not None:
                after = marker_position(s, scope, order, _image_marker(page.marker),
                                        page.marker)
            rows, more = page_rows(s, q, order, desc, page.limit if page else None, after,
                                   keep if by_tags or by_labels is None else None)
            if not by_tags and rows:  # the tags of these images only (a page's, say)
                ids = {img.id for img in rows}
                wanted = tag_q.where(ImageTag.image_id.in_(ids)) if len(ids) <= 1000 else tag_q
                for project_id, image_id, name in s.execute(wanted).all():
                    by_id.setdefault((project_id, image_id), []).append(name)
        return listing([(img, names(img)) for img in rows], more,
                       lambda item: _marker(across, item[0].project_id, item[0].id))

    def has(self, ctx: Context, ref: str) -> bool:
        try:
            self.resolve(ctx, ref)
        except NotFound:
            return False
        return True

    def sizes(self, image_ids: set[str]) -> dict[str, int]:
        """Image id -> bytes of its layers, for the ids recorded (containers' images; the
        caller has checked the containers are the caller's to see)."""
        if not image_ids:
            return {}
        with self.store.session() as s:
            return dict(s.execute(select(Image.id, Image.size).where(
                Image.id.in_(image_ids))).tuples().all())

    def count(self, ctx: Context) -> int:
        with self.store.session() as s:
            return s.scalar(select(func.count()).select_from(Image).where(
                Image.project_id == ctx.project_id)) or 0

    def untag(self, ctx: Context, ref: str) -> str:
        """Drop one name; the image stays (dangling when it was its last name)."""
        name = _tag_name(ref)
        if name is None or parse_reference(ref).digest is not None:
            raise InvalidArgument(f"{ref!r} is not a tag: untag takes NAME[:TAG]")
        with self.store.session() as s:
            tag = s.get(ImageTag, (ctx.project_id, name))
            if tag is None:
                raise NotFound(f"no such image tag: {name}")
            s.delete(tag)
            image = s.get(Image, (ctx.project_id, tag.image_id))
        if image is not None:
            self.event(ctx.project_id, "untag", image, name)
        return name

    def remove(self, ctx: Context, ref: str, force: bool = False) -> list[str]:
        """Untag ref; delete the image when no tag is left (or when ref is an id).
        Returns what was untagged and deleted, Docker-style ("untagged: x", "deleted: id")."""
        image = self.resolve(ctx, ref)
        content = _content_of([image])
        done = self._remove(ctx, ref, image, force)
        if f"deleted: {image.id}" in done and self.layers is not None:
            # its blobs and layers no image needs go now, as Docker's rmi frees them (left
            # to the next prune rather than wait while a pull or import is at work)
            with self.content.collecting_now() as alone:
                if alone:
                    self._collect(content)
        for line in done:
            kind, _, what = line.partition(": ")
            self.event(ctx.project_id, "untag" if kind == "untagged" else "delete", image,
                       what if kind == "untagged" else None)
        return done

    def _remove(self, ctx: Context, ref: str, image: Image, force: bool) -> list[str]:
        with self.store.session() as s:
            users = s.execute(select(Container.name, Container.id).where(
                Container.project_id == ctx.project_id, Container.image_id == image.id)).all()
            tags = s.scalars(select(ImageTag).where(ImageTag.project_id == ctx.project_id,
                                                    ImageTag.image_id == image.id)).all()
            named = _tag_name(ref)
            by_name = named is not None and any(t.name == named for t in tags)
            done: list[str] = []
            if by_name and len(tags) > 1:  # Docker: removing one of several names untags
                s.delete(s.get(ImageTag, (ctx.project_id, named)))
                return [f"untagged: {named}"]
            if users and not force:
                raise ImageInUse(f"image {ref} is in use by container {users[0][0]}: remove "
                                 "the container or use force", users[0][1], image.id)
            if users:  # forced: untag, but the container still runs on its layers (Docker)
                for t in tags:
                    s.delete(t)
                    done.append(f"untagged: {t.name}")
                return done
            if len(tags) > 1 and not force:
                raise ImageInUse(f"image {image.id[7:19]} has several tags "
                                 f"({', '.join(t.name for t in tags)}): remove them by name or "
                                 "use force", None, image.id)
            for t in tags:
                s.delete(t)
                done.append(f"untagged: {t.name}")
            s.delete(s.get(Image, (ctx.project_id, image.id)))
            done.append(f"deleted: {image.id}")
        return done

    def referenced(self) -> ImageContent:
        """The blobs and layers any project's image still needs (for garbage collection)."""
        with self.store.session() as s:
            return _content_of(s.scalars(select(Image)).all())

    def history(self, ctx: Context, ref: str) -> list[dict[str, Any]]:
        from berth.image.history import image_history

        image = self.resolve(ctx, ref)
        entries = image_history(image.config, [LayerRef(**la) for la in image.layers])
        out = [dict(vars(e)) for e in entries]
        if out:
            out[0]["id"] = image.id  # the newest step is the image itself, as docker shows it
        return out

    def save(self, ctx: Context, refs: list[str], fmt: str) -> Iterator[bytes]:
        """Resolve every name first (so a typo is a 404, not a broken stream), then stream."""
        from berth.image.export import export_docker_archive, export_oci_layout

        writers = {"docker-archive": export_docker_archive, "oci-archive": export_oci_layout}
        if fmt not in writers:
            raise InvalidArgument(f"unknown archive format {fmt!r}: use docker-archive or "
                                  "oci-archive")
        if not refs or len(refs) > 1000:
            raise InvalidArgument("name 1 to 1000 images to save")
        chosen: dict[str, tuple[ImageManifest, list[str]]] = {}
        for ref in refs:
            image = self.resolve(ctx, ref)
            name = _tag_name(ref)
            tags = [name] if name and name in self.tags_of(ctx, image.id) else []
            if image.id in chosen:
                chosen[image.id][1].extend(t for t in tags if t not in chosen[image.id][1])
            else:
                chosen[image.id] = (as_manifest(image), tags)
        return pipe_stream(lambda out: writers[fmt](list(chosen.values()), self.blobs, out))

    def prune(self, ctx: Context, all_: bool,
              filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """Remove the project's dangling images (all_: every image no container uses), then
        collect host content no image of any project needs. Filters as docker's: until (made
        before), label, label!; dangling=false is all_. Build cache is `builder prune`'s."""
        wanted = dict(filters or {})
        unknown = sorted(set(wanted) - IMAGE_PRUNE_FILTERS)
        if unknown:
            raise InvalidArgument(f"invalid image prune filter {unknown[0]!r}: use "
                                  f"{', '.join(sorted(IMAGE_PRUNE_FILTERS))}")
        if "dangling" in wanted:
            all_ = all_ or not bool_filter("dangling", wanted["dangling"])
        chosen = PruneFilter.parse(wanted)
        with self.store.session() as s:
            used = set(s.scalars(select(Container.image_id).where(
                Container.project_id == ctx.project_id)).all())
            images = s.scalars(select(Image).where(Image.project_id == ctx.project_id,
                                                   Image.intermediate.is_(False))).all()
            tagged = set(s.scalars(select(ImageTag.image_id).where(
                ImageTag.project_id == ctx.project_id)).all())
            doomed = [img for img in images if img.id not in used
                      and (all_ or img.id not in tagged)
                      and chosen.matches(_labels(img), made_at(img))]
        return self.delete_unused(ctx, [img.id for img in doomed])

    def delete_unused(self, ctx: Context, image_ids: list[str]) -> dict[str, Any]:
        """Delete these images of the project, with their names, unless a container uses one
        by now; then collect host content no image of any project needs. Returns the
        Docker-style lines ("untagged: x", "deleted: id") and what was freed."""
        removed: list[str] = []
        events: list[tuple[str, Image, str | None]] = []
        deleted: list[Image] = []
        with self.store.session() as s:
            for image_id in image_ids:
                img = s.get(Image, (ctx.project_id, image_id))
                if img is None or s.scalars(select(Container.id).where(
                        Container.project_id == ctx.project_id,
                        Container.image_id == image_id).limit(1)).first() is not None:
                    continue
                for t in s.scalars(select(ImageTag).where(ImageTag.project_id == ctx.project_id,
                                                          ImageTag.image_id == img.id)).all():
                    s.delete(t)
                    removed.append(f"untagged: {t.name}")
                    events.append(("untag", img, t.name))
                deleted.append(img)
                s.delete(img)
                removed.append(f"deleted: {img.id}")
                events.append(("delete", img, None))
            content = _content_of(deleted)
        for action, img, name in events:
            self.event(ctx.project_id, action, img, name)
        if self.layers is None:
            return {"removed": removed, "reclaimed": 0}
        with self.content.collecting():
            # what the deleted images held at once; anything else not needed once it is not
            # new (a pull's or import's, not yet an image)
            now = self._collect(content)
            rest = self._collect(None)
        return {"removed": removed, "reclaimed": now.bytes_freed + rest.bytes_freed,
                "blobs_removed": now.blobs_removed + rest.blobs_removed,
                "layers_removed": now.layers_removed + rest.layers_removed}

    def _collect(self, only: ImageContent | None) -> GcReport:
        """Under the content guard: only's blobs and layers that no image of any project
        needs (however new: their image was recorded), or (None) the whole store's that are
        not new."""
        from berth.image.gc import DEFAULT_GRACE_SECONDS, collect

        assert self.layers is not None
        keep = self.referenced()
        return collect(self.blobs, self.layers, set(keep.blobs), set(keep.diff_ids), only=only,
                       grace_seconds=0 if only is not None else DEFAULT_GRACE_SECONDS)


def _content_of(images: Iterable[Image]) -> ImageContent:
    """The blobs (config, manifest, layers, signatures) and layers these images keep."""
    blobs: set[str] = set()
    diff_ids: set[str] = set()
    for img in images:
        blobs |= {img.id, img.manifest_digest, *(la["digest"] for la in img.layers),
                  *(sig["blob"] for sig in img.signatures or [])}
        diff_ids |= {la["diff_id"] for la in img.layers}
    return ImageContent(frozenset(blobs), frozenset(diff_ids))
