"""Docker-style list filters (``--filter key=value``), shared by every list."""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass

from berth.errors import InvalidArgument


def parse_filters(items: list[str] | None, allowed: set[str]) -> dict[str, list[str]]:
    """["label=a=b", "status=exited"] -> {"label": ["a=b"], "status": ["exited"]}."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"invalid filter {item!r}: expected key=value")
        if key not in allowed:
            raise InvalidArgument(f"invalid filter {key!r}: use {', '.join(sorted(allowed))}")
        out.setdefault(key, []).append(value)
    return out


def labels_match(labels: dict[str, str], exprs: list[str]) -> bool:
    """Every "key" or "key=value" expression holds for these labels."""
    for expr in exprs:
        key, eq, value = expr.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def reference_matches(names: list[str], patterns: list[str]) -> bool:
    """Docker's reference filter: a glob over "name" or "name:tag" of any of the names."""
    for pattern in patterns:
        for name in names:
            repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(repo, pattern):
                return True
    return False


def bool_filter(key: str, values: list[str]) -> bool:
    if len(values) != 1 or values[0].lower() not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"invalid filter {key}={','.join(values)!r}: use true or false")
    return values[0].lower() in ("true", "1")


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|m|s|ms))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_time(text: str, now: float | None = None) -> float:
    """Docker's times (since/until): unix seconds[.nanoseconds], an RFC 3339 date, or a
    duration before now (10m, 1h30m)."""
    import datetime

    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    if _DURATION.match(value):
        ago = sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(value))
        return (time.time() if now is None else now) - ago
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"invalid time {text!r}: use unix seconds, an RFC 3339 date "
                              "or a duration such as 10m") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


@dataclass(frozen=True)
class PruneFilter:
    """docker's prune filters: label=K[=V] (each holds), label!=K[=V] (none holds),
    until=TIME (made before it; a duration is before now)."""

    labels: list[str]
    not_labels: list[str]
    until: list[float]

    @classmethod
    def parse(cls, filters: dict[str, list[str]]) -> PruneFilter:
        try:
            until = [parse_time(v) for v in filters.get("until", [])]
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid filter until: {e.message}") from None
        return cls(filters.get("label", []), filters.get("label!", []), until)

    def matches(self, labels: dict[str, str], made: float) -> bool:
        return (labels_match(labels, self.labels)
                and not any(labels_match(labels, [x]) for x in self.not_labels)
                and all(made < limit for limit in self.until))
