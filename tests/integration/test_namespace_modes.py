"""docker's --pid, --ipc and --uts: a container's own namespaces (the default), the host's
(admins, or the 'host_namespaces' grant), or another container's (pid, ipc). A shareable
container's /dev/shm is kept on the host, so that joiners (and a pod's members) share it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.client import APIError
from tests.integration.daemon import Daemon, refused
from tests.integration.dockertenants import member_of_new_project
from tests.integration.dockertools import docker

pytestmark = pytest.mark.integration


def out(d: Daemon, *args: str) -> str:
    return d.cli("run", "--rm", *args).stdout


def ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def shm_mounts(d: Daemon) -> list[str]:
    """Mount points of the /dev/shm tmpfs that berthd keeps on the host."""
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if str(d.run_root) in line and line.split()[4].endswith("/shm")]


@pytest.fixture
def target(daemon: Daemon) -> Iterator[str]:
    daemon.cli("run", "-d", "--name", "target", "--ipc", "shareable", "--shm-size", "8m",
               "busybox", "sh", "-c", "echo from-target > /dev/shm/note; exec sleep 1000")
    daemon.wait_for(lambda: "from-target" in daemon.cli(
        "exec", "target", "cat", "/dev/shm/note", check=False).stdout, what="the note")
    yield "target"
    daemon.cli("rm", "-f", "target")


def test_pid_of_another_container(daemon: Daemon, target: str) -> None:
    d = daemon
    ps = out(d, "--pid", "container:target", "busybox", "ps", "-o", "pid,args")
    assert "1 sleep 1000" in " ".join(ps.split()), ps  # its PID 1 is the target's
    mine = out(d, "--pid", "container:target", "busybox", "readlink", "/proc/self/ns/pid")
    assert mine == d.cli("exec", "target", "readlink", "/proc/self/ns/pid").stdout
    assert mine.strip() != ns("pid")
    # both inspects show it, by id, as Docker does
    d.cli("create", "--name", "pid-joiner", "--pid", "container:target", "busybox", "true")
    try:
        tid = d.inspect("target")["id"]
        assert d.inspect("pid-joiner")["config"]["pid_mode"] == f"container:{tid}"
        assert docker(d, "inspect", "-f", "{{.HostConfig.PidMode}}",
                      "pid-joiner").stdout.strip() == f"container:{tid}"
        # the target must run when the joiner starts
        d.cli("stop", "-t", "0", "target")
        res = d.cli("start", "pid-joiner", check=False)  # exit 1, as docker start's
        assert res.returncode == 1 and res.stderr == (
            "berth: cannot join the PID namespace of container target: it is not running\n")
    finally:
        d.cli("rm", "-f", "pid-joiner")


def test_ipc_of_a_shareable_container_shares_its_dev_shm(daemon: Daemon, target: str) -> None:
    d = daemon
    script = "cat /dev/shm/note; readlink /proc/self/ns/ipc; df -k /dev/shm | tail -1"
    note, ipc, df = out(d, "--ipc", "container:target", "busybox", "sh", "-c",
                        script).splitlines()
    assert note == "from-target"
    assert ipc == d.cli("exec", "target", "readlink", "/proc/self/ns/ipc").stdout.strip()
    assert df.split()[1] == str(8 * 1024)  # the target's --shm-size
    # what a joiner writes, the target reads
    out(d, "--ipc", "container:target", "busybox", "sh", "-c", "echo back > /dev/shm/reply")
    assert d.cli("exec", "target", "cat", "/dev/shm/reply").stdout == "back\n"
    tid = d.inspect("target")["id"]
    assert [m for m in shm_mounts(d) if tid in m], "the shareable /dev/shm is not on the host"
    assert docker(d, "inspect", "-f", "{{.HostConfig.IpcMode}}", "target").stdout == \
        "shareable\n"
    # a private container's IPC cannot be joined (Docker's rule too)
    d.cli("run", "-d", "--name", "private-ipc", "busybox", "sleep", "1000")
    try:
        refused(d.cli("run", "--rm", "--ipc", "container:private-ipc", "busybox", "true",
                      check=False), "not shareable", "private-ipc")
    finally:
        d.cli("rm", "-f", "private-ipc")
    # the host's side goes when the target stops (a joiner's copy stays its own)
    d.cli("stop", "-t", "0", "target")
    assert not [m for m in shm_mounts(d) if tid in m]


def test_ipc_none_has_no_dev_shm(daemon: Daemon) -> None:
    mounts = out(daemon, "--ipc", "none", "busybox", "cat", "/proc/mounts")
    assert " /dev/shm " not in mounts and " /dev/mqueue " in mounts
    assert " /dev/shm " in out(daemon, "busybox", "cat", "/proc/mounts")  # the default has


def test_host_namespaces(daemon: Daemon) -> None:
    d = daemon
    note = f"berth-ipc-{uuid.uuid4().hex[:8]}"
    Path("/dev/shm", note).write_text("from the host\n")
    try:
        lines = out(d, "--pid", "host", "--ipc", "host", "--uts", "host", "busybox", "sh", "-c",
                    "for n in pid ipc uts; do readlink /proc/self/ns/$n; done; "
                    f"test -d /proc/{os.getpid()} && echo sees-the-host; cat /dev/shm/{note}; "
                    "hostname; cat /etc/hostname").splitlines()
    finally:
        Path("/dev/shm", note).unlink()
    node = os.uname().nodename
    assert lines == [ns("pid"), ns("ipc"), ns("uts"), "sees-the-host", "from the host", node,
                     node]
    # and the host's processes stay out of reach: container root is no host user
    res = d.cli("run", "--rm", "--pid", "host", "busybox", "kill", "-0", str(os.getpid()),
                check=False)
    assert res.returncode != 0
    refused(d.cli("run", "--rm", "--uts", "host", "--hostname", "x", "busybox", "true",
                  check=False), "uts_mode host", "hostname")


def test_host_namespaces_need_the_grant(daemon: Daemon) -> None:
    with member_of_new_project(daemon, "nsgrant", "ns-member") as member:
        for field in ("pid_mode", "ipc_mode", "uts_mode"):
            with pytest.raises(APIError) as no:
                member.containers.create({"image": "busybox", field: "host"})
            assert no.value.status == 403 and "'host_namespaces'" in no.value.message
        daemon.client.projects.set_grants("nsgrant", ["host_namespaces"])
        member.containers.create({"image": "busybox", "pid_mode": "host"})
        # another project's container is not there to join
        daemon.cli("run", "-d", "--name", "not-theirs", "busybox", "sleep", "1000")
        try:
            with pytest.raises(APIError) as no:
                member.containers.create({"image": "busybox",
                                          "pid_mode": "container:not-theirs"})
            assert no.value.status == 400 and "no such container: not-theirs" in \
                no.value.message
        finally:
            daemon.cli("rm", "-f", "not-theirs")


def test_pod_members_share_dev_shm(daemon: Daemon) -> None:
    d = daemon
    d.cli("pod", "create", "--share", "ipc", "shmpod")
    try:
        d.cli("run", "-d", "--pod", "shmpod", "--name", "writer", "busybox", "sh", "-c",
              "echo posix-shm > /dev/shm/seg; exec sleep 1000")
        d.wait_for(lambda: d.cli("exec", "writer", "cat", "/dev/shm/seg",
                                 check=False).stdout == "posix-shm\n", what="the segment")
        assert out(d, "--pod", "shmpod", "busybox", "cat", "/dev/shm/seg") == "posix-shm\n"
    finally:
        d.cli("pod", "rm", "-f", "shmpod")
    # a pod that shares no IPC keeps a /dev/shm per member
    d.cli("pod", "create", "--share", "none", "apart")
    try:
        d.cli("run", "-d", "--pod", "apart", "--name", "alone", "busybox", "sh", "-c",
              "echo mine > /dev/shm/seg; exec sleep 1000")
        d.wait_for(lambda: d.cli("exec", "alone", "cat", "/dev/shm/seg",
                                 check=False).stdout == "mine\n", what="the segment")
        res = d.cli("run", "--rm", "--pod", "apart", "busybox", "cat", "/dev/shm/seg",
                    check=False)
        assert res.returncode == 1 and "No such file" in res.stderr
    finally:
        d.cli("pod", "rm", "-f", "apart")


def test_bad_modes_are_refused_by_name(daemon: Daemon, target: str) -> None:
    d = daemon
    d.cli("create", "--name", "other", "busybox")
    for flags, words in (
            (["--pid", "bogus"], ("unknown PID mode 'bogus'", "container:NAME")),
            (["--uts", "container:target"], ("unknown UTS mode",)),
            (["--ipc", "container:"], ("names no container",)),
            (["--ipc", "container:nosuch"], ("ipc_mode", "no such container: nosuch")),
            (["--ipc", "none", "--shm-size", "1m"], ("shm_size", "ipc_mode none")),
            (["--ipc", "host", "--sysctl", "kernel.shmmax=1"], ("kernel.shmmax",)),
            (["--pid", "container:target", "--network", "container:other"],
             ("different containers",)),
            (["--pod", "somepod", "--pid", "host"], ("--pid", "--pod"))):
        refused(d.cli("run", "--rm", *flags, "busybox", "true", check=False), *words)
    res = docker(d, "run", "--rm", "--ipc", "bogus", "busybox", "true", check=False)
    assert res.returncode == 125 and "HostConfig.IpcMode: unknown IPC mode 'bogus'" in res.stderr
    assert sorted(c["name"] for c in d.client.containers.list(all=True)) == ["other", "target"]
    d.cli("rm", "other")
    # one container, whether named or by an id prefix
    tid = d.inspect("target")["id"]
    assert out(d, "--pid", "container:target", "--network", f"container:{tid[:12]}",
               "busybox", "sh", "-c", "ps -o pid,args | grep -c '^ *1 sleep'") == "1\n"


def test_docker_cli_joins(daemon: Daemon, target: str) -> None:
    d = daemon
    res = docker(d, "run", "--rm", "--pid", "container:target", "--ipc", "container:target",
                 "busybox", "sh", "-c", "cat /dev/shm/note; ps -o pid,args | grep '^ *1 '")
    assert res.stdout.split() == ["from-target", "1", "sleep", "1000"]
    docker(d, "create", "--name", "dj", "--uts", "host", "--ipc", "none", "busybox")
    try:
        shown = docker(d, "inspect", "-f", "{{.HostConfig.IpcMode}} {{.HostConfig.UTSMode}} "
                       "{{.HostConfig.PidMode}}|", "dj").stdout
        assert shown == "none host |\n"
    finally:
        docker(d, "rm", "dj")


def test_a_shareable_dev_shm_outlives_berthd(own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("run", "-d", "--name", "keeper", "--ipc", "shareable", "busybox", "sh", "-c",
          "echo kept > /dev/shm/k; exec sleep 1000")
    d.wait_for(lambda: d.cli("exec", "keeper", "cat", "/dev/shm/k", check=False).stdout ==
               "kept\n", what="the file")
    d.kill9()
    d.start()
    assert out(d, "--ipc", "container:keeper", "busybox", "cat", "/dev/shm/k") == "kept\n"
    d.cli("rm", "-f", "keeper")
    assert shm_mounts(d) == []
