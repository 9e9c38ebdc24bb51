"""The runtime backend interface: what the agent asks of a host's container runtime.

A backend turns a fully resolved ``ContainerSpec`` into a running container and reports what it
observes. It never touches the store: the agent owns desired state, a backend owns the host.
Every method is synchronous and idempotent where it can be (the agent calls them from worker
threads and may repeat a call after a crash). Backends declare what they support; the service
refuses an operation whose capability is missing (``Unsupported``) before it reaches a backend.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Capability(enum.StrEnum):
    PAUSE = "pause"
    EXEC = "exec"
    TTY = "tty"
    ATTACH = "attach"
    STATS = "stats"
    TOP = "top"
    UPDATE = "update"
    USERNS = "userns"
    CHECKPOINT = "checkpoint"
    # Block IO: a container's weight, per-device weights (the bfq IO scheduler's), and
    # per-device bytes/IOs-per-second limits. Declared when the host's cgroups can apply them.
    BLKIO_WEIGHT = "blkio-weight"
    BLKIO_WEIGHT_DEVICE = "blkio-weight-device"
    BLKIO_THROTTLE = "blkio-throttle"


@dataclass(frozen=True)
class IdMapping:
    """Container uid/gid 0..size-1 maps to host host_base..host_base+size-1."""

    host_base: int
    size: int = 65536

    @property
    def key(self) -> str:
        return f"{self.host_base}-{self.size}"


@dataclass(frozen=True)
class MountSpec:
    kind: str  # "bind" | "volume" | "tmpfs"
    target: str  # absolute path inside the container
    source: str = ""  # host path for bind/volume; unused for tmpfs
    readonly: bool = False
    options: tuple[str, ...] = ()  # tmpfs: ("size=64m", "mode=1777")


@dataclass(frozen=True)
class DeviceLimit:
    """A block IO setting of one device: a weight, or bytes or IOs per second."""

    major: int
    minor: int
    value: int


@dataclass(frozen=True)
class DeviceNode:
    """A host device given to the container: the host's node at path, and what it may do with
    it."""

    source: str  # the host's node
    path: str  # in the container
    kind: str  # "c" or "b"
    major: int
    minor: int
    access: str  # any of "rwm"


@dataclass(frozen=True)
class Resources:
    memory: int | None = None  # bytes
    memory_swap: int | None = None  # bytes, memory+swap; -1 unlimited
    nano_cpus: int | None = None  # 1e9 = one CPU (cfs quota/period)
    cpu_shares: int | None = None
    pids_limit: int | None = None
    cpuset_cpus: str | None = None  # "0-2,4"
    cpuset_mems: str | None = None
    memory_reservation: int | None = None  # bytes
    blkio_weight: int | None = None  # 10..1000
    blkio_weight_device: tuple[DeviceLimit, ...] = ()
    device_read_bps: tuple[DeviceLimit, ...] = ()
    device_write_bps: tuple[DeviceLimit, ...] = ()
    device_read_iops: tuple[DeviceLimit, ...] = ()
    device_write_iops: tuple[DeviceLimit, ...] = ()


SHM_SIZE = 64 * 1024 * 1024  # /dev/shm unless asked otherwise (docker's default)


@dataclass(frozen=True)
class LogLimits:
    """How much of a container's output is kept: files of at most max_size bytes (None:
    one file without limit), the newest max_files of them."""

    max_size: int | None = None
    max_files: int = 1

    @classmethod
    def of(cls, spec: dict[str, Any]) -> LogLimits:
        log = spec.get("log") or {}
        return cls(log.get("max_size"), int(log.get("max_files") or 1))


@dataclass(frozen=True)
class DnsSettings:
    """A container's own resolv.conf settings (empty: the network's or the host's)."""

    servers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: dict[str, Any]) -> DnsSettings:
        return cls(tuple(spec.get("dns") or ()), tuple(spec.get("dns_search") or ()),
                   tuple(spec.get("dns_options") or ()))


