"""Resource limits: pids (fork bomb), memory (OOM), cpus, live update, stats and top."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import Daemon, refused

pytestmark = pytest.mark.integration

CGROUP = Path("/sys/fs/cgroup")
MiB = 1024 * 1024


def _cg(controller: str, cid: str, name: str) -> str:
    return (CGROUP / controller / "berth" / cid / name).read_text().strip()


def _running(daemon: Daemon, name: str) -> dict[str, Any] | None:
    info = daemon.inspect(name)
    return info if info["state"]["status"] == "running" else None


def _exited(daemon: Daemon, name: str) -> dict[str, Any] | None:
    info = daemon.inspect(name)
    return info if info["state"]["status"] == "exited" else None


def test_fork_bomb_is_contained_by_pids_limit(daemon: Daemon) -> None:
    name = "lim-forkbomb"
    try:
        # The bomb goes off in a subshell: a fork the bomb starves kills the shell that
        # tried it, and the container's own process must live on to be looked at.
        daemon.cli("run", "-d", "--name", name, "--pids-limit", "32", "busybox",
                   "sh", "-c", "bomb() { bomb | bomb & }; (bomb); exec sleep 1000")
        cid = daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")["id"]
        assert _cg("pids", cid, "pids.max") == "32"
        highest = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            current = int(_cg("pids", cid, "pids.current"))
            highest = max(highest, current)
            assert current <= 32, f"pids.current {current} > pids-limit 32"
            time.sleep(0.05)
        # The bomb may burn out before the samples (every fork refused at once, each shell
        # then exits): the kernel's high-water mark, where it keeps one, says how high it got.
        with contextlib.suppress(FileNotFoundError):
            highest = max(highest, int(_cg("pids", cid, "pids.peak")))
        assert 24 <= highest <= 32, f"the bomb never came near the limit (max {highest})"
        events = dict(line.split() for line in _cg("pids", cid, "pids.events").splitlines())
        assert int(events["max"]) > 0, "no fork was ever refused: the bomb did not run?"
        # The host can still make processes.
        assert subprocess.run(["true"], timeout=10).returncode == 0
        assert subprocess.run(["sh", "-c", "echo host-ok"], capture_output=True, text=True,
                              timeout=10).stdout == "host-ok\n"
        daemon.cli("rm", "-f", name)
        assert not (CGROUP / "pids" / "berth" / cid).exists()
        assert all(c["id"] != cid for c in daemon.client.containers.list(all=True))
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_memory_hog_is_oom_killed(daemon: Daemon) -> None:
    name = "lim-oom"
    hog = "head -c 200m /dev/zero | tail"
    try:
        daemon.cli("run", "-d", "--name", name, "--memory", "32m", "busybox", "sh", "-c", hog)
        info = daemon.wait_for(lambda: _exited(daemon, name), timeout=25, what="OOM exit")
        assert info["state"]["oom_killed"] is True, info["state"]
        assert info["state"]["exit_code"] == 137, info["state"]
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_attached_run_of_memory_hog_exits_137(daemon: Daemon) -> None:
    res = daemon.cli("run", "--rm", "--memory", "32m", "busybox", "sh", "-c",
                     "head -c 200m /dev/zero | tail", check=False, timeout=30)
    assert res.returncode == 137, res
    assert "Traceback" not in res.stderr
    assert "memory" in res.stderr


def test_update_running_container_limits(daemon: Daemon) -> None:
    name = "lim-update"
    try:
        daemon.cli("run", "-d", "--name", name, "--memory", "32m", "--pids-limit", "20",
                   "busybox", "sleep", "100")
        cid = daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")["id"]
        assert int(_cg("memory", cid, "memory.limit_in_bytes")) == 32 * MiB
        assert _cg("pids", cid, "pids.max") == "20"
        daemon.cli("update", "--memory", "64m", "--pids-limit", "50", name)
        assert int(_cg("memory", cid, "memory.limit_in_bytes")) == 64 * MiB
        assert _cg("pids", cid, "pids.max") == "50"
        config = daemon.inspect(name)["config"]
        assert config["memory"] == 64 * MiB
        assert config["pids_limit"] == 50
        assert daemon.inspect(name)["state"]["status"] == "running"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_stats_and_top_of_running_container(daemon: Daemon) -> None:
    name = "lim-stats"
    try:
        daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "100")
        daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")
        rows = json.loads(daemon.cli("stats", "--no-stream", "-o", "json", name).stdout)
        assert len(rows) == 1
        assert rows[0]["name"] == name
        assert rows[0]["memory_usage"] > 0
        assert rows[0]["pids"] >= 1
        top = daemon.cli("top", name).stdout.splitlines()
        assert "PID" in top[0]
        assert any("sleep 100" in line for line in top[1:]), top
        # ps options after the name, as docker top: the host's ps, this container's rows
        # only (berthd's own and every other host process are left out).
        aux = json.loads(daemon.cli("top", name, "aux", "-o", "json").stdout)
        assert aux["titles"][:2] == ["USER", "PID"], aux
        assert [row[-1] for row in aux["processes"]] == ["sleep 100"], aux
        custom = daemon.cli("top", name, "-o", "pid,ppid,args").stdout.splitlines()
        assert custom[0].split() == ["PID", "PPID", "COMMAND"] and len(custom) == 2, custom
        for bad, says in ((["-o", "comm"], "PID column"), (["--bogus"], "ps --bogus")):
            refused(daemon.cli("top", name, *bad, check=False), says)
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_cpus_sets_cfs_quota(daemon: Daemon) -> None:
    name = "lim-cpus"
    try:
        daemon.cli("run", "-d", "--name", name, "--cpus", "0.5", "busybox", "sleep", "100")
        cid = daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")["id"]
        assert _cg("cpu", cid, "cpu.cfs_period_us") == "100000"
        assert _cg("cpu", cid, "cpu.cfs_quota_us") == "50000"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_cpu_quota_and_period_as_docker_gives_them(daemon: Daemon) -> None:
    """--cpu-quota/--cpu-period (run and update): the same share of CPU time."""
    name = "lim-cpu-quota"
    try:
        daemon.cli("run", "-d", "--name", name, "--cpu-quota", "25000", "busybox", "sleep",
                   "100")
        cid = daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")["id"]
        assert _cg("cpu", cid, "cpu.cfs_quota_us") == "25000"
        daemon.cli("update", "--cpu-quota", "150000", "--cpu-period", "100000", name)
        assert _cg("cpu", cid, "cpu.cfs_quota_us") == "150000"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_oom_score_adj_for_the_container_and_its_execs(daemon: Daemon) -> None:
    name = "lim-oom-score"
    try:
        res = daemon.cli("run", "--rm", "--oom-score-adj", "700", "busybox", "cat",
                         "/proc/self/oom_score_adj")
        assert res.stdout.strip() == "700"
        daemon.cli("run", "-d", "--name", name, "--oom-score-adj", "300", "busybox", "sleep",
                   "100")
        assert daemon.cli("exec", name, "cat", "/proc/self/oom_score_adj").stdout.strip() \
            == "300"
        refused(daemon.cli("run", "--rm", "--oom-score-adj", "-500", "busybox", "true",
                           check=False), "oom_score_adj -500", "below 0")
        refused(daemon.cli("run", "--rm", "--oom-score-adj", "1001", "busybox", "true",
                           check=False), "oom_score_adj")
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_update_of_stopped_container_applies_at_next_start(daemon: Daemon) -> None:
    name = "lim-update-stopped"
    try:
        daemon.cli("create", "--name", name, "--memory", "32m", "busybox", "sleep", "100")
        daemon.cli("update", "--memory", "48m", "--pids-limit", "40", name)
        config = daemon.inspect(name)["config"]
        assert config["memory"] == 48 * MiB
        assert config["pids_limit"] == 40
        daemon.cli("start", name)
        cid = daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")["id"]
        assert int(_cg("memory", cid, "memory.limit_in_bytes")) == 48 * MiB
        assert _cg("pids", cid, "pids.max") == "40"
        # And again after a stop: the stored limits stay.
        daemon.cli("stop", "-t", "0", name)
        daemon.cli("update", "--pids-limit", "45", name)
        daemon.cli("start", name)
        cid = daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")["id"]
        assert _cg("pids", cid, "pids.max") == "45"
        assert int(_cg("memory", cid, "memory.limit_in_bytes")) == 48 * MiB
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_cpusets_and_memory_reservation_at_start_and_live(daemon: Daemon) -> None:
    name = "lim-cpuset"
    cpus = sorted(os.sched_getaffinity(0))
    try:
        daemon.cli("run", "-d", "--name", name, "--cpuset-cpus", str(cpus[0]),
                   "--cpuset-mems", "0", "--memory", "64m", "--memory-reservation", "32m",
                   "busybox", "sleep", "100")
        cid = daemon.wait_for(lambda: _running(daemon, name), timeout=20, what="running")["id"]
        assert daemon.cli("exec", name, "nproc").stdout == "1\n"  # its CPU affinity
        assert _cg("cpuset", cid, "cpuset.cpus") == str(cpus[0])
        assert int(_cg("memory", cid, "memory.soft_limit_in_bytes")) == 32 * MiB
        both = f"{cpus[0]},{cpus[-1]}"
        daemon.cli("update", "--cpuset-cpus", both, "--memory-reservation", "48m", name)
        assert daemon.cli("exec", name, "nproc").stdout == f"{len({cpus[0], cpus[-1]})}\n"
        assert int(_cg("memory", cid, "memory.soft_limit_in_bytes")) == 48 * MiB
        assert daemon.inspect(name)["config"]["cpuset_cpus"] == both
        res = daemon.cli("run", "--rm", "--cpuset-cpus", "4095", "busybox", "true",
                         check=False)
        assert res.returncode == 125 and "4095 is not on this host" in res.stderr, res
    finally:
        daemon.cli("rm", "-f", name, check=False)
