"""Block IO limits (--blkio-weight, --blkio-weight-device, --device-{read,write}-{bps,iops})
and --domainname on real containers: the values reach the container's cgroup files, update
changes the weight live, inspect shows them (berth and docker), and what this host cannot
apply is refused at create with a 400, one line and exit 125."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from berth.client import APIError
from tests.integration.daemon import Daemon, refused
from tests.integration.dockertools import docker, docker_json, dockerpy

pytestmark = pytest.mark.integration

CGROUP = Path("/sys/fs/cgroup")
MiB = 1024 * 1024
V1 = (CGROUP / "blkio").is_dir()  # v1 or hybrid: runc drives the v1 blkio controller


@dataclass(frozen=True)
class Disk:
    path: str
    major: int
    minor: int
    scheduler: str  # its active IO scheduler ("" none)

    @property
    def number(self) -> str:
        return f"{self.major}:{self.minor}"


def _scheduler(name: str) -> str:
    sched = Path(f"/sys/block/{name}/queue/scheduler")
    words = sched.read_text().split() if sched.exists() else []
    return next((w.strip("[]") for w in words if w.startswith("[")), "")


@pytest.fixture(scope="module")
def disk() -> Disk:
    """A whole disk of this host with a node in /dev (a real one before loop and zram)."""
    names = sorted(os.listdir("/sys/block"), key=lambda n: (n.startswith(("loop", "zram")), n))
    for name in names:
        with contextlib.suppress(OSError):
            st = (Path("/dev") / name).stat()
            if stat.S_ISBLK(st.st_mode):
                return Disk(f"/dev/{name}", os.major(st.st_rdev), os.minor(st.st_rdev),
                            _scheduler(name))
    pytest.skip("this host has no block device (none in /sys/block with a node in /dev)")


def _cgroup_dir(cid: str) -> Path:
    return CGROUP / "blkio" / "berth" / cid if V1 else CGROUP / "berth" / cid


def _throttles(cid: str, disk: Disk) -> dict[str, str]:
    """The container's throttle settings for the disk, as v1's files have them."""
    d, dev = _cgroup_dir(cid), disk.number
    if V1:
        out = {}
        for kind in ("read_bps", "write_bps", "read_iops", "write_iops"):
            lines = (d / f"blkio.throttle.{kind}_device").read_text().splitlines()
            out[kind] = next((line for line in lines if line.startswith(dev + " ")), "")
        return out
    line = next((ln for ln in (d / "io.max").read_text().splitlines()
                 if ln.startswith(dev + " ")), "")
    values = dict(kv.split("=") for kv in line.split()[1:])
    return {f"{op}_{unit}": f"{dev} {values.get(op[0] + unit, '')}"
            for op in ("read", "write") for unit in ("bps", "iops")}


def _weight(cid: str) -> int:
    """The container's default block IO weight, from whichever file runc wrote."""
    d = _cgroup_dir(cid)
    for name in ("blkio.weight", "blkio.bfq.weight", "io.bfq.weight"):
        with contextlib.suppress(FileNotFoundError):
            text = (d / name).read_text().split()
            return int(text[-1])  # v2's io.bfq.weight: "default 300"
    raise AssertionError(f"no weight file in {d}")


def _can_weight(daemon: Daemon) -> bool:
    return "blkio-weight" in daemon.client.info()["capabilities"]


def _running(daemon: Daemon, name: str) -> dict[str, Any] | None:
    info = daemon.inspect(name)
    return info if info["state"]["status"] == "running" else None


@contextlib.contextmanager
def _removed(daemon: Daemon, *names: str) -> Iterator[None]:
    try:
        yield
    finally:
        for name in names:
            daemon.cli("rm", "-f", name, check=False)


def _no_container(daemon: Daemon, name: str) -> None:
    """A refused create leaves nothing behind."""
    assert all(c["name"] != name for c in daemon.client.containers.list(all=True))


