"""Block IO limits a container asks for (docker's --blkio-weight-device, --device-read-bps,
--device-write-bps, --device-read-iops, --device-write-iops): the request's shape, and the
check at create that each names a disk of this host that the host can limit. The device is
resolved to its major:minor then (stat only, never opened) and kept in the spec with its path,
as Docker keeps it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from berth import blockdev
from berth.errors import InvalidArgument
from berth.runtime.base import Capability

MIN_WEIGHT, MAX_WEIGHT = 10, 1000  # the kernel's blkio/bfq weight range (Docker's too)
MAX_RATE = 2**63 - 1  # bytes/s: the OCI spec's int64
MAX_IOPS = 2**32 - 1  # IOs/s: the kernel's (unsigned int) for the throttle files
MAX_DEVICES = 64
# Fields of the request -> what its entries hold.
DEVICE_FIELDS = {"blkio_weight_device": "weight", "device_read_bps": "rate",
                 "device_write_bps": "rate", "device_read_iops": "rate",
                 "device_write_iops": "rate"}
_UNSUPPORTED = ("this host cannot {what}: it needs the cgroup blkio (v1) or io (v2) "
                "controller{extra}")


def check_path(path: str) -> str:
    if not path.startswith("/") or "\x00" in path:
        raise ValueError(f"device path must be absolute, got {path!r}")
    return path


class DeviceWeight(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(max_length=4096)
    weight: int = Field(ge=MIN_WEIGHT, le=MAX_WEIGHT)

    _path = field_validator("path")(check_path)


class DeviceRate(BaseModel):
    """Bytes per second."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(max_length=4096)
    rate: int = Field(gt=0, le=MAX_RATE)

    _path = field_validator("path")(check_path)


class DeviceIops(BaseModel):
    """IOs per second."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(max_length=4096)
    rate: int = Field(gt=0, le=MAX_IOPS)

    _path = field_validator("path")(check_path)


def _unique_paths(v: list[Any]) -> list[Any]:
    paths = [d.path for d in v]
    dup = sorted({p for p in paths if paths.count(p) > 1})
    if dup:
        raise ValueError(f"device {dup[0]} is given twice")
    return v


class BlkioDevicesRequest(BaseModel):
    """Per-device block IO settings of a new container (runc cannot change them live)."""

    model_config = ConfigDict(extra="forbid")

    blkio_weight_device: list[DeviceWeight] = Field(
        default_factory=list, max_length=MAX_DEVICES,
        description="per-device weights (10-1000); the device's IO scheduler must be bfq")
    device_read_bps: list[DeviceRate] = Field(default_factory=list, max_length=MAX_DEVICES,
                                              description="read bytes per second, per device")
    device_write_bps: list[DeviceRate] = Field(default_factory=list, max_length=MAX_DEVICES,
                                               description="write bytes per second")
    device_read_iops: list[DeviceIops] = Field(default_factory=list, max_length=MAX_DEVICES,
                                               description="read IOs per second")
    device_write_iops: list[DeviceIops] = Field(default_factory=list, max_length=MAX_DEVICES,
                                                description="write IOs per second")

    _unique = field_validator(*DEVICE_FIELDS)(_unique_paths)


def check_weight(capabilities: frozenset[Capability]) -> None:
    """blkio_weight (at create or update) needs a host that can weight block IO."""
    if Capability.BLKIO_WEIGHT not in capabilities:
        raise InvalidArgument("blkio_weight: " + _UNSUPPORTED.format(
            what="weight a container's block IO",
            extra=" and an IO scheduler with weights (bfq)"))


def resolve_devices(spec: dict[str, Any], capabilities: frozenset[Capability]) -> None:
    """Check that the host can apply the spec's block IO settings, and add each device's
    major and minor to its entry (in place). A refusal names the field and the path."""
    if spec.get("blkio_weight"):
        check_weight(capabilities)
    for field, key in DEVICE_FIELDS.items():
        entries = spec.get(field) or []
        if entries:
            _check_capability(field, capabilities)
        numbers: set[tuple[int, int]] = set()
        for entry in entries:
            major, minor = _disk(field, entry["path"])
            if (major, minor) in numbers:
                raise InvalidArgument(f"{field}: {entry['path']} is the device {major}:{minor} "
                                      "given twice")
            numbers.add((major, minor))
            if key == "weight":
                _check_weight_scheduler(entry["path"], major, minor)
            entry.update(major=major, minor=minor)


def _check_capability(field: str, capabilities: frozenset[Capability]) -> None:
    if field == "blkio_weight_device":
        if Capability.BLKIO_WEIGHT_DEVICE not in capabilities:
            raise InvalidArgument(f"{field}: " + _UNSUPPORTED.format(
                what="weight block IO per device", extra=" and the bfq IO scheduler"))
    elif Capability.BLKIO_THROTTLE not in capabilities:
        raise InvalidArgument(f"{field}: " + _UNSUPPORTED.format(
            what="throttle block IO", extra=" with throttling"))


def _disk(field: str, path: str) -> tuple[int, int]:
    """One message for a missing path and a non-device: a tenant learns no more of the
    host's files than whether a path is a block device."""
    number = blockdev.device_number(path)
    what = blockdev.kind(*number) if number is not None else None
    if number is None or what is None:
        raise InvalidArgument(f"{field}: {path} is not a block device on this host")
    if what == "partition":
        raise InvalidArgument(f"{field}: {path} is a partition: the kernel limits whole "
                              "disks only (name the disk it is on)")
    return number


def _check_weight_scheduler(path: str, major: int, minor: int) -> None:
    found = blockdev.scheduler(major, minor)
    if found != "bfq":
        raise InvalidArgument(
            f"blkio_weight_device: {path} uses the {found or 'no'} IO scheduler, which "
            "has no per-device weights (bfq has; see /sys/block/DISK/queue/scheduler)")
