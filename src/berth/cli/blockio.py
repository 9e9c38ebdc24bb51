"""docker's device options as the API's lists: --device HOST[:CONTAINER][:rwm], and the
per-device block IO ones: --blkio-weight-device DEVICE:WEIGHT, --device-{read,write}-bps
DEVICE:RATE (a size: 1mb), --device-{read,write}-iops DEVICE:IOPS. The daemon checks the
devices and the ranges; this only splits what was typed."""

from __future__ import annotations

import argparse

from berth.cli.convert import UsageError, digits
from berth.units import bytes_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The API's field -> the option and how its value reads.
_OPTIONS = {"blkio_weight_device": ("--blkio-weight-device", "weight", "WEIGHT"),
            "device_read_bps": ("--device-read-bps", "rate", "RATE"),
            "device_write_bps": ("--device-write-bps", "rate", "RATE"),
            "device_read_iops": ("--device-read-iops", "rate", "IOPS"),
            "device_write_iops": ("--device-write-iops", "rate", "IOPS")}


def parse_device_value(text: str, flag: str, unit: str) -> tuple[str, int]:
    """"/dev/vda:1mb" -> ("/dev/vda", 1048576) for a RATE; WEIGHT and IOPS are plain numbers."""
    path, colon, value = text.rpartition(":")
    number = bytes_of(value) if unit == "RATE" else (int(value) if digits(value) else None)
    if not colon or not path or number is None:
        example = "/dev/vda:1mb" if unit == "RATE" else "/dev/vda:500"
        raise UsageError(f"invalid {flag} {text!r}: expected DEVICE:{unit}, e.g. {example}")
    return path, number


def host_device(text: str) -> dict[str, Any]:
    """docker's --device HOST[:CONTAINER][:PERMISSIONS]: "/dev/fuse", "/dev/sdc:/dev/xvdc",
    "/dev/net/tun:rw", "/dev/sdc:/dev/xvdc:r"."""
    parts = text.split(":")
    if len(parts) == 2 and parts[1] and not set(parts[1]) - set("rwm"):
        parts = [parts[0], "", parts[1]]
    if len(parts) > 3 or not parts[0]:
        raise UsageError(f"invalid --device {text!r}: expected HOST[:CONTAINER][:rwm]")
    host, target, perms = (parts + ["", ""])[:3]
    return {"path_on_host": host, "path_in_container": target or None,
            "permissions": perms or "rwm"}


def device_settings(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": [host_device(d) for d in args.device]} \
        if args.device else {}
    for field, (flag, key, unit) in _OPTIONS.items():
        items = getattr(args, field)
        if items:
            out[field] = [dict(zip(("path", key), parse_device_value(item, flag, unit),
                                   strict=True)) for item in items]
    return out