def test_throttles_and_weight_reach_the_cgroup_and_inspect(daemon: Daemon, disk: Disk) -> None:
    name = "blk-native"
    weight = ["--blkio-weight", "300"] if _can_weight(daemon) else []
    with _removed(daemon, name):
        daemon.cli("run", "-d", "--name", name, *weight,
                   "--device-read-bps", f"{disk.path}:1mb",
                   "--device-write-bps", f"{disk.path}:2m",
                   "--device-read-iops", f"{disk.path}:100",
                   "--device-write-iops", f"{disk.path}:200", "busybox", "sleep", "300")
        cid = daemon.wait_for(lambda: _running(daemon, name), what="running")["id"]
        dev = disk.number
        assert _throttles(cid, disk) == {
            "read_bps": f"{dev} {MiB}", "write_bps": f"{dev} {2 * MiB}",
            "read_iops": f"{dev} 100", "write_iops": f"{dev} 200"}
        config = daemon.inspect(name)["config"]
        assert config["device_read_bps"] == [{"path": disk.path, "rate": MiB,
                                              "major": disk.major, "minor": disk.minor}]
        assert config["device_write_iops"][0]["rate"] == 200
        if not weight:
            return
        assert _weight(cid) == 300 and config["blkio_weight"] == 300
        daemon.cli("update", "--blkio-weight", "500", name)  # live
        assert _weight(cid) == 500
        info = daemon.inspect(name)
        assert info["config"]["blkio_weight"] == 500 and info["state"]["status"] == "running"
        assert _throttles(cid, disk)["read_bps"] == f"{dev} {MiB}"  # the update kept them


def test_docker_cli_run_update_and_inspect(daemon: Daemon, disk: Disk) -> None:
    name = "blk-docker"
    weight = ["--blkio-weight", "300"] if _can_weight(daemon) else []
    with _removed(daemon, name):
        cid = docker(daemon, "run", "-d", "--name", name, *weight,
                     "--device-read-bps", f"{disk.path}:1mb",
                     "--device-write-iops", f"{disk.path}:150",
                     "busybox", "sleep", "300").stdout.strip()
        host = docker_json(daemon, "inspect", name)[0]["HostConfig"]
        assert host["BlkioDeviceReadBps"] == [{"Path": disk.path, "Rate": MiB}]
        assert host["BlkioDeviceWriteIOps"] == [{"Path": disk.path, "Rate": 150}]
        assert host["BlkioDeviceWriteBps"] is None and host["BlkioWeightDevice"] == []
        throttles = _throttles(cid, disk)
        assert throttles["read_bps"] == f"{disk.number} {MiB}"
        assert throttles["write_iops"] == f"{disk.number} 150"
        if not weight:
            return
        assert host["BlkioWeight"] == 300 and _weight(cid) == 300
        docker(daemon, "update", "--blkio-weight", "700", name)
        assert _weight(cid) == 700
        out = docker(daemon, "inspect", "-f", "{{.HostConfig.BlkioWeight}}", name).stdout
        assert out.strip() == "700"


def test_a_weight_this_host_cannot_apply_is_refused_at_create(daemon: Daemon,
                                                               disk: Disk) -> None:
    """Per-device weights need the disk's IO scheduler to be bfq (runc writes
    blkio.bfq.weight_device or io.bfq.weight, which the kernel refuses for another)."""
    if disk.scheduler == "bfq":
        pytest.skip(f"{disk.path} uses bfq here: its per-device weight can be applied")
    name = "blk-weight-dev"
    with _removed(daemon, name):
        _refused_weight_device(daemon, disk, name)


def _refused_weight_device(daemon: Daemon, disk: Disk, name: str) -> None:
    res = daemon.cli("run", "--name", name, "--blkio-weight-device", f"{disk.path}:200",
                     "busybox", "true", check=False)
    refused(res, "blkio_weight_device", disk.path, "IO scheduler", "bfq")
    _no_container(daemon, name)
    res = docker(daemon, "run", "--name", name, "--blkio-weight-device", f"{disk.path}:200",
                 "busybox", "true", check=False)
    assert res.returncode == 125 and "blkio_weight_device" in res.stderr, res
    _no_container(daemon, name)
    if not _can_weight(daemon):
        refused(daemon.cli("run", "--blkio-weight", "300", "busybox", "true", check=False),
                "blkio_weight", "cannot weight")


