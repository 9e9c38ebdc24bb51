"""This host's device nodes (a node's type and major:minor), and its block devices as the
kernel's IO controllers see them: whether the kernel knows one as a whole disk, and its IO
scheduler. Devices are only stat'ed and looked up in sysfs, never opened. parse_scheduler is
pure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

SYS_DEV_BLOCK = Path("/sys/dev/block")


def node(path: str) -> tuple[str, int, int] | None:
    """("c" or "b", major, minor) of the device node at path (symlinks followed); None when
    path is not a character or block device."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None
    kind = "b" if stat.S_ISBLK(st.st_mode) else "c" if stat.S_ISCHR(st.st_mode) else None
    if kind is None:
        return None
    return kind, os.major(st.st_rdev), os.minor(st.st_rdev)


def device_number(path: str) -> tuple[int, int] | None:
    """(major, minor) of the block device node at path; None when path is not a block
    device."""
    found = node(path)
    return (found[1], found[2]) if found is not None and found[0] == "b" else None


def kind(major: int, minor: int, sys_dev_block: Path = SYS_DEV_BLOCK) -> str | None:
    """"disk" or "partition" as the kernel has the device; None when it has no such device
    (a stale node): the IO controllers take neither a partition nor an unknown device."""
    node = sys_dev_block / f"{major}:{minor}"
    if not node.exists():
        return None
    return "partition" if (node / "partition").exists() else "disk"


def parse_scheduler(text: str) -> tuple[str | None, frozenset[str]]:
    """A queue/scheduler file, "none [mq-deadline] kyber bfq" -> the active one and all."""
    names = text.split()
    active = next((n[1:-1] for n in names if n.startswith("[") and n.endswith("]")), None)
    return active, frozenset(n.strip("[]") for n in names)


def scheduler(major: int, minor: int, sys_dev_block: Path = SYS_DEV_BLOCK) -> str | None:
    """The disk's active IO scheduler; None when it has none to choose (zram, some dm)."""
    try:
        text = (sys_dev_block / f"{major}:{minor}" / "queue" / "scheduler").read_text()
    except OSError:
        return None
    return parse_scheduler(text)[0]


def available_schedulers(sys_block: Path = Path("/sys/block")) -> frozenset[str]:
    """Every IO scheduler the kernel has loaded (any disk may switch to any of them)."""
    found: set[str] = set()
    for disk in sys_block.glob("*/queue/scheduler"):
        try:
            found |= parse_scheduler(disk.read_text())[1]
        except OSError:
            continue
    return frozenset(found)
