"""Local volumes with driver options (docker volume create --opt, compose's driver_opts): a
tmpfs or a host directory mounted on the volume while containers use it, as Docker's local
driver does, and nothing else."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.client import APIError
from tests.integration.daemon import Daemon
from tests.integration.dockertenants import member_of_new_project
from tests.integration.dockertools import docker, docker_env

pytestmark = pytest.mark.integration
COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"


@pytest.fixture
def host_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="berth-volopt-", dir="/var/tmp"))
    path.chmod(0o777)  # container root is an unprivileged host uid
    (path / "precious").write_text("the host's own file\n")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def data_dir(d: Daemon, name: str) -> Path:
    return d.root / "volumes" / "default" / name / "_data"


def mounted(path: Path) -> bool:
    return any(line.split()[4] == str(path)
               for line in Path("/proc/self/mountinfo").read_text().splitlines())


def unmounted_soon(path: Path) -> bool:
    """The last user's exit is recorded, then the mount goes: a moment after `stop`."""
    deadline = time.monotonic() + 10
    while mounted(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not mounted(path)


def in_container(d: Daemon, volume: str, script: str) -> str:
    return d.cli("run", "--rm", "-v", f"{volume}:/v", "busybox", "sh", "-c", script).stdout


def test_tmpfs_volume_is_shared_while_used_and_empty_after(own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
          "--opt", "o=size=1m,mode=0770,uid=1000", "scratch")
    assert d.client.volumes.get("scratch")["options"] == {
        "type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0770,uid=1000"}
    line = in_container(d, "scratch", "grep ' /v ' /proc/mounts; stat -c '%u %a' /v")
    assert "tmpfs /v tmpfs" in line and "size=1024k" in line and "nosuid" in line
    assert line.splitlines()[-1] == "1000 770"  # uid= names the container's user
    assert not mounted(data_dir(d, "scratch"))  # nobody uses it: gone with its files
    d.cli("run", "-d", "--name", "holder", "-v", "scratch:/v", "busybox", "sh", "-c",
          "echo kept > /v/f; sleep 300")
    try:
        deadline = time.monotonic() + 10
        while "kept" not in in_container(d, "scratch", "cat /v/f 2>/dev/null || true"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert mounted(data_dir(d, "scratch"))
        # its size holds: 2 MiB do not fit
        out = in_container(d, "scratch", "head -c 2097152 /dev/zero > /v/big; "
                                          "echo $?; stat -c %s /v/big; rm /v/big")
        status, size = out.split()
        assert status != "0" and int(size) <= 1 << 20
        # berthd killed and back: the holder runs on, its volume still mounted
        d.kill9()
        d.start()
        assert in_container(d, "scratch", "cat /v/f") == "kept\n"
        d.cli("stop", "-t", "1", "holder")
        assert unmounted_soon(data_dir(d, "scratch"))
        assert in_container(d, "scratch", "ls -A /v") == ""  # a new tmpfs: empty
    finally:
        d.cli("rm", "-f", "holder", check=False)
    d.cli("volume", "rm", "scratch")
    assert not data_dir(d, "scratch").parent.exists()


def test_bind_volume_shows_a_host_directory_and_never_removes_it(
        own_daemon: Daemon, host_dir: Path) -> None:
    d = own_daemon
    docker(d, "volume", "create", "--opt", "type=none", "--opt", "o=bind",
           "--opt", f"device={host_dir}", "hostv")
    options = docker(d, "volume", "inspect", "--format", "{{json .Options}}", "hostv").stdout
    assert f'"device":"{host_dir}"' in options
    out = docker(d, "run", "--rm", "-v", "hostv:/v", "busybox", "sh", "-c",
                 "cat /v/precious; echo from-the-container > /v/made").stdout
    assert out == "the host's own file\n"
    assert (host_dir / "made").read_text() == "from-the-container\n"
    before = tree(host_dir)
    # a container still holding it when the volume goes: refused, and then removed with it
    docker(d, "run", "-d", "--name", "bh", "-v", "hostv:/v", "busybox", "sleep", "300")
    assert docker(d, "volume", "rm", "hostv", check=False).returncode != 0
    docker(d, "rm", "-f", "-v", "bh")
    assert unmounted_soon(data_dir(d, "hostv"))
    docker(d, "volume", "rm", "hostv")
    assert tree(host_dir) == before and not mounted(data_dir(d, "hostv"))
    # read-only: the container cannot write through it
    docker(d, "volume", "create", "--opt", "type=none", "--opt", "o=bind,ro",
           "--opt", f"device={host_dir}", "hostro")
    res = docker(d, "run", "--rm", "-v", "hostro:/v", "busybox", "touch", "/v/x", check=False)
    assert res.returncode != 0 and not (host_dir / "x").exists()
    docker(d, "volume", "rm", "hostro")
    assert tree(host_dir) == before


@pytest.mark.skipif(not Path(COMPOSE).exists(), reason="docker-compose is not installed")
def test_compose_driver_opts(own_daemon: Daemon, host_dir: Path, tmp_path: Path) -> None:
    d = own_daemon
    (tmp_path / "docker-compose.yml").write_text(f"""\
version: "3"
services:
  app:
    image: busybox
    command: sh -c "cat /data/precious && grep ' /scratch ' /proc/mounts"
    volumes: ["data:/data", "scratch:/scratch"]
volumes:
  data:
    driver_opts: {{type: none, o: bind, device: "{host_dir}"}}
  scratch:
    driver_opts: {{type: tmpfs, device: tmpfs, o: "size=2m"}}
""")
    env = docker_env(d)
    run = subprocess.run([COMPOSE, "-p", "volopt", "up", "--no-color"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "the host's own file" in run.stdout and "size=2048k" in run.stdout
    down = subprocess.run([COMPOSE, "-p", "volopt", "down", "-v"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert (host_dir / "precious").read_text() == "the host's own file\n"
    assert d.client.volumes.list() == []


def test_refusals(daemon: Daemon, host_dir: Path) -> None:
    d = daemon
    for opts, needle in (
            (["type=nfs", "o=addr=10.0.0.1", "device=:/x"], "type 'nfs' are not supported"),
            (["type=ext4", "device=/dev/vda"], "type 'ext4' are not supported"),
            (["o=size=1m"], "no type"),
            (["type=tmpfs", "o=size=lots"], "o=size='lots'"),
            (["type=tmpfs", "o=size=1m,size=2m"], "at most once"),
            (["type=tmpfs", "o=mode=999"], "octal mode"),
            (["type=tmpfs", "o=uid=70000"], "ids 0 to 65535"),
            (["type=tmpfs", "o=exec,suid,dev"], "o='suid'"),
            (["type=none", "o=bind", "device=relative/dir"], "absolute host path"),
            (["type=none", "o=remount", f"device={host_dir}"], "o=bind"),
            (["type=none", "o=bind", "device=/no/such/dir"], "not a directory"),
            (["type=none", "o=bind", f"device={d.root}"], "Berth's own storage"),
            (["foo=bar"], "'foo' is not supported")):
        args = [a for opt in opts for a in ("--opt", opt)]
        res = d.cli("volume", "create", *args, "refused", check=False)
        assert res.returncode == 125, (opts, res.stderr)
        assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        dres = docker(d, "volume", "create", *args, "refused", check=False)
        assert dres.returncode != 0 and needle in dres.stderr, dres.stderr
    assert "refused" not in {v["name"] for v in d.client.volumes.list()}


def test_a_bind_volume_needs_the_host_mounts_grant(daemon: Daemon, host_dir: Path) -> None:
    admin = daemon.client
    bind = {"type": "none", "o": "bind", "device": str(host_dir)}
    with member_of_new_project(daemon, "volgrant", "vol-member") as member:
        for device in (str(host_dir), "/no/such/dir"):  # nothing learnt about host paths
            with pytest.raises(APIError) as refused:
                member.volumes.create("mine", options={**bind, "device": device})
            assert refused.value.status == 403 and "'host_mounts'" in refused.value.message
        # a tmpfs needs no grant
        member.volumes.create("scratch", options={"type": "tmpfs", "o": "size=1m"})
        admin.projects.set_grants("volgrant", ["host_mounts"])
        member.volumes.create("mine", options=bind)
        spec = {"image": "busybox", "command": ["cat", "/v/precious"],
                "mounts": [{"type": "volume", "source": "mine", "target": "/v"}]}
        member.containers.create(spec)
        # the grant taken back: the volume is a host path no new container may mount
        admin.projects.set_grants("volgrant", [])
        with pytest.raises(APIError) as refused:
            member.containers.create(spec)
        assert refused.value.status == 403 and "the volume mine" in refused.value.message
    assert (host_dir / "precious").exists()


def test_a_mount_can_make_its_volume_with_options(daemon: Daemon) -> None:
    """docker's --mount volume-opt / volume-label (Mounts[].VolumeOptions.DriverConfig): the
    volume the mount makes gets them."""
    d = daemon
    out = docker(d, "run", "--rm", "--mount",
                 "type=volume,src=mk,dst=/v,volume-opt=type=tmpfs,volume-opt=o=size=2m,"
                 "volume-label=made=by-mount", "busybox", "grep", " /v ", "/proc/mounts").stdout
    assert "tmpfs /v tmpfs" in out and "size=2048k" in out
    vol = d.client.volumes.get("mk")
    assert vol["options"] == {"type": "tmpfs", "o": "size=2m"}
    assert vol["labels"] == {"made": "by-mount"}
    d.client.volumes.remove("mk")
    # an anonymous one too, removed with its --rm container
    out = d.cli("run", "--rm", "--mount", "type=volume,dst=/v,volume-opt=type=tmpfs",
                "busybox", "grep", "-c", " /v tmpfs ", "/proc/mounts").stdout
    assert out == "1\n" and d.client.volumes.list() == []
    for spec, words in (("type=volume,dst=/v,volume-opt=type=nfs", "type 'nfs'"),
                        ("type=bind,src=/tmp,dst=/v,volume-opt=type=tmpfs", "volume mounts"),
                        ("type=volume,dst=/v,volume-driver=nfs", "only 'local'"),
                        ("type=volume,dst=/v,volume-opt=type", "KEY=VALUE")):
        res = d.cli("run", "--rm", "--mount", spec, "busybox", "true", check=False)
        assert res.returncode == 125 and words in res.stderr, (spec, res.stderr)
        dres = docker(d, "run", "--rm", "--mount", spec, "busybox", "true", check=False)
        assert dres.returncode != 0, (spec, dres.stderr)
    assert d.client.volumes.list() == []
