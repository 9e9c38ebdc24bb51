"""Health checks on real containers: the berth CLI and SDK, the image's HEALTHCHECK, kill -9 of
berthd, and the docker CLI and docker-py. Short intervals; every wait polls to a deadline."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import Daemon
from tests.integration.dockertools import docker, dockerpy

pytestmark = pytest.mark.integration

DEADLINE = 30.0


def health(d: Daemon, name: str) -> dict[str, Any] | None:
    return d.inspect(name)["state"]["health"]


def wait_health(d: Daemon, name: str, status: str) -> dict[str, Any]:
    return d.wait_for(lambda: (health(d, name) or {}).get("status") == status and
                      health(d, name), DEADLINE, what=f"{name} to be {status}")


def ps_line(d: Daemon, name: str, *args: str) -> str:
    lines = [ln for ln in d.cli("ps", *args).stdout.splitlines() if ln.endswith(" " + name)]
    return lines[0] if lines else ""


@contextlib.contextmanager
def removed(d: Daemon, *names: str) -> Iterator[None]:
    try:
        yield
    finally:
        for name in names:
            d.cli("rm", "-f", name, check=False)


def test_a_passing_check_becomes_healthy_and_shows_in_inspect_and_ps(daemon: Daemon) -> None:
    d = daemon
    with removed(d, "hc-ok", "hc-later"):
        cid = d.cli("run", "-d", "--name", "hc-ok", "--health-cmd", "echo fine",
                    "--health-interval", "200ms", "busybox", "sleep", "300").stdout.strip()
        # a check an hour away: starting until then
        d.cli("run", "-d", "--name", "hc-later", "--health-cmd", "true", "--health-interval",
              "1h", "busybox", "sleep", "300")
        box = d.inspect("hc-later")
        assert box["state"]["health"] == {"status": "starting", "failing_streak": 0, "log": []}
        assert "(health: starting)" in ps_line(d, "hc-later")
        state = wait_health(d, "hc-ok", "healthy")
        assert state["failing_streak"] == 0
        entry = state["log"][-1]
        assert entry["exit_code"] == 0 and entry["output"] == "fine\n"
        assert entry["start"] <= entry["end"]
        assert 1 <= len(state["log"]) <= 5
        config = d.inspect("hc-ok")["config"]["healthcheck"]
        assert config["test"] == ["CMD-SHELL", "echo fine"] and config["interval"] == 0.2
        line = ps_line(d, "hc-ok")
        assert line.split("   ")[0] == cid[:12] and "(healthy)" in line
        # the list filter
        assert d.cli("ps", "-q", "--filter", "health=healthy").stdout.split() == [cid[:12]]
        starting = d.cli("ps", "-q", "--filter", "health=starting").stdout.split()
        assert cid[:12] not in starting and len(starting) == 1
        assert cid[:12] not in d.cli("ps", "-q", "--filter", "health=none").stdout.split()
        bad = d.cli("ps", "--filter", "health=sickly", check=False)
        assert bad.returncode == 125 and "health=sickly" in bad.stderr
        # stopped: no health; started again: checked again from the start
        d.cli("stop", "-t", "1", "hc-ok")
        assert health(d, "hc-ok") is None
        assert cid[:12] in d.cli("ps", "-aq", "--filter", "health=none").stdout.split()
        d.cli("start", "hc-ok")
        wait_health(d, "hc-ok", "healthy")


def test_failing_check_is_unhealthy_until_it_passes(daemon: Daemon) -> None:
    d = daemon
    with removed(d, "hc-file"):
        d.cli("run", "-d", "--name", "hc-file", "--health-cmd", "test -f /tmp/ok",
              "--health-interval", "200ms", "--health-retries", "2", "busybox", "sleep", "300")
        state = wait_health(d, "hc-file", "unhealthy")
        assert state["failing_streak"] >= 2
        assert all(e["exit_code"] == 1 for e in state["log"])
        assert "(unhealthy)" in ps_line(d, "hc-file")
        d.cli("exec", "hc-file", "touch", "/tmp/ok")
        state = wait_health(d, "hc-file", "healthy")
        assert state["failing_streak"] == 0 and state["log"][-1]["exit_code"] == 0


def test_a_hanging_check_is_ended_at_its_timeout_and_fails(daemon: Daemon) -> None:
    d = daemon
    with removed(d, "hc-hang"):
        d.client.containers.create({
            "image": "busybox", "name": "hc-hang", "command": ["sleep", "300"],
            "healthcheck": {"test": ["CMD", "sleep", "100"], "timeout": 1, "interval": 0.2,
                            "retries": 2}}, start=True)
        state = wait_health(d, "hc-hang", "unhealthy")
        assert state["failing_streak"] >= 2
        for entry in state["log"]:
            assert entry["exit_code"] == -1
            assert entry["output"] == "Health check exceeded timeout (1s)"
        # each timed-out check was ended: never more than the one now running
        top = json.loads(d.cli("top", "hc-hang", "--output", "json").stdout)
        hanging = [p for p in top["processes"] if "sleep 100" in " ".join(p)]
        assert len(hanging) <= 1, top


def test_the_image_healthcheck_is_inherited_and_none_disables_it(daemon: Daemon,
                                                                 tmp_path: Path) -> None:
    d = daemon
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\n"
        "HEALTHCHECK --interval=200ms --timeout=5s --retries=2 CMD test -f /tmp/ok\n")
    last = list(d.client.builds.build(str(tmp_path), tags=["hc-image:1"]))[-1]
    assert last["status"] == "done", last
    with removed(d, "hc-inherit", "hc-none", "hc-override"):
        d.cli("run", "-d", "--name", "hc-none", "--no-healthcheck", "hc-image:1", "sleep", "300")
        d.cli("run", "-d", "--name", "hc-override", "--health-cmd", "true", "hc-image:1",
              "sleep", "300")
        d.cli("run", "-d", "--name", "hc-inherit", "hc-image:1", "sleep", "300")
        config = d.inspect("hc-inherit")["config"]["healthcheck"]
        assert config == {"test": ["CMD-SHELL", "test -f /tmp/ok"], "interval": 0.2,
                          "timeout": 5.0, "start_period": 0.0, "start_interval": 0.0,
                          "retries": 2}
        wait_health(d, "hc-inherit", "unhealthy")
        # a new test with the image's interval and retries
        wait_health(d, "hc-override", "healthy")
        assert d.inspect("hc-override")["config"]["healthcheck"]["interval"] == 0.2
        # checked by now if it were checked at all
        box = d.inspect("hc-none")
        assert box["config"]["healthcheck"]["test"] == ["NONE"]
        assert box["state"]["health"] is None
        assert "(" not in ps_line(d, "hc-none")
    d.cli("image", "rm", "hc-image:1")


def test_health_survives_kill9_and_checking_resumes(own_daemon: Daemon) -> None:
    d = own_daemon
    d.cli("run", "-d", "--name", "hc-survivor", "--health-cmd", "test -f /tmp/ok",
          "--health-interval", "200ms", "--health-retries", "1", "busybox", "sleep", "300")
    before = wait_health(d, "hc-survivor", "unhealthy")
    d.kill9()
    d.start()
    after = health(d, "hc-survivor")
    assert after is not None and after["status"] == "unhealthy"
    assert after["log"][0]["start"] >= before["log"][0]["start"]  # the same record, kept
    d.cli("exec", "hc-survivor", "touch", "/tmp/ok")
    wait_health(d, "hc-survivor", "healthy")
    d.cli("rm", "-f", "hc-survivor")


def test_docker_cli_health_options_inspect_ps_filter_and_events(daemon: Daemon) -> None:
    d = daemon
    since = time.time() - 1
    with removed(d, "dk-hc", "dk-plain"):
        docker(d, "run", "-d", "--name", "dk-hc", "--health-cmd", "true", "--health-interval",
               "1s", "busybox", "sleep", "100")
        docker(d, "run", "-d", "--name", "dk-plain", "busybox", "sleep", "100")

        def status() -> str:
            return docker(d, "inspect", "--format", "{{.State.Health.Status}}",
                          "dk-hc").stdout.strip()

        d.wait_for(lambda: status() == "healthy", DEADLINE, what="docker healthy")
        hc = json.loads(docker(d, "inspect", "--format", "{{json .Config.Healthcheck}}",
                               "dk-hc").stdout)
        assert hc == {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000}
        state = json.loads(docker(d, "inspect", "--format", "{{json .State.Health}}",
                                  "dk-hc").stdout)
        assert state["FailingStreak"] == 0 and state["Log"][-1]["ExitCode"] == 0
        assert state["Log"][-1]["Start"].endswith("Z")
        out = docker(d, "ps", "--filter", "health=healthy", "--format",
                     "{{.Names}}|{{.Status}}").stdout.splitlines()
        assert len(out) == 1 and out[0].startswith("dk-hc|Up ") and out[0].endswith("(healthy)")
        none = docker(d, "ps", "--filter", "health=none", "--format", "{{.Names}}").stdout
        assert none.split() == ["dk-plain"]
        plain = json.loads(docker(d, "inspect", "--format", "{{json .State}}",
                                  "dk-plain").stdout)
        assert "Health" not in plain
        bad = docker(d, "ps", "--filter", "health=sickly", check=False)
        assert bad.returncode != 0 and "health=sickly" in bad.stderr
        out = docker(d, "events", "--since", f"{since:.9f}", "--until",
                     str(int(time.time()) + 1), "--filter", "container=dk-hc", "--filter",
                     "event=health_status", "--format", "{{.Action}}").stdout
        assert out.splitlines()[0] == "health_status: healthy"


def test_dockerpy_run_with_a_healthcheck(daemon: Daemon) -> None:
    client = dockerpy(daemon)
    box = client.containers.run("busybox", "sleep 100", detach=True, name="py-hc",
                                healthcheck={"test": ["CMD", "true"], "interval": 200_000_000,
                                             "retries": 1})
    try:
        def status() -> str | None:
            box.reload()
            return (box.attrs["State"].get("Health") or {}).get("Status")

        daemon.wait_for(lambda: status() == "healthy", DEADLINE, what="docker-py healthy")
        assert box.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "true"]
        assert [c.name for c in client.containers.list(filters={"health": "healthy"})] == \
            ["py-hc"]
    finally:
        box.remove(force=True)
