"""Containers outlive the daemon: kill -9 at any point, exits while it is down, reboots."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from berth.client import APIError
from berth.service.names import new_id
from berth.store.db import Store
from berth.store.models import Action, Container
from tests.integration.daemon import BIN, Daemon

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_kill9_leaves_containers_running_and_restart_adopts_them(own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
          "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done")
    pid = d.inspect("ticker")["state"]["pid"]
    d.kill9()
    time.sleep(0.5)
    assert _alive(pid), "the container died with the daemon"
    d.start()
    state = d.inspect("ticker")["state"]
    assert state["status"] == "running" and state["pid"] == pid  # the same process, adopted
    # logs kept flowing while the daemon was away and still do
    before = d.cli("logs", "ticker").stdout.count("tick")
    d.wait_for(lambda: d.cli("logs", "ticker").stdout.count("tick") > before, what="new logs")
    # wait and logs -f work on the adopted container
    waiter = subprocess.Popen([str(BIN / "berth"), "wait", "ticker"], env=d.env,
                              stdout=subprocess.PIPE, text=True)
    follower = subprocess.Popen([str(BIN / "berth"), "logs", "-f", "--tail", "1", "ticker"],
                                env=d.env, stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    d.cli("kill", "-s", "KILL", "ticker")
    assert waiter.communicate(timeout=20)[0].strip() == "137"
    out, _ = follower.communicate(timeout=20)
    assert out.startswith("tick")
    d.cli("rm", "ticker")


def test_exit_while_the_daemon_is_down_is_recorded(own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("run", "-d", "--name", "quitter", "busybox", "sh", "-c", "sleep 1; exit 7")
    d.cli("run", "-d", "--name", "oomer", "--memory", "16m", "busybox", "sh", "-c",
          "sleep 1; head -c 100m /dev/zero | tail")
    d.kill9()
    time.sleep(3)
    d.start()
    state = d.inspect("quitter")["state"]
    assert state["status"] == "exited" and state["exit_code"] == 7
    oom = d.inspect("oomer")["state"]
    assert oom["status"] == "exited" and oom["oom_killed"] and oom["exit_code"] == 137
    assert d.cli("wait", "quitter").stdout.strip() == "7"


def test_restart_policy_applies_to_exits_while_down(own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("run", "-d", "--name", "phoenix", "--restart", "always", "busybox", "sh", "-c",
          "sleep 1; exit 1")
    first = d.inspect("phoenix")["state"]["pid"]
    d.kill9()
    time.sleep(2)
    d.start()
    d.wait_for(lambda: d.inspect("phoenix")["restart_count"] >= 1, what="a restart")
    assert d.inspect("phoenix")["state"]["pid"] != first
    d.cli("rm", "-f", "phoenix")


def test_half_done_create_and_remove_are_finished_after_a_crash(own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("create", "--name", "to-remove", "busybox", "true")
    doomed = d.inspect("to-remove")
    image_id = doomed["image_id"]
    d.stop()
    # Make the store look as a kill -9 in the middle of two operations would leave it.
    store = Store(f"sqlite:///{d.root / 'berth.db'}")
    half = new_id()
    now = time.time()
    with store.session() as s:
        template = s.get(Container, doomed["id"])
        s.add(Container(id=half, project_id="default", name="half-made", host=template.host,
                        image_id=image_id, image_ref="busybox", spec=dict(template.spec),
                        labels={}, created_at=now, desired="created", status="creating"))
        s.add(Action(project_id="default", container_id=half, action="create", params={},
                     request_id="r1", user="admin", state="running", started_at=now))
        template.desired = "removed"
        s.add(Action(project_id="default", container_id=template.id, action="remove",
                     params={"force": True}, request_id="r2", user="admin", state="running",
                     started_at=now))
    store.close()
    d.start()
    d.wait_for(lambda: d.inspect("half-made")["state"]["status"] == "created",
               what="the half-made create to finish")
    d.wait_for(lambda: d.cli("inspect", "to-remove", check=False).returncode != 0,
               what="the half-done remove to finish")
    assert d.cli("start", "-a", "half-made").returncode == 0
    for act in d.client.containers.actions("half-made"):
        assert act["state"] == "success", act
    d.cli("rm", "half-made")


def test_a_start_that_ran_before_a_crash_is_not_run_again(own_daemon: Daemon) -> None:
    """berthd killed after the runtime started the container but before the store recorded
    it, and the process ran to its end meanwhile: the resumed start records that run; it
    does not run the command a second time."""
    d = own_daemon
    d.cli("volume", "create", "runs")
    d.cli("run", "--name", "once", "-v", "runs:/runs", "busybox", "sh", "-c",
          "echo ran >> /runs/log; exit 3", check=False)
    info = d.inspect("once")
    start = [a for a in d.client.containers.actions("once") if a["action"] == "start"][-1]
    d.stop()
    # the store as that crash leaves it: the start still running, the container not started
    store = Store(f"sqlite:///{d.root / 'berth.db'}")
    with store.session() as s:
        row = s.get(Container, info["id"])
        row.status, row.exit_code, row.pid = "created", None, 0
        act = s.get(Action, start["id"])
        act.state, act.finished_at = "running", None
    store.close()
    d.start()
    d.wait_for(lambda: d.inspect("once")["state"]["status"] == "exited", what="the exit")
    assert d.inspect("once")["state"]["exit_code"] == 3
    assert d.client.containers.actions("once")[-1]["state"] == "success"
    assert d.cli("run", "--rm", "-v", "runs:/runs", "busybox", "cat", "/runs/log").stdout == \
        "ran\n"
    d.cli("rm", "once")


def test_orphaned_runtime_traces_are_cleaned_up(own_daemon: Daemon) -> None:
    """A remove that crashed after deleting the row but before the host was clean."""
    d = own_daemon
    d.cli("run", "-d", "--name", "orphan", "busybox", "sleep", "600")
    info = d.inspect("orphan")
    d.kill9()
    store = Store(f"sqlite:///{d.root / 'berth.db'}")
    with store.session() as s:
        s.delete(s.get(Container, info["id"]))
    store.close()
    d.start()
    d.wait_for(lambda: not _alive(info["state"]["pid"]), what="the orphan to be stopped")
    d.wait_for(lambda: not (d.root / "containers" / info["id"]).exists(),
               what="the orphan's files to be removed")


def test_kill9_at_random_points_leaves_a_consistent_store(own_daemon: Daemon) -> None:
    d = own_daemon
    rng = random.Random(1234)
    stop = threading.Event()

    def churn(tag: str) -> None:
        n = 0
        while not stop.is_set():
            name = f"churn-{tag}-{n}"
            n += 1
            try:
                d.client.containers.create(
                    {"image": "busybox", "name": name, "command": ["sleep", "30"]}, start=True)
                d.client.containers.stop(name, timeout=0)
                d.client.containers.remove(name, force=True)
            except Exception:  # noqa: BLE001 - the daemon is being killed under us
                time.sleep(0.05)

    for round_ in range(6):
        workers = [threading.Thread(target=churn, args=(f"{round_}{w}",)) for w in range(2)]
        stop.clear()
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.2, 1.2))
        d.kill9()
        stop.set()
        for w in workers:
            w.join(30)
        d.start()
        _settled(d)
    _assert_consistent(d)


def _settled(d: Daemon) -> None:
    """Every action finished: nothing is left pending or half-done."""
    store = Store(f"sqlite:///{d.root / 'berth.db'}")
    try:
        def done() -> bool:
            with store.session() as s:
                unfinished = s.query(Action).filter(Action.state.in_(("pending", "running")))
                return unfinished.count() == 0
        d.wait_for(done, timeout=60, what="every action to finish")
    finally:
        store.close()


def _assert_consistent(d: Daemon) -> None:
    containers = d.client.containers.list(all=True)
    for c in containers:
        assert c["state"]["status"] != "creating", c
        if c["state"]["status"] == "running":
            assert _alive(c["state"]["pid"]), c
    known = {c["id"] for c in containers}
    on_disk = {p.name for p in (d.root / "containers").iterdir()}
    assert on_disk <= known, f"container dirs without a row: {on_disk - known}"


def test_simulated_reboot_marks_containers_exited_and_applies_policies(
        own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("run", "-d", "--name", "plain", "busybox", "sleep", "600")
    d.cli("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "600")
    pids = [d.inspect(n)["state"]["pid"] for n in ("plain", "always")]
    d.kill9()
    _reboot(d, pids)
    d.start()
    plain = d.inspect("plain")["state"]
    assert plain["status"] == "exited" and plain["exit_code"] == 255 and plain["error"]
    d.wait_for(lambda: d.inspect("always")["state"]["status"] == "running",
               what="the always container to come back")
    assert d.inspect("always")["state"]["pid"] not in pids
    # the plain one can be started again: its filesystem survived the "reboot"
    d.cli("start", "plain")
    assert d.inspect("plain")["state"]["running"]


def _reboot(d: Daemon, pids: list[int]) -> None:
    """What a reboot does to a host: processes gone, mounts gone, the run-root tmpfs empty."""
    root = str(d.root)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"conmon") and root.encode() in b" ".join(cmd):
            os.kill(int(pid), signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if root in line.split()[4]]
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=True)
    for entry in d.run_root.iterdir():
        subprocess.run(["rm", "-rf", str(entry)], check=True)


def test_api_errors_do_not_kill_the_daemon(own_daemon: Daemon) -> None:
    d = own_daemon
    with pytest.raises(APIError):
        d.client.containers.get("nope")
    assert d.client.info()["pid"] == d.proc.pid
