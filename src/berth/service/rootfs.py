"""Import a root filesystem tarball as a one-layer image (``docker import``).

The tar is stored as the image's only layer, uncompressed (so its digest is its diff_id),
after it has been read through once as a tar: a body that is not one, or holds an entry that
unpacking would refuse (a name that escapes, a device node, ...), is refused and leaves
nothing behind. Links are checked, like every layer's, when it is unpacked for a container.
"""

from __future__ import annotations

import gzip
import tarfile
from typing import BinaryIO

from berth.errors import InvalidArgument, UnsafeContent
from berth.image.archive import LAYER_TAR, host_arch
from berth.image.changes import parse_changes
from berth.image.commit import commit_image
from berth.image.reference import normalize_tag_reference
from berth.image.types import ImageManifest, LayerRef
from berth.image.unpack import UnpackLimits, check_entry
from berth.service.context import Context
from berth.service.images import ImageService
from berth.store.models import Image

MAX_ENTRIES = 1_000_000
GZIP_MAGIC = b"\x1f\x8b"


def _check_tar(path: str) -> None:
    """Refuse now, by name, what unpacking it for a container would refuse later."""
    limits = UnpackLimits(max_entries=MAX_ENTRIES)
    data = 0
    try:
        with tarfile.open(path, mode="r:") as tar:
            for n, member in enumerate(tar, 1):
                if n > MAX_ENTRIES:
                    raise InvalidArgument(f"tarball has more than {MAX_ENTRIES} entries")
                check_entry(member, limits)
                data += member.size if member.isreg() else 0
                if data > limits.max_total_bytes:
                    raise InvalidArgument(f"tarball holds more than {limits.max_total_bytes} "
                                          "bytes of file data")
    except (tarfile.TarError, EOFError) as e:
        raise InvalidArgument(f"the body is not a tar archive: {e}") from None
    except UnsafeContent as e:
        raise InvalidArgument(f"the tarball cannot be a root filesystem: {e}") from None


def import_rootfs(images: ImageService, ctx: Context, stream: BinaryIO,
                  reference: str | None, changes: list[str], message: str = "") -> Image:
    asked = parse_changes(changes)  # a bad change is refused before any work
    tag = normalize_tag_reference(reference) if reference else None
    head = stream.read(2)
    stream.seek(0)
    source: BinaryIO = gzip.GzipFile(fileobj=stream, mode="rb") if head == GZIP_MAGIC else stream
    blobs = images.blobs
    with images.content.using():
        try:
            spooled = blobs.spool(source)
        except (OSError, EOFError) as e:  # a broken gzip stream
            raise InvalidArgument(f"cannot decompress the tarball: {e}") from None
        try:
            _check_tar(str(spooled.path))
        except BaseException:
            spooled.path.unlink(missing_ok=True)
            raise
        digest = blobs.commit(spooled)
        layer = LayerRef(digest, digest, spooled.size, LAYER_TAR)
        empty = ImageManifest(id="", manifest_digest="", layers=[], config={
            "architecture": host_arch(), "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": []}})
        manifest = commit_image(empty, layer, blobs, changes=asked, comment=message,
                                created_by="berth import")
        image = images.record(ctx, manifest, [tag] if tag else [])
        images.event(ctx.project_id, "import", image, tag)
        return image