@dataclass(frozen=True)
class ContainerSpec:
    """Everything a backend needs, already resolved by the service layer."""

    id: str
    name: str
    args: list[str]  # entrypoint + cmd combined the way Docker does
    env: list[str]  # "KEY=value"
    cwd: str = "/"
    user: str = ""  # "", "name", "uid", "uid:gid", "name:group"; resolved in the rootfs
    hostname: str = ""
    domainname: str = ""  # its UTS namespace's (NIS) domain name; "" none
    tty: bool = False
    stdin: bool = False  # keep stdin open (attach)
    stdin_once: bool = False  # without a tty: close stdin when an attached client's input ends
    layers: list[Path] = field(default_factory=list)  # unpacked layer dirs, lowest first
    mounts: list[MountSpec] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    idmap: IdMapping | None = None  # None: no user namespace
    readonly_rootfs: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    network: str = "none"  # "none" (own netns, loopback only) | "host"
    annotations: dict[str, str] = field(default_factory=dict)
    # On bridge networks: its addresses (for /etc/hosts) and the nameservers its resolv.conf
    # names (the networks' DNS responders); the agent plumbs the namespace the runtime made.
    addresses: list[str] = field(default_factory=list)
    nameservers: list[str] = field(default_factory=list)
    # Namespaces joined rather than made (a pod's): OCI type ("network", "ipc", "uts", "pid",
    # "user") -> the path of the one to join.
    joins: dict[str, str] = field(default_factory=dict)
    extra_hosts: list[tuple[str, str]] = field(default_factory=list)  # (address, name)
    dns: DnsSettings = field(default_factory=DnsSettings)
    ulimits: list[tuple[str, int, int]] = field(default_factory=list)  # (name, soft, hard)
    group_add: list[str] = field(default_factory=list)  # names (the image's) or gids
    shm_size: int = SHM_SIZE  # /dev/shm, bytes
    sysctls: dict[str, str] = field(default_factory=dict)  # of its own net/IPC namespaces
    log: LogLimits = field(default_factory=LogLimits)
    oom_score_adj: int | None = None  # None: inherited (berthd's)
    devices: tuple[DeviceNode, ...] = ()  # host devices (admins, or the 'devices' grant)
    # Namespaces it shares with the host: "pid", "ipc", "uts" (the network's: `network`).
    host_namespaces: frozenset[str] = frozenset()
    # /dev/shm: "private" (a tmpfs of its own), "shareable" (a tmpfs the runtime keeps on the
    # host so that others can join it), "join" (shm_donor's), "host" (the host's), "none".
    shm: str = "private"
    shm_donor: str = ""  # the container whose /dev/shm it joins
    # every capability, no seccomp filter or masked paths, rw /sys, every device allowed (the
    # backend adds the host's nodes)
    privileged: bool = False