@pytest.mark.parametrize(("args", "words"), [
    (["--device-read-bps", "/dev/null:1mb"], ["device_read_bps", "/dev/null",
                                               "not a block device"]),
    (["--device-write-bps", "/no/such/disk:1mb"], ["device_write_bps", "/no/such/disk",
                                                    "not a block device"]),
    (["--device-read-iops", "dev/vda:10"], ["device_read_iops", "must be absolute"]),
    (["--device-read-bps", "DISK:0"], ["device_read_bps", "rate", "greater than 0"]),
    (["--device-write-iops", "DISK:1mb"], ["--device-write-iops", "DEVICE:IOPS"]),
    (["--blkio-weight", "5"], ["blkio_weight", "from 10 to 1000"]),
    (["--blkio-weight-device", "DISK:5000"], ["blkio_weight_device", "weight"]),
    (["--domainname", "bad_name.example"], ["invalid domainname", "bad_name.example"]),
])
def test_bad_values_are_refused_by_name(daemon: Daemon, disk: Disk, args: list[str],
                                        words: list[str]) -> None:
    args = [a.replace("DISK", disk.path) for a in args]
    name = "blk-bad"
    with _removed(daemon, name):
        refused(daemon.cli("run", "--name", name, *args, "busybox", "true", check=False),
                *words)
        _no_container(daemon, name)


def test_refusals_are_400_on_both_apis(daemon: Daemon) -> None:
    with pytest.raises(APIError) as err:
        daemon.client.containers.create({"image": "busybox", "device_read_bps": [
            {"path": "/dev/null", "rate": MiB}]})
    assert err.value.status == 400 and "/dev/null" in err.value.message
    import docker as docker_sdk

    with pytest.raises(docker_sdk.errors.APIError) as derr:
        dockerpy(daemon).containers.create("busybox", device_write_iops=[
            {"Path": "/dev/null", "Rate": 10}])
    assert derr.value.status_code == 400, derr.value
    assert "device_write_iops: /dev/null" in str(derr.value)
    res = docker(daemon, "run", "--device-read-bps", "/dev/null:1mb", "busybox", "true",
                 check=False)
    assert res.returncode == 125, res
    assert "device_read_bps: /dev/null is not a block device" in res.stderr
    res = docker(daemon, "run", "--domainname", "a..b", "busybox", "true", check=False)
    assert res.returncode == 125 and "invalid domainname" in res.stderr, res


def test_domainname_inside_the_container_and_in_inspect(daemon: Daemon) -> None:
    out = daemon.cli("run", "--rm", "-h", "web", "--domainname", "example.org", "busybox",
                     "sh", "-c", "hostname -d; cat /proc/sys/kernel/domainname; hostname")
    assert out.stdout.split() == ["example.org", "example.org", "web"], out
    name = "blk-domain"
    with _removed(daemon, name):
        docker(daemon, "create", "--name", name, "--domainname", "corp.example", "busybox")
        assert docker_json(daemon, "inspect", name)[0]["Config"]["Domainname"] == \
            "corp.example"
        assert daemon.inspect(name)["config"]["domainname"] == "corp.example"
    seen = docker(daemon, "run", "--rm", "-h", "db", "--domainname", "corp.example",
                  "busybox", "sh", "-c", "hostname -d; cat /proc/sys/kernel/domainname")
    assert seen.stdout.split() == ["corp.example", "corp.example"], seen
    # without one: the kernel's default, as in Docker
    out = daemon.cli("run", "--rm", "busybox", "cat", "/proc/sys/kernel/domainname").stdout
    assert out.strip() == "(none)"
