"""Health checks, pure: the request's validation, the merge with the image's HEALTHCHECK, the
state machine (streak, start period, log bound) and how health is shown."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from berth.api import views
from berth.api.docker import shapes, translate
from berth.cli import convert
from berth.cli.output import status_text
from berth.cli.parser import build
from berth.errors import InvalidArgument
from berth.service import health
from berth.service.health import Check, HealthcheckRequest, Result
from berth.service.specs import ContainerCreate

NS = 1_000_000_000


def image(**hc: Any) -> dict[str, Any]:
    return {"architecture": "amd64", "os": "linux", "config": {"Healthcheck": hc},
            "rootfs": {"type": "layers", "diff_ids": []}}


def check(retries: int = 3, start_period: float = 0.0, start_interval: float = 0.0) -> Check:
    return Check(test=("CMD", "true"), interval=1.0, timeout=1.0, start_period=start_period,
                 start_interval=start_interval, retries=retries)


def ok(at: float = 100.0, output: str = "fine") -> Result:
    return Result(at, at + 0.1, 0, output)


def fail(at: float = 100.0, code: int = 1) -> Result:
    return Result(at, at + 0.1, code, "bad")


# -- the request ---------------------------------------------------------------------------


@pytest.mark.parametrize("test", [
    ["CMD", "true"], ["CMD", "/bin/check", "--quick"], ["CMD-SHELL", "test -f /tmp/ok"],
    ["NONE"], [],
])
def test_accepted_tests(test: list[str]) -> None:
    assert HealthcheckRequest(test=test).test == test


@pytest.mark.parametrize(("test", "words"), [
    (["true"], "unknown kind 'true'"),
    (["CMD"], "CMD needs a command"),
    (["CMD-SHELL", ""], "CMD-SHELL needs a command"),
    (["NONE", "x"], "takes no arguments"),
    (["CMD", "a\x00b"], "NUL"),
])
def test_refused_tests(test: list[str], words: str) -> None:
    with pytest.raises(ValidationError) as err:
        HealthcheckRequest(test=test)
    assert words in str(err.value)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("interval", -1, "cannot be negative"),
    ("timeout", 0.0001, "cannot be less than 1 ms"),
    ("start_period", -0.5, "cannot be negative"),
    ("start_interval", float("inf"), "finite"),
    ("interval", float("nan"), "finite"),
    ("interval", 10**9, "at most"),
    ("retries", -1, "cannot be negative"),
])
def test_refused_values(field: str, value: float, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        HealthcheckRequest(test=["CMD", "true"], **{field: value})
    assert words in str(err.value)
    assert field in str(err.value)


def test_zero_and_small_values_are_accepted() -> None:
    req = HealthcheckRequest(test=["CMD", "true"], interval=0, timeout=0.001, start_period=0,
                             retries=0)
    assert (req.interval, req.timeout, req.retries) == (0, 0.001, 0)


def test_create_request_takes_a_healthcheck_and_refuses_unknown_fields() -> None:
    req = ContainerCreate(image="busybox", healthcheck={"test": ["CMD", "true"], "interval": 2})
    assert req.healthcheck is not None and req.healthcheck.interval == 2
    with pytest.raises(ValidationError):
        ContainerCreate(image="busybox", healthcheck={"test": ["CMD", "true"], "every": 2})


# -- defaults and the merge with the image -------------------------------------------------


def test_defaults_are_dockers() -> None:
    c = health.resolve({"healthcheck": {"test": ["CMD", "true"], "interval": 0, "timeout": 0,
                                        "start_period": 0, "start_interval": 0, "retries": 0}})
    assert c is not None
    assert (c.interval, c.timeout, c.start_period, c.retries) == (30.0, 30.0, 0.0, 3)
    assert health.resolve({"healthcheck": {"test": ["NONE"]}}) is None
    assert health.resolve({"healthcheck": None}) is None
    assert health.resolve({}) is None  # a container made before health checks


def test_no_request_inherits_the_image_check() -> None:
    img = image(Test=["CMD-SHELL", "true"], Interval=2 * NS, Timeout=NS // 2,
                StartPeriod=5 * NS, Retries=4)
    merged = health.merge(None, img)
    assert merged == {"test": ["CMD-SHELL", "true"], "interval": 2.0, "timeout": 0.5,
                      "start_period": 5.0, "start_interval": 0.0, "retries": 4}


def test_none_disables_the_image_check() -> None:
    img = image(Test=["CMD-SHELL", "true"], Interval=2 * NS)
    own = HealthcheckRequest(test=["NONE"]).model_dump()
    merged = health.merge(own, img)
    assert merged is not None and merged["test"] == ["NONE"]
    assert health.resolve({"healthcheck": merged}) is None


def test_unset_parts_come_from_the_image() -> None:
    img = image(Test=["CMD-SHELL", "from-image"], Interval=2 * NS, Retries=7)
    merged = health.merge(HealthcheckRequest(interval=0.5).model_dump(), img)
    assert merged is not None
    assert merged["test"] == ["CMD-SHELL", "from-image"]
    assert (merged["interval"], merged["retries"]) == (0.5, 7)
    own = HealthcheckRequest(test=["CMD", "true"]).model_dump()
    assert health.merge(own, img)["interval"] == 2.0  # type: ignore[index]


def test_no_test_anywhere_is_no_check() -> None:
    assert health.merge(HealthcheckRequest(interval=1).model_dump(), image()) is None
    assert health.merge(None, {"config": {}}) is None


@pytest.mark.parametrize("hc", [
    {"Test": "CMD true"}, {"Test": ["BOGUS", "x"]}, {"Test": ["CMD"]}, {"Test": []},
])
def test_a_bad_image_check_is_ignored(hc: dict[str, Any]) -> None:
    assert health.merge(None, image(**hc)) is None


def test_bad_image_values_fall_back_to_the_defaults() -> None:
    merged = health.merge(None, image(Test=["CMD", "true"], Interval=-5, Timeout="1s",
                                      Retries=-2, StartPeriod=10**30))
    assert merged is not None
    assert (merged["interval"], merged["timeout"], merged["retries"],
            merged["start_period"]) == (0.0, 0.0, 0, 0.0)


def test_argv_of_each_kind() -> None:
    shell = Check(("CMD-SHELL", "test -f /x"), 1, 1, 0, 0, 3)
    assert shell.argv() == ["/bin/sh", "-c", "test -f /x"]
    assert shell.argv(["/bin/bash", "-ec"]) == ["/bin/bash", "-ec", "test -f /x"]
    assert Check(("CMD", "/check", "-q"), 1, 1, 0, 0, 3).argv(["/bin/bash"]) == ["/check", "-q"]


def test_start_interval_applies_while_starting_in_the_start_period() -> None:
    c = check(start_period=10, start_interval=0.2)
    assert c.delay("starting", started_at=100, now=105) == 0.2
    assert c.delay("healthy", started_at=100, now=105) == 1.0
    assert c.delay("starting", started_at=100, now=111) == 1.0
    assert check(start_period=10).delay("starting", 100, 105) == 1.0


# -- the state machine ---------------------------------------------------------------------


def test_success_is_healthy_with_no_streak() -> None:
    h = health.apply(None, ok(), check(), started_at=99)
    assert h["status"] == "healthy" and h["failing_streak"] == 0
    assert h["log"] == [{"start": 100.0, "end": 100.1, "exit_code": 0, "output": "fine"}]


def test_retries_failures_in_a_row_make_it_unhealthy() -> None:
    h = None
    for n in range(1, 3):
        h = health.apply(h, fail(), check(retries=3), started_at=0)
        assert (h["status"], h["failing_streak"]) == ("starting", n)
    h = health.apply(h, fail(code=-1), check(retries=3), started_at=0)
    assert (h["status"], h["failing_streak"]) == ("unhealthy", 3)
    h = health.apply(h, fail(), check(retries=3), started_at=0)
    assert (h["status"], h["failing_streak"]) == ("unhealthy", 4)
    h = health.apply(h, ok(), check(retries=3), started_at=0)
    assert (h["status"], h["failing_streak"]) == ("healthy", 0)


def test_a_healthy_container_stays_healthy_until_retries_failures() -> None:
    h = health.apply(None, ok(), check(retries=2), started_at=0)
    h = health.apply(h, fail(), check(retries=2), started_at=0)
    assert (h["status"], h["failing_streak"]) == ("healthy", 1)
    h = health.apply(h, fail(), check(retries=2), started_at=0)
    assert h["status"] == "unhealthy"


def test_failures_in_the_start_period_do_not_count_while_starting() -> None:
    c = check(retries=1, start_period=10)
    h = health.apply(None, fail(at=105), c, started_at=100)
    assert (h["status"], h["failing_streak"]) == ("starting", 0)
    assert len(h["log"]) == 1  # logged all the same
    h = health.apply(h, fail(at=111), c, started_at=100)  # after the start period
    assert (h["status"], h["failing_streak"]) == ("unhealthy", 1)


def test_failures_in_the_start_period_count_once_healthy() -> None:
    c = check(retries=1, start_period=10)
    h = health.apply(None, ok(at=101), c, started_at=100)
    h = health.apply(h, fail(at=102), c, started_at=100)
    assert (h["status"], h["failing_streak"]) == ("unhealthy", 1)


def test_the_log_keeps_the_last_five() -> None:
    h = None
    for i in range(8):
        h = health.apply(h, ok(at=float(i), output=str(i)), check(), started_at=0)
    assert h is not None and [e["output"] for e in h["log"]] == ["3", "4", "5", "6", "7"]


def test_output_is_bounded() -> None:
    h = health.apply(None, Result(1, 2, 0, "x" * 10_000), check(), started_at=0)
    out = h["log"][0]["output"]
    assert out == "x" * health.MAX_OUTPUT + "..."
    assert health.bounded_output(b"\xff" + b"ok") == "\ufffdok"
    assert health.bounded_output(b"ok", truncated=True) == "ok..."


def test_at_start() -> None:
    assert health.at_start({"healthcheck": {"test": ["CMD", "true"]}}) == health.initial()
    assert health.at_start({"healthcheck": {"test": ["NONE"]}}) is None
    assert health.at_start({}) is None


# -- shown ---------------------------------------------------------------------------------


def row(status: str = "running", state: dict[str, Any] | None = None) -> Any:
    return SimpleNamespace(status=status, health=state, started_at=100.0, created_at=90.0,
                           finished_at=None, exit_code=None)


def test_docker_status_text() -> None:
    healthy = {"status": "healthy", "failing_streak": 0, "log": []}
    assert shapes.status_text(row(state=healthy), now=105) == "Up 5 seconds (healthy)"
    assert shapes.status_text(row(state=health.initial()), now=105) == \
        "Up 5 seconds (health: starting)"
    assert shapes.status_text(row(state={"status": "unhealthy"}), now=105) == \
        "Up 5 seconds (unhealthy)"
    assert shapes.status_text(row(), now=105) == "Up 5 seconds"
    assert shapes.status_text(row("paused", healthy), now=105) == "Up 5 seconds (Paused)"


def test_docker_health_and_config_shapes() -> None:
    state = {"status": "unhealthy", "failing_streak": 3,
             "log": [{"start": 1.5, "end": 2.0, "exit_code": -1, "output": "timeout"}]}
    assert shapes.health_state(state) == {
        "Status": "unhealthy", "FailingStreak": 3,
        "Log": [{"Start": "1970-01-01T00:00:01.5Z", "End": "1970-01-01T00:00:02Z",
                 "ExitCode": -1, "Output": "timeout"}]}
    assert shapes.health_state(None) is None
    cfg = shapes.healthcheck_config({"test": ["CMD", "true"], "interval": 0.5, "timeout": 0,
                                     "start_period": 2, "start_interval": 0, "retries": 4})
    assert cfg == {"Test": ["CMD", "true"], "Interval": NS // 2, "StartPeriod": 2 * NS,
                   "Retries": 4}


def test_native_view_of_health() -> None:
    state = {"status": "healthy", "failing_streak": 0,
             "log": [{"start": 0.0, "end": 1.0, "exit_code": 0, "output": ""}]}
    shown = views.health(state)
    assert shown is not None and shown["log"][0]["start"] == "1970-01-01T00:00:00.000000Z"
    assert views.health(None) is None


def test_cli_status_text() -> None:
    box = {"state": {"status": "running", "started_at": None,
                     "health": {"status": "healthy"}}}
    assert status_text(box).endswith(" (healthy)")
    box["state"]["health"] = {"status": "starting"}
    assert status_text(box).endswith(" (health: starting)")
    box["state"]["health"] = None
    assert "(" not in status_text(box)


# -- translations --------------------------------------------------------------------------


def test_docker_healthcheck_translation() -> None:
    req = translate.container_create({"Image": "busybox", "Healthcheck": {
        "Test": ["CMD-SHELL", "true"], "Interval": NS // 5, "Timeout": NS, "StartPeriod": 0,
        "StartInterval": 0, "Retries": 2}})
    assert req.healthcheck is not None
    assert req.healthcheck.test == ["CMD-SHELL", "true"]
    assert (req.healthcheck.interval, req.healthcheck.timeout, req.healthcheck.retries) == (
        0.2, 1.0, 2)
    none = translate.container_create({"Image": "busybox", "Healthcheck": {"Test": ["NONE"]}})
    assert none.healthcheck is not None and none.healthcheck.test == ["NONE"]
    assert translate.container_create({"Image": "busybox"}).healthcheck is None


@pytest.mark.parametrize(("hc", "words"), [
    ({"Test": ["CMD", "true"], "Interval": 5}, "Healthcheck.Interval: cannot be less "
                                               "than 1ms"),
    ({"Test": ["CMD", "true"], "Timeout": -NS}, "Healthcheck.Timeout"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "Healthcheck.Retries: cannot be "
                                               "negative"),
    ({"Test": ["BOGUS"]}, "unknown kind"),
    ({"Test": ["CMD", "true"], "Every": 5}, "Healthcheck.Every"),
    ({"Test": "CMD true"}, "Healthcheck.Test: expected a list"),
])
def test_docker_healthcheck_refusals(hc: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        translate.container_create({"Image": "busybox", "Healthcheck": hc})
    assert words in err.value.message


def test_cli_health_flags() -> None:
    def spec(*argv: str) -> dict[str, Any]:
        line = ["run", *argv, "busybox"]
        args = build(line).parse_args(line)
        return convert.container_spec(args)

    assert "healthcheck" not in spec()
    assert spec("--no-healthcheck")["healthcheck"] == {"test": ["NONE"]}
    assert spec("--health-cmd", "test -f /ok", "--health-interval", "500ms",
                "--health-timeout", "1m30s", "--health-retries", "2")["healthcheck"] == {
        "test": ["CMD-SHELL", "test -f /ok"], "interval": 0.5, "timeout": 90.0, "retries": 2}
    assert spec("--health-start-period", "2s")["healthcheck"] == {"test": [],
                                                                  "start_period": 2.0}
    with pytest.raises(convert.UsageError):
        spec("--health-interval", "soon")
    with pytest.raises(convert.UsageError):
        spec("--no-healthcheck", "--health-cmd", "true")
