"""Container health checks, pure: the request, its merge with the image's HEALTHCHECK, and the
state machine the agent's monitor (agent/health.py) drives with each check's result.

A container's check is recorded in its spec at create (``spec["healthcheck"]``, seconds), with
Docker's merge: no check in the request takes the image's; a request without a test, or with
zero durations, takes those of the image. Its state is observed state, in the row's ``health``
column: ``{"status": starting|healthy|unhealthy, "failing_streak": n, "log": [...]}`` while it
runs, None when it has no check or is not running.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import ColumnElement, false, or_

from berth.errors import InvalidArgument
from berth.image.runconfig import image_healthcheck

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
FILTER_VALUES = (STARTING, HEALTHY, UNHEALTHY, "none")
KINDS = ("CMD", "CMD-SHELL", "NONE")
DEFAULT_INTERVAL = 30.0  # seconds, as Docker's
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_PERIOD = 0.0
DEFAULT_RETRIES = 3
MIN_DURATION = 0.001  # Docker's 1 ms floor for any duration that is set
MAX_DURATION = 366 * 86400.0
MAX_RETRIES = 1_000_000
MAX_LOG = 5  # results kept, as Docker
MAX_OUTPUT = 4096  # bytes of a check's output kept, as Docker
DEFAULT_SHELL = ["/bin/sh", "-c"]
_DURATIONS = ("interval", "timeout", "start_period", "start_interval")
_NS = 1e9


class HealthcheckRequest(BaseModel):
    """A container's health check. Durations in seconds; 0 (or no test) means the image's
    value, else Docker's default: interval 30 s, timeout 30 s, start period 0, retries 3."""

    model_config = ConfigDict(extra="forbid")

    test: list[str] = Field(default_factory=list, max_length=4096, description=(
        '["CMD", arg, ...], ["CMD-SHELL", "command"] (run by /bin/sh -c), ["NONE"] (no '
        "check, not even the image's); empty: the image's test"))
    interval: float = Field(0, description="seconds between checks")
    timeout: float = Field(0, description="seconds a check may take; longer is a failure")
    start_period: float = Field(0, description="seconds after start in which failures do not "
                                               "count")
    start_interval: float = Field(0, description="seconds between checks in the start period "
                                                 "(0: the interval)")
    retries: int = Field(0, description="consecutive failures that make it unhealthy")

    @field_validator("test")
    @classmethod
    def _test(cls, v: list[str]) -> list[str]:
        check_test(v)
        return v

    @field_validator(*_DURATIONS)
    @classmethod
    def _duration(cls, v: float, info: ValidationInfo) -> float:
        return check_duration(v, str(info.field_name))

    @field_validator("retries")
    @classmethod
    def _retries(cls, v: int) -> int:
        if v < 0:
            raise ValueError("cannot be negative (0: the default, 3)")
        if v > MAX_RETRIES:
            raise ValueError(f"at most {MAX_RETRIES}")
        return v


def check_test(test: list[str]) -> None:
    if not test:
        return
    kind = test[0]
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: the test starts with CMD, CMD-SHELL or NONE")
    if kind == "NONE" and len(test) > 1:
        raise ValueError('["NONE"] takes no arguments')
    if kind != "NONE" and not any(test[1:]):
        raise ValueError(f'{kind} needs a command: ["{kind}", ...]')
    if any("\x00" in arg for arg in test):
        raise ValueError("arguments cannot contain NUL bytes")


def check_duration(v: float, name: str) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number of seconds")
    if v < 0:
        raise ValueError("cannot be negative (0: the default)")
    if 0 < v < MIN_DURATION:
        raise ValueError(f"cannot be less than 1 ms (0.001 s), got {v}")
    if v > MAX_DURATION:
        raise ValueError(f"at most {MAX_DURATION:.0f} seconds")
    return v


# -- the check a container runs ----------------------------------------------------------


def from_image(image_cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The image's HEALTHCHECK (Docker's nanoseconds) in the request's form; None if it has
    none. Untrusted: values out of bounds are dropped for the defaults, a bad test for none."""
    hc = image_healthcheck(image_cfg)
    if hc is None:
        return None
    test = hc.get("Test") or []
    try:
        check_test(test)
    except ValueError:
        return None
    out: dict[str, Any] = {"test": list(test)}
    for name, key in zip(_DURATIONS, ("Interval", "Timeout", "StartPeriod", "StartInterval"),
                         strict=True):
        value = hc.get(key)
        seconds = value / _NS if isinstance(value, int) and not isinstance(value, bool) else 0
        try:
            out[name] = check_duration(seconds, name)
        except ValueError:
            out[name] = 0.0
    retries = hc.get("Retries")
    valid = isinstance(retries, int) and not isinstance(retries, bool)
    out["retries"] = retries if valid and 0 <= retries <= MAX_RETRIES else 0
    return out


def merge(own: dict[str, Any] | None, image_cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The check a container gets at create (Docker's merge): the request's, each unset
    (zero) part taken from the image's; none in the request: the image's."""
    image = from_image(image_cfg)
    if own is None:
        return image
    out = {"test": [], **{name: 0.0 for name in _DURATIONS}, "retries": 0, **own}
    for key, value in (image or {}).items():
        if not out.get(key):
            out[key] = value
    return out if out["test"] else None  # a request with no test, on an image with none


