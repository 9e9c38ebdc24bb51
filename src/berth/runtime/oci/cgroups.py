"""Container cgroups on v1, v2 and hybrid hosts: where they are, their numbers, their removal.

The parse_* functions are pure (they take file contents) so tests can feed them samples.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from berth.runtime.base import Stats

V1_UNLIMITED = 1 << 62  # v1 reports "no limit" as a page-rounded 2^63-1
# Super options of a v1 cgroup mount that are flags, not controller names.
_V1_FLAG_OPTIONS = frozenset({"rw", "ro", "xattr", "noprefix", "clone_children",
                              "cpuset_v2_mode", "favordynmods"})


@dataclass(frozen=True)
class CgroupMount:
    path: Path
    version: int  # 1 or 2
    controllers: frozenset[str]  # v1: from the super options; v2: empty


def parse_mountinfo_cgroups(mountinfo: str) -> list[CgroupMount]:
    mounts = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2].split(",")
        if fstype == "cgroup2":
            mounts.append(CgroupMount(Path(fields[4]), 2, frozenset()))
        elif fstype == "cgroup":
            known = {o for o in options if o not in _V1_FLAG_OPTIONS and "=" not in o}
            known |= {o for o in options if o.startswith("name=")}
            mounts.append(CgroupMount(Path(fields[4]), 1, frozenset(known)))
    return mounts


def cgroup_mounts() -> list[CgroupMount]:
    return parse_mountinfo_cgroups(Path("/proc/self/mountinfo").read_text())


def detect_mode(mounts: list[CgroupMount]) -> str:
    """"v2" (unified only), "hybrid" (v1 controllers plus a cgroup2 mount) or "v1"."""
    has_v1 = any(m.version == 1 and m.controllers - {"name=systemd"} for m in mounts)
    has_v2 = any(m.version == 2 for m in mounts)
    if has_v1:
        return "hybrid" if has_v2 else "v1"
    return "v2"


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup -> {controller: path}; the v2 entry is keyed by ""."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[1] == "":
            out[""] = parts[2]
        for ctrl in parts[1].split(","):
            if ctrl:
                out[ctrl] = parts[2]
    return out


@dataclass(frozen=True)
class ContainerCgroup:
    """The dirs of one container: v1 controller -> dir, and the v2 dir (if any)."""

    v1: dict[str, Path]
    v2: Path | None

    def dir_for(self, controller: str) -> Path | None:
        if controller in self.v1:
            return self.v1[controller]
        if self.v2 is not None and not self.v1:
            return self.v2
        return None


def container_cgroup(rel_path: str, mounts: list[CgroupMount] | None = None) -> ContainerCgroup:
    """The dirs a container with cgroupsPath rel_path ("/berth/<id>") has (or would have)."""
    mounts = cgroup_mounts() if mounts is None else mounts
    mode = detect_mode(mounts)
    v1: dict[str, Path] = {}
    v2: Path | None = None
    rel = rel_path.lstrip("/")
    for m in mounts:
        if m.version == 1 and mode != "v2":
            for ctrl in m.controllers:
                v1.setdefault(ctrl, m.path / rel)
        elif m.version == 2 and v2 is None:
            v2 = m.path / rel
    return ContainerCgroup(v1, v2)


def all_dirs(cg: ContainerCgroup) -> list[Path]:
    dirs = list(dict.fromkeys(cg.v1.values()))
    if cg.v2 is not None:
        dirs.append(cg.v2)
    return dirs


def cgroup_procs(cg: ContainerCgroup) -> list[int]:
    """Pids in the container's cgroup (and its children), from the pids or memory hierarchy."""
    top = cg.dir_for("pids") or cg.dir_for("memory") or cg.v2
    if top is None or not top.is_dir():
        return []
    pids: set[int] = set()
    for dirpath, _dirs, _files in os.walk(top):
        try:
            text = (Path(dirpath) / "cgroup.procs").read_text()
        except OSError:
            continue
        pids.update(int(p) for p in text.split() if p.isdigit())
    return sorted(pids)


