"""Docker's container create/update bodies -> Berth's ContainerCreate/ContainerUpdate. Pure.

Docker clients send every field, most at their zero value. A zero value is fine; a value Berth
honours is translated; any other value is refused with a 400 naming the field, never dropped.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from berth import fixedsettings, logopts
from berth.api.docker.fields import Fields, is_zero, parse_size, unsupported
from berth.api.docker.mounts import mounts
from berth.api.errors import validation_message
from berth.errors import InvalidArgument
from berth.service import nsmodes
from berth.service.specs import ContainerCreate, ContainerUpdate, RestartPolicy

__all__ = ["container_create", "container_update", "is_zero", "parse_size", "unsupported"]

DEFAULT_CPU_PERIOD = 100_000
_PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits: "²".isdigit() holds but int("²") fails
# Network modes that are not a network of their own.
BUILTIN_NETWORKS = ("bridge", "host", "none")
# HostConfig fields that may only name Berth's own behaviour (berth.fixedsettings)
_FIXED = {"CgroupnsMode": "cgroupns", "VolumeDriver": "volume-driver",
          "Runtime": "runtime", "Isolation": "isolation", "UsernsMode": "userns"}
# HostConfig's namespace modes -> the request's fields (service/nsmodes.py)
_NS_MODES = {"PidMode": "pid_mode", "IpcMode": "ipc_mode", "UTSMode": "uts_mode"}

# HostConfig's per-device block IO lists -> the request's field and the entries' value key.
BLKIO_DEVICES = {"BlkioWeightDevice": ("blkio_weight_device", "Weight"),
                 "BlkioDeviceReadBps": ("device_read_bps", "Rate"),
                 "BlkioDeviceWriteBps": ("device_write_bps", "Rate"),
                 "BlkioDeviceReadIOps": ("device_read_iops", "Rate"),
                 "BlkioDeviceWriteIOps": ("device_write_iops", "Rate")}

# Config fields the translation reads; anything else must be at its zero value.
_CONFIG_USED = {
    "Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Hostname", "Domainname",
    "Labels", "Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr",
    "StopSignal", "StopTimeout", "Healthcheck", "ExposedPorts", "Volumes", "HostConfig",
    "NetworkingConfig", "NetworkDisabled",
    # Windows-only or client-side: meaningless here.
    "ArgsEscaped", "Shell",
}
_HOST_USED = {
    "Binds", "Mounts", "Tmpfs", "RestartPolicy", "AutoRemove", "CapAdd",
    "CapDrop", "ReadonlyRootfs", "Init", "Memory", "MemorySwap", "NanoCpus", "CpuQuota",
    "CpuPeriod", "CpuShares", "PidsLimit", "NetworkMode", "LogConfig", "ShmSize",
    "MemorySwappiness", "SecurityOpt", *_FIXED, "PortBindings", "PublishAllPorts",
    "ExtraHosts", "Dns", "DnsSearch", "DnsOptions", "Ulimits", "GroupAdd", "Sysctls",
    "CpusetCpus", "CpusetMems", "MemoryReservation", "VolumesFrom", "OomScoreAdj",
    "BlkioWeight", *BLKIO_DEVICES, "Devices", *_NS_MODES, "Privileged",
    # The client's business (the CLI writes the id file; the console size is the attach's).
    "ContainerIDFile", "ConsoleSize",
}


def image_ref_for_message(ref: str) -> str:
    """Docker names a missing image with its tag: "busybox" -> "busybox:latest"."""
    if "@" in ref or ref.startswith("sha256:") or ":" in ref.rsplit("/", 1)[-1]:
        return ref
    return f"{ref}:latest"


# -- create --------------------------------------------------------------------------------


def container_create(body: dict[str, Any], name: str | None = None) -> ContainerCreate:
    """Docker's ContainerCreate body (and ?name=) as Berth's request."""
    cfg = Fields(body, "")
    cfg.zero_except(_CONFIG_USED)
    host = cfg.sub("HostConfig")
    host.zero_except(_HOST_USED)
    image = cfg.str("Image")
    if not image:
        raise InvalidArgument("Image: required")
    req: dict[str, Any] = {
        "image": image,
        "command": cfg.strs("Cmd", split=True),
        "entrypoint": cfg.strs("Entrypoint", split=True),
        "env": cfg.strs("Env") or [],
        "workdir": cfg.str("WorkingDir") or None,
        "user": cfg.str("User") or None,
        "hostname": cfg.str("Hostname") or None,
        "domainname": cfg.str("Domainname") or None,
        "labels": cfg.strings_map("Labels"),
        "tty": cfg.bool("Tty"),
        "stdin_open": cfg.bool("OpenStdin"),
        "stdin_once": cfg.bool("StdinOnce"),
        "stop_signal": cfg.str("StopSignal") or None,
        "stop_timeout": cfg.int("StopTimeout"),
        "exposed_ports": sorted(cfg.mapping("ExposedPorts")),
        "readonly_rootfs": host.bool("ReadonlyRootfs"),
        "auto_remove": host.bool("AutoRemove"),
        "init": host.bool("Init"),
        "cap_add": host.strs("CapAdd") or [],
        "cap_drop": host.strs("CapDrop") or [],
        "privileged": host.bool("Privileged"),
        "restart_policy": _restart_policy(host.sub("RestartPolicy")) or RestartPolicy(),
        "mounts": mounts(cfg, host),
        **_resources(host),
        **_blkio_devices(host),
        "devices": _devices(host),
        **_network(cfg, host, cfg.sub("NetworkingConfig")),
        "ports": _port_bindings(host),
        "publish_all": host.bool("PublishAllPorts"),
        "healthcheck": _healthcheck(cfg),
        "extra_hosts": host.strs("ExtraHosts") or [],
        "dns": host.strs("Dns") or [],
        "dns_search": host.strs("DnsSearch") or [],
        "dns_options": host.strs("DnsOptions") or [],
        "ulimits": _ulimits(host),
        "group_add": host.strs("GroupAdd") or [],
        "shm_size": host.int("ShmSize") or None,
        "sysctls": _sysctls(host),
        "log": _log_config(host.sub("LogConfig")),
        "volumes_from": host.strs("VolumesFrom") or [],
        "oom_score_adj": host.int("OomScoreAdj") or None,
        **_namespace_modes(host),
    }
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "NetworkDisabled"):
        cfg.bool(key)  # type-checked; attaching is the client's next request
    _host_settings(host)
    if name:
        req["name"] = name
    return _model(ContainerCreate, req)


def _namespace_modes(host: Fields) -> dict[str, str]:
    out = {}
    for key, field in _NS_MODES.items():
        try:
            mode = nsmodes.check_mode(field, host.str(key))
        except ValueError as e:
            raise InvalidArgument(f"{host.name(key)}: {e}") from None
        if mode is not None:
            out[field] = mode
    return out


def _sysctls(host: Fields) -> dict[str, str]:
    found = host.mapping("Sysctls")
    if not all(isinstance(v, str) for v in found.values()):
        raise InvalidArgument(f"{host.name('Sysctls')}: expected string values")
    return dict(found)


def _ulimits(host: Fields) -> list[dict[str, Any]]:
    """HostConfig.Ulimits: [{"Name", "Soft", "Hard"}]."""
    out = []
    for i, item in enumerate(host.objects("Ulimits")):
        f = Fields(item, f"{host.name('Ulimits')}[{i}]")
        f.zero_except({"Name", "Soft", "Hard"})
        out.append({"name": f.str("Name") or "", "soft": f.int("Soft") or 0,
                    "hard": f.int("Hard") or 0})
    return out


def _model(cls: Any, req: dict[str, Any]) -> Any:
    try:
        return cls(**req)
    except ValidationError as e:
        raise InvalidArgument(validation_message(list(e.errors()))) from None


_HEALTH_DURATIONS = {"Interval": "interval", "Timeout": "timeout",
                     "StartPeriod": "start_period", "StartInterval": "start_interval"}


def _healthcheck(cfg: Fields) -> dict[str, Any] | None:
    """Config.Healthcheck (nanoseconds) as the request's healthcheck (seconds); None: the
    image's. Docker's rules: a duration set is at least 1ms, retries are not negative."""
    if cfg.obj.get("Healthcheck") is None:
        return None
    hc = cfg.sub("Healthcheck")
    hc.zero_except({"Test", "Retries", *_HEALTH_DURATIONS})
    out: dict[str, Any] = {"test": hc.strs("Test") or []}
    for key, name in _HEALTH_DURATIONS.items():
        ns = hc.int(key) or 0
        if ns < 1_000_000 and ns != 0:
            raise InvalidArgument(f"{hc.name(key)}: cannot be less than 1ms")
        out[name] = ns / 1e9
    retries = hc.int("Retries") or 0
    if retries < 0:
        raise InvalidArgument(f"{hc.name('Retries')}: cannot be negative")
    out["retries"] = retries
    return out


def _host_settings(host: Fields) -> None:
    """Settings whose only honourable values are Berth's own behaviour."""
    if host.int("MemorySwappiness") not in (None, -1):
        raise unsupported("HostConfig.MemorySwappiness")
    for opt in host.strs("SecurityOpt") or []:
        if why := fixedsettings.security_opt_refusal(opt):
            raise InvalidArgument(f"HostConfig.SecurityOpt: {why}")
    for key, setting in _FIXED.items():
        if why := fixedsettings.refusal(setting, host.str(key) or ""):
            raise InvalidArgument(f"HostConfig.{key}: {why}")


