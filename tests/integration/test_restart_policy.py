"""Restart policies (no, on-failure[:N], always, unless-stopped), their back-off, and update."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.daemon import Daemon

pytestmark = pytest.mark.integration

SETTLE = 2.0  # long enough for several more restarts if a policy were wrongly applied


def _state(daemon: Daemon, name: str) -> dict[str, Any]:
    return daemon.inspect(name)


def _exited(daemon: Daemon, name: str) -> dict[str, Any] | None:
    info = _state(daemon, name)
    return info if info["state"]["status"] == "exited" else None


def _wait_restarts(daemon: Daemon, name: str, at_least: int) -> dict[str, Any]:
    return daemon.wait_for(
        lambda: (lambda i: i if i["restart_count"] >= at_least else None)(_state(daemon, name)),
        timeout=20, what=f"{name} to restart {at_least} times")


def test_on_failure_with_max_retries(daemon: Daemon) -> None:
    name = "rp-onfail-2"
    try:
        daemon.cli("run", "-d", "--name", name, "--restart", "on-failure:2", "busybox",
                   "sh", "-c", "exit 3")
        _wait_restarts(daemon, name, 2)
        daemon.wait_for(lambda: _exited(daemon, name), timeout=20, what="exited")
        time.sleep(SETTLE)  # a third restart (a bug) would happen in this time
        info = _state(daemon, name)
        assert info["state"]["status"] == "exited"
        assert info["state"]["exit_code"] == 3
        assert info["restart_count"] == 2
        assert info["config"]["restart_policy"] == {"name": "on-failure", "max_retries": 2}
    finally:
        daemon.cli("rm", "-f", name, check=False)


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_restarts_until_stopped(daemon: Daemon, policy: str) -> None:
    name = f"rp-{policy}"
    try:
        daemon.cli("run", "-d", "--name", name, "--restart", policy, "busybox",
                   "sh", "-c", "sleep 0.1")
        _wait_restarts(daemon, name, 2)
        daemon.cli("stop", "-t", "1", name)
        stopped = daemon.wait_for(lambda: _exited(daemon, name), timeout=20, what="stopped")
        count = stopped["restart_count"]
        time.sleep(SETTLE)
        info = _state(daemon, name)
        assert info["state"]["status"] == "exited", info["state"]
        assert info["restart_count"] == count, "restarted after berth stop"
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_no_policy_does_not_restart(daemon: Daemon) -> None:
    name = "rp-no"
    try:
        daemon.cli("run", "-d", "--name", name, "--restart", "no", "busybox",
                   "sh", "-c", "exit 1")
        daemon.wait_for(lambda: _exited(daemon, name), timeout=20, what="exited")
        time.sleep(SETTLE)
        info = _state(daemon, name)
        assert info["state"]["status"] == "exited"
        assert info["state"]["exit_code"] == 1
        assert info["restart_count"] == 0
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_on_failure_does_not_restart_after_success(daemon: Daemon) -> None:
    name = "rp-onfail-ok"
    try:
        daemon.cli("run", "-d", "--name", name, "--restart", "on-failure", "busybox",
                   "sh", "-c", "exit 0")
        daemon.wait_for(lambda: _exited(daemon, name), timeout=20, what="exited")
        time.sleep(SETTLE)
        info = _state(daemon, name)
        assert info["state"]["status"] == "exited"
        assert info["state"]["exit_code"] == 0
        assert info["restart_count"] == 0
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_update_changes_restart_policy(daemon: Daemon) -> None:
    name = "rp-update"
    try:
        daemon.cli("create", "--name", name, "busybox", "sh", "-c", "exit 3")
        assert daemon.inspect(name)["config"]["restart_policy"]["name"] == "no"
        daemon.cli("update", "--restart", "on-failure:1", name)
        assert daemon.inspect(name)["config"]["restart_policy"] == {
            "name": "on-failure", "max_retries": 1}
        # The new policy is the one the agent applies.
        daemon.cli("start", name)
        _wait_restarts(daemon, name, 1)
        daemon.wait_for(lambda: _exited(daemon, name), timeout=20, what="exited")
        time.sleep(SETTLE)
        info = _state(daemon, name)
        assert info["state"]["status"] == "exited"
        assert info["restart_count"] == 1
    finally:
        daemon.cli("rm", "-f", name, check=False)


def test_restart_back_off(daemon: Daemon) -> None:
    name = "rp-backoff"
    try:
        daemon.cli("run", "-d", "--name", name, "--restart", "always", "busybox", "true")
        _wait_restarts(daemon, name, 1)
        time.sleep(SETTLE)
        count = _state(daemon, name)["restart_count"]
        # 100 ms doubling: about 5 restarts in this time; without back-off, dozens.
        assert 1 <= count < 10, f"restart_count {count}: no back-off between restarts?"
    finally:
        daemon.cli("rm", "-f", name, check=False)
