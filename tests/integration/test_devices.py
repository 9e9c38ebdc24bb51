"""Host devices (docker's --device HOST[:CONTAINER][:rwm]): admins', or a project's with the
'devices' grant. The device cgroup is what lets the container use the node, with the
permissions asked for; the node is the host's, bind-mounted where it goes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.client import APIError
from tests.integration.daemon import Daemon
from tests.integration.dockertenants import member_of_new_project
from tests.integration.dockertools import docker

pytestmark = pytest.mark.integration
# /dev/loop-control's numbers: not among the devices every container may use (as /dev/null
# or /dev/net/tun are), and opening it needs no privilege.
MAJOR, MINOR = 10, 237
OPEN_RW = "exec 3<>{0} && echo opened-rw"
OPEN_R = "exec 4<{0} && echo opened-r"


@pytest.fixture
def node() -> Iterator[Path]:
    """A device node anyone may open on the host (container root is an unprivileged host
    user): only the device cgroup stands between a container and it."""
    top = Path(tempfile.mkdtemp(prefix="berth-dev-", dir="/var/tmp"))
    top.chmod(0o755)
    path = top / "ctl"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(MAJOR, MINOR))
    except PermissionError:
        shutil.rmtree(top)
        pytest.skip("this host does not let root make device nodes under /var/tmp")
    path.chmod(0o666)
    try:
        yield path
    finally:
        shutil.rmtree(top, ignore_errors=True)


def sh(d: Daemon, flags: list[str], script: str) -> tuple[int, str]:
    res = d.cli("run", "--rm", *flags, "busybox", "sh", "-c", script, check=False)
    return res.returncode, res.stdout + res.stderr


def test_the_device_cgroup_lets_in_what_was_asked(daemon: Daemon, node: Path) -> None:
    d = daemon
    # the node alone (a bind mount of its directory) is not enough: the cgroup denies it
    code, out = sh(d, ["-v", f"{node.parent}:/host"], OPEN_RW.format("/host/ctl"))
    assert code != 0 and "Operation not permitted" in out
    code, out = sh(d, ["--device", f"{node}:/dev/ctl"],
                   f"stat -c '%t:%T' /dev/ctl; {OPEN_RW.format('/dev/ctl')}")
    assert code == 0 and out.split() == [f"{MAJOR:x}:{MINOR:x}", "opened-rw"], out
    # read only: reading opens, writing is refused by the cgroup
    code, out = sh(d, ["--device", f"{node}:/dev/ctl:r"],
                   f"{OPEN_R.format('/dev/ctl')}; {OPEN_RW.format('/dev/ctl')}")
    assert "opened-r" in out and "opened-rw" not in out and "Operation not permitted" in out
    # shown by both inspects, resolved to the node's numbers
    d.cli("create", "--name", "dev-shown", "--device", f"{node}:/dev/ctl:rw", "busybox")
    try:
        dev = d.inspect("dev-shown")["config"]["devices"][0]
        assert (dev["type"], dev["major"], dev["minor"], dev["permissions"]) == \
            ("c", MAJOR, MINOR, "rw")
        shown = json.loads(docker(d, "inspect", "-f", "{{json .HostConfig.Devices}}",
                                  "dev-shown").stdout)
        assert shown == [{"PathOnHost": str(node), "PathInContainer": "/dev/ctl",
                          "CgroupPermissions": "rw"}]
    finally:
        d.cli("rm", "dev-shown")


def test_docker_cli_device(daemon: Daemon, node: Path) -> None:
    res = docker(daemon, "run", "--rm", "--device", f"{node}:/dev/ctl", "busybox", "sh", "-c",
                 OPEN_RW.format("/dev/ctl"))
    assert res.stdout == "opened-rw\n"


def test_bad_devices_are_refused_by_name(daemon: Daemon, node: Path) -> None:
    for flag, words in ((f"{node}:/dev/ctl:rx", "invalid permissions 'rx'"),
                        (f"{node}:/etc/ctl", "a device goes under /dev/"),
                        (str(node), "not under /dev/"),
                        ("/etc/passwd:/dev/x", "/etc/passwd is not a device node"),
                        ("dev/null:/dev/x", "absolute path")):
        res = daemon.cli("run", "--rm", "--device", flag, "busybox", "true", check=False)
        assert res.returncode == 125, (flag, res.stderr)
        assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not [c for c in daemon.client.containers.list(all=True)]


def test_devices_need_the_grant(daemon: Daemon, node: Path) -> None:
    spec = {"image": "busybox", "command": ["true"],
            "devices": [{"path_on_host": str(node), "path_in_container": "/dev/ctl"}]}
    with member_of_new_project(daemon, "devgrant", "dev-member") as member:
        for host_path in (str(node), "/no/such/node"):  # nothing learnt about host paths
            with pytest.raises(APIError) as refused:
                member.containers.create({**spec, "devices": [
                    {"path_on_host": host_path, "path_in_container": "/dev/ctl"}]})
            assert refused.value.status == 403 and "'devices'" in refused.value.message
        daemon.client.projects.set_grants("devgrant", ["devices"])
        member.containers.create(spec)
        with pytest.raises(APIError) as refused:
            member.containers.create({**spec, "devices": [
                {"path_on_host": "/no/such/node", "path_in_container": "/dev/ctl"}]})
        assert refused.value.status == 400 and "not a device node" in refused.value.message
