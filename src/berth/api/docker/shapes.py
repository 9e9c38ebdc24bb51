"""Docker's JSON shapes of a container (inspect, list), from its row and its image. Pure."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from berth.api.docker.translate import BLKIO_DEVICES
from berth.errors import InvalidArgument
from berth.image.runconfig import (
    combine_command,
    image_exposed_ports,
    image_labels,
    image_stop_signal,
    merge_env,
)
from berth.runtime.base import SHM_SIZE
from berth.service.endpoints import Attachment, NetState
from berth.service.health import status_suffix
from berth.store.models import Container

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ts: float | None) -> str:
    """Go's RFC3339Nano (trailing zeros of the fraction dropped); Go's zero time for None."""
    if ts is None:
        return ZERO_TIME
    ns = round(ts * 1e9)
    base = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration, which ``docker ps`` shows ("Up 5 seconds")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def state_name(row: Container) -> str:
    """Docker's state words: created, running, paused, restarting, removing, exited, dead."""
    return "created" if row.status == "creating" else row.status


def status_text(row: Container, now: float | None = None) -> str:
    now = time.time() if now is None else now
    state = state_name(row)
    if state in ("running", "paused"):
        up = f"Up {human_duration(now - (row.started_at or row.created_at))}"
        return f"{up} (Paused)" if state == "paused" else up + status_suffix(row.health)
    if state == "restarting":
        return (f"Restarting ({row.exit_code or 0}) "
                f"{human_duration(now - (row.finished_at or now))} ago")
    if state == "exited":
        if row.finished_at is None:
            return f"Exited ({row.exit_code or 0})"
        return f"Exited ({row.exit_code or 0}) {human_duration(now - row.finished_at)} ago"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    return "Created"


def argv(row: Container, image_config: dict[str, Any]) -> list[str]:
    spec = row.spec
    try:
        return combine_command(image_config, spec.get("entrypoint"), spec.get("command"))
    except InvalidArgument:
        return []


def network_mode(spec: dict[str, Any]) -> str:
    if spec.get("network") == "host":
        return "host"
    if spec.get("netns_of"):
        return f"container:{spec['netns_of']}"
    names = list(spec.get("networks") or {})
    return names[0] if names else "none"