def _log_config(log: Fields) -> dict[str, Any] | None:
    """Docker's LogConfig: a file-logging driver with max-size and max-file (None: the
    daemon's defaults)."""
    driver = log.str("Type") or ""
    if driver not in ("", *logopts.FILE_DRIVERS):
        raise InvalidArgument(f"HostConfig.LogConfig.Type {driver!r}: Berth keeps every "
                              "container's log itself (json-file, local or k8s-file)")
    try:
        return logopts.from_docker(log.mapping("Config")) or None
    except logopts.LogOptError as e:
        raise InvalidArgument(f"HostConfig.LogConfig.Config.{e}") from None


def _restart_policy(f: Fields) -> RestartPolicy | None:
    """None when Docker's policy name is empty (update: unchanged)."""
    name = f.str("Name") or ""
    retries = f.int("MaximumRetryCount") or 0
    if not name:
        if retries:
            raise InvalidArgument("HostConfig.RestartPolicy.MaximumRetryCount needs a Name")
        return None
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise InvalidArgument(f"HostConfig.RestartPolicy.Name: invalid restart policy {name!r}")
    try:
        return RestartPolicy(name=name, max_retries=retries)  # type: ignore[arg-type]
    except ValidationError as e:
        raise InvalidArgument("HostConfig.RestartPolicy: " + validation_message(
            list(e.errors()))) from None