def remove_cgroup(cg: ContainerCgroup) -> list[Path]:
    """rmdir every dir of the container, deepest first; return those that would not go."""
    left = []
    for top in all_dirs(cg):
        if not top.is_dir():
            continue
        subdirs = [Path(d) for d, _, _ in os.walk(top)]
        for d in sorted(subdirs, key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(d)
    return left


def move_to_cgroup(pid: int, rel_path: str, mounts: list[CgroupMount] | None = None) -> None:
    """Best effort: put pid into rel_path in every hierarchy. Used for conmon, so that the
    monitors do not live in berthd's own cgroup (a service manager stopping berthd kills
    everything in that cgroup, and containers must outlive berthd)."""
    cg = container_cgroup(rel_path, mounts)
    for d in all_dirs(cg):
        try:
            d.mkdir(parents=True, exist_ok=True)
            _inherit_cpuset(d)
            (d / "cgroup.procs").write_text(f"{pid}\n")
        except OSError:
            continue


def _inherit_cpuset(d: Path) -> None:
    """A new v1 cpuset group takes no process until its cpus and mems are set: its parent's."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        own = d / name
        if own.exists() and not own.read_text().strip():
            own.write_text((d.parent / name).read_text())


# ---- pure parsers -------------------------------------------------------------------------


def parse_flat_keyed(text: str) -> dict[str, int]:
    """"key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def parse_limit(text: str) -> int | None:
    """A limit file: "max" (v2) or a huge number (v1) mean no limit."""
    value = text.strip()
    if value in ("max", "", "-1"):
        return None
    number = int(value)
    return None if number >= V1_UNLIMITED else number


def parse_int(text: str) -> int:
    value = text.strip()
    return int(value) if value.lstrip("-").isdigit() else 0


def parse_blkio_service_bytes(text: str) -> tuple[int, int]:
    """v1 blkio.throttle.io_service_bytes: "8:0 Read 4096" lines -> (read, write) bytes."""
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            if parts[1] == "Read":
                read += int(parts[2])
            elif parts[1] == "Write":
                write += int(parts[2])
    return read, write


def parse_io_stat(text: str) -> tuple[int, int]:
    """v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=..." lines -> (read, write) bytes."""
    read = write = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if value.isdigit():
                if key == "rbytes":
                    read += int(value)
                elif key == "wbytes":
                    write += int(value)
    return read, write


def parse_system_cpu_ns(proc_stat: str, clk_tck: int = 100) -> int:
    """Host CPU time from the "cpu" line of /proc/stat (user..softirq, as Docker counts it)."""
    for line in proc_stat.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            ticks = sum(int(v) for v in parts[1:8])
            return ticks * 1_000_000_000 // clk_tck
    return 0


def memory_usage_v1(usage_in_bytes: int, stat: dict[str, int]) -> int:
    """Like docker: usage minus page cache that can be dropped."""
    cache = stat.get("total_inactive_file", stat.get("cache", 0))
    return usage_in_bytes - cache if cache < usage_in_bytes else usage_in_bytes


def memory_usage_v2(current: int, stat: dict[str, int]) -> int:
    cache = stat.get("inactive_file", 0)
    return current - cache if cache < current else current


def oom_kills_v1(oom_control: str) -> int:
    return parse_flat_keyed(oom_control).get("oom_kill", 0)


def oom_kills_v2(memory_events: str) -> int:
    return parse_flat_keyed(memory_events).get("oom_kill", 0)


# ---- reading a live cgroup ----------------------------------------------------------------


def _read(d: Path | None, name: str) -> str | None:
    if d is None:
        return None
    try:
        return (d / name).read_text()
    except OSError:
        return None


def frozen(cg: ContainerCgroup) -> bool:
    """Is the container paused (its freezer cgroup frozen)?"""
    v1 = _read(cg.v1.get("freezer"), "freezer.state")
    if v1 is not None:
        return v1.strip() in ("FROZEN", "FREEZING")
    v2 = _read(cg.v2, "cgroup.events")
    return v2 is not None and "frozen 1" in v2


def oom_kill_count(cg: ContainerCgroup) -> int:
    v1 = _read(cg.v1.get("memory"), "memory.oom_control")
    if v1 is not None:
        return oom_kills_v1(v1)
    v2 = _read(cg.v2, "memory.events")
    return oom_kills_v2(v2) if v2 is not None else 0


def parse_percpu(text: str) -> tuple[int, ...]:
    """v1 cpuacct.usage_percpu: nanoseconds per CPU, space separated."""
    return tuple(int(v) for v in text.split() if v.isdigit())


def read_stats(cg: ContainerCgroup) -> Stats:
    clk_tck = os.sysconf("SC_CLK_TCK")
    if cg.v1:
        acct = cg.v1.get("cpuacct")
        cpu_ns = parse_int(_read(acct, "cpuacct.usage") or "0")
        ticks = parse_flat_keyed(_read(acct, "cpuacct.stat") or "")
        user_ns = ticks.get("user", 0) * 1_000_000_000 // clk_tck
        system_ns = ticks.get("system", 0) * 1_000_000_000 // clk_tck
        percpu = parse_percpu(_read(acct, "cpuacct.usage_percpu") or "")
        cpu_stat = parse_flat_keyed(_read(cg.v1.get("cpu"), "cpu.stat") or "")
        throttled_ns = cpu_stat.get("throttled_time", 0)
        mem = cg.v1.get("memory")
        usage = parse_int(_read(mem, "memory.usage_in_bytes") or "0")
        mem_stat = parse_flat_keyed(_read(mem, "memory.stat") or "")
        memory = memory_usage_v1(usage, mem_stat)
        limit = parse_limit(_read(mem, "memory.limit_in_bytes") or "max")
        pids_dir = cg.v1.get("pids")
        io_read, io_write = parse_blkio_service_bytes(
            _read(cg.v1.get("blkio"), "blkio.throttle.io_service_bytes") or "")
    else:
        cpu_stat = parse_flat_keyed(_read(cg.v2, "cpu.stat") or "")
        cpu_ns = cpu_stat.get("usage_usec", 0) * 1000
        user_ns, system_ns = cpu_stat.get("user_usec", 0) * 1000, \
            cpu_stat.get("system_usec", 0) * 1000
        percpu = ()
        throttled_ns = cpu_stat.get("throttled_usec", 0) * 1000
        usage = parse_int(_read(cg.v2, "memory.current") or "0")
        mem_stat = parse_flat_keyed(_read(cg.v2, "memory.stat") or "")
        memory = memory_usage_v2(usage, mem_stat)
        limit = parse_limit(_read(cg.v2, "memory.max") or "max")
        pids_dir = cg.v2
        io_read, io_write = parse_io_stat(_read(cg.v2, "io.stat") or "")
    return Stats(
        cpu_usage_ns=cpu_ns,
        system_cpu_ns=parse_system_cpu_ns(Path("/proc/stat").read_text(), clk_tck),
        online_cpus=len(os.sched_getaffinity(0)) or os.cpu_count() or 1,
        memory_usage=memory,
        memory_limit=limit,
        pids_current=parse_int(_read(pids_dir, "pids.current") or "0"),
        pids_limit=parse_limit(_read(pids_dir, "pids.max") or "max"),
        io_read_bytes=io_read,
        io_write_bytes=io_write,
        read_at=time.time(),
        cpu_user_ns=user_ns,
        cpu_system_ns=system_ns,
        percpu_ns=percpu,
        throttle_periods=cpu_stat.get("nr_periods", 0),
        throttled_periods=cpu_stat.get("nr_throttled", 0),
        throttled_ns=throttled_ns,
        memory_raw=usage,
        memory_stat=mem_stat,
    )
