"""A container's log has a size limit and keeps its newest files (docker's max-size and
max-file): bounded on disk, read and followed across files, kept over restarts of the
container and of berthd."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from pathlib import Path

from tests.integration.daemon import BIN, Daemon, refused
from tests.integration.dockertools import docker, docker_json

COUNT = "i=0; while [ $i -lt {n} ]; do echo n$i; i=$((i+1)); done"
TICK = "i=0; while true; do echo n$i; i=$((i+1)); usleep {us}; done"
PACED = "i=0; while [ $i -lt {n} ]; do echo n$i; i=$((i+1)); usleep {us}; done"
MIB = 1024 * 1024


def _numbers(text: str) -> list[int]:
    return [int(line[1:]) for line in text.splitlines() if line.startswith("n")]


def _contiguous(numbers: list[int]) -> bool:
    return numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def _log_files(d: Daemon, name: str) -> dict[int, int]:
    """The container's log files on disk: inode -> size (a kept file has two names)."""
    directory = d.root / "containers" / d.inspect(name)["id"]
    return {(st := os.stat(p)).st_ino: st.st_size for p in directory.glob("ctr.log*")}


def test_a_busy_log_is_bounded_and_keeps_its_newest_files(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "-d", "--name", "chatty", "--log-opt", "max-size=16k",
          "--log-opt", "max-file=3", "busybox", "sh", "-c", PACED.format(n=6000, us=300))
    assert d.cli("wait", "chatty", timeout=300).stdout.strip() == "0"
    files = _log_files(d, "chatty")
    assert len(files) == 3, files  # the newest three of many
    # Checked every 0.2 s: a file goes a little past its limit, never far.
    assert all(size <= 64 * 1024 for size in files.values()), files
    numbers = _numbers(d.cli("logs", "chatty").stdout)
    # Whole files were dropped from the front, none from the middle.
    assert numbers[-1] == 5999 and numbers[0] > 0 and _contiguous(numbers)
    assert _numbers(d.cli("logs", "--tail", "2", "chatty").stdout) == [5998, 5999]
    log = d.inspect("chatty")["config"]["log"]
    assert log == {"max_size": 16 * 1024, "max_files": 3}
    d.cli("rm", "chatty")


def test_a_flood_stays_bounded_and_whole(daemon: Daemon) -> None:
    """Output faster than Berth looks at the size: conmon's own limit (the whole budget)
    bounds the file meanwhile, and what is kept still reads on without a gap."""
    d = daemon
    d.cli("run", "-d", "--name", "flood", "--log-opt", "max-size=256k",
          "--log-opt", "max-file=2", "busybox", "sh", "-c", COUNT.format(n=60000))
    assert d.cli("wait", "flood", timeout=300).stdout.strip() == "0"
    files = _log_files(d, "flood")
    assert sum(files.values()) <= 2 * 2 * 256 * 1024, files
    numbers = _numbers(d.cli("logs", "flood").stdout)
    assert numbers[-1] == 59999 and numbers[0] > 0 and _contiguous(numbers)
    d.cli("rm", "flood")


def _first_gap(numbers: list[int]) -> str:
    for before, after in itertools.pairwise(numbers):
        if after != before + 1:
            return f"after n{before} came n{after}"
    return "none"


def test_a_follower_reads_on_across_files(daemon: Daemon) -> None:
    d = daemon
    # ~3 s of output, paced by count (a loaded host only makes it slower); a file of 8k
    # holds ~180 lines, so the follower goes through many new files. Four kept files give
    # it ~0.7 s of headroom before lines are dropped by design.
    d.cli("run", "-d", "--name", "ticker", "--log-opt", "max-size=8k", "--log-opt",
          "max-file=4", "busybox", "sh", "-c", PACED.format(n=3000, us=1000))
    follower = subprocess.Popen([str(BIN / "berth"), "logs", "-f", "ticker"], env=d.env,
                                stdout=subprocess.PIPE, text=True)
    out, _ = follower.communicate(timeout=120)  # ends when the ticker does
    numbers = _numbers(out)
    assert numbers and numbers[-1] == 2999, numbers[-5:]
    assert len(numbers) > 2000 and _contiguous(numbers), (
        f"{len(numbers)} lines from n{numbers[0]}; first gap: {_first_gap(numbers)}")
    d.cli("rm", "ticker")


