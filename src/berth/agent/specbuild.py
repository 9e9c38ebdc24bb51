"""Turn a container's recorded request and its image into the runtime's ContainerSpec."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from berth.errors import InvalidArgument
from berth.image.runconfig import combine_command, image_user, image_workdir, merge_env
from berth.runtime.base import (
    SHM_SIZE,
    ContainerSpec,
    DeviceLimit,
    DeviceNode,
    DnsSettings,
    IdMapping,
    LogLimits,
    MountSpec,
    Resources,
)
from berth.service import nsmodes
from berth.service.specs import parse_signal

DEFAULT_STOP_TIMEOUT = 10
# Where an init (docker run --init) appears in the container, as in Docker.
INIT_PATH = "/sbin/docker-init"
# A static tini: the container's image may have no libc at all.
INIT_CANDIDATES = ("docker-init", "tini-static")


def init_binary() -> str:
    for name in INIT_CANDIDATES:
        found = shutil.which(name)
        if found:
            return str(Path(found).resolve())
    raise InvalidArgument("init: this host has no static init binary (docker-init or "
                          "tini-static)")


def resources_from(spec: dict[str, Any]) -> Resources:
    cpus = spec.get("cpus")
    pids = spec.get("pids_limit")
    return Resources(
        memory=spec.get("memory"),
        memory_swap=spec.get("memory_swap"),
        nano_cpus=int(cpus * 1e9) if cpus else None,
        cpu_shares=spec.get("cpu_shares"),
        pids_limit=None if pids in (None, -1) else pids,
        cpuset_cpus=spec.get("cpuset_cpus"),
        cpuset_mems=spec.get("cpuset_mems"),
        memory_reservation=spec.get("memory_reservation"),
        blkio_weight=spec.get("blkio_weight") or None,
        blkio_weight_device=_devices(spec, "blkio_weight_device", "weight"),
        **{field: _devices(spec, field, "rate") for field in DEVICE_RATES},
    )


DEVICE_RATES = ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops")


def _devices(spec: dict[str, Any], field: str, key: str) -> tuple[DeviceLimit, ...]:
    """The spec's per-device entries ({path, major, minor, key}: the service resolved the
    path at create) as the runtime's."""
    return tuple(DeviceLimit(int(d["major"]), int(d["minor"]), int(d[key]))
                 for d in spec.get(field) or [])


def build_spec(cid: str, name: str, spec: dict[str, Any], image_config: dict[str, Any],
               layers: list[Path], idmap: IdMapping | None) -> ContainerSpec:
    cfg = image_config.get("config") or {}
    env = merge_env(cfg.get("Env") or [], spec.get("env") or [])
    host_ns = nsmodes.host_namespaces(spec)
    # the host's UTS namespace: its name, in /etc/hostname and $HOSTNAME too
    hostname = os.uname().nodename if "uts" in host_ns else spec.get("hostname") or cid[:12]
    keys = {e.split("=", 1)[0] for e in env}
    if "HOSTNAME" not in keys:
        env.append(f"HOSTNAME={hostname}")
    if spec.get("tty") and "TERM" not in keys:
        env.append("TERM=xterm")
    mounts = [
        MountSpec(kind=m["type"], target=m["target"], source=m.get("source", ""),
                  readonly=bool(m.get("readonly")), options=tuple(m.get("options", ())))
        for m in spec.get("mounts", [])
    ]
    args = combine_command(image_config, spec.get("entrypoint"), spec.get("command"))
    if spec.get("init"):  # tini as PID 1: it reaps zombies and forwards signals
        mounts.append(MountSpec(kind="bind", target=INIT_PATH, source=init_binary(),
                                readonly=True))
        args = [INIT_PATH, "--", *args]
    return ContainerSpec(
        id=cid,
        name=name,
        args=args,
        env=env,
        cwd=spec.get("workdir") or image_workdir(image_config) or "/",
        user=spec.get("user") or image_user(image_config) or "",
        hostname=hostname,
        domainname=spec.get("domainname") or "",
        devices=tuple(DeviceNode(d["path_on_host"], d["path_in_container"], d["type"],
                                 int(d["major"]),
                                 int(d["minor"]), d["permissions"])
                      for d in spec.get("devices") or []),
        tty=bool(spec.get("tty")),
        stdin=bool(spec.get("stdin_open")),
        stdin_once=bool(spec.get("stdin_once")),
        layers=layers,
        mounts=mounts,
        resources=resources_from(spec),
        idmap=idmap,
        readonly_rootfs=bool(spec.get("readonly_rootfs")),
        cap_add=list(spec.get("cap_add") or []),
        cap_drop=list(spec.get("cap_drop") or []),
        network=spec.get("network") or "none",
        annotations={"io.berth.name": name},
        dns=DnsSettings.of(spec),
        ulimits=[(u["name"], int(u["soft"]), int(u["hard"])) for u in spec.get("ulimits") or []],
        group_add=list(spec.get("group_add") or []),
        shm_size=spec.get("shm_size") or SHM_SIZE,
        sysctls=dict(spec.get("sysctls") or {}),
        log=LogLimits.of(spec),
        oom_score_adj=spec.get("oom_score_adj"),
        host_namespaces=host_ns,
        privileged=bool(spec.get("privileged")),
        **shm_of(spec.get("ipc_mode")),
    )


def shm_of(ipc_mode: str | None) -> dict[str, str]:
    """ContainerSpec's shm and shm_donor for a recorded ipc_mode."""
    donor = nsmodes.joined(ipc_mode)
    if donor is not None:
        return {"shm": "join", "shm_donor": donor}
    return {"shm": ipc_mode if ipc_mode in ("shareable", "none", "host") else "private"}


def pod_joins(infra_pid: int, shared: list[str], userns: bool) -> dict[str, str]:
    """The namespaces of a pod's infra process a member joins: always its network and UTS
    (one address, one hostname), IPC and PID when the pod shares them."""
    return namespace_joins(infra_pid, ["network", "uts", *(k for k in ("ipc", "pid")
                                                           if k in shared)], userns)


def namespace_joins(pid: int, kinds: list[str], userns: bool) -> dict[str, str]:
    """The paths of a process's namespaces of the given OCI types, and of its user
    namespace, which owns them all (in a namespace of another, the runtime could not mount
    /proc, sysfs or mqueue)."""
    if userns:
        kinds = [*kinds, "user"]
    names = {"network": "net", "uts": "uts", "ipc": "ipc", "pid": "pid", "user": "user"}
    return {k: f"/proc/{pid}/ns/{names[k]}" for k in dict.fromkeys(kinds)}


def stop_signal(spec: dict[str, Any], image_config: dict[str, Any]) -> int:
    cfg = image_config.get("config") or {}
    return parse_signal(spec.get("stop_signal") or cfg.get("StopSignal") or "SIGTERM")


def stop_timeout(spec: dict[str, Any], requested: int | None) -> int:
    if requested is not None:
        return requested
    value = spec.get("stop_timeout")
    return DEFAULT_STOP_TIMEOUT if value is None else int(value)