def _resources(host: Fields) -> dict[str, Any]:
    """Docker's resource fields (0 = unset) as ResourcesRequest's (None = unset)."""
    out: dict[str, Any] = {}
    memory = host.int("Memory") or 0
    if memory < 0:
        raise InvalidArgument(f"{host.name('Memory')}: must not be negative")
    if memory:
        out["memory"] = memory
    swap = host.int("MemorySwap") or 0
    if swap:
        out["memory_swap"] = swap
    nano = host.int("NanoCpus") or 0
    quota, period = host.int("CpuQuota") or 0, host.int("CpuPeriod") or 0
    if nano and quota:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano and period:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano < 0 or quota < 0 or period < 0:
        raise InvalidArgument(f"{host.prefix or 'body'}: CPU limits must not be negative")
    if nano:
        out["cpus"] = nano / 1e9
    elif quota:  # Berth limits CPUs over a fixed period: the same share of time
        out["cpus"] = quota / (period or DEFAULT_CPU_PERIOD)
    elif period:
        raise InvalidArgument(f"{host.name('CpuPeriod')}: set CpuQuota with it (or NanoCpus)")
    shares = host.int("CpuShares") or 0
    if shares:
        out["cpu_shares"] = shares
    pids = host.int("PidsLimit")
    if pids:  # Docker: 0 and null leave it unset, -1 is unlimited
        out["pids_limit"] = pids
    for key, name in (("CpusetCpus", "cpuset_cpus"), ("CpusetMems", "cpuset_mems")):
        if host.str(key):
            out[name] = host.str(key)
    if host.int("MemoryReservation"):
        out["memory_reservation"] = host.int("MemoryReservation")
    if host.int("BlkioWeight"):
        out["blkio_weight"] = host.int("BlkioWeight")
    return out


