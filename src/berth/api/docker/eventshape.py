"""Berth's events (service/events.py) as Docker's events, and Docker's event filters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument

# Docker's accepted filter keys; those about objects Berth does not have match nothing.
EVENT_FILTERS = {"type", "event", "container", "image", "volume", "network", "label",
                 "daemon", "plugin", "node", "service", "secret", "config", "scope"}
NAMED_BY = ("container", "volume", "network", "daemon", "plugin", "node", "service",
            "secret", "config")
LEGACY_TYPES = ("container", "image")  # events that also carry status, id and from


def docker_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """One Berth event in Docker's shape (Type, Action, Actor, scope, time, timeNano)."""
    kind, action = str(event.get("type")), str(event.get("action"))
    ident, name = str(event.get("id") or ""), str(event.get("name") or "")
    labels = {str(k): str(v) for k, v in (event.get("labels") or {}).items()}
    when = float(event.get("time") or 0.0)
    if kind == "container":
        attrs = {**labels, "name": name, "image": str(event.get("image") or "")}
        for ours, theirs in (("exitCode", "exitCode"), ("signal", "signal"),
                             ("oldName", "oldName")):
            if event.get(ours) is not None:
                attrs[theirs] = str(event[ours])
        actor = ident
    elif kind == "image":
        attrs = {**labels, "name": name}
        # Docker names a pulled or pushed image by its reference, the rest by id.
        actor = name if action in ("pull", "push") else ident
    elif kind == "volume":
        attrs, actor = {"driver": "local"}, ident
    elif kind == "network":
        attrs = {"name": name, "type": str(event.get("driver") or "bridge")}
        if event.get("container"):
            attrs["container"] = str(event["container"])
        actor = ident
    else:
        attrs, actor = dict(labels), ident
    out: dict[str, Any] = {"Type": kind, "Action": action,
                           "Actor": {"ID": actor, "Attributes": attrs}, "scope": "local",
                           "time": int(when), "timeNano": int(when * 1e9)}
    if kind in LEGACY_TYPES:
        out.update(status=action, id=actor)
        if kind == "container":
            out["from"] = attrs["image"]
    return out


def _strip_tag(ref: str) -> str:
    last = ref.rsplit("/", 1)[-1]
    return ref.rsplit(":", 1)[0] if ":" in last else ref


@dataclass(frozen=True)
class DockerEventFilter:
    filters: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, filters: dict[str, list[str]]) -> DockerEventFilter:
        unknown = sorted(set(filters) - EVENT_FILTERS)
        if unknown:
            raise InvalidArgument(f"invalid filter '{unknown[0]}'")
        return cls(filters)

    def matches(self, ev: Mapping[str, Any]) -> bool:
        f = self.filters
        attrs = ev["Actor"]["Attributes"]
        ident = ev["Actor"]["ID"]
        if "type" in f and ev["Type"] not in f["type"]:
            return False
        if "scope" in f and "local" not in f["scope"]:
            return False
        if "event" in f and ev["Action"] not in f["event"] \
                and ev["Action"].split(":")[0] not in f["event"]:
            return False
        for key in NAMED_BY:  # as dockerd: the actor's id (or a prefix of it) or its name
            if key in f and not any(ident.startswith(v) or attrs.get("name") == v
                                    for v in f[key]):
                return False
        if "image" in f:
            image_name = attrs.get("name" if ev["Type"] == "image" else "image", "")
            names = {ident, image_name, _strip_tag(ident), _strip_tag(image_name)}
            if not any(v in names for v in f["image"]):
                return False
        for expr in f.get("label", []):
            key, eq, value = expr.partition("=")
            if key not in attrs or (eq and attrs[key] != value):
                return False
        return True
