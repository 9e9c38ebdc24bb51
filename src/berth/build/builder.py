"""Run a parsed Dockerfile: the stages the target needs, step by step, each step's result an
untagged image (so the cache can point at it; `image prune` removes the dangling ones)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from berth.build import meta
from berth.build.expand import expand_word, expand_words, parse_arg_decls
from berth.build.model import Dockerfile, DockerfileError, Instruction, Stage
from berth.build.paths import Escape
from berth.errors import BerthError, InvalidArgument
from berth.image.types import ImageManifest, LayerRef

Emit = Callable[[dict[str, Any]], None]


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = "Dockerfile"
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    # Credentials for pulling base images, by registry host (Docker's X-Registry-Config);
    # without one the project's stored credentials apply.
    auths: dict[str, Any] = field(default_factory=dict)


class Host(Protocol):
    """What the builder needs from Berth (service/builds.py provides it)."""

    def base(self, ref: str, pull: bool, emit: Emit) -> ImageManifest: ...
    def record(self, manifest: ImageManifest) -> ImageManifest: ...
    def cached(self, key: str) -> ImageManifest | None: ...
    def remember(self, key: str, image_id: str) -> None: ...
    def run(self, image: ImageManifest, argv: list[str], env: list[str], user: str,
            workdir: str, emit: Emit, what: str) -> LayerRef | None: ...
    def copy_layer(self, image: ImageManifest, inst: Instruction, sources: list[str],
                   dest: str, from_image: ImageManifest | None, what: str,
                   add: bool) -> tuple[str, Callable[[], LayerRef | None]]: ...
    def workdir_layer(self, image: ImageManifest, path: str) -> LayerRef | None: ...
    def commit(self, base: ImageManifest, layer: LayerRef | None, inner: dict[str, Any],
               created_by: str) -> ImageManifest: ...


SCRATCH = ImageManifest(id="", manifest_digest="", layers=[], config={
    "architecture": "amd64", "os": "linux", "config": {},
    "rootfs": {"type": "layers", "diff_ids": []}})


def needed_stages(df: Dockerfile, target: str | None) -> list[Stage]:
    if not df.stages:
        raise DockerfileError(0, "the Dockerfile has no FROM instruction")
    last = df.stages[-1] if target is None else _stage(df, target.lower(), len(df.stages), 0)
    return list(df.stages[:last.index + 1])


def _stage(df: Dockerfile, ref: str, before: int, line: int) -> Stage:
    for st in df.stages[:before]:
        if st.name == ref.lower() or (ref.isdigit() and st.index == int(ref)):
            return st
    raise DockerfileError(line, f"no build stage named {ref!r}" if line else
                          f"target stage {ref!r} could not be found")


class Builder:
    def __init__(self, df: Dockerfile, opts: BuildOptions, host: Host, emit: Emit) -> None:
        self.df, self.opts, self.host, self.emit = df, opts, host, emit
        self.used_args: set[str] = set()
        self.results: dict[int, ImageManifest] = {}
        self.stages = needed_stages(df, opts.target)
        self.total = sum(1 + len(s.instructions) for s in self.stages)
        self.step = 0
        self.global_args: dict[str, str] = {}
        for inst in df.global_args:
            for name, default in parse_arg_decls(inst.args, self.global_args, df.escape,
                                                 inst.line):
                value = opts.build_args.get(name, default)
                self.used_args.add(name)
                if value is not None:
                    self.global_args[name] = value

    def build(self) -> ImageManifest:
        image = SCRATCH
        for stage in self.stages:
            image = self._stage(stage)
            self.results[stage.index] = image
        if self.opts.labels:
            inner = copy.deepcopy(image.config.get("config") or {})
            inner["Labels"] = {**(inner.get("Labels") or {}), **self.opts.labels}
            image = self.host.record(self.host.commit(image, None, inner, "LABEL (build)"))
        unused = sorted(set(self.opts.build_args) - self.used_args)
        if unused:
            self.emit({"stream": f"[Warning] One or more build-args {unused} were not "
                                 "consumed\n"})
        return image

    def _say(self, text: str) -> None:
        self.step += 1
        self.emit({"stream": f"Step {self.step}/{self.total} : {text}\n"})

    def _stage(self, stage: Stage) -> ImageManifest:
        self._say(f"FROM {stage.base}" + (f" AS {stage.name}" if stage.name else ""))
        base = expand_word(stage.base, self.global_args, self.df.escape, stage.line)
        if base.lower() == "scratch":
            image = SCRATCH
        else:
            earlier = [s for s in self.stages if s.index < stage.index and s.name == base.lower()]
            if earlier:
                image = self.results[earlier[-1].index]
            else:
                image = self._base(base, stage.line, "FROM")
        if image.id:
            self.emit({"stream": f" ---> {image.id.split(':')[-1][:12]}\n"})
        args: dict[str, str] = {}
        triggers = (image.config.get("config") or {}).get("OnBuild") or []
        if triggers:
            image = self._onbuild(image, triggers, args, stage)
        for inst in stage.instructions:
            if self.opts.cancel.is_set():
                from berth.build.runstep import Cancelled

                raise Cancelled()
            self._say(inst.original.strip() or f"{inst.keyword} {' '.join(inst.args)}")
            image = self._step(image, inst, args)
            self.emit({"stream": f" ---> {image.id.split(':')[-1][:12]}\n"})
        return image

    def _base(self, ref: str, line: int, what: str) -> ImageManifest:
        try:
            return self.host.base(ref, self.opts.pull, self.emit)
        except BerthError as exc:
            raise InvalidArgument(f"Dockerfile line {line}: {what}: no build stage or image "
                                  f"named {ref!r}: {exc.message}") from None

    def _onbuild(self, image: ImageManifest, triggers: list[str], args: dict[str, str],
                 stage: Stage) -> ImageManifest:
        from berth.build.dockerfile import parse

        self.emit({"stream": f"# Executing {len(triggers)} build trigger(s)\n"})
        df = parse("FROM scratch\n" + "\n".join(triggers) + "\n")
        inner = copy.deepcopy(image.config.get("config") or {})
        inner.pop("OnBuild", None)
        image = self.host.record(self.host.commit(image, None, inner, "ONBUILD triggers"))
        for inst in df.stages[0].instructions:
            image = self._step(image, dataclasses.replace(inst, line=stage.line), args)
        return image

    # -- one instruction -------------------------------------------------------------------

    def _step(self, image: ImageManifest, inst: Instruction,
              args: dict[str, str]) -> ImageManifest:
        kw = inst.keyword
        inner = image.config.get("config") or {}
        env = {**args, **meta.env_map(inner)}
        what = f"Dockerfile line {inst.line}"
        if kw == "ARG":
            for name, default in parse_arg_decls(inst.args, env, self.df.escape, inst.line):
                self.used_args.add(name)
                value = self.opts.build_args.get(name, default)
                if value is None and name in self.global_args:
                    value = self.global_args[name]
                if value is not None:
                    args[name] = value
                else:
                    args.pop(name, None)
            return image
        if kw == "FROM":
            raise DockerfileError(inst.line, "FROM inside a stage")
        if kw in meta.META:
            new_inner = meta.apply(inst, inner, env, self.df.escape)
            key = self._key(image, inst, "", args if kw == "RUN" else {}, new_inner)
            hit = self._cached(key)
            if hit is not None:
                return hit
            layer = None
            if kw == "WORKDIR":
                layer = self.host.workdir_layer(image, new_inner["WorkingDir"])
            return self._save(key, self.host.commit(image, layer, new_inner,
                                                    f"/bin/sh -c #(nop) {inst.original}"))
        if kw == "RUN":
            argv = meta.command_form(inst, inner)
            in_env = [f"{k}={v}" for k, v in sorted(args.items()) if k not in meta.env_map(inner)]
            key = self._key(image, inst, "", dict(sorted(args.items())), None)
            hit = self._cached(key)
            if hit is not None:
                return hit
            layer = self.host.run(image, argv, in_env, inner.get("User") or "",
                                  inner.get("WorkingDir") or "", self.emit, what)
            return self._save(key, self.host.commit(image, layer, copy.deepcopy(inner),
                                                    " ".join(argv)))
        if kw in ("COPY", "ADD"):
            return self._copy(image, inst, env, args, what)
        raise DockerfileError(inst.line, f"unknown instruction: {kw}")

    def _copy(self, image: ImageManifest, inst: Instruction, env: dict[str, str],
              args: dict[str, str], what: str) -> ImageManifest:
        words = list(inst.args) if inst.json_form else expand_words(
            " ".join(inst.args), env, self.df.escape, inst.line)
        if inst.json_form:
            words = [expand_word(w, env, self.df.escape, inst.line) for w in words]
        if len(words) < 2:
            raise DockerfileError(inst.line, f"{inst.keyword} requires at least two arguments")
        *sources, dest = words
        if inst.keyword == "ADD" and any("://" in s for s in sources):
            raise DockerfileError(inst.line, "ADD from a URL needs network access, which "
                                             "builds do not have")
        inner = image.config.get("config") or {}
        if not dest.startswith("/"):
            wd = inner.get("WorkingDir") or "/"
            dest = posixpath.join(wd, dest) + ("/" if dest.endswith("/") else "")
        src_image = None
        frm = inst.flags.get("from")
        if frm:
            frm = expand_word(frm, env, self.df.escape, inst.line)
            earlier = [s for s in self.stages if s.index in self.results and
                       (s.name == frm.lower() or str(s.index) == frm)]
            if earlier:
                src_image = self.results[earlier[-1].index]
            elif frm.isdigit() or any(s.name == frm.lower() for s in self.df.stages):
                raise DockerfileError(inst.line, f"COPY --from={frm}: no earlier stage")
            else:
                src_image = self._base(frm, inst.line, f"{inst.keyword} --from={frm}")
        try:
            checksum, make = self.host.copy_layer(image, inst, sources, dest, src_image, what,
                                                  inst.keyword == "ADD")
        except Escape as exc:
            raise InvalidArgument(f"{what}: {inst.keyword} failed: {exc.message}") from None
        key = self._key(image, inst, checksum + (src_image.id if src_image else ""), {}, None)
        hit = self._cached(key)
        if hit is not None:
            return hit
        return self._save(key, self.host.commit(image, make(), copy.deepcopy(inner),
                                                f"/bin/sh -c #(nop) {inst.original}"))

    # -- cache -----------------------------------------------------------------------------

    def _key(self, image: ImageManifest, inst: Instruction, checksum: str,
             args: dict[str, str], inner: dict[str, Any] | None) -> str:
        doc = {"parent": image.id or "scratch", "inst": inst.original or repr(inst),
               "args": args, "sum": checksum,
               "config": inner if inner is not None else None}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def _cached(self, key: str) -> ImageManifest | None:
        if self.opts.no_cache:
            return None
        hit = self.host.cached(key)
        if hit is not None:
            self.emit({"stream": " ---> Using cache\n"})
        return hit

    def _save(self, key: str, manifest: ImageManifest) -> ImageManifest:
        recorded = self.host.record(manifest)
        self.host.remember(key, recorded.id)
        return recorded
