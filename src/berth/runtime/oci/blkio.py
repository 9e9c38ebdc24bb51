"""Which block IO limits this host's cgroups can apply to a container, as runc 1.1 applies
them: the backend declares them as capabilities, so that the service refuses a limit the
host cannot take at create, not with a runc failure at start. ``support`` is pure.

What runc writes (libcontainer/cgroups fs and fs2):
  v1  weight          blkio.weight (the old cfq), else blkio.bfq.weight
      device weights  blkio.weight_device, else blkio.bfq.weight_device (EOPNOTSUPP unless
                      the device's scheduler is bfq)
      throttles       blkio.throttle.{read,write}_{bps,iops}_device
  v2  weight          io.bfq.weight, else io.weight (iocost)
      device weights  io.bfq.weight only (without it runc drops them without a word)
      throttles       io.max
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from berth.blockdev import available_schedulers
from berth.runtime.base import Capability
from berth.runtime.oci.cgroups import CgroupMount, cgroup_mounts, detect_mode


def support(mode: str, v1_blkio_files: frozenset[str] | None, v2_controllers: frozenset[str],
            v2_root_files: frozenset[str], schedulers: frozenset[str]) -> frozenset[Capability]:
    """mode: detect_mode's; v1_blkio_files: the files of the v1 blkio hierarchy's root (None:
    no blkio hierarchy); v2_*: the unified root's controllers and files; schedulers: the IO
    schedulers the kernel has (bfq registers its cgroup files with it)."""
    bfq = "bfq" in schedulers
    out: set[Capability] = set()
    if mode in ("v1", "hybrid"):  # runc drives the v1 controllers then, blkio among them
        if v1_blkio_files is None:
            return frozenset()
        if "blkio.throttle.read_bps_device" in v1_blkio_files:
            out.add(Capability.BLKIO_THROTTLE)
        # bfq's weight files are in child groups only; its statistics show at the root.
        bfq = bfq and any(f.startswith("blkio.bfq.") for f in v1_blkio_files)
        if bfq or "blkio.weight" in v1_blkio_files:
            out.add(Capability.BLKIO_WEIGHT)
    else:
        if "io" not in v2_controllers:
            return frozenset()
        out.add(Capability.BLKIO_THROTTLE)  # io.max (every distribution kernel throttles)
        if bfq or "io.cost.qos" in v2_root_files:  # iocost's root-only file: io.weight
            out.add(Capability.BLKIO_WEIGHT)
    if bfq:
        out.add(Capability.BLKIO_WEIGHT_DEVICE)
    return frozenset(out)


def _files(d: Path) -> frozenset[str]:
    try:
        return frozenset(p.name for p in d.iterdir())
    except OSError:
        return frozenset()


def host_support(mounts: list[CgroupMount] | None = None) -> frozenset[Capability]:
    mounts = cgroup_mounts() if mounts is None else mounts
    blkio = next((m.path for m in mounts if m.version == 1 and "blkio" in m.controllers), None)
    unified = next((m.path for m in mounts if m.version == 2), None)
    controllers: frozenset[str] = frozenset()
    if unified is not None:
        with contextlib.suppress(OSError):
            controllers = frozenset((unified / "cgroup.controllers").read_text().split())
    return support(detect_mode(mounts), None if blkio is None else _files(blkio), controllers,
                   _files(unified) if unified is not None else frozenset(),
                   available_schedulers())
