"""JSON shapes of the native API's objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from berth.store.models import Action, Container, Image, Volume

if TYPE_CHECKING:
    from berth.service.buildcache import CacheEntry


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def networks(net: Any) -> dict[str, Any]:
    """An owner's attachments (endpoints.NetState) by network name."""
    return {a.network: {"network_id": a.network_id, "address": a.address,
                        "prefixlen": a.prefixlen, "gateway": a.gateway, "mac": a.mac,
                        "aliases": a.aliases} for a in net.attachments}


def ports(net: Any) -> list[dict[str, Any]]:
    return [{"container_port": p.container_port, "proto": p.proto, "host_ip": p.host_ip,
             "host_port": p.host_port} for p in net.ports]


def container(row: Container, net: Any = None,
              size: tuple[int, int] | None = None) -> dict[str, Any]:
    """``net``: its endpoints.NetState (a pod member's is its pod's), when the caller has it;
    ``size``: (bytes of its writable layer, those and its image's), when asked for."""
    spec = dict(row.spec)
    extra = {} if net is None else {"networks": networks(net), "ports": ports(net)}
    if size is not None:
        extra.update(size_rw=size[0], size_root_fs=size[1])
    return {
        "id": row.id,
        "name": row.name,
        "project_id": row.project_id,
        "host": row.host,
        "image": row.image_ref,
        "image_id": row.image_id,
        "created": iso(row.created_at),
        "labels": row.labels,
        "desired": row.desired,
        "state": {
            "status": row.status,
            "running": row.status in ("running", "paused"),
            "paused": row.status == "paused",
            "pid": row.pid,
            "exit_code": row.exit_code,
            "oom_killed": row.oom_killed,
            "error": row.error,
            "started_at": iso(row.started_at),
            "finished_at": iso(row.finished_at),
            "health": health(row.health),
        },
        "restart_count": row.restart_count,
        "config": spec,
        **extra,
    }


def health(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A running container's health (None: it has no check, or is not running)."""
    if not state:
        return None
    return {"status": state.get("status"), "failing_streak": state.get("failing_streak", 0),
            "log": [{**entry, "start": iso(entry.get("start")), "end": iso(entry.get("end"))}
                    for entry in state.get("log") or []]}


def action(act: Action) -> dict[str, Any]:
    return {
        "id": act.id,
        "kind": act.kind or "container",
        "target": act.target,
        "container_id": act.container_id,
        "action": act.action,
        "params": act.params,
        "request_id": act.request_id,
        "user": act.user,
        "state": act.state,
        "message": act.message,
        "error_status": act.error_status or None,  # the HTTP status its error maps to
        "result": act.result,
        "started_at": iso(act.started_at),
        "finished_at": iso(act.finished_at),
    }


def image(img: Image, tags: list[str]) -> dict[str, Any]:
    cfg = img.config.get("config") or {}
    return {
        "id": img.id,
        "project_id": img.project_id,
        "tags": tags,
        "manifest_digest": img.manifest_digest,
        "repo_digests": list(img.repo_digests or []),
        "source": img.source,
        "signatures": len(img.signatures or []),
        "intermediate": img.intermediate,  # a build step's result: build cache
        "size": img.size,
        "created": img.config.get("created") or iso(img.created_at),
        "architecture": img.config.get("architecture"),
        "os": img.config.get("os"),
        "config": cfg,
        "layers": [layer["diff_id"] for layer in img.layers],
        "history": img.config.get("history") or [],
        "labels": cfg.get("Labels") or {},
    }


def build_cache_entry(entry: CacheEntry) -> dict[str, Any]:
    return {"id": entry.key, "image_id": entry.image_id, "description": entry.description,
            "size": entry.size, "in_use": entry.in_use, "final": entry.final,
            "shared": entry.shared,
            "created": iso(entry.created_at), "last_used": iso(entry.last_used_at),
            "usage_count": entry.usage_count}


def volume(vol: Volume, mountpoint: str) -> dict[str, Any]:
    return {"name": vol.name, "project_id": vol.project_id, "driver": vol.driver,
            "labels": vol.labels, "host": vol.host, "mountpoint": mountpoint,
            "created": iso(vol.created_at), "options": dict(vol.options or {})}