class Status(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"  # the process exited; exit_code is known
    MISSING = "missing"  # the runtime knows nothing of it (never made, or host rebooted)


@dataclass(frozen=True)
class Observed:
    status: Status
    pid: int = 0
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float | None = None  # unix time
    finished_at: float | None = None  # unix time


@dataclass(frozen=True)
class ExecSpec:
    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = ""
    user: str = ""
    tty: bool = False
    group_add: list[str] = field(default_factory=list)  # the container's, added for a user


class ExecProcess(ABC):
    """A running exec session. Without a tty, stdout and stderr are separate pipes."""

    @abstractmethod
    def fileno_stdin(self) -> int | None: ...

    @abstractmethod
    def fileno_stdout(self) -> int: ...

    @abstractmethod
    def fileno_stderr(self) -> int | None: ...  # None with a tty (merged into stdout)

    @abstractmethod
    def resize(self, rows: int, cols: int) -> None: ...

    @abstractmethod
    def close_stdin(self) -> None:
        """End the process's input (EOF on a pipe; ^D on a terminal). Idempotent."""

    @abstractmethod
    def wait(self) -> int: ...  # exit code; 126 not executable, 127 not found

    @abstractmethod
    def close(self) -> None: ...


@dataclass(frozen=True)
class Stats:
    cpu_usage_ns: int
    system_cpu_ns: int  # host-wide CPU time, for a percentage between two samples
    online_cpus: int
    memory_usage: int
    memory_limit: int | None
    pids_current: int
    pids_limit: int | None
    io_read_bytes: int
    io_write_bytes: int
    read_at: float  # unix time of the sample
    # Finer readings (Docker's stats shape carries them); zero/empty where the host lacks them.
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    percpu_ns: tuple[int, ...] = ()  # cgroup v1 only
    throttle_periods: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0
    memory_raw: int = 0  # usage including page cache (memory_usage leaves reclaimable cache out)
    memory_stat: dict[str, int] = field(default_factory=dict)  # memory.stat as the kernel has it
    # per interface (loopback left out): rx_/tx_ bytes, packets, errors, dropped
    networks: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class LogRecord:
    time: str  # RFC 3339 with nanoseconds, as conmon wrote it
    stream: str  # "stdout" | "stderr"
    data: bytes  # one line, with its newline when the line was complete


class RuntimeBackend(ABC):
    name: str
    capabilities: frozenset[Capability]

    @abstractmethod
    def create(self, spec: ContainerSpec) -> None:
        """Assemble the rootfs and bundle, start the monitor, and leave the process created
        but not started. On failure leave nothing behind and raise RuntimeFailure or
        InvalidArgument (e.g. the user named in spec.user does not exist in the image).
        Called again for a container that ran before (after ``release``), it keeps the
        container's writable layer and appends to its existing log."""

    @abstractmethod
    def start(self, cid: str) -> None: ...

    @abstractmethod
    def kill(self, cid: str, signal: int) -> None:
        """Send a signal to the container's init; no error if it has already exited."""

    @abstractmethod
    def pause(self, cid: str) -> None: ...

    @abstractmethod
    def resume(self, cid: str) -> None: ...

    @abstractmethod
    def state(self, cid: str) -> Observed: ...

    @abstractmethod
    def delete(self, cid: str) -> None:
        """Remove every trace on the host (process, monitor, mounts, cgroup, bundle, state).
        Idempotent: deleting a container that is half made or already gone succeeds."""

    @abstractmethod
    def release(self, cid: str) -> None:
        """Free a stopped container's runtime resources (runtime state, monitor, rootfs
        mount, cgroup) but keep its writable layer and log, so that ``create`` can run it
        again. Idempotent."""

    def start_watching(self) -> None:
        """Start whatever the backend watches on its own while the agent runs (called once,
        after the agent has adopted the host's containers). Nothing by default."""
        return None

    def exit_watch_dir(self) -> Path | None:
        """A directory in which the monitor writes a file when a container exits, for the
        agent to watch (inotify); None: the agent polls ``state`` instead."""
        return None

    @abstractmethod
    def list_ids(self) -> list[str]:
        """Containers this backend has any trace of on the host (to adopt or clean up)."""

    @abstractmethod
    def exec(self, cid: str, spec: ExecSpec) -> ExecProcess: ...

    @abstractmethod
    def stats(self, cid: str) -> Stats: ...

    @abstractmethod
    def top(self, cid: str, ps_args: list[str] | None = None
            ) -> tuple[list[str], list[list[str]]]:
        """Column titles and one row per process in the container; ps_args: the columns and
        rows the host's ps would show with these options (docker top's ps OPTIONS)."""

    @abstractmethod
    def update(self, cid: str, resources: Resources) -> None:
        """Change limits of a live container."""

    @abstractmethod
    def read_logs(self, cid: str, follow: bool = False,
                  from_end: bool = False) -> Iterator[LogRecord]:
        """The container's log from the beginning; with follow, keep yielding until the
        container's monitor has exited and the log is drained. from_end: only what is
        written after this call returns (called before a start: that run's output)."""

    @abstractmethod
    def attach_socket(self, cid: str) -> Path:
        """The monitor's attach socket (stdin in, stdout/stderr out) for a container created
        with stdin or tty."""

    def update_network_files(self, cid: str, addresses: list[str], nameservers: list[str],
                             dns: DnsSettings) -> None:
        """A running container's networks changed: its /etc/hosts (own addresses) and
        resolv.conf (nameservers) follow. Backends without such files do nothing."""
        return None

    @abstractmethod
    def resize(self, cid: str, rows: int, cols: int) -> None: ...

    def changes_dir(self, cid: str) -> Path:
        """The container's writable layer (an overlayfs upper dir: whiteouts as 0/0 character
        devices, opaque dirs by xattr), for commit. Backends without one refuse."""
        from berth.errors import Unsupported

        raise Unsupported(f"the {self.name} runtime cannot commit a container's changes")

    def open_root(self, cid: str, layers: list[Path], idmap: IdMapping | None, *,
                  writable: bool, mounts: bool) -> AbstractContextManager[int]:
        """A context giving a directory fd (O_PATH) of the container's root filesystem as
        it sees it, running or not (``layers``: its image's unpacked layers, lowest first,
        for a container that is not running). mounts: with its volumes and tmpfs mounts
        (when running), else the rootfs alone. writable: the caller will write through it.
        Backends without host access to the filesystem refuse."""
        from berth.errors import Unsupported

        raise Unsupported(f"the {self.name} runtime cannot reach a container's files")
