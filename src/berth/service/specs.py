"""Request models shared by every API: what a user may ask for, validated strictly.

Unknown fields are refused (extra="forbid") so a typo never silently does nothing.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from berth.errors import InvalidArgument
from berth.runtime.base import LogLimits
from berth.service import nsmodes, runopts
from berth.service.blkio import MAX_WEIGHT, MIN_WEIGHT, BlkioDevicesRequest
from berth.service.devices import DevicesRequest
from berth.service.health import HealthcheckRequest
from berth.service.runopts import Ulimit

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
# RFC 1123 names, dotted ones too (web.example.com), as docker takes them.
_DNS_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
HOSTNAME_RE = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
UTS_NAME_MAX = 64  # the kernel's limit on a hostname and a domain name
ENV_KEY_RE = re.compile(r"^[^=\x00]+$")
PORT_RE = re.compile(r"^[0-9]{1,5}/(tcp|udp|sctp)$")
LABEL_KEY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,252}$")
MIN_MEMORY = 6 * 1024 * 1024  # below this runc's own init cannot start (Docker's floor too)
MAX_BYTES = 2**63 - 1  # the kernel's and the OCI spec's int64
MAX_PIDS = 4_194_304  # the kernel's PID_MAX_LIMIT
MAX_LABELS = 256


def validate_name(name: str, what: str = "container") -> str:
    if not NAME_RE.match(name) or name.strip(".") == "":
        raise InvalidArgument(
            f"invalid {what} name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, "
            "at most 128 characters")
    return name


def check_argv(v: list[str] | None) -> list[str] | None:
    if v is not None and any("\x00" in arg for arg in v):
        raise ValueError("arguments cannot contain NUL bytes")
    return v


def check_hostname(v: str | None, what: str = "hostname") -> str | None:
    if v is not None and (not HOSTNAME_RE.match(v) or len(v) > UTS_NAME_MAX):
        raise ValueError(f"invalid {what} {v!r}: dot-separated labels of letters, digits "
                         f"and '-', at most {UTS_NAME_MAX} characters")
    return v


def check_domainname(v: str | None) -> str | None:
    return check_hostname(v, "domainname")


def check_env(v: list[str]) -> list[str]:
    for item in v:
        key = item.split("=", 1)[0]
        if not ENV_KEY_RE.match(key) or "\x00" in item:
            raise ValueError(f"invalid environment variable {item!r}: expected KEY=value")
    return v


def check_user(v: str | None) -> str | None:
    if v and (any(ord(c) < 32 for c in v) or v.count(":") > 1):
        raise ValueError(f"invalid user {v!r}: expected name, uid, name:group or uid:gid")
    return v


def check_workdir(v: str | None) -> str | None:
    if v and (not v.startswith("/") or "\x00" in v):
        raise ValueError(f"workdir must be an absolute path, got {v!r}")
    return v


def parse_signal(value: str | int) -> int:
    """'SIGTERM', 'TERM', 'term' or '15' -> 15."""
    text = str(value).strip()
    if text.isdigit():
        num = int(text)
        if 1 <= num < signal.NSIG:
            return num
        raise InvalidArgument(f"invalid signal: {value}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgument(f"invalid signal: {value}") from None


class RestartPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["no", "on-failure", "always", "unless-stopped"] = "no"
    max_retries: int = Field(0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _retries_only_on_failure(self) -> RestartPolicy:
        if self.max_retries and self.name != "on-failure":
            raise ValueError(f"restart policy {self.name!r} takes no maximum retry count "
                             "(only on-failure:N does)")
        return self

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        """'no' | 'on-failure[:N]' | 'always' | 'unless-stopped' (Docker's --restart)."""
        name, _, count = text.partition(":")
        if name not in ("no", "on-failure", "always", "unless-stopped"):
            raise InvalidArgument(
                f"invalid restart policy {text!r}: use no, on-failure[:N], always "
                "or unless-stopped")
        if count and name != "on-failure":
            raise InvalidArgument(f"invalid restart policy {text!r}: only on-failure takes :N")
        if count and not count.isdigit():
            raise InvalidArgument(f"invalid restart policy {text!r}: N must be a number")
        return cls(name=name, max_retries=int(count or 0))  # type: ignore[arg-type]


MIN_LOG_SIZE = 4096  # smaller, and nearly every line would begin a new file
MAX_LOG_FILES = 100
# Refused with the request (max_size -1), or at create when the daemon's default has no size.
FILES_NEED_A_SIZE = "log max_files needs a max_size: without a size limit the log is one file"
# What a container keeps of its output unless told otherwise (docker's "local" log driver's
# defaults): without a limit one busy container could fill the host's disk.
DEFAULT_LOG_LIMITS = LogLimits(max_size=20 * 1024 * 1024, max_files=5)


class LogOptions(BaseModel):
    """How much of its output a container keeps (docker's max-size and max-file log
    options). A field left out takes the daemon's default; max_size -1: no limit."""

    model_config = ConfigDict(extra="forbid")

    max_size: int | None = Field(None, ge=-1, le=MAX_BYTES)
    max_files: int | None = Field(None, ge=1, le=MAX_LOG_FILES)

    @field_validator("max_size")
    @classmethod
    def _max_size(cls, v: int | None) -> int | None:
        if v is not None and 0 <= v < MIN_LOG_SIZE:
            raise ValueError(f"max_size must be at least {MIN_LOG_SIZE} bytes, or -1 for "
                             "no limit")
        return v

    @model_validator(mode="after")
    def _files_need_a_size(self) -> LogOptions:
        if self.max_size == -1 and (self.max_files or 1) > 1:
            raise ValueError(FILES_NEED_A_SIZE)
        return self

    def merged(self, default: LogLimits) -> dict[str, int | None]:
        """The limits the container gets (kept in its spec, shown by inspect)."""
        size = default.max_size if self.max_size is None else self.max_size
        if size is None or size == -1:
            if self.max_files is not None and self.max_files > 1:
                raise InvalidArgument(FILES_NEED_A_SIZE)
            return {"max_size": None, "max_files": 1}
        return {"max_size": size, "max_files": self.max_files or default.max_files}


def check_volume_options(v: dict[str, str]) -> dict[str, str]:
    """The local driver's options (volume/options.py says which); a ValueError names why."""
    from berth.volume import options

    if any(len(value) > 4096 for value in v.values()):
        raise ValueError("a volume option's value is longer than 4096 characters")
    try:
        options.check(v)
    except InvalidArgument as e:
        raise ValueError(e.message) from None
    return v


class MountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["bind", "volume", "tmpfs"]
    target: str
    source: str = ""
    readonly: bool = False
    tmpfs_size: int | None = Field(None, gt=0, le=MAX_BYTES)
    tmpfs_mode: int | None = Field(None, ge=0, le=0o7777)
    tmpfs_noexec: bool = False  # Docker's --tmpfs default
    # A volume this mount makes (docker's volume-opt and volume-label): its local driver's
    # options and its labels; a volume that is there already keeps its own.
    volume_options: dict[str, str] = Field(default_factory=dict, max_length=8)
    volume_labels: dict[str, str] = Field(default_factory=dict)

    # as a volume create checks them
    _volume_options = field_validator("volume_options")(check_volume_options)

    @field_validator("volume_labels")
    @classmethod
    def _volume_labels(cls, v: dict[str, str]) -> dict[str, str]:
        return validate_labels(v)  # defined further down

    @field_validator("target")
    @classmethod
    def _target_absolute(cls, v: str) -> str:
        if not v.startswith("/") or "\x00" in v:
            raise ValueError(f"mount target must be an absolute path, got {v!r}")
        norm = os.path.normpath(v)
        if norm == "/":
            raise ValueError("mount target cannot be /")
        return norm

    @model_validator(mode="after")
    def _source_fits_type(self) -> MountRequest:
        if self.type == "bind" and not self.source.startswith("/"):
            raise ValueError(f"bind mount source must be an absolute host path, got "
                             f"{self.source!r}")
        if self.type == "volume" and self.source:
            validate_name(self.source, "volume")
        if self.type == "tmpfs" and self.source:
            raise ValueError("tmpfs mounts take no source")
        if self.type != "volume" and (self.volume_options or self.volume_labels):
            raise ValueError("volume options and labels are for volume mounts")
        return self


def parse_cpuset(text: str, field: str) -> set[int]:
    """The kernel's list format, "0-2,4" -> {0, 1, 2, 4}."""
    found: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or len(low + high) > 6:
            raise ValueError(f"{field}: invalid list {text!r}: expected numbers and ranges, "
                             'e.g. "0-2,4"')
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(f"{field}: invalid range {part.strip()!r}")
        found.update(range(first, last + 1))
    return found


def format_cpuset(ids: set[int]) -> str:
    return ",".join(str(i) for i in sorted(ids)) or "none"


def host_cpus() -> set[int]:
    return set(os.sched_getaffinity(0))


def host_mems() -> set[int]:
    try:
        text = Path("/sys/devices/system/node/online").read_text().strip()
    except OSError:
        return {0}  # no NUMA information: one node
    return parse_cpuset(text, "nodes") if text else {0}


class ResourcesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory: int | None = Field(None, le=MAX_BYTES, description="bytes")
    memory_swap: int | None = Field(None, le=MAX_BYTES,
                                    description="bytes of memory+swap; -1 unlimited")
    cpus: float | None = Field(None, description="number of CPUs, e.g. 0.5")
    cpu_shares: int | None = Field(None, ge=2, le=262_144)
    pids_limit: int | None = Field(None, le=MAX_PIDS,
                                   description="maximum processes; -1 unlimited")
    cpuset_cpus: str | None = Field(None, max_length=256, description='CPUs, e.g. "0-2,4"')
    cpuset_mems: str | None = Field(None, max_length=256, description="memory nodes")
    memory_reservation: int | None = Field(None, ge=0, le=MAX_BYTES,
                                           description="bytes: a soft limit under pressure")
    blkio_weight: int | None = Field(None, ge=0, le=MAX_WEIGHT,
                                     description="block IO weight, 10-1000 (0: unset)")

    @field_validator("blkio_weight")
    @classmethod
    def _blkio_weight(cls, v: int | None) -> int | None:
        if v is not None and 0 < v < MIN_WEIGHT:
            raise ValueError(f"must be from {MIN_WEIGHT} to {MAX_WEIGHT} (0: unset), got {v}")
        return v or None

    @model_validator(mode="after")
    def _sane(self) -> ResourcesRequest:
        if self.memory is not None and self.memory < MIN_MEMORY:
            raise ValueError(f"memory: minimum is {MIN_MEMORY} bytes (6 MiB), got {self.memory}")
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory is None:
                raise ValueError("memory_swap: set memory too")
            if self.memory_swap < self.memory:
                raise ValueError("memory_swap: must be at least memory (or -1 for unlimited)")
        if self.cpus is not None:
            ncpu = os.cpu_count() or 1
            if not 0.01 <= self.cpus <= ncpu:
                raise ValueError(f"cpus: must be between 0.01 and {ncpu} (this host's CPUs)")
        if self.pids_limit is not None and self.pids_limit != -1 and self.pids_limit < 1:
            raise ValueError("pids_limit: must be positive, or -1 for unlimited")
        if self.memory_reservation and self.memory and self.memory_reservation > self.memory:
            raise ValueError("memory_reservation: must be below the memory limit")
        for field, have in (("cpuset_cpus", host_cpus()), ("cpuset_mems", host_mems())):
            text = getattr(self, field)
            if text is not None:
                missing = sorted(parse_cpuset(text, field) - have)
                if missing:
                    raise ValueError(f"{field}: {missing[0]} is not on this host (it has "
                                     f"{format_cpuset(have)})")
        return self


class PortPublish(BaseModel):
    """-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]"""

    model_config = ConfigDict(extra="forbid")

    container_port: int = Field(ge=1, le=65535)
    proto: Literal["tcp", "udp"] = "tcp"
    host_ip: str = "0.0.0.0"
    host_port: int = Field(0, ge=0, le=65535)  # 0: an ephemeral port

    @field_validator("host_ip")
    @classmethod
    def _host_ip(cls, v: str) -> str:
        try:
            return str(ipaddress.IPv4Address(v))
        except ValueError:
            raise ValueError(f"host_ip {v!r} is not an IPv4 address") from None


class ContainerCreate(ResourcesRequest, BlkioDevicesRequest, DevicesRequest,
                      runopts.DnsRequest, nsmodes.NamespaceModesRequest):
    """POST /v1/containers."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, max_length=300)
    # "missing": pull the image first when the project lacks it; "always": pull it first.
    pull: Literal["never", "missing", "always"] = "never"
    name: str | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] = Field(default_factory=list, max_length=4096)
    workdir: str | None = None
    user: str | None = Field(None, max_length=256)
    hostname: str | None = None
    # Its UTS namespace's domain name (docker's --domainname): hostname -d shows it.
    domainname: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    tty: bool = False
    stdin_open: bool = False
    # Docker's StdinOnce: the container's stdin closes when an attached client's input ends
    # (not with a tty, whose input stays open, as in Docker).
    stdin_once: bool = False
    mounts: list[MountRequest] = Field(default_factory=list, max_length=128)
    restart_policy: RestartPolicy = Field(default_factory=RestartPolicy)
    auto_remove: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = Field(None, ge=0, le=3600)
    readonly_rootfs: bool = False
    cap_add: list[str] = Field(default_factory=list, max_length=64)
    cap_drop: list[str] = Field(default_factory=list, max_length=64)
    # Every capability, no seccomp filter, no masked /proc paths, the host's devices; still in
    # its user namespace. Admins', or a project's with the 'privileged' grant.
    privileged: bool = False
    network: Literal["none", "host"] = "none"
    # The bridge networks the container joins (the project's "bridge" or its own networks)
    # -> its aliases on each: an address on each, a veth into its own namespace. With none,
    # ``network`` says what it has: loopback only, or the host's.
    networks: dict[str, list[str]] = Field(default_factory=dict, max_length=64)
    # A fixed address on some of those networks (network name -> IPv4 address).
    ip_addresses: dict[str, str] = Field(default_factory=dict, max_length=64)
    # Published ports (-p): a host port (0: an ephemeral one) forwarded to a container port.
    ports: list[PortPublish] = Field(default_factory=list, max_length=256)
    # -P: publish every exposed port (the request's and the image's) on an ephemeral port.
    publish_all: bool = False
    # Ports the container says it listens on ("80/tcp"): metadata, as Docker's EXPOSE.
    exposed_ports: list[str] = Field(default_factory=list, max_length=1024)
    # Run a tiny init (tini) as PID 1 that reaps zombies and forwards signals (docker --init).
    init: bool = False
    # None: the image's HEALTHCHECK, if it has one (service/health.py merges them at create).
    healthcheck: HealthcheckRequest | None = None
    # A pod (name or id) of the project to join: its network, hostname (and IPC, PID).
    pod: str | None = Field(None, min_length=1, max_length=128)
    # A container of the project whose network (and hostname) this one shares, as Docker's
    # --network container:NAME; it must be running when this one starts.
    network_of: str | None = Field(None, min_length=1, max_length=128)
    # /etc/hosts lines of its own, "NAME:IP" (IP host-gateway: its first network's gateway).
    extra_hosts: list[str] = Field(default_factory=list, max_length=256)
    ulimits: list[Ulimit] = Field(default_factory=list, max_length=16)
    group_add: list[str] = Field(default_factory=list, max_length=64)
    # /dev/shm's size in bytes (None: 64 MiB) and sysctls of its own namespaces (net.*, IPC).
    shm_size: int | None = Field(None, ge=1, le=MAX_BYTES)
    sysctls: dict[str, str] = Field(default_factory=dict, max_length=64)
    # Its log's size limit and how many files are kept (None: the daemon's defaults).
    log: LogOptions | None = None
    # Containers of the project whose volumes and bind mounts it mounts too, "NAME[:ro|rw]"
    # (docker's --volumes-from; its own mounts win at the same target).
    volumes_from: list[str] = Field(default_factory=list, max_length=16)
    # Its processes' oom_score_adj: higher, the OOM killer picks them first. Below 0 would
    # shield them at others' expense: the service refuses it, naming why.
    oom_score_adj: int | None = Field(None, ge=-1000, le=1000)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else validate_name(v.lstrip("/"))

    _env = field_validator("env")(check_env)
    _argv = field_validator("command", "entrypoint")(check_argv)
    _user = field_validator("user")(check_user)
    _workdir = field_validator("workdir")(check_workdir)

    _hostname = field_validator("hostname")(check_hostname)
    _domainname = field_validator("domainname")(check_domainname)
    _extra_hosts = field_validator("extra_hosts")(runopts.check_extra_hosts)
    _group_add = field_validator("group_add")(runopts.check_groups)
    _sysctls = field_validator("sysctls")(runopts.check_sysctls)

    @field_validator("volumes_from")
    @classmethod
    def _volumes_from(cls, v: list[str]) -> list[str]:
        for item in v:
            ref, _, mode = item.partition(":")
            if not ref or mode not in ("", "ro", "rw"):
                raise ValueError(f"invalid volumes_from {item!r}: expected CONTAINER[:ro|rw]")
        return v

    @field_validator("ulimits")
    @classmethod
    def _ulimits(cls, v: list[Ulimit]) -> list[Ulimit]:
        names = [u.name for u in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"ulimit {dup[0]} is given twice")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return validate_labels(v)

    @field_validator("stop_signal")
    @classmethod
    def _stop_signal(cls, v: str | None) -> str | None:
        if v is not None:
            parse_signal(v)
        return v

    @field_validator("networks")
    @classmethod
    def _networks(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for net, aliases in v.items():
            validate_name(net, "network")
            if len(aliases) > 64:
                raise ValueError(f"network {net}: too many aliases (at most 64)")
            for alias in aliases:
                if not NAME_RE.match(alias):
                    raise ValueError(f"network {net}: invalid alias {alias!r}")
        return v

    @model_validator(mode="after")
    def _addressing(self) -> ContainerCreate:
        if self.network == "host" and (self.networks or self.ports):
            raise ValueError("a container on the host's network joins no other network and "
                             "publishes no ports (it uses the host's ports directly)")
        if self.pod is not None and (self.network != "none" or self.networks or self.ports
                                     or self.publish_all or self.hostname or self.domainname):
            raise ValueError("a container in a pod has the pod's network and hostname: give "
                             "networks, published ports and the hostname to the pod (its "
                             "domain name too: it is the pod's UTS namespace's)")
        if any(h.endswith(":" + runopts.HOST_GATEWAY) for h in self.extra_hosts) and \
                self.network == "none" and not self.networks and self.pod is None and \
                self.network_of is None:
            raise ValueError(f"extra_hosts: {runopts.HOST_GATEWAY} needs a network (it is "
                             "the network's gateway)")
        if self.dns and (self.pod is not None or self.network_of is not None):
            raise ValueError("dns: a container in a pod, or sharing another's network, asks "
                             "the DNS servers of that network's owner (set them there: "
                             "pod create --dns)")
        if why := nsmodes.conflicts(self):
            raise ValueError(why)
        shared = {"net": self.network == "host" or self.pod is not None or
                  self.network_of is not None, "ipc": nsmodes.shares_ipc(self)}
        for name in self.sysctls:
            if shared[runopts.sysctl_namespace(name) or "net"]:
                raise ValueError(f"sysctl {name}: the container shares that namespace (with "
                                 "the host, its pod or another container), so it cannot be "
                                 "set for it alone")
        if self.network_of is not None and (
                self.pod is not None or self.network != "none" or self.networks
                or self.ports or self.publish_all or self.hostname or self.domainname):
            raise ValueError("a container sharing another's network (network_of) has that "
                             "container's network and hostname: it takes no pod, network, "
                             "published port, hostname or domain name of its own")
        for net, address in self.ip_addresses.items():
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise ValueError(f"ip_addresses: {address!r} (network {net}) is not an IPv4 "
                                 "address") from None
        unknown = sorted(set(self.ip_addresses) - set(self.networks))
        if unknown:
            raise ValueError(f"ip_addresses: the container does not join network "
                             f"{unknown[0]!r}")
        seen = set()
        for p in self.ports:
            if p.host_port:
                key = (p.host_ip, p.host_port, p.proto)
                if key in seen:
                    raise ValueError(f"host port {p.host_port}/{p.proto} is published twice")
                seen.add(key)
        return self

    @field_validator("exposed_ports")
    @classmethod
    def _exposed_ports(cls, v: list[str]) -> list[str]:
        for item in v:
            if not PORT_RE.match(item) or not 0 < int(item.split("/")[0]) < 65536:
                raise ValueError(f"invalid exposed port {item!r}: expected PORT/tcp|udp|sctp")
        return v

    @model_validator(mode="after")
    def _mount_targets_unique(self) -> ContainerCreate:
        targets = [m.target for m in self.mounts]
        dup = {t for t in targets if targets.count(t) > 1}
        if dup:
            raise ValueError(f"duplicate mount target {sorted(dup)[0]}")
        if self.auto_remove and self.restart_policy.name != "no":
            raise ValueError("auto_remove and a restart policy cannot be combined")
        return self


def validate_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"too many labels (at most {MAX_LABELS})")
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(key):
            raise ValueError(f"invalid label key {key!r}")
        if len(value) > 4096:
            raise ValueError(f"label {key!r}: value longer than 4096 characters")
    return labels


class ContainerUpdate(ResourcesRequest):
    """POST /v1/containers/{id}/update: live limits and the restart policy."""

    model_config = ConfigDict(extra="forbid")

    restart_policy: RestartPolicy | None = None


class ExecRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(min_length=1, max_length=4096)
    env: list[str] = Field(default_factory=list, max_length=4096)
    workdir: str = ""
    user: str = Field("", max_length=256)
    tty: bool = False
    stdin: bool = False
    detach: bool = False  # start it and answer at once; its output goes nowhere (exec -d)

    _env = field_validator("env")(check_env)
    _argv = field_validator("command")(check_argv)
    _user = field_validator("user")(check_user)
    _workdir = field_validator("workdir")(check_workdir)


class VolumeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    # The local driver's options (docker's --opt): type=tmpfs, or type=none o=bind device=/x.
    options: dict[str, str] = Field(default_factory=dict, max_length=8)

    _options = field_validator("options")(check_volume_options)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else validate_name(v, "volume")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return validate_labels(v)