def _devices(host: Fields) -> list[dict[str, Any]]:
    """Devices [{"PathOnHost", "PathInContainer", "CgroupPermissions"}] as the request's."""
    out = []
    for i, item in enumerate(host.objects("Devices")):
        f = Fields(item, f"{host.name('Devices')}[{i}]")
        f.zero_except({"PathOnHost", "PathInContainer", "CgroupPermissions"})
        out.append({"path_on_host": f.str("PathOnHost") or "",
                    "path_in_container": f.str("PathInContainer") or None,
                    "permissions": f.str("CgroupPermissions") or "rwm"})
    return out


def _blkio_devices(host: Fields) -> dict[str, Any]:
    """BlkioWeightDevice [{"Path", "Weight"}] and BlkioDevice{Read,Write}{Bps,IOps}
    [{"Path", "Rate"}] as the request's {path, weight|rate} lists."""
    out: dict[str, Any] = {}
    for key, (name, value_key) in BLKIO_DEVICES.items():
        entries = []
        for i, item in enumerate(host.objects(key)):
            f = Fields(item, f"{host.name(key)}[{i}]")
            f.zero_except({"Path", value_key})
            entries.append({"path": f.str("Path") or "",
                            value_key.lower(): f.int(value_key) or 0})
        if entries:
            out[name] = entries
    return out


# -- networks ------------------------------------------------------------------------------


def _network(cfg: Fields, host: Fields, net_cfg: Fields) -> dict[str, Any]:
    """NetworkMode and NetworkingConfig as Berth's network plus the Docker-facing names."""
    mode = host.str("NetworkMode") or "default"
    net_cfg.zero_except({"EndpointsConfig"})
    endpoints = net_cfg.mapping("EndpointsConfig")
    if cfg.bool("NetworkDisabled"):
        mode = "none"
    if mode.startswith("container:"):
        for key, settings in endpoints.items():  # newer CLIs send one named after the mode
            extra = _endpoint(Fields(settings, f"NetworkingConfig.EndpointsConfig.{key}"))
            if key != mode or extra != ([], None):
                raise InvalidArgument("NetworkingConfig.EndpointsConfig: a container sharing "
                                      "another's network joins no network of its own")
        target = mode.removeprefix("container:")
        if not target:
            raise InvalidArgument("HostConfig.NetworkMode 'container:' names no container")
        return {"network": "none", "networks": {}, "network_of": target}
    name = "bridge" if mode == "default" else mode
    if len(endpoints) > 1:
        raise InvalidArgument("NetworkingConfig.EndpointsConfig: a container can join one "
                              f"network at create, not {len(endpoints)}")
    aliases: list[str] = []
    address: str | None = None
    for key, settings in endpoints.items():
        # Newer CLIs name the endpoint after the mode as given ("default"), older ones after
        # the network it means ("bridge").
        if key not in (name, mode) and not (key == "bridge" and mode == "default"):
            raise InvalidArgument(f"NetworkingConfig.EndpointsConfig names {key!r} but "
                                  f"HostConfig.NetworkMode is {mode!r}")
        aliases, address = _endpoint(Fields(settings,
                                            f"NetworkingConfig.EndpointsConfig.{key}"))
    if aliases and name in BUILTIN_NETWORKS:
        raise InvalidArgument("network-scoped aliases are only supported for user-defined "
                              "networks")
    if address and name in ("host", "none"):
        raise InvalidArgument(f"a fixed address needs a bridge network, not {name}")
    if name == "host":
        return {"network": "host", "networks": {}}
    if name == "none":
        return {"network": "none", "networks": {}}
    return {"network": "none", "networks": {name: aliases},
            "ip_addresses": {name: address} if address else {}}


