"""Import image tarballs (``docker save`` archives and OCI image layouts); export.py writes them.

The outer tar is read once, as a stream; every member is hashed into a private spool directory
in the blob store's temp area, never extracted to a path anyone can see. Only after the whole
structure was checked (config digests, layer diff_ids against the config's rootfs) are the
referenced blobs committed, so a bad archive leaves nothing in the store.
"""

from __future__ import annotations

import contextlib
import json
import platform
import posixpath
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from berth import jsontext
from berth.errors import InvalidArgument, UnsafeContent
from berth.image.blobs import BlobStore, SpooledBlob, validate_digest
from berth.image.reference import normalize_tag_reference
from berth.image.registry.manifest import check_json_depth
from berth.image.tarstream import (
    BoundedReader,
    compression_of,
    compute_diff_id,
    decompressed,
    iter_tar,
)
from berth.image.types import ImageManifest, LayerRef

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TYPES = frozenset({LAYER_TAR, LAYER_GZIP, "application/vnd.docker.image.rootfs.diff.tar",
                         "application/vnd.docker.image.rootfs.diff.tar.gzip"})
REF_NAME = "org.opencontainers.image.ref.name"
_BLOB_NAME = re.compile(r"blobs/sha256/[0-9a-f]{64}")
MAX_LINK_HOPS = 40


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 100_000
    max_total_bytes: int = 64 << 30  # all members together, uncompressed
    max_json_bytes: int = 4 << 20  # each manifest, index or config
    max_images: int = 1_000
    max_layers: int = 1_000  # per image
    max_index_depth: int = 4  # nested image indexes
    max_json_depth: int = 32  # nesting of each JSON document, as for a registry's


def oci_manifest_bytes(config_digest: str, config_size: int, layers: list[LayerRef]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": la.media_type, "digest": la.digest, "size": la.size}
                   for la in layers],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _bad(msg: str) -> UnsafeContent:
    return UnsafeContent(f"invalid image archive: {msg}")


def _get(obj: Any, key: str, typ: type | tuple[type, ...], where: str, *,
         required: bool = True) -> Any:
    if not isinstance(obj, dict):
        raise _bad(f"{where} is not a JSON object")
    if key not in obj or obj[key] is None:
        if required:
            raise _bad(f"{where} has no {key!r}")
        return None
    value = obj[key]
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise _bad(f"{where}: {key!r} has the wrong type")
    return value


def _member_name(name: str) -> str:
    """An archive member's normalised path; refuses names that could escape anything."""
    if "\x00" in name or name.startswith("/"):
        raise _bad(f"member name {name!r} is absolute or contains NUL")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(f"member name {name!r} contains '..'")
    return "/".join(parts)


