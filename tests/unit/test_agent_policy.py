"""Restart-policy, back-off and exit-code rules of the agent (pure functions)."""

from __future__ import annotations

import pytest

from berth.agent import policy
from berth.store.models import Container


def box(policy_name: str = "no", retries: int = 0, exit_code: int | None = 1,
        restarts: int = 0, started: float = 100.0, finished: float = 101.0) -> Container:
    return Container(spec={"restart_policy": {"name": policy_name, "max_retries": retries}},
                     exit_code=exit_code, restart_count=restarts, started_at=started,
                     finished_at=finished)


@pytest.mark.parametrize(("name", "retries", "code", "restarts", "expected"), [
    ("no", 0, 1, 0, False),
    ("always", 0, 0, 50, True),
    ("unless-stopped", 0, 0, 3, True),
    ("on-failure", 0, 0, 0, False),  # a clean exit is not a failure
    ("on-failure", 0, 3, 99, True),  # no limit
    ("on-failure", 2, 3, 1, True),
    ("on-failure", 2, 3, 2, False),  # limit reached
])
def test_should_restart(name: str, retries: int, code: int, restarts: int,
                        expected: bool) -> None:
    assert policy.should_restart(box(name, retries, code, restarts)) is expected


def test_backoff_doubles_on_quick_failures_and_is_capped() -> None:
    delays = [policy.backoff(box(restarts=n)) for n in range(12)]
    assert delays[0] == pytest.approx(0.1)
    assert delays[1] == pytest.approx(0.2) and delays[3] == pytest.approx(0.8)
    assert delays[-1] == policy.BACKOFF_MAX
    assert delays == sorted(delays)


def test_backoff_resets_after_a_long_run() -> None:
    assert policy.backoff(box(restarts=9, started=0.0, finished=60.0)) == policy.BACKOFF_FIRST


@pytest.mark.parametrize(("message", "code"), [
    ('exec: "nosuch": executable file not found in $PATH', 127),
    ('unable to start container process: exec: "/x": stat /x: no such file or directory', 127),
    ('unable to start container process: exec: "/etc/passwd": permission denied', 126),
    ("error mounting \"/srv/missing\" to rootfs: no such file or directory", 125),
    ("cgroup: permission denied", 125),
])
def test_start_failure_code(message: str, code: int) -> None:
    assert policy.start_failure_code(message) == code
