"""The identity commands' own parsing: durations, quota limits, quota answers, arguments."""

from __future__ import annotations

import pytest

from berth.cli.convert import UsageError
from berth.cli.identity_commands import parse_duration, parse_limits, quota_rows
from berth.cli.parser import build

LINES = [
    ["project", "ls", "-q"], ["--project", "p", "project", "member", "set", "p", "u", "reader"],
    ["project", "grant", "p", "privileged", "devices"], ["user", "create", "--admin", "u"],
    ["token", "create", "--expires-in", "30d", "--user", "u", "ci"], ["token", "revoke", "a"],
    ["--token", "t", "-o", "yaml", "whoami"], ["quota"], ["quota", "set", "memory=8g"],
    ["context", "create", "c", "--host", "unix:///x", "--token", "t"], ["completion", "zsh"],
    ["--context", "c", "ps"], ["--tls-ca", "a", "--tls-cert", "b", "--tls-key", "c", "info"],
]


@pytest.mark.parametrize("line", LINES, ids=lambda line: " ".join(line))
def test_lazy_parser_equals_full_parser(line: list[str]) -> None:
    assert vars(build(line).parse_args(line)) == vars(build().parse_args(line))


def test_durations() -> None:
    assert parse_duration("3600") == 3600
    assert parse_duration("90m") == 5400
    assert parse_duration("30d") == 30 * 86400
    assert parse_duration("2w") == 14 * 86400
    for bad in ("", "0", "-1d", "3y", "d"):
        with pytest.raises(UsageError, match="invalid duration"):
            parse_duration(bad)


def test_limits() -> None:
    assert parse_limits(["containers=10", "memory=8g", "disk=-1", "volumes=unlimited"]) == {
        "containers": 10, "memory": 8 << 30, "disk": -1, "volumes": -1}
    for bad in ("containers", "=3", "memory=", "memory=lots"):
        with pytest.raises(UsageError):
            parse_limits([bad])


@pytest.mark.parametrize("doc", [
    {"containers": {"limit": 10, "in_use": 2}, "memory": {"limit": -1, "in_use": 5}},
    {"limits": {"containers": 10, "memory": -1}, "usage": {"containers": 2, "memory": 5}},
    {"containers": {"limit": 10, "usage": 2}, "memory": {"limit": -1, "usage": 5}},
    [{"resource": "containers", "limit": 10, "usage": 2},
     {"resource": "memory", "limit": -1, "usage": 5}],
    {"project": "p", "quotas": [{"resource": "containers", "limit": 10, "used": 2},
                                {"resource": "memory", "limit": -1, "used": 5}]},
])
def test_quota_answers_of_any_shape(doc: object) -> None:
    rows = {r["resource"]: (r["usage"], r["limit"]) for r in quota_rows(doc)}
    assert rows == {"containers": (2, 10), "memory": (5, -1)}