class _Spool:
    """The outer archive's members, hashed into temp files, looked up by name."""

    def __init__(self, blobs: BlobStore, limits: ArchiveLimits) -> None:
        self.blobs = blobs
        self.limits = limits
        self.dir = Path(tempfile.mkdtemp(dir=blobs.tmp_dir, prefix="import-"))
        self.files: dict[str, SpooledBlob] = {}
        self.links: dict[str, str] = {}
        self.total = 0

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def read(self, stream: BinaryIO) -> None:
        reader = BoundedReader(decompressed(stream), "image archive")
        count = 0
        try:
            for m, tf in iter_tar(reader):
                count += 1
                if count > self.limits.max_members:
                    raise _bad(f"more than {self.limits.max_members} members")
                self._add(m, tf)
        except tarfile.TarError as exc:
            raise UnsafeContent(f"corrupt image archive: {exc}") from None

    def _add(self, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        name = _member_name(m.name)
        if m.isdir() or not name:
            return
        if m.issym() or m.islnk():
            # docker save links duplicate layers to one copy; resolve within the archive only.
            base = posixpath.dirname(name) if m.issym() else ""
            if m.linkname.startswith("/"):
                raise _bad(f"link {m.name!r} points outside the archive")
            self.links[name] = _member_name(posixpath.normpath(posixpath.join(base, m.linkname)))
            return
        if not m.isreg() or m.issparse():
            raise _bad(f"member {m.name!r} has an unsupported type")
        large_ok = name.endswith((".tar", ".tar.gz", ".tgz")) or _BLOB_NAME.fullmatch(name)
        if m.size > self.limits.max_json_bytes and not large_ok:
            raise _bad(f"unexpected large member {m.name!r} ({m.size} bytes)")
        self.total += m.size
        if self.total > self.limits.max_total_bytes:
            raise _bad(f"archive content exceeds {self.limits.max_total_bytes} bytes")
        src = tf.extractfile(m)
        assert src is not None
        spooled = self.blobs.spool(src, max_size=max(m.size, 1), dir=self.dir)  # type: ignore[arg-type]
        if spooled.size != m.size:
            raise UnsafeContent(f"corrupt image archive: short data for {m.name!r}")
        old = self.files.pop(name, None)
        if old is not None:
            old.path.unlink(missing_ok=True)
        self.links.pop(name, None)
        self.files[name] = spooled

    def has(self, name: str) -> bool:
        return name in self.files or name in self.links

    def get(self, name: str, what: str) -> SpooledBlob:
        try:
            name = _member_name(name)
        except UnsafeContent:
            raise _bad(f"{what} path {name!r} escapes the archive") from None
        for _ in range(MAX_LINK_HOPS):
            if name in self.files:
                return self.files[name]
            if name not in self.links:
                raise _bad(f"{what} {name!r} is missing from the archive")
            name = self.links[name]
        raise _bad(f"{what} {name!r}: too many links")

    def json(self, name: str, what: str) -> Any:
        spooled = self.get(name, what)
        if spooled.size > self.limits.max_json_bytes:
            raise _bad(f"{what} {name!r} is larger than {self.limits.max_json_bytes} bytes")
        data = spooled.path.read_bytes()
        try:
            # Bounded depth: json.loads overflows the stack on deep nesting, and a config is
            # later deep-copied and re-encoded recursively (commit, export).
            check_json_depth(data.decode("utf-8"), self.limits.max_json_depth,
                             f"invalid image archive: {what} {name!r}")
            return jsontext.loads(data)
        except ValueError as exc:
            raise _bad(f"{what} {name!r} is not valid JSON: {exc}") from None


@dataclass
class _Pending:
    """An image whose parts are verified, waiting to be committed to the store."""

    config: SpooledBlob
    config_doc: dict[str, Any]
    layers: list[tuple[SpooledBlob, LayerRef]]
    tags: list[str]


def _layer(spooled: SpooledBlob, expected_diff: str, where: str,
           max_bytes: int) -> tuple[SpooledBlob, LayerRef]:
    with open(spooled.path, "rb") as f:
        kind = compression_of(f.read(6))
    if kind == "":
        diff_id, media = spooled.digest, LAYER_TAR
    elif kind == "gzip":
        with open(spooled.path, "rb") as f:
            diff_id = compute_diff_id(f, max_bytes)
        media = LAYER_GZIP
    else:
        raise UnsafeContent(f"{where}: {kind} compressed layers are not supported")
    if diff_id != expected_diff:
        raise _bad(f"{where}: diff_id mismatch: the config says {expected_diff}, "
                   f"the content is {diff_id}")
    return spooled, LayerRef(spooled.digest, diff_id, spooled.size, media)


def _diff_ids(config: Any, where: str) -> list[str]:
    rootfs = _get(config, "rootfs", dict, where)
    if rootfs.get("type") != "layers":
        raise _bad(f"{where}: rootfs.type is not 'layers'")
    diff_ids = _get(rootfs, "diff_ids", list, f"{where} rootfs")
    for d in diff_ids:
        if not isinstance(d, str):
            raise _bad(f"{where}: diff_ids must be strings")
        validate_digest(d)
    return diff_ids


def _tags(raw: list[Any], where: str) -> list[str]:
    tags = []
    for t in raw:
        if not isinstance(t, str):
            raise _bad(f"{where}: tags must be strings")
        try:
            tags.append(normalize_tag_reference(t))
        except InvalidArgument as exc:
            raise _bad(f"{where}: {exc.message}") from None
    return tags


def _image(spool: _Spool, config_name: str, layer_names: list[Any], tags: list[str],
           limits: ArchiveLimits, where: str) -> _Pending:
    config = spool.get(config_name, f"{where} config")
    doc = spool.json(config_name, f"{where} config")
    diff_ids = _diff_ids(doc, f"{where} config")
    if len(layer_names) > limits.max_layers:
        raise _bad(f"{where} has more than {limits.max_layers} layers")
    if len(diff_ids) != len(layer_names):
        raise _bad(f"{where}: {len(layer_names)} layers but the config lists "
                   f"{len(diff_ids)} diff_ids")
    layers = []
    for i, (name, diff) in enumerate(zip(layer_names, diff_ids, strict=True)):
        if not isinstance(name, str):
            raise _bad(f"{where}: layer names must be strings")
        blob = spool.get(name, f"{where} layer")
        layers.append(_layer(blob, diff, f"{where} layer {i} ({name})", limits.max_total_bytes))
    return _Pending(config, doc, layers, tags)


def _docker_archive(spool: _Spool, limits: ArchiveLimits) -> list[_Pending]:
    manifest = spool.json("manifest.json", "manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise _bad("manifest.json must be a non-empty list")
    if len(manifest) > limits.max_images:
        raise _bad(f"more than {limits.max_images} images")
    images = []
    for i, entry in enumerate(manifest):
        where = f"manifest.json entry {i}"
        config = _get(entry, "Config", str, where)
        layers = _get(entry, "Layers", list, where)
        tags = _tags(_get(entry, "RepoTags", list, where, required=False) or [], where)
        images.append(_image(spool, config, layers, tags, limits, where))
    if spool.has("repositories"):
        spool.json("repositories", "repositories")  # only checked: RepoTags carry the tags
    return images


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "i386": "386"}.get(machine, machine)


def _oci_blob(spool: _Spool, desc: Any, where: str) -> SpooledBlob:
    digest = _get(desc, "digest", str, where)
    try:
        hexid = validate_digest(digest)
    except InvalidArgument:
        raise _bad(f"{where}: invalid digest {digest!r}") from None
    spooled = spool.get(f"blobs/sha256/{hexid}", f"{where} blob")
    if spooled.digest != digest:
        raise _bad(f"{where}: blob {digest} does not match its content ({spooled.digest})")
    size = _get(desc, "size", int, where, required=False)
    if size is not None and size != spooled.size:
        raise _bad(f"{where}: blob {digest} is {spooled.size} bytes, descriptor says {size}")
    return spooled


def _ref_tags(annotations: Any) -> list[str]:
    """Tags from an index descriptor: containerd's full image name, else an OCI ref.name that
    is a full reference (a bare tag without a repository cannot name an image)."""
    if not isinstance(annotations, dict):
        return []
    for key in ("io.containerd.image.name", REF_NAME):
        value = annotations.get(key)
        if isinstance(value, str) and value and (key != REF_NAME or ":" in value
                                                   or "/" in value):
            return _tags([value], f"annotation {key}")
    return []


def _pick_platform(manifests: list[Any], where: str) -> Any:
    arch = host_arch()
    for desc in manifests:
        plat = desc.get("platform") if isinstance(desc, dict) else None
        if (isinstance(plat, dict) and plat.get("os") == "linux"
                and plat.get("architecture") == arch):
            return desc
    if len(manifests) == 1:
        return manifests[0]
    raise _bad(f"{where} has no linux/{arch} image")


def _oci_manifest(spool: _Spool, desc: Any, tags: list[str], limits: ArchiveLimits,
                  where: str, depth: int = 0) -> _Pending:
    media = _get(desc, "mediaType", str, where)
    blob = _oci_blob(spool, desc, where)
    doc = spool.json(f"blobs/sha256/{blob.digest[7:]}", where)
    if media in (OCI_INDEX, DOCKER_LIST):
        if depth >= limits.max_index_depth:
            raise _bad(f"{where}: image indexes nested too deep")
        chosen = _pick_platform(_get(doc, "manifests", list, where), where)
        return _oci_manifest(spool, chosen, tags, limits, f"{where} > manifest", depth + 1)
    if media not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise _bad(f"{where}: unsupported media type {media!r}")
    config_desc = _get(doc, "config", dict, where)
    config = _oci_blob(spool, config_desc, f"{where} config")
    layer_descs = _get(doc, "layers", list, where)
    names = []
    for i, ld in enumerate(layer_descs):
        lmedia = _get(ld, "mediaType", str, f"{where} layer {i}")
        if lmedia not in LAYER_TYPES:
            raise _bad(f"{where} layer {i}: unsupported layer media type {lmedia!r}")
        names.append(f"blobs/sha256/{_oci_blob(spool, ld, f'{where} layer {i}').digest[7:]}")
    return _image(spool, f"blobs/sha256/{config.digest[7:]}", names, tags, limits, where)


def _oci_layout(spool: _Spool, limits: ArchiveLimits) -> list[_Pending]:
    layout = spool.json("oci-layout", "oci-layout")
    if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
        raise _bad("oci-layout has no imageLayoutVersion")
    index = spool.json("index.json", "index.json")
    manifests = _get(index, "manifests", list, "index.json")
    if not manifests:
        raise _bad("index.json lists no manifests")
    if len(manifests) > limits.max_images:
        raise _bad(f"more than {limits.max_images} images")
    images = []
    for i, desc in enumerate(manifests):
        where = f"index.json manifest {i}"
        if not isinstance(desc, dict):
            raise _bad(f"{where} is not a JSON object")
        images.append(_oci_manifest(spool, desc, _ref_tags(desc.get("annotations")), limits,
                                    where))
    return images


def _commit(blobs: BlobStore, pending: list[_Pending]) -> list[ImageManifest]:
    done: set[Path] = set()

    def commit(s: SpooledBlob) -> None:
        if s.path not in done:
            blobs.commit(s)
            done.add(s.path)

    by_id: dict[str, ImageManifest] = {}
    for p in pending:
        commit(p.config)
        for spooled, _ in p.layers:
            commit(spooled)
        layers = [ref for _, ref in p.layers]
        manifest_digest, _ = blobs.put_bytes(oci_manifest_bytes(p.config.digest, p.config.size,
                                                                 layers))
        prev = by_id.get(p.config.digest)
        tags = [*(prev.repo_tags if prev else []), *p.tags]
        by_id[p.config.digest] = ImageManifest(
            id=p.config.digest, manifest_digest=manifest_digest, config=p.config_doc,
            layers=layers, repo_tags=list(dict.fromkeys(tags)))
    return list(by_id.values())


def holds_images(stream: BinaryIO, max_members: int = 1_000_000) -> bool:
    """Is the tarball an image archive (a docker-archive's manifest.json or an OCI layout's
    index.json at its top) rather than a root filesystem? Reads it through once, keeping
    nothing; the caller rewinds it. A name that could escape is the import's to refuse."""
    reader = BoundedReader(decompressed(stream), "tarball")
    try:
        for count, (member, tf) in enumerate(iter_tar(reader), 1):
            if count > max_members:
                raise _bad(f"more than {max_members} members")
            with contextlib.suppress(UnsafeContent):
                if _member_name(member.name) in ("manifest.json", "index.json"):
                    return True
            data = tf.extractfile(member) if member.isreg() else None
            while data is not None and data.read(1 << 20):
                pass
    except tarfile.TarError as exc:
        raise InvalidArgument(f"not a tar archive: {exc}") from None
    return False


def import_archive(stream: BinaryIO, blobs: BlobStore, *,
                   limits: ArchiveLimits = ArchiveLimits()) -> list[ImageManifest]:
    """Import every image in a docker-archive or OCI-layout tarball (optionally gzip'd)."""
    spool = _Spool(blobs, limits)
    try:
        spool.read(stream)
        if spool.has("manifest.json"):
            pending = _docker_archive(spool, limits)
        elif spool.has("index.json"):
            pending = _oci_layout(spool, limits)
        else:
            raise _bad("neither a docker archive (manifest.json) nor an OCI layout (index.json)")
        return _commit(blobs, pending)
    finally:
        spool.close()


def __getattr__(name: str) -> Any:
    """Re-export ``export_docker_archive`` (now in export.py) for existing callers; resolved
    lazily because export.py imports this module's constants."""
    if name == "export_docker_archive":
        from berth.image.export import export_docker_archive
        return export_docker_archive
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