def _endpoint(aliases: list[str] | None, network_id: str = "",
              at: Attachment | None = None) -> dict[str, Any]:
    out = {"IPAMConfig": None, "Links": None, "Aliases": aliases or None,
           "NetworkID": network_id, "EndpointID": "", "Gateway": "", "IPAddress": "",
           "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
           "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
    if at is not None:
        out.update(NetworkID=at.network_id, Gateway=at.gateway, IPAddress=at.address,
                   IPPrefixLen=at.prefixlen, MacAddress=at.mac,
                   EndpointID=hashlib.sha256(f"{at.network_id}/{at.address}".encode())
                   .hexdigest())
    return out


def networks(spec: dict[str, Any], network_ids: dict[str, str] | None = None,
             state: NetState | None = None) -> dict[str, Any]:
    """Each network the container is on, keyed by name (host and none included)."""
    ids = network_ids or {}
    named = spec.get("networks") or {}
    if not named:
        mode = network_mode(spec)
        return {mode: _endpoint(None, ids.get(mode, ""))}
    found = {a.network: a for a in state.attachments} if state else {}
    for a in list(found.values()):
        found.setdefault(a.network_id, a)
    return {name: _endpoint(aliases, ids.get(name, ""), found.get(name))
            for name, aliases in named.items()}


def port_map(exposed_ports: list[str], state: NetState | None) -> dict[str, Any]:
    """NetworkSettings.Ports: each exposed or published port, with its host bindings."""
    out: dict[str, Any] = {p: None for p in exposed_ports}
    for p in state.ports if state else []:
        out.setdefault(f"{p.container_port}/{p.proto}", None)
        key = f"{p.container_port}/{p.proto}"
        out[key] = [*(out[key] or []), {"HostIp": p.host_ip, "HostPort": str(p.host_port)}]
    return out


def port_list(exposed_ports: list[str], state: NetState | None) -> list[dict[str, Any]]:
    """/containers/json Ports: published ports, then exposed ones nobody published."""
    out: list[dict[str, Any]] = []
    done = set()
    for p in state.ports if state else []:
        out.append({"IP": p.host_ip, "PrivatePort": p.container_port,
                    "PublicPort": p.host_port, "Type": p.proto})
        done.add(f"{p.container_port}/{p.proto}")
    for item in exposed_ports:
        if item not in done:
            port, _, proto = item.partition("/")
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return out


def port_bindings(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, list[dict[str, str]]] = {}
    for p in spec.get("ports") or []:
        host_port = str(p["host_port"]) if p.get("host_port") else ""
        host_ip = "" if p.get("host_ip") in (None, "0.0.0.0") else p["host_ip"]
        out.setdefault(f"{p['container_port']}/{p.get('proto', 'tcp')}", []).append(
            {"HostIp": host_ip, "HostPort": host_port})
    return out


def exposed(spec: dict[str, Any], image_config: dict[str, Any]) -> list[str]:
    return sorted(set(image_exposed_ports(image_config)) | set(spec.get("exposed_ports") or []))


def mounts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The container's mounts as Docker's MountPoint list."""
    out = []
    for m in spec.get("mounts") or []:
        rw = not m.get("readonly")
        kind = m.get("type")
        point: dict[str, Any] = {"Type": kind}
        if kind == "volume":
            point["Name"] = m.get("volume", "")
        point.update({"Source": "" if kind == "tmpfs" else m.get("source", ""),
                      "Destination": m["target"]})
        if kind == "volume":
            point["Driver"] = "local"
        point.update({"Mode": "" if rw else "ro", "RW": rw,
                      "Propagation": "rprivate" if kind == "bind" else ""})
        out.append(point)
    return out


def _log_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The container's log limits as docker's json-file options (strings, in bytes)."""
    log = spec.get("log") or {}
    config = {}
    if log.get("max_size"):
        config = {"max-size": str(log["max_size"]), "max-file": str(log.get("max_files") or 1)}
    return {"Type": "json-file", "Config": config}


def _binds(spec: dict[str, Any]) -> list[str] | None:
    binds = []
    for m in spec.get("mounts") or []:
        if m.get("from"):  # another container's (VolumesFrom)
            continue
        if m.get("type") == "bind":
            source = m.get("source", "")
        elif m.get("type") == "volume" and not m.get("anonymous"):
            source = m.get("volume", "")
        else:
            continue
        binds.append(f"{source}:{m['target']}" + (":ro" if m.get("readonly") else ""))
    return binds or None


def _tmpfs(spec: dict[str, Any]) -> dict[str, str] | None:
    found = {m["target"]: ",".join((["ro"] if m.get("readonly") else []) +
                                   list(m.get("options") or []))
             for m in spec.get("mounts") or [] if m.get("type") == "tmpfs"}
    return found or None


def _blkio(spec: dict[str, Any]) -> dict[str, Any]:
    """HostConfig's block IO settings as Docker shows them: the paths as given; a list
    unset is null (the weight devices' an empty list), as a Docker daemon answers."""
    out: dict[str, Any] = {"BlkioWeight": spec.get("blkio_weight") or 0}
    for key, (field, value) in BLKIO_DEVICES.items():
        entries = [{"Path": d["path"], value: d[value.lower()]} for d in spec.get(field) or []]
        out[key] = entries or ([] if key == "BlkioWeightDevice" else None)
    return out


def host_config(spec: dict[str, Any]) -> dict[str, Any]:
    cpus = spec.get("cpus")
    policy = spec.get("restart_policy") or {}
    out: dict[str, Any] = {
        "Binds": _binds(spec), "ContainerIDFile": "", "LogConfig": _log_config(spec),
        "NetworkMode": network_mode(spec), "PortBindings": port_bindings(spec),
        "RestartPolicy": {"Name": policy.get("name", "no"),
                          "MaximumRetryCount": policy.get("max_retries", 0)},
        "AutoRemove": bool(spec.get("auto_remove")), "VolumeDriver": "",
        "VolumesFrom": list(spec.get("volumes_from") or []) or None,
        "CapAdd": list(spec.get("cap_add") or []) or None,
        "CapDrop": list(spec.get("cap_drop") or []) or None,
        "CgroupnsMode": "private", "Dns": list(spec.get("dns") or []),
        "DnsOptions": list(spec.get("dns_options") or []),
        "DnsSearch": list(spec.get("dns_search") or []),
        "ExtraHosts": list(spec.get("extra_hosts") or []) or None,
        "GroupAdd": list(spec.get("group_add") or []) or None,
        "IpcMode": spec.get("ipc_mode") or "private",
        "Cgroup": "",
        "Links": None, "OomScoreAdj": spec.get("oom_score_adj") or 0,
        "PidMode": spec.get("pid_mode") or "",
        "Privileged": bool(spec.get("privileged")),
        "PublishAllPorts": bool(spec.get("publish_all")),
        "ReadonlyRootfs": bool(spec.get("readonly_rootfs")),
        "SecurityOpt": None, "UTSMode": spec.get("uts_mode") or "", "UsernsMode": "",
        "ShmSize": spec.get("shm_size") or SHM_SIZE, "Sysctls": spec.get("sysctls") or None,
        "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "",
        "CpuShares": spec.get("cpu_shares") or 0, "Memory": spec.get("memory") or 0,
        "NanoCpus": round(cpus * 1e9) if cpus else 0, "CgroupParent": "",
        **_blkio(spec), "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0, "CpusetCpus": spec.get("cpuset_cpus") or "",
        "CpusetMems": spec.get("cpuset_mems") or "",
        "Devices": [{"PathOnHost": d["path_on_host"], "PathInContainer": d["path_in_container"],
                     "CgroupPermissions": d["permissions"]} for d in spec.get("devices") or []],
        "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0,
        "KernelMemoryTCP": 0, "MemoryReservation": spec.get("memory_reservation") or 0,
        "MemorySwap": spec.get("memory_swap") or 0, "MemorySwappiness": None,
        "OomKillDisable": False, "PidsLimit": spec.get("pids_limit"),
        "Ulimits": [{"Name": u["name"], "Soft": u["soft"], "Hard": u["hard"]}
                    for u in spec.get("ulimits") or []] or None,
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "Init": True if spec.get("init") else None,
    }
    tmpfs = _tmpfs(spec)
    if tmpfs:
        out["Tmpfs"] = tmpfs
    return out


def config(row: Container, image_config: dict[str, Any]) -> dict[str, Any]:
    """Config: what the container runs, the image's settings merged with the request's."""
    spec = row.spec
    inner = image_config.get("config") or {}
    entrypoint = spec.get("entrypoint")
    cmd = spec.get("command") or None
    if cmd is None and (entrypoint is None or entrypoint in ([], [""])):
        cmd = inner.get("Cmd")  # a new entrypoint drops the image's Cmd, as in Docker
    if entrypoint is None:
        entrypoint = inner.get("Entrypoint")
    volumes = {m["target"]: {} for m in spec.get("mounts") or [] if m.get("anonymous")}
    out: dict[str, Any] = {
        "Hostname": spec.get("hostname") or row.id[:12],
        "Domainname": spec.get("domainname") or "",
        "User": spec.get("user") or inner.get("User") or "",
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "Tty": bool(spec.get("tty")), "OpenStdin": bool(spec.get("stdin_open")),
        "StdinOnce": bool(spec.get("stdin_once")),
        "Env": merge_env(inner.get("Env") or [], spec.get("env") or []),
        "Cmd": cmd or None, "Image": row.image_ref, "Volumes": volumes or None,
        "WorkingDir": spec.get("workdir") or inner.get("WorkingDir") or "",
        "Entrypoint": entrypoint or None, "OnBuild": None,
        "Labels": {**image_labels(image_config), **(row.labels or {})},
    }
    ports = exposed(spec, image_config)
    if ports:
        out["ExposedPorts"] = {p: {} for p in ports}
    signal = spec.get("stop_signal") or image_stop_signal(image_config)
    if signal:
        out["StopSignal"] = signal
    if spec.get("stop_timeout") is not None:
        out["StopTimeout"] = spec["stop_timeout"]
    if spec.get("healthcheck"):
        out["Healthcheck"] = healthcheck_config(spec["healthcheck"])
    elif "healthcheck" not in spec and inner.get("Healthcheck"):
        out["Healthcheck"] = inner["Healthcheck"]  # made before Berth ran health checks
    return out


def healthcheck_config(check: dict[str, Any]) -> dict[str, Any]:
    """The container's check as Docker's HealthConfig (nanoseconds; zero values left out)."""
    out: dict[str, Any] = {"Test": list(check.get("test") or [])}
    for key, name in (("Interval", "interval"), ("Timeout", "timeout"),
                      ("StartPeriod", "start_period"), ("StartInterval", "start_interval")):
        if check.get(name):
            out[key] = round(check[name] * 1e9)
    if check.get("retries"):
        out["Retries"] = check["retries"]
    return out


def health_state(health: dict[str, Any] | None) -> dict[str, Any] | None:
    """State.Health: Status, FailingStreak and the last results."""
    if not health:
        return None
    return {"Status": health.get("status"), "FailingStreak": health.get("failing_streak", 0),
            "Log": [{"Start": rfc3339(e.get("start")), "End": rfc3339(e.get("end")),
                     "ExitCode": e.get("exit_code"), "Output": e.get("output", "")}
                    for e in health.get("log") or []]}


def inspect(row: Container, image_config: dict[str, Any],
            network_ids: dict[str, str] | None = None,
            net: NetState | None = None) -> dict[str, Any]:
    """GET /containers/{id}/json."""
    state = state_name(row)
    args = argv(row, image_config)
    ports = exposed(row.spec, image_config)
    return {
        "Id": row.id, "Created": rfc3339(row.created_at),
        "Path": args[0] if args else "", "Args": args[1:],
        "State": {
            "Status": state, "Running": state in ("running", "paused"),
            "Paused": state == "paused", "Restarting": state == "restarting",
            "OOMKilled": bool(row.oom_killed), "Dead": state == "dead", "Pid": row.pid or 0,
            "ExitCode": row.exit_code or 0, "Error": row.error or "",
            "StartedAt": rfc3339(row.started_at), "FinishedAt": rfc3339(row.finished_at),
            **({"Health": health_state(row.health)} if row.health else {}),
        },
        "Image": row.image_id, "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
        "LogPath": "", "Name": "/" + row.name, "RestartCount": row.restart_count or 0,
        "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
        "AppArmorProfile": "", "ExecIDs": None, "HostConfig": host_config(row.spec),
        "GraphDriver": {"Data": None, "Name": "overlay2"}, "Mounts": mounts(row.spec),
        "Config": config(row, image_config),
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": port_map(ports, net), "SandboxKey": "",
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
            **_default_bridge(net), "Networks": networks(row.spec, network_ids, net),
        },
    }


def _default_bridge(net: NetState | None) -> dict[str, Any]:
    """The top-level address fields: the default bridge network's, as Docker fills them."""
    at = next((a for a in net.attachments if a.network == "bridge"), None) if net else None
    shown = _endpoint(None, "", at)
    return {k: shown[k] for k in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
                                  "MacAddress")}


def summary(row: Container, image_config: dict[str, Any], now: float | None = None,
            net: NetState | None = None) -> dict[str, Any]:
    """One entry of GET /containers/json."""
    args = argv(row, image_config)
    return {
        "Id": row.id, "Names": ["/" + row.name], "Image": row.image_ref,
        "ImageID": row.image_id, "Command": " ".join(args), "Created": int(row.created_at),
        "Ports": port_list(exposed(row.spec, image_config), net),
        "Labels": {**image_labels(image_config), **(row.labels or {})},
        "State": state_name(row),
        "Status": status_text(row, now), "HostConfig": {"NetworkMode": network_mode(row.spec)},
        "NetworkSettings": {"Networks": networks(row.spec, None, net)},
        "Mounts": mounts(row.spec),
    }
