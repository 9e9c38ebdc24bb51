"""Admin-only features a container may ask for, and the grants that open them to a project.

By default only the cloud's admins may run privileged containers, bind host paths, share
host namespaces, add capabilities, use devices, or pick a host or a runtime; an admin can
grant each of these to a project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from berth.service.context import Context, Forbidden
from berth.store.models import Project

if TYPE_CHECKING:
    from berth.store.db import Store

GRANTS = ("privileged", "host_mounts", "host_namespaces", "cap_add", "devices",
          "choose_host", "choose_runtime")


def of_project(store: Store, project_id: str) -> list[str]:
    with store.session() as s:
        project = s.get(Project, project_id)
        return list(project.grants or []) if project is not None else []


def needed(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(grant, why) for every admin-only feature the create request asks for."""
    out: list[tuple[str, str]] = []
    if spec.get("privileged"):
        out.append(("privileged", "a privileged container"))
    for m in spec.get("mounts") or []:
        if m.get("type") == "bind":
            out.append(("host_mounts", f"a bind mount of the host path {m.get('source')}"))
        host_mount = m.get("host_mount") or {}
        if m.get("type") == "volume" and host_mount.get("fstype") == "bind":
            # a volume over a host directory is a bind mount of it (grants may have changed
            # since the volume was made)
            out.append(("host_mounts", f"the volume {m.get('volume')} over the host path "
                                       f"{host_mount.get('source')}"))
    if spec.get("network") == "host":
        out.append(("host_namespaces", "the host's network namespace"))
    for ns in ("pid", "ipc", "uts"):
        if spec.get(f"{ns}_mode") == "host":
            out.append(("host_namespaces", f"the host's {ns} namespace"))
    if spec.get("cap_add"):
        out.append(("cap_add", f"added capabilities ({', '.join(spec['cap_add'])})"))
    if spec.get("devices"):
        out.append(("devices", "host devices"))
    if spec.get("host"):
        out.append(("choose_host", "a chosen host"))
    if spec.get("runtime"):
        out.append(("choose_runtime", "a chosen runtime"))
    return out


def check(ctx: Context, grants: list[str], spec: dict[str, Any]) -> None:
    if ctx.is_admin:
        return
    for grant, why in needed(spec):
        if grant not in grants:
            raise Forbidden(f"{why} is for admins: ask an admin to grant '{grant}' to "
                            f"project {ctx.project_id}")
