"""Builds: a Dockerfile and its context become an image in the caller's project.

The builder (build/builder.py) decides what each step does; this is its link to the rest of
Berth: images (resolve, pull, record), containers (RUN), layers (views for COPY), the cache.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from berth.build import copying
from berth.build.builder import Builder, BuildOptions, Emit
from berth.build.model import Instruction
from berth.build.paths import split
from berth.build.runstep import RunStep
from berth.errors import NotFound
from berth.image.reference import normalize_tag_reference
from berth.image.types import ImageManifest, LayerRef
from berth.service.buildcache import BuildCacheService
from berth.service.context import Context
from berth.service.registry import registry_reference

if TYPE_CHECKING:
    from berth.agent.hostops import HostOps
    from berth.image.blobs import BlobStore
    from berth.image.layers import LayerStore
    from berth.paths import HostPaths
    from berth.service.containers import ContainerService
    from berth.service.idmaps import IdMaps
    from berth.service.images import ImageService
    from berth.service.registry import RegistryService
    from berth.store.db import Store



class BuildService:
    def __init__(self, store: Store, containers: ContainerService, images: ImageService,
                 registry: RegistryService | None, hostops: HostOps, blobs: BlobStore,
                 layers: LayerStore, idmaps: IdMaps, paths: HostPaths) -> None:
        self.store, self.containers, self.images, self.registry = (store, containers, images,
                                                                   registry)
        self.hostops, self.blobs, self.layers, self.idmaps, self.paths = (hostops, blobs, layers,
                                                                          idmaps, paths)
        self.cache = BuildCacheService(store, images)

    def build(self, ctx: Context, context_dir: Path, dockerfile: str, options: BuildOptions,
              emit: Emit) -> ImageManifest:
        """``dockerfile`` is its text (build/context.py reads it before .dockerignore
        applies: an ignored Dockerfile still drives the build, but COPY does not see it)."""
        from berth.build.dockerfile import parse

        ctx.require("member", "building an image")
        tags = [normalize_tag_reference(t) for t in options.tags]
        df = parse(dockerfile)
        host = _Host(self, ctx, context_dir, secrets.token_hex(16), options)
        with self.images.content.using():
            image = Builder(df, options, host, emit).build()
            # where the build ended: the caller's image, not only a step's result
            self.images.record(ctx, image, tags)
        emit({"aux": {"ID": image.id}})
        emit({"stream": f"Successfully built {image.id.split(':')[-1][:12]}\n"})
        for tag in options.tags:
            emit({"stream": f"Successfully tagged {tag}\n"})
        return image


class _Host:
    """The builder's view of Berth, for one build in one project."""

    def __init__(self, svc: BuildService, ctx: Context, context_dir: Path, build_id: str,
                 opts: BuildOptions) -> None:
        self.svc, self.ctx, self.context_dir, self.build_id, self.opts = (svc, ctx, context_dir,
                                                                          build_id, opts)
        self.runner = RunStep(svc.containers, svc.hostops, svc.blobs, svc.idmaps)
        self.idmap = svc.idmaps.for_project(ctx.project_id)

    def base(self, ref: str, pull: bool, emit: Emit) -> ImageManifest:
        images = self.svc.images
        have = images.has(self.ctx, ref)
        if (pull or not have) and self.svc.registry is not None:
            emit({"stream": f"Pulling {ref}\n"})
            auth = self.opts.auths.get(registry_reference(ref).domain)
            try:
                img, _ = self.svc.registry.pull(self.ctx, ref, None, lambda _e: None,
                                                auth=auth)
                return images.manifest_of(self.ctx, img.id)
            except Exception:
                if not have:
                    raise
        row = images.resolve(self.ctx, ref)
        return images.manifest_of(self.ctx, row.id)

    def record(self, manifest: ImageManifest) -> ImageManifest:
        self.svc.images.record(self.ctx, manifest, [], intermediate=True)
        return manifest

    def cached(self, key: str) -> ImageManifest | None:
        image_id = self.svc.cache.lookup(self.ctx, key)
        if image_id is None:
            return None
        try:
            return self.svc.images.manifest_of(self.ctx, image_id)
        except NotFound:
            return None

    def remember(self, key: str, image_id: str) -> None:
        self.svc.cache.remember(self.ctx, key, image_id)

    def run(self, image: ImageManifest, argv: list[str], env: list[str], user: str,
            workdir: str, emit: Emit, what: str) -> LayerRef | None:
        return self.runner.run(self.ctx, image.id, argv, env, user, workdir, self.build_id,
                               emit, self.opts.cancel, what)

    def _view(self, image: ImageManifest) -> Any:
        from berth.build.view import image_view

        return image_view(self.svc.paths, self.svc.layers, image, self.idmap)

    def copy_layer(self, image: ImageManifest, inst: Instruction, sources: list[str],
                   dest: str, from_image: ImageManifest | None, what: str,
                   add: bool) -> tuple[str, Callable[[], LayerRef | None]]:
        from berth.build.view import lookup_ids

        if from_image is None:
            plan = copying.select(str(self.context_dir), sources, dest, clamp=False,
                                  is_dir=lambda p: p.endswith("/"), add=add, line_what=what)
            return self._finish(plan, image, inst, dest, what, lookup_ids)
        with self._view(from_image) as src:
            plan = copying.select(src.root, sources, dest, clamp=True,
                                  is_dir=lambda p: p.endswith("/"), add=False, line_what=what)
            plan.entries = [dataclasses.replace(e) for e in plan.entries]
            # the view goes away with this block: the layer is written now
            s, make = self._finish(plan, image, inst, dest, what, lookup_ids)
            layer = make()
        return s, lambda: layer

    def _finish(self, plan: copying.Plan, image: ImageManifest, inst: Instruction, dest: str,
                what: str, lookup_ids: Any) -> tuple[str, Callable[[], LayerRef | None]]:
        chown = inst.flags.get("chown")
        needs_view = bool(chown and not chown.replace(":", "").isdigit())
        if needs_view:
            with self._view(image) as view:
                plan.owner = lookup_ids(view, chown, what)
        elif chown:
            u, _, g = chown.partition(":")
            plan.owner = (int(u), int(g or u))
        checksum = copying.checksum(plan)

        def make() -> LayerRef | None:
            with self._view(image) as view:
                fixed = _retarget(plan, dest, view.is_dir)
                parents = _missing_parents(view, [e.dest for e in fixed.entries])
            return copying.write_layer(fixed, parents, self.svc.blobs,
                                       plan.owner or (0, 0))

        return checksum, make

    def workdir_layer(self, image: ImageManifest, path: str) -> LayerRef | None:
        with self._view(image) as view:
            missing = _missing_parents(view, [path.strip("/") + "/x"])
        if not missing:
            return None
        return copying.write_layer(copying.Plan(), missing, self.svc.blobs)

    def commit(self, base: ImageManifest, layer: LayerRef | None, inner: dict[str, Any],
               created_by: str) -> ImageManifest:
        from berth.image.commit import commit_image

        config = copy.deepcopy(base.config)
        config["config"] = inner
        return commit_image(dataclasses.replace(base, config=config), layer, self.svc.blobs,
                            created_by=created_by)


def _retarget(plan: copying.Plan, dest: str, is_dir: Callable[[str], bool]) -> copying.Plan:
    """A single file copied onto an existing directory of the image goes inside it."""
    if len(plan.entries) != 1 or dest.endswith("/") or plan.entries[0].archive:
        return plan
    e = plan.entries[0]
    if e.st is not None and not os.path.isdir(e.host) and is_dir("/" + e.dest):
        name = os.path.basename(e.host)
        return copying.Plan([dataclasses.replace(e, dest=f"{e.dest}/{name}")], plan.owner)
    return plan


def _missing_parents(view: Any, dests: list[str]) -> list[str]:
    out: list[str] = []
    for d in dests:
        parts = split(d)[:-1]
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in out and not view.exists("/" + p):
                out.append(p)
    return sorted(out, key=lambda p: p.count("/"))

