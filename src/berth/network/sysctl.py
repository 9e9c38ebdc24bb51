"""The few kernel settings Berth's bridge networks need, written through /proc/sys.

Each write happens only when the value differs: writing ``net.ipv4.ip_forward`` resets the
per-interface forwarding flags as a side effect, so a no-op rewrite is not harmless.
"""

from __future__ import annotations

import re
from pathlib import Path

PROC_SYS = Path("/proc/sys")

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def _path(key: str) -> Path:
    """``net.ipv4.ip_forward`` -> /proc/sys/net/ipv4/ip_forward (names never contain '/')."""
    parts = key.split(".")
    if any(not p or "/" in p or p in (".", "..") for p in parts):
        raise ValueError(f"bad sysctl key {key!r}")
    return PROC_SYS.joinpath(*parts)


def read(key: str) -> str:
    return _path(key).read_text().strip()


def ensure(key: str, value: str) -> None:
    """Set a sysctl unless it already has that value."""
    if read(key) != value:
        _path(key).write_text(value + "\n")


def ensure_forwarding() -> None:
    """IPv4 forwarding on: needed for any traffic between a bridge and anything else."""
    ensure("net.ipv4.ip_forward", "1")


def ensure_route_localnet(ifname: str) -> None:
    """Let 127.0.0.0/8 traffic be routed through *ifname*.

    A published port reached at 127.0.0.1 is DNATed (nat output) to a container: the packet keeps
    source 127.0.0.1 until postrouting masquerades it, and its replies are routed back to
    127.0.0.1 through the bridge. Without route_localnet on the bridge the kernel drops both as
    martians. (Interface names contain no dots that would be mistaken for key separators: names
    with a '.' (VLANs) are refused here.)
    """
    if not _IFNAME.match(ifname) or "." in ifname:
        raise ValueError(f"bad interface name {ifname!r}")
    ensure(f"net.ipv4.conf.{ifname}.route_localnet", "1")
