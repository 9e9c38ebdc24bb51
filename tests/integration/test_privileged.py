"""--privileged: every capability, no seccomp filter, nothing masked, the host's devices; for
admins or a project with the 'privileged' grant. Still inside the container's user
namespace: container root stays an unprivileged user of the host."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from berth.client import APIError
from tests.integration.daemon import Daemon
from tests.integration.dockertenants import member_of_new_project
from tests.integration.dockertools import docker

pytestmark = pytest.mark.integration
STATUS = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status"


def status(text: str) -> dict[str, str]:
    return dict(line.split(":\t") for line in text.splitlines() if ":\t" in line)


def all_caps() -> str:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return f"{(1 << (min(last, 40) + 1)) - 1:016x}"  # Berth names caps up to 40


def host_nodes() -> set[str]:
    skip = {"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"}
    return {e.name for e in os.scandir("/dev") if e.name not in skip and not e.is_dir(
        follow_symlinks=False) and (stat.S_ISCHR(e.stat(follow_symlinks=False).st_mode)
                                    or stat.S_ISBLK(e.stat(follow_symlinks=False).st_mode))}


def test_privileged_container(daemon: Daemon) -> None:
    d = daemon
    got = status(d.cli("run", "--rm", "--privileged", "busybox", "sh", "-c", STATUS).stdout)
    assert got == {"CapEff": all_caps(), "NoNewPrivs": "0", "Seccomp": "0"}
    plain = status(d.cli("run", "--rm", "busybox", "sh", "-c", STATUS).stdout)
    assert plain["CapEff"] != all_caps() and plain["Seccomp"] == "2" and \
        plain["NoNewPrivs"] == "1"
    script = ("ls /dev; echo --; grep -c ' /proc/kcore ' /proc/mounts; "
              "grep ' /sys ' /proc/mounts | cut -d' ' -f4; cat /proc/self/uid_map")
    listing, rest = d.cli("run", "--rm", "--privileged", "busybox", "sh", "-c",
                          script).stdout.split("--\n")
    assert host_nodes() <= set(listing.split())  # the host's devices
    masked, sys_options, uid_map = rest.splitlines()
    assert masked == "0" and sys_options.startswith("rw,")
    inside, outside, _ = uid_map.split()
    assert inside == "0" and outside != "0"  # its root is no root of the host
    # exec gets what the container has
    d.cli("run", "-d", "--name", "priv", "--privileged", "busybox", "sleep", "1000")
    try:
        assert status(d.cli("exec", "priv", "sh", "-c", STATUS).stdout)["CapEff"] == all_caps()
        assert d.inspect("priv")["config"]["privileged"] is True
        assert docker(d, "inspect", "-f", "{{.HostConfig.Privileged}}", "priv").stdout == \
            "true\n"
    finally:
        d.cli("rm", "-f", "priv")


def test_docker_cli_privileged(daemon: Daemon) -> None:
    res = docker(daemon, "run", "--rm", "--privileged", "busybox", "sh", "-c", STATUS)
    assert status(res.stdout)["Seccomp"] == "0"


def test_privileged_needs_the_grant(daemon: Daemon) -> None:
    with member_of_new_project(daemon, "privgrant", "priv-member") as member:
        with pytest.raises(APIError) as no:
            member.containers.create({"image": "busybox", "privileged": True})
        assert no.value.status == 403 and "'privileged'" in no.value.message
        daemon.client.projects.set_grants("privgrant", ["privileged"])
        assert member.containers.create({"image": "busybox", "privileged": True})["id"]
