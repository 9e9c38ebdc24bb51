"""A tiny base image made from the host's static busybox, for tests and offline use.

The layer is built in memory with fixed mtimes, owners and entry order, and the config has a
fixed creation time, so the same busybox binary always gives the same image ID. The layer is
stored as a plain (uncompressed) tar: it is small, and its digest is then its diff_id.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import tarfile
import time
from pathlib import Path

from berth.errors import InvalidArgument
from berth.image.archive import LAYER_TAR, host_arch, oci_manifest_bytes
from berth.image.blobs import BlobStore
from berth.image.types import ImageManifest, LayerRef

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PT_INTERP = 3

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "user:x:1000:1000::/home/user:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = (
    "root:x:0:\n"
    "users:x:100:user\n"
    "user:x:1000:\n"
    "nogroup:x:65534:\n"
)
# (path, mode, uid): directories of the rootfs. /proc, /sys, /dev are mount points.
DIRS = [
    ("bin", 0o755, 0), ("dev", 0o755, 0), ("etc", 0o755, 0), ("home", 0o755, 0),
    ("home/user", 0o755, 1000), ("proc", 0o555, 0), ("root", 0o700, 0), ("sbin", 0o755, 0),
    ("sys", 0o555, 0), ("tmp", 0o1777, 0), ("usr", 0o755, 0), ("usr/bin", 0o755, 0),
    ("usr/sbin", 0o755, 0), ("var", 0o755, 0),
]
# The runtime bind-mounts these; empty files make sure the mount targets exist.
EMPTY_FILES = ["etc/hosts", "etc/hostname", "etc/resolv.conf"]


def _check_static(busybox: Path) -> bytes:
    """The binary's bytes, if it is a static ELF executable (no program interpreter)."""
    try:
        data = busybox.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {busybox}: {exc.strerror}") from None
    if data[:4] != b"\x7fELF":
        raise InvalidArgument(f"{busybox} is not an ELF executable")
    try:
        interp = _has_interp(data)
    except struct.error:
        raise InvalidArgument(f"{busybox} is a malformed ELF file") from None
    if interp:
        raise InvalidArgument(f"{busybox} is dynamically linked, not static")
    return data


def _has_interp(data: bytes) -> bool:
    is64, little = data[4] == 2, data[5] == 1
    end = "<" if little else ">"
    if is64:
        phoff, = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    for i in range(phnum):
        p_type, = struct.unpack_from(end + "I", data, phoff + i * phentsize)
        if p_type == PT_INTERP:
            return True
    return False


def _applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    paths = set()
    for line in out.splitlines():
        line = line.strip().strip("/")
        parts = line.split("/")
        if line and line != "bin/busybox" and ".." not in parts and "" not in parts:
            paths.add(line)
    if "bin/sh" not in paths:
        raise InvalidArgument(f"{busybox} has no sh applet")
    return sorted(paths)


def _info(name: str, kind: bytes, mode: int, uid: int = 0, size: int = 0,
          linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = kind, mode, uid, uid
    info.size, info.linkname, info.mtime = size, linkname, 0
    info.uname = info.gname = ""
    return info


def build_layer(busybox_bytes: bytes, applets: list[str]) -> bytes:
    """The layer tar: parents before children, everything else in sorted order."""
    files = {"bin/busybox": (busybox_bytes, 0o755), "etc/passwd": (PASSWD.encode(), 0o644),
             "etc/group": (GROUP.encode(), 0o644)}
    files.update({name: (b"", 0o644) for name in EMPTY_FILES})
    entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = []
    known_dirs = {d for d, _, _ in DIRS}
    for path, mode, uid in DIRS:
        entries.append((path, _info(path, tarfile.DIRTYPE, mode, uid), None))
    for path, (data, mode) in files.items():
        entries.append((path, _info(path, tarfile.REGTYPE, mode, size=len(data)), data))
    for path in applets:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent and parent not in known_dirs:
            continue  # an applet in a dir we do not make: skip rather than invent dirs
        if path in files or path in known_dirs:
            continue
        entries.append((path, _info(path, tarfile.SYMTYPE, 0o777, linkname="/bin/busybox"), None))
    entries.sort(key=lambda e: e[0].split("/"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for _, info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def build_pause_layer(catatonit_bytes: bytes) -> bytes:
    """A pod's infra rootfs: catatonit and the mount points the runtime needs, nothing else."""
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [
        (_info(d, tarfile.DIRTYPE, 0o755), None) for d in ("dev", "etc", "proc", "sys")]
    entries.append((_info("catatonit", tarfile.REGTYPE, 0o755, size=len(catatonit_bytes)),
                    catatonit_bytes))
    for name in EMPTY_FILES:
        entries.append((_info(name, tarfile.REGTYPE, 0o644), b""))
    entries.sort(key=lambda e: e[0].name.split("/"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def build_busybox_image(blobs: BlobStore, busybox: Path = Path("/bin/busybox")) -> ImageManifest:
    """Store (or find again: the result is deterministic) the busybox base image."""
    busybox = Path(busybox)
    try:
        data = _check_static(busybox)
    except InvalidArgument as e:
        raise InvalidArgument(f"{e.message} (apt-get install busybox-static)") from None
    layer_tar = build_layer(data, _applets(busybox))
    return _store_image(blobs, layer_tar, busybox, {"Env": [PATH_ENV], "Cmd": ["sh"]},
                        "berth: base image from the host's static busybox")


def build_pause_image(blobs: BlobStore,
                      catatonit: Path = Path("/usr/bin/catatonit")) -> ImageManifest:
    """The infra image of pods (as podman's podman-pause): catatonit -P sleeps, reaps the
    zombies of a shared PID namespace and holds the pod's namespaces."""
    catatonit = Path(catatonit)
    try:
        data = _check_static(catatonit)
    except InvalidArgument as e:
        raise InvalidArgument(f"pods need a static catatonit: {e.message} "
                              "(apt-get install catatonit)") from None
    return _store_image(blobs, build_pause_layer(data), catatonit,
                        {"Env": [PATH_ENV], "Entrypoint": ["/catatonit", "-P"]},
                        "berth: pod infra image from the host's catatonit")


def _store_image(blobs: BlobStore, layer_tar: bytes, binary: Path, run: dict[str, object],
                 created_by: str) -> ImageManifest:
    # The binary's own time: deterministic for one build of it, and a meaningful "created".
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(binary.stat().st_mtime)))
    layer_digest, layer_size = blobs.put_bytes(layer_tar)
    config = {
        "architecture": host_arch(),
        "os": "linux",
        "created": created,
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": created_by}],
    }
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    config_digest, config_size = blobs.put_bytes(config_bytes)
    layer = LayerRef(layer_digest, layer_digest, layer_size, LAYER_TAR)
    manifest_digest, _ = blobs.put_bytes(oci_manifest_bytes(config_digest, config_size, [layer]))
    return ImageManifest(id=config_digest, manifest_digest=manifest_digest, config=config,
                         layers=[layer])
