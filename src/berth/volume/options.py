"""A local volume's driver options (docker volume create --opt, compose's driver_opts): what
the host mounts on the volume's data directory while containers use it, as Docker's local
driver does. Two kinds are taken:

  type=tmpfs [device=tmpfs] [o=size=64m,mode=1770,uid=N,gid=N,nr_inodes=N,noexec,ro]
  type=none o=bind[,ro] device=/a/host/directory   (rbind for the directories under it too)

Anything else (nfs, cifs, a block device) would have berthd mount remote or raw storage on a
tenant's say: refused. Pure: no file is looked at here (see service/volumes.py for the checks
of a bind's directory and its grant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime.base import IdMapping
from berth.units import bytes_of

KEYS = ("type", "device", "o")
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
# A tmpfs volume is always nosuid and nodev: neither means anything to a tenant's files.
TMPFS_FLAGS = {"ro": MS_RDONLY, "noexec": MS_NOEXEC, "exec": 0, "nosuid": 0, "nodev": 0,
               "rw": 0}
TMPFS_VALUES = ("size", "mode", "uid", "gid", "nr_inodes")
MAX_IDS = 1 << 32
SUPPORTED = ("local volumes take type=tmpfs (o=size=..,mode=..,uid=..,gid=..,nr_inodes=..) "
             "or type=none with o=bind and an absolute device path")


@dataclass(frozen=True)
class HostMount:
    """What to mount on the volume's data directory: mount(2)'s arguments."""

    fstype: str  # "tmpfs" or "bind"
    source: str  # the bind's host directory; "tmpfs"
    flags: int
    data: str  # tmpfs's options, host ids already mapped
    readonly: bool  # a bind: made read-only by a remount after it

    def as_dict(self) -> dict[str, Any]:
        return {"fstype": self.fstype, "source": self.source, "flags": self.flags,
                "data": self.data, "readonly": self.readonly}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HostMount:
        return cls(str(d["fstype"]), str(d["source"]), int(d["flags"]), str(d["data"]),
                   bool(d["readonly"]))


def check(options: dict[str, str]) -> None:
    """Refuse options Berth cannot honour (400 naming the option); {} is a plain volume."""
    if options:
        plan(options, None)


def plan(options: dict[str, str], idmap: IdMapping | None) -> HostMount | None:
    """The mount these options ask for (None: a plain directory). idmap: the project's, so
    that uid= and gid= name container ids, as everything else a tenant writes does."""
    if not options:
        return None
    unknown = sorted(set(options) - set(KEYS))
    if unknown:
        raise InvalidArgument(f"volume option {unknown[0]!r} is not supported: {SUPPORTED}")
    kind = options.get("type", "")
    words = [w.strip() for w in options.get("o", "").split(",") if w.strip()]
    if kind == "tmpfs":
        return _tmpfs(words, idmap)
    if kind == "none":
        return _bind(words, options.get("device", ""))
    shown = f"type {kind!r}" if kind else "no type"
    raise InvalidArgument(f"volume options with {shown} are not supported: {SUPPORTED}")


def _tmpfs(words: list[str], idmap: IdMapping | None) -> HostMount:
    flags, data = MS_NOSUID | MS_NODEV, []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            if key not in TMPFS_FLAGS:
                raise InvalidArgument(f"volume option o={word!r} is not supported for tmpfs: "
                                      f"use {', '.join([*TMPFS_VALUES, 'noexec', 'ro'])}")
            flags |= TMPFS_FLAGS[key]
            continue
        if key not in TMPFS_VALUES:
            raise InvalidArgument(f"volume option o={word!r} is not supported for tmpfs: "
                                  f"use {', '.join([*TMPFS_VALUES, 'noexec', 'ro'])}")
        data.append(_tmpfs_value(key, value, idmap))
    keys = [d.partition("=")[0] for d in data]
    if len(set(keys)) != len(keys):
        raise InvalidArgument("volume option o: each of size, mode, uid, gid, nr_inodes at "
                              "most once")
    if idmap is not None:  # the volume's root belongs to the container's root by default
        for key in ("uid", "gid"):
            if key not in keys:
                data.append(f"{key}={idmap.host_base}")
    return HostMount("tmpfs", "tmpfs", flags, ",".join(data), False)


def _tmpfs_value(key: str, value: str, idmap: IdMapping | None) -> str:
    what = f"volume option o={key}={value!r}"
    if key in ("size", "nr_inodes"):
        n = bytes_of(value) if value.isascii() else None
        if n is None or n <= 0:
            raise InvalidArgument(f"{what}: expected a positive number with an optional unit "
                                  "(k, m, g)")
        return f"{key}={n}"
    if key == "mode":
        if not (value.isascii() and 0 < len(value) <= 4 and
                all(c in "01234567" for c in value)):
            raise InvalidArgument(f"{what}: expected an octal mode such as 1777")
        return f"mode={value}"
    if not (value.isascii() and value.isdigit() and len(value) <= 10) or int(value) >= MAX_IDS:
        raise InvalidArgument(f"{what}: expected a numeric id")
    n = int(value)
    if idmap is not None:
        if n >= idmap.size:
            raise InvalidArgument(f"{what}: the project's containers have ids 0 to "
                                  f"{idmap.size - 1}")
        n += idmap.host_base
    return f"{key}={n}"


def _bind(words: list[str], device: str) -> HostMount:
    binds = [w for w in words if w in ("bind", "rbind")]
    others = [w for w in words if w not in ("bind", "rbind", "ro", "rw")]
    if len(binds) != 1 or others:
        raise InvalidArgument(f"volume options type=none need o=bind (or rbind), with ro or rw "
                              f"at most: {SUPPORTED}")
    if not device.startswith("/") or "\x00" in device or len(device) > 4096:
        raise InvalidArgument(f"volume option device={device!r}: a bind needs an absolute "
                              "host path")
    flags = MS_BIND | (MS_REC if binds[0] == "rbind" else 0)
    return HostMount("bind", device, flags, "", "ro" in words)