def test_a_restarted_container_keeps_its_earlier_output(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "--name", "twice", "--log-opt", "max-size=16k", "--log-opt", "max-file=2",
          "busybox", "echo", "a run")
    d.cli("start", "twice")
    d.wait_for(lambda: d.cli("logs", "twice").stdout.count("a run") == 2, what="two runs")
    assert len(_log_files(d, "twice")) == 2  # each run began a file of its own
    d.cli("rm", "twice")


def test_defaults_and_refusals(daemon: Daemon) -> None:
    d = daemon
    d.cli("create", "--name", "plain", "busybox", "true")
    # berthd's defaults (--log-max-size 20m, --log-max-files 5) when the request says nothing
    assert d.inspect("plain")["config"]["log"] == {"max_size": 20 * MIB, "max_files": 5}
    d.cli("create", "--name", "unbounded", "--log-opt", "max-size=-1", "busybox", "true")
    assert d.inspect("unbounded")["config"]["log"] == {"max_size": None, "max_files": 1}
    d.cli("rm", "plain", "unbounded")
    for args, words in [
        (["--log-opt", "compress=true"], ["--log-opt 'compress': unsupported log option"]),
        (["--log-opt", "max-size=1k"], ["max_size must be at least 4096"]),
        (["--log-opt", "max-size=-1", "--log-opt", "max-file=3"], ["needs a max_size"]),
        (["--log-opt", "max-file=none"], ["--log-opt 'max-file'", "'none'"]),
        (["--log-opt", "max-size=lots"], ["--log-opt 'max-size': invalid size 'lots'"]),
        (["--log-driver", "syslog"], ["--log-driver 'syslog'"]),
    ]:
        refused(d.cli("run", "--name", "bad", *args, "busybox", "true", check=False), *words)
    assert "bad" not in d.cli("ps", "-a").stdout


def test_docker_log_options(daemon: Daemon) -> None:
    d = daemon
    docker(d, "run", "-d", "--name", "dlog", "--log-opt", "max-size=16k", "--log-opt",
           "max-file=2", "busybox", "sh", "-c", PACED.format(n=3000, us=300))
    assert docker(d, "wait", "dlog").stdout.strip() == "0"
    info = docker_json(d, "inspect", "dlog")[0]
    assert info["HostConfig"]["LogConfig"] == {
        "Type": "json-file", "Config": {"max-size": str(16 * 1024), "max-file": "2"}}
    numbers = _numbers(docker(d, "logs", "dlog").stdout)
    assert numbers[-1] == 2999 and numbers[0] > 0 and _contiguous(numbers)
    bad = docker(d, "run", "--rm", "--log-driver", "journald", "busybox", "true", check=False)
    assert bad.returncode == 125 and "LogConfig.Type 'journald'" in bad.stderr
    docker(d, "rm", "dlog")


def test_files_are_kept_again_after_berthd_is_killed(own_daemon: Daemon) -> None:
    """Files begun while berthd is down are not kept, but once it is back each new file is
    again, and the oldest still go: the log reads on without a gap."""
    d = own_daemon
    d.cli("run", "-d", "--name", "steady", "--log-opt", "max-size=8k", "--log-opt",
          "max-file=3", "busybox", "sh", "-c", TICK.format(us=5000))
    d.kill9()
    time.sleep(2)
    d.start()
    first = _numbers(d.cli("logs", "steady").stdout)[-1]
    # Once more than three files' worth was written after the restart, the log's files
    # are all from after it.
    d.wait_for(lambda: _numbers(d.cli("logs", "steady").stdout)[0] > first, timeout=60,
               what="three new files")
    numbers = _numbers(d.cli("logs", "steady").stdout)
    assert _contiguous(numbers) and len(numbers) > 300, numbers[:5]
    assert len(_log_files(d, "steady")) == 3
    d.cli("rm", "-f", "steady")


def test_the_files_go_with_the_container(daemon: Daemon) -> None:
    d = daemon
    d.cli("run", "--name", "gone", "--log-opt", "max-size=4k", "--log-opt", "max-file=4",
          "busybox", "sh", "-c", PACED.format(n=1000, us=500))
    directory = d.root / "containers" / d.inspect("gone")["id"]
    assert len(list(directory.glob("ctr.log.*"))) >= 3
    d.cli("rm", "gone")
    assert not Path(directory).exists()
