"""Which PID, IPC and UTS namespaces a container has, as Docker's --pid, --ipc and --uts say.

- private (the default): its own.
- host: the host's. Admins', or a project's granted 'host_namespaces' (service/grants.py).
- container:NAME (pid, ipc): another container's of the project, running when this one
  starts. The container then joins that one's user namespace too, which owns them; so every
  container:NAME it gives (network_of included) must name the same container.
- ipc shareable: its own, with /dev/shm kept on the host so that others can join it (Docker
  joins only a shareable container's IPC); ipc none: its own, without a /dev/shm.

The service keeps a joined container by id ("container:<id>"), as Docker's inspect shows it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

CONTAINER = "container:"
PID_MODES = ("private", "host")
IPC_MODES = ("private", "shareable", "none", "host")
UTS_MODES = ("private", "host")
MODES = {"pid_mode": PID_MODES, "ipc_mode": IPC_MODES, "uts_mode": UTS_MODES}
JOINABLE = ("pid_mode", "ipc_mode")  # Docker joins no other container's UTS namespace alone
# the OCI namespace type each field sets
KIND = {"pid_mode": "pid", "ipc_mode": "ipc", "uts_mode": "uts"}


def check_mode(field: str, value: str | None) -> str | None:
    """The mode as kept (None: private), or ValueError naming the choices."""
    if value is None or value == "":
        return None
    if field in JOINABLE and value.startswith(CONTAINER):
        if not value.removeprefix(CONTAINER):
            raise ValueError(f"{value!r} names no container")
        return value
    choices = ", ".join(MODES[field]) + (", container:NAME" if field in JOINABLE else "")
    if value not in MODES[field]:
        raise ValueError(f"unknown {KIND[field].upper()} mode {value!r}: use {choices}")
    return None if value == "private" else value


class NamespaceModesRequest(BaseModel):
    """The request's fields (mixed into ContainerCreate)."""

    pid_mode: str | None = Field(None, max_length=200,
                                 description="private (default), host, container:NAME")
    ipc_mode: str | None = Field(None, max_length=200,
                                 description="private (default), shareable, none, host, "
                                             "container:NAME")
    uts_mode: str | None = Field(None, max_length=200, description="private (default), host")

    @field_validator("pid_mode", "ipc_mode", "uts_mode")
    @classmethod
    def _mode(cls, v: str | None, info: Any) -> str | None:
        return check_mode(info.field_name, v)


def joined(value: str | None) -> str | None:
    """The container a mode names (its name or id), or None."""
    if value and value.startswith(CONTAINER):
        return value.removeprefix(CONTAINER)
    return None


def conflicts(req: Any) -> str | None:
    """Why the request's modes cannot go together with the rest of it, or None."""
    modes = {f: getattr(req, f) for f in MODES}
    if req.pod is not None and any(modes.values()):
        return ("a container in a pod has the pod's namespaces: say which it shares at pod "
                "create (--share ipc,pid), not with pid_mode, ipc_mode or uts_mode")
    if modes["uts_mode"] == "host" and (req.hostname or req.domainname
                                        or req.network_of is not None):
        return ("uts_mode host: the container has the host's hostname and domain name; it "
                "takes none of its own and shares no other container's")
    if req.shm_size is not None and modes["ipc_mode"] not in (None, "shareable"):
        return (f"shm_size: with ipc_mode {modes['ipc_mode']} the container has no /dev/shm "
                "of its own")
    return None


ONE_CONTAINER = ("pid_mode, ipc_mode and network_of name different containers: a container "
                 "joins the namespaces of one other only (it joins that one's user namespace)")


def shares_ipc(req: Any) -> bool:
    """Its IPC namespace is another's (the host's, a pod's or a container's)."""
    mode = req.ipc_mode
    return req.pod is not None or mode == "host" or joined(mode) is not None


def container_joins(spec: dict[str, Any]) -> dict[str, list[str]]:
    """A recorded spec's joins of another container: its id -> the OCI namespace types
    (network_of joins the network and UTS namespaces)."""
    out: dict[str, list[str]] = {}
    if spec.get("netns_of"):
        out.setdefault(spec["netns_of"], []).extend(["network", "uts"])
    for field in JOINABLE:
        target = joined(spec.get(field))
        if target:
            out.setdefault(target, []).append(KIND[field])
    return out


def host_namespaces(spec: dict[str, Any]) -> frozenset[str]:
    """The OCI namespace types a recorded spec shares with the host (the network's aside)."""
    return frozenset(KIND[f] for f in MODES if spec.get(f) == "host")