@dataclass(frozen=True)
class Check:
    """A check ready to run: Docker's defaults filled in."""

    test: tuple[str, ...]
    interval: float
    timeout: float
    start_period: float
    start_interval: float
    retries: int

    def argv(self, shell: list[str] | None = None) -> list[str]:
        """CMD runs its arguments; CMD-SHELL runs them through the image's SHELL (or
        /bin/sh -c)."""
        args = list(self.test[1:])
        return [*(shell or DEFAULT_SHELL), *args] if self.test[0] == "CMD-SHELL" else args

    def delay(self, status: str, started_at: float, now: float) -> float:
        """Seconds to the next check: start_interval while starting in the start period."""
        if self.start_interval and status == STARTING and now - started_at < self.start_period:
            return self.start_interval
        return self.interval


def resolve(spec: dict[str, Any]) -> Check | None:
    """The container's check, or None (no check, or ["NONE"])."""
    hc = spec.get("healthcheck")
    if not isinstance(hc, dict):
        return None
    test = hc.get("test") or []
    if not test or test[0] == "NONE":
        return None
    return Check(test=tuple(test), interval=hc.get("interval") or DEFAULT_INTERVAL,
                 timeout=hc.get("timeout") or DEFAULT_TIMEOUT,
                 start_period=hc.get("start_period") or DEFAULT_START_PERIOD,
                 start_interval=hc.get("start_interval") or 0.0,
                 retries=hc.get("retries") or DEFAULT_RETRIES)


# -- the state machine -------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    start: float  # unix time
    end: float
    exit_code: int  # 0 healthy; anything else a failure (-1: timed out or could not run)
    output: str


def initial() -> dict[str, Any]:
    return {"status": STARTING, "failing_streak": 0, "log": []}


def at_start(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The health a container starts (or restarts) with."""
    return initial() if resolve(spec) is not None else None


def bounded_output(data: bytes, truncated: bool = False) -> str:
    """At most MAX_OUTPUT bytes of a check's output, as text ("..." when cut, as Docker)."""
    cut = truncated or len(data) > MAX_OUTPUT
    text = data[:MAX_OUTPUT].decode("utf-8", "replace")
    return text + "..." if cut else text


def apply(health: dict[str, Any] | None, result: Result, check: Check,
          started_at: float) -> dict[str, Any]:
    """The health after one result (Docker's rules): a success is healthy with no streak; a
    failure adds to the streak, except while still starting in the start period, and
    ``retries`` failures in a row make it unhealthy. The log keeps the last MAX_LOG."""
    old = health or initial()
    status, streak = old.get("status", STARTING), int(old.get("failing_streak", 0))
    if result.exit_code == 0:
        status, streak = HEALTHY, 0
    elif not (status == STARTING and result.start - started_at < check.start_period):
        streak += 1
        if streak >= check.retries:
            status = UNHEALTHY
    entry = {"start": result.start, "end": result.end, "exit_code": result.exit_code,
             "output": bounded_output(result.output.encode())}
    log = [*(old.get("log") or []), entry][-MAX_LOG:]
    return {"status": status, "failing_streak": streak, "log": log}


def status_of(health: dict[str, Any] | None) -> str:
    """starting | healthy | unhealthy, or "none" (no check, or not running)."""
    return str((health or {}).get("status") or "none")


def status_suffix(health: dict[str, Any] | None) -> str:
    """What ``ps`` adds to "Up 5 seconds": " (healthy)", " (health: starting)", or ""."""
    status = status_of(health)
    if status == "none":
        return ""
    return f" (health: {status})" if status == STARTING else f" ({status})"


def sql_filter(column: Any, values: list[str]) -> ColumnElement[bool]:
    """The ``health=`` list filter over the containers' health column."""
    for value in values:
        if value not in FILTER_VALUES:
            raise InvalidArgument(f"invalid filter 'health={value}': use starting, healthy, "
                                  "unhealthy or none")
    clauses = []
    statuses = [v for v in values if v != "none"]
    if statuses:
        clauses.append(column["status"].as_string().in_(statuses))
    if "none" in values:
        clauses.append(column.is_(None))
    return or_(*clauses) if clauses else false()
