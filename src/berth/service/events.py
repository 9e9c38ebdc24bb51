"""Events: what happened to which object, and who may see it.

Every event is a dict with ``type`` (container, image, volume, network), ``action``, ``id``,
``name``, ``project_id``, ``labels`` (the object's, so a selector can pick events) and ``time``. The
stream (GET /v1/events) shows a caller only its own project's events, unless an admin asks for
all projects; it filters by type, object (id, id prefix or name), action and label selector,
and replays the recent past from ``since``, ending at ``until``.

Actions: container create, start, die, oom, kill, stop, restart, pause, unpause, update,
rename, destroy, "health_status: healthy" and "health_status: unhealthy" (as Docker's);
image pull, push, tag, untag, delete, import; volume create, destroy;
network create, destroy, connect, disconnect (``container`` names the container).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidArgument
from berth.service.context import Context
from berth.service.selectors import Selector, parse_selector

EVENT_TYPES = ("container", "image", "volume", "network")
MAX_OBJECTS = 100


def container_event(row: Any, action: str, **extra: Any) -> dict[str, Any]:
    """An event of a container row (its image too, which Docker's events name)."""
    return {"type": "container", "action": action, "id": row.id, "name": row.name,
            "project_id": row.project_id, "image": row.image_ref,
            "labels": dict(row.labels or {}), "time": time.time(), **extra}


def image_event(project_id: str, action: str, image_id: str, name: str | None,
                labels: Mapping[str, str] | None, **extra: Any) -> dict[str, Any]:
    return {"type": "image", "action": action, "id": image_id, "name": name or image_id,
            "project_id": project_id, "labels": dict(labels or {}), "time": time.time(),
            **extra}


def volume_event(project_id: str, action: str, name: str,
                 labels: Mapping[str, str] | None) -> dict[str, Any]:
    return {"type": "volume", "action": action, "id": name, "name": name,
            "project_id": project_id, "labels": dict(labels or {}), "time": time.time()}


def network_event(project_id: str, action: str, network_id: str, name: str,
                  labels: Mapping[str, str] | None, **extra: Any) -> dict[str, Any]:
    return {"type": "network", "action": action, "id": network_id, "name": name,
            "project_id": project_id, "labels": dict(labels or {}), "time": time.time(),
            **extra}


@dataclass(frozen=True)
class EventFilter:
    project_id: str | None  # None: every project's events (an admin's all_projects)
    types: frozenset[str] = frozenset()  # empty: every type
    objects: tuple[str, ...] = ()  # empty: every object
    selector: Selector = Selector()
    actions: frozenset[str] = frozenset()  # empty: every action

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self.project_id is not None and event.get("project_id") != self.project_id:
            return False
        if self.types and event.get("type") not in self.types:
            return False
        if self.actions and not _action_in(str(event.get("action") or ""), self.actions):
            return False
        if self.objects and not any(_names(event, o) for o in self.objects):
            return False
        return self.selector.matches(event.get("labels") or {})


def _action_in(action: str, wanted: frozenset[str]) -> bool:
    """"health_status" also picks "health_status: healthy", as Docker's filter does."""
    return action in wanted or action.partition(":")[0] in wanted


def event_filter(ctx: Context, types: Iterable[str] | None = None,
                 objects: Iterable[str] | None = None,
                 selector: str | None = None,
                 actions: Iterable[str] | None = None) -> EventFilter:
    """The caller's filter; bad input is refused before the stream starts (400)."""
    wanted = frozenset(types or ())
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise InvalidArgument(f"invalid event type {unknown[0]!r}: use "
                              f"{', '.join(EVENT_TYPES)}")
    objs = tuple(objects or ())
    if len(objs) > MAX_OBJECTS:
        raise InvalidArgument(f"at most {MAX_OBJECTS} objects")
    if any(not o or len(o) > 400 for o in objs):
        raise InvalidArgument("object: name an id or a name (1-400 characters)")
    acts = frozenset(actions or ())
    if len(acts) > MAX_OBJECTS or any(not a or len(a) > 100 for a in acts):
        raise InvalidArgument(f"action: at most {MAX_OBJECTS} actions of 1-100 characters")
    return EventFilter(None if ctx.all_projects else ctx.project_id, wanted, objs,
                       parse_selector(selector), acts)


def _names(event: Mapping[str, Any], obj: str) -> bool:
    """Does ``obj`` name the event's object: its name, id, or an id prefix (with or without
    'sha256:'); for images, a tag as pulled ('busybox' is 'busybox:latest')."""
    ident, name = str(event.get("id") or ""), str(event.get("name") or "")
    if obj in (ident, name):
        return True
    bare_id, bare_obj = ident.removeprefix("sha256:"), obj.removeprefix("sha256:")
    if len(bare_obj) >= 4 and all(c in "0123456789abcdef" for c in bare_obj) \
            and bare_id.startswith(bare_obj):
        return True
    if event.get("type") == "image" and ":" not in obj.rsplit("/", 1)[-1]:
        return name == obj + ":latest"
    return False
