"""Host devices given to a container (docker's --device HOST[:CONTAINER][:rwm]): admins', or
a project's granted 'devices' (service/grants.py checks that before any path is looked at).
Each is resolved at create to its type and major:minor (stat only, never opened) and kept in
the spec with its paths, as Docker keeps it. In a user namespace runc bind-mounts the host's
node, so the container's root (an unprivileged host user) opens it only as the node's host
permissions allow."""

from __future__ import annotations

import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from berth import blockdev
from berth.errors import InvalidArgument

MAX_DEVICES = 64


def _absolute(v: str) -> str:
    if not v.startswith("/") or "\x00" in v:
        raise ValueError(f"expected an absolute path, got {v!r}")
    return posixpath.normpath(v)


class DeviceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path_on_host: str = Field(max_length=4096)
    path_in_container: str | None = Field(None, max_length=4096,
                                          description="default: the host's path")
    permissions: str = Field("rwm", description="r (read), w (write), m (mknod): any of them")

    _host = field_validator("path_on_host")(_absolute)

    @field_validator("path_in_container")
    @classmethod
    def _inside(cls, v: str | None) -> str | None:
        if v is None:
            return None
        path = _absolute(v)
        if path == "/" or not path.startswith("/dev/"):
            raise ValueError(f"{v!r}: a device goes under /dev/")
        return path

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, v: str) -> str:
        if not v or set(v) - set("rwm") or len(set(v)) != len(v):
            raise ValueError(f"invalid permissions {v!r}: any of r, w and m, each once")
        return v

    @model_validator(mode="after")
    def _target(self) -> DeviceRequest:
        if self.path_in_container is None and not self.path_on_host.startswith("/dev/"):
            raise ValueError(f"{self.path_on_host} is not under /dev/: say where it goes in "
                             "the container (HOST:CONTAINER)")
        return self


class DevicesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[DeviceRequest] = Field(default_factory=list, max_length=MAX_DEVICES,
                                         description="host devices (admins, or the grant)")

    @field_validator("devices")
    @classmethod
    def _unique(cls, v: list[DeviceRequest]) -> list[DeviceRequest]:
        targets = [d.path_in_container or d.path_on_host for d in v]
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"two devices at {twice[0]}")
        return v


def resolve(spec: dict[str, Any]) -> None:
    """Each device's type, major and minor, added to its entry (in place), its target filled
    in; a path that is not a device node: 400."""
    for entry in spec.get("devices") or []:
        found = blockdev.node(entry["path_on_host"])
        if found is None:
            raise InvalidArgument(f"devices: {entry['path_on_host']} is not a device node on "
                                  "this host")
        kind, major, minor = found
        entry["path_in_container"] = entry.get("path_in_container") or entry["path_on_host"]
        entry.update(type=kind, major=major, minor=minor)
