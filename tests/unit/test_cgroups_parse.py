"""Parsing cgroup files of v1, v2 and hybrid hosts (pure functions, sample contents)."""

from __future__ import annotations

from pathlib import Path

from berth.runtime.oci.cgroups import (
    all_dirs,
    container_cgroup,
    detect_mode,
    memory_usage_v1,
    memory_usage_v2,
    oom_kills_v1,
    oom_kills_v2,
    parse_blkio_service_bytes,
    parse_flat_keyed,
    parse_int,
    parse_io_stat,
    parse_limit,
    parse_mountinfo_cgroups,
    parse_proc_cgroup,
    parse_system_cpu_ns,
)

HYBRID_MOUNTINFO = """\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:25 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
28 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
30 25 0:28 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
31 25 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
32 25 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
33 25 0:31 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
"""

V2_MOUNTINFO = """\
25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
"""

V1_MOUNTINFO = "\n".join(
    line for line in HYBRID_MOUNTINFO.splitlines() if "cgroup2" not in line)


def test_mountinfo_and_mode() -> None:
    mounts = parse_mountinfo_cgroups(HYBRID_MOUNTINFO)
    by_path = {str(m.path): m for m in mounts}
    assert by_path["/sys/fs/cgroup/memory"].controllers == {"memory"}
    assert by_path["/sys/fs/cgroup/systemd"].controllers == {"name=systemd"}
    assert by_path["/sys/fs/cgroup/net_cls,net_prio"].controllers == {"net_cls", "net_prio"}
    assert by_path["/sys/fs/cgroup/unified"].version == 2
    assert "/sys/fs/cgroup" not in by_path  # the tmpfs is not a cgroup mount
    assert detect_mode(mounts) == "hybrid"
    assert detect_mode(parse_mountinfo_cgroups(V2_MOUNTINFO)) == "v2"
    assert detect_mode(parse_mountinfo_cgroups(V1_MOUNTINFO)) == "v1"


def test_container_cgroup_paths() -> None:
    hybrid = container_cgroup("/berth/abc", parse_mountinfo_cgroups(HYBRID_MOUNTINFO))
    assert hybrid.v1["memory"] == Path("/sys/fs/cgroup/memory/berth/abc")
    assert hybrid.v1["net_prio"] == Path("/sys/fs/cgroup/net_cls,net_prio/berth/abc")
    assert hybrid.v2 == Path("/sys/fs/cgroup/unified/berth/abc")
    assert hybrid.dir_for("pids") == Path("/sys/fs/cgroup/pids/berth/abc")
    assert hybrid.dir_for("io") is None  # v2 is not where the controllers are in hybrid
    assert Path("/sys/fs/cgroup/unified/berth/abc") in all_dirs(hybrid)
    v2 = container_cgroup("/berth/abc", parse_mountinfo_cgroups(V2_MOUNTINFO))
    assert v2.v1 == {} and v2.v2 == Path("/sys/fs/cgroup/berth/abc")
    assert v2.dir_for("memory") == Path("/sys/fs/cgroup/berth/abc")


def test_proc_cgroup() -> None:
    text = ("12:pids:/berth/abc\n4:cpu,cpuacct:/berth/abc\n1:name=systemd:/user.slice\n"
            "0::/berth/abc\n")
    parsed = parse_proc_cgroup(text)
    assert parsed["pids"] == "/berth/abc"
    assert parsed["cpu"] == parsed["cpuacct"] == "/berth/abc"
    assert parsed["name=systemd"] == "/user.slice"
    assert parsed[""] == "/berth/abc"


def test_flat_keyed_limits_ints() -> None:
    assert parse_flat_keyed("usage_usec 1500\nuser_usec 1000\nbad line here\n") == {
        "usage_usec": 1500, "user_usec": 1000}
    assert parse_limit("max\n") is None
    assert parse_limit("9223372036854771712\n") is None  # v1 "unlimited"
    assert parse_limit("33554432\n") == 33554432
    assert parse_int("42\n") == 42 and parse_int("") == 0


def test_io_counters() -> None:
    blkio = ("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n"
             "8:16 Read 100\n8:16 Write 0\nTotal 12388\n")
    assert parse_blkio_service_bytes(blkio) == (4196, 8192)
    assert parse_blkio_service_bytes("") == (0, 0)
    iostat = ("8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n"
              "253:0 rbytes=1 wbytes=2 rios=1 wios=1\n")
    assert parse_io_stat(iostat) == (1025, 2050)


def test_system_cpu() -> None:
    stat = ("cpu  100 20 30 400 5 6 7 8 0 0\ncpu0 50 10 15 200 2 3 3 4 0 0\n"
            "btime 1700000000\n")
    assert parse_system_cpu_ns(stat, clk_tck=100) == (100 + 20 + 30 + 400 + 5 + 6 + 7) * 10**7


def test_memory_usage_excludes_cache() -> None:
    assert memory_usage_v1(100_000, {"total_inactive_file": 30_000, "cache": 50_000}) == 70_000
    assert memory_usage_v1(100_000, {"cache": 40_000}) == 60_000
    assert memory_usage_v1(100, {"cache": 400}) == 100
    assert memory_usage_v2(100_000, {"inactive_file": 1_000}) == 99_000


def test_oom_counters() -> None:
    v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
    assert oom_kills_v1(v1) == 2
    assert oom_kills_v1("oom_kill_disable 0\nunder_oom 0\n") == 0  # old kernels
    v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n"
    assert oom_kills_v2(v2) == 1