def _endpoint(f: Fields) -> list[str]:
    # Read-only fields a client may echo back from an inspect; the rest must be empty.
    f.zero_except({"Aliases", "IPAMConfig", "NetworkID", "EndpointID", "Gateway", "IPAddress",
                   "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen"})
    ipam = f.sub("IPAMConfig")
    ipam.zero_except({"IPv4Address"})
    aliases = f.strs("Aliases") or []
    return list(dict.fromkeys(aliases)), ipam.str("IPv4Address") or None


def _port_bindings(host: Fields) -> list[dict[str, Any]]:
    """HostConfig.PortBindings {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}."""
    out = []
    for key, bindings in host.mapping("PortBindings").items():
        port, _, proto = key.partition("/")
        proto = proto or "tcp"
        if not _PORT.fullmatch(port) or proto not in ("tcp", "udp"):
            raise InvalidArgument(f"HostConfig.PortBindings: invalid port {key!r}: expected "
                                  "PORT/tcp or PORT/udp")
        if bindings is not None and not isinstance(bindings, list):
            raise InvalidArgument(f"HostConfig.PortBindings.{key}: expected a list of objects")
        for i, b in enumerate(bindings or [{}]):
            f = Fields(b, f"HostConfig.PortBindings.{key}[{i}]")
            f.zero_except({"HostIp", "HostPort"})
            host_ip = f.str("HostIp") or "0.0.0.0"
            host_port = f.str("HostPort") or "0"
            if host_ip in ("::", "[::]"):
                continue  # the IPv6 twin a newer CLI adds: Berth publishes on IPv4
            if not _PORT.fullmatch(host_port):
                raise InvalidArgument(f"{f.prefix}.HostPort: {host_port!r}: expected one "
                                      "port (ranges are not supported)")
            out.append({"container_port": int(port), "proto": proto, "host_ip": host_ip,
                        "host_port": int(host_port)})
    return out


# -- update --------------------------------------------------------------------------------

_UPDATE_USED = {"Memory", "MemorySwap", "NanoCpus", "CpuQuota", "CpuPeriod", "CpuShares",
                "PidsLimit", "RestartPolicy", "MemorySwappiness", "CpusetCpus", "CpusetMems",
                "MemoryReservation", "BlkioWeight"}


def container_update(body: dict[str, Any]) -> ContainerUpdate:
    """Docker's ContainerUpdate body: live limits and the restart policy."""
    f = Fields(body, "")
    f.zero_except(_UPDATE_USED)
    if f.int("MemorySwappiness") not in (None, -1):
        raise unsupported("MemorySwappiness")
    req: dict[str, Any] = _resources(f)
    policy = _restart_policy(f.sub("RestartPolicy"))
    if policy is not None:
        req["restart_policy"] = policy
    if not req:
        raise InvalidArgument("nothing to update: set a limit or a restart policy")
    return _model(ContainerUpdate, req)
