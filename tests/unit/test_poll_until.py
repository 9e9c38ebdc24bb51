"""procutil.poll_until: sees a condition that comes true at once without a long sleep, and
gives up at its timeout."""

from __future__ import annotations

import pytest

from berth.runtime.oci import procutil


def test_a_condition_a_moment_away_is_seen_after_short_sleeps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(procutil.time, "sleep", slept.append)
    answers = iter([False, False, True])
    assert procutil.poll_until(lambda: next(answers), timeout=5.0)
    assert slept == [procutil.POLL_FIRST, procutil.POLL_FIRST * 2]


def test_the_sleeps_double_up_to_the_cap_and_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    monkeypatch.setattr(procutil.time, "sleep", sleep)
    monkeypatch.setattr(procutil.time, "monotonic", lambda: clock[0])
    assert not procutil.poll_until(lambda: False, timeout=1.0)
    assert max(slept) == procutil.POLL_CAP and slept == sorted(slept)
    assert 1.0 <= clock[0] < 1.0 + procutil.POLL_CAP + 1e-9
