"""Reading pid files and /proc without trusting that a pid still means the same process."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

POLL_FIRST = 0.002  # what we wait for (a monitor's exit, its exit file) is usually a moment away
POLL_CAP = 0.05


def poll_until(done: Callable[[], bool], timeout: float) -> bool:
    """Check ``done`` until it holds or ``timeout`` passes (then False), sleeping 2 ms at first
    and doubling to 50 ms: a fixed 50 ms sleep cost every `run --rm` up to 50 ms."""
    deadline = time.monotonic() + timeout
    delay = POLL_FIRST
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, POLL_CAP)
    return True


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def conmon_alive(pid: int | None, cid: str) -> bool:
    """The pid is a live conmon monitoring cid (a reused pid would fail one of the checks)."""
    if pid is None or comm(pid) != "conmon" or is_zombie(pid):
        return False
    return cid in cmdline(pid)


def proc_in_cgroup(pid: int, cgroup_suffix: str) -> bool:
    """Is pid in a cgroup whose path ends in cgroup_suffix (e.g. /berth/<id>)?"""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return any(line.split(":", 2)[-1].rstrip().endswith(cgroup_suffix)
               for line in text.splitlines())


def start_time_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])  # field 22 of stat; two fields precede the split point


def boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def process_start_time(pid: int) -> float | None:
    """Unix time at which pid started."""
    ticks = start_time_ticks(pid)
    if ticks is None:
        return None
    return boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def signal_pid(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
