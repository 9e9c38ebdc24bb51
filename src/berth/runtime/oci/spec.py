"""Build an OCI runtime config.json (runtime-spec 1.0) from a ContainerSpec. Pure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime.base import ContainerSpec, DeviceLimit, DeviceNode, MountSpec, Resources
from berth.runtime.oci.caps import ALL_CAPS, effective_caps
from berth.runtime.oci.seccomp import default_profile

OCI_VERSION = "1.0.2"
NOFILE_LIMIT = 1048576
RLIM_INFINITY = 2**64 - 1  # the OCI spec's (uint64) unlimited
CPU_PERIOD = 100000  # microseconds; nano_cpus becomes quota over this period, as in Docker
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's defaults: kernel interfaces that leak host information or allow host changes.
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def cgroups_path(cid: str) -> str:
    return f"/berth/{cid}"


def hostname_of(spec: ContainerSpec) -> str:
    # Every container has its own UTS namespace; Docker's default name is the short id.
    return spec.hostname or spec.id[:12]


def _env(spec: ContainerSpec, home: str) -> list[str]:
    env = list(spec.env)
    keys = {e.partition("=")[0] for e in env}
    if "PATH" not in keys:
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in keys:
        env.append(f"HOSTNAME={hostname_of(spec)}")
    if "HOME" not in keys:
        env.append(f"HOME={home}")
    if spec.tty and "TERM" not in keys:
        env.append("TERM=xterm")
    return env


def build_process(spec: ContainerSpec, uid: int, gid: int, additional_gids: list[int], *,
                  home: str = "/", nofile: int = NOFILE_LIMIT) -> dict[str, Any]:
    if not spec.args:
        raise InvalidArgument("no command specified")
    caps = list(ALL_CAPS) if spec.privileged else effective_caps(spec.cap_add, spec.cap_drop)
    user: dict[str, Any] = {"uid": uid, "gid": gid}
    if additional_gids:
        user["additionalGids"] = list(additional_gids)
    process: dict[str, Any] = {
        "terminal": spec.tty,
        "user": user,
        "args": list(spec.args),
        "env": _env(spec, home),
        "cwd": spec.cwd or "/",
        # No inheritable/ambient: a non-root user must not gain caps through file caps.
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": _rlimits(spec.ulimits, nofile),
        # privileged as Docker's: setuid programs work (they reach container root at most)
        "noNewPrivileges": not spec.privileged,
    }
    if spec.oom_score_adj is not None:
        process["oomScoreAdj"] = spec.oom_score_adj
    return process


def _rlimits(ulimits: list[tuple[str, int, int]], nofile: int) -> list[dict[str, Any]]:
    """The request's (docker --ulimit; -1 unlimited), over the default open-files limit."""
    limits = {"nofile": (nofile, nofile)}
    limits.update({name: (soft, hard) for name, soft, hard in ulimits})
    return [{"type": f"RLIMIT_{name.upper()}", "soft": RLIM_INFINITY if soft == -1 else soft,
             "hard": RLIM_INFINITY if hard == -1 else hard}
            for name, (soft, hard) in limits.items()]


def check_ulimits(spec: ContainerSpec, host_hard_limit: Callable[[str], int]) -> None:
    """In a user namespace the runtime cannot raise a hard limit above its own (the
    kernel says only EPERM): refuse such a request by name. ``host_hard_limit``: the
    launcher's hard limit by rlimit name, -1 unlimited."""
    if spec.idmap is None:
        return
    for name, _soft, hard in spec.ulimits:
        ours = host_hard_limit(name)
        if ours != -1 and (hard == -1 or hard > ours):
            asked = "unlimited" if hard == -1 else hard
            raise InvalidArgument(f"ulimit {name}: the hard limit {asked} is above this "
                                  f"host's {ours}, which a container in a user namespace "
                                  "cannot raise")


def _standard_mounts(spec: ContainerSpec, shm_source: Path | None,
                     host_mqueue: bool) -> list[dict[str, Any]]:
    """shm_source: the host directory bound at /dev/shm (spec.shm shareable, join or host).
    host_mqueue: the host has an mqueue file system at /dev/mqueue."""
    userns = spec.idmap is not None
    host = spec.host_namespaces
    mounts: list[dict[str, Any]] = [
        # proc can only be mounted by a user namespace that owns the PID namespace: sharing
        # the host's, the container sees the host's /proc (podman's way, rootless)
        {"destination": "/proc", "type": "bind", "source": "/proc",
         "options": ["rbind", "nosuid", "noexec", "nodev"]} if "pid" in host and userns else
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
    ]
    if spec.shm == "private":
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777",
                                   f"size={spec.shm_size}"]})
    elif spec.shm != "none":
        if shm_source is None:
            raise InvalidArgument(f"/dev/shm ({spec.shm}) needs a host directory")
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": str(shm_source),
                       "options": ["rbind", "nosuid", "noexec", "nodev", "rprivate"]})
    if "ipc" not in host or not userns:
        mounts.append({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                       "options": ["nosuid", "noexec", "nodev"]})
    elif host_mqueue:  # mqueue, like proc, needs a user namespace owning the IPC namespace
        mounts.append({"destination": "/dev/mqueue", "type": "bind", "source": "/dev/mqueue",
                       "options": ["rbind", "nosuid", "noexec", "nodev"]})
    # privileged: writable, as far as the host's owners and modes let container root write
    ro = "rw" if spec.privileged else "ro"
    if spec.idmap is not None and spec.network == "host":
        # sysfs may only be mounted by a user namespace that owns the network namespace;
        # sharing the host's netns, the best we can do is the host's /sys.
        mounts.append({"destination": "/sys", "type": "bind", "source": "/sys",
                       "options": ["rbind", "nosuid", "noexec", "nodev", ro]})
    else:
        mounts.append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                       "options": ["nosuid", "noexec", "nodev", ro]})
    mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev", "relatime", ro]})
    return mounts


def _user_mount(m: MountSpec) -> dict[str, Any]:
    if not m.target.startswith("/"):
        raise InvalidArgument(f"mount target must be absolute: {m.target!r}")
    if m.kind in ("bind", "volume"):
        if not m.source.startswith("/"):
            raise InvalidArgument(f"mount source must be an absolute host path: {m.source!r}")
        return {"destination": m.target, "type": "bind", "source": m.source,
                "options": ["rbind", "ro" if m.readonly else "rw", "rprivate"]}
    if m.kind == "tmpfs":
        options = ["nosuid", "nodev", *m.options]
        if m.readonly:
            options.append("ro")
        return {"destination": m.target, "type": "tmpfs", "source": "tmpfs",
                "options": options}
    raise InvalidArgument(f"unknown mount kind: {m.kind!r}")


def _resources(res: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    memory: dict[str, int] = {}
    if res.memory is not None:
        if res.memory < 6 * 1024 * 1024:
            raise InvalidArgument("minimum memory limit allowed is 6MB")
        memory["limit"] = res.memory
    if res.memory_swap is not None:
        if res.memory is None and res.memory_swap != -1:
            raise InvalidArgument("memory_swap needs a memory limit too")
        if res.memory is not None and 0 <= res.memory_swap < res.memory:
            raise InvalidArgument("memory_swap must be at least the memory limit")
        memory["swap"] = res.memory_swap
    if res.memory_reservation:
        memory["reservation"] = res.memory_reservation
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if res.nano_cpus:
        if res.nano_cpus < 0:
            raise InvalidArgument("nano_cpus must be positive")
        cpu["quota"] = max(1000, res.nano_cpus * CPU_PERIOD // 1_000_000_000)
        cpu["period"] = CPU_PERIOD
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    if res.cpuset_cpus:
        cpu["cpus"] = res.cpuset_cpus
    if res.cpuset_mems:
        cpu["mems"] = res.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit is not None and res.pids_limit != 0:
        out["pids"] = {"limit": res.pids_limit}
    block_io = _block_io(res)
    if block_io:
        out["blockIO"] = block_io
    return out


def _add_devices(linux: dict[str, Any], devices: tuple[DeviceNode, ...],
                 privileged: bool) -> list[dict]:
    """Host devices: the device cgroup's leave to use each (after the deny-all rule; a
    privileged container's: every device), and the host's node bind-mounted where it goes (its
    mounts). Not linux.devices: in a user namespace, where it cannot mknod, runc bind-mounts
    the host's node at the container's path, which is another node when the two paths
    differ."""
    if privileged:
        linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        linux["resources"]["devices"] += [{"allow": True, "type": d.kind, "major": d.major,
                                           "minor": d.minor, "access": d.access}
                                          for d in devices]
    return [{"destination": d.path, "type": "bind", "source": d.source,
             "options": ["bind", "nosuid", "noexec"]} for d in devices]


# The OCI spec's blockIO lists and the Resources fields that fill them.
_THROTTLES = {"throttleReadBpsDevice": "device_read_bps",
              "throttleWriteBpsDevice": "device_write_bps",
              "throttleReadIOPSDevice": "device_read_iops",
              "throttleWriteIOPSDevice": "device_write_iops"}


def _devices(limits: tuple[DeviceLimit, ...], key: str) -> list[dict[str, int]]:
    return [{"major": d.major, "minor": d.minor, key: d.value} for d in limits]


def _block_io(res: Resources) -> dict[str, Any]:
    """linux.resources.blockIO. runc writes the weights to blkio.weight or blkio.bfq.weight
    (v1), io.bfq.weight or io.weight (v2), and the throttles to blkio.throttle.* or io.max;
    the service checked at create that the host and each device can take them."""
    out: dict[str, Any] = {}
    if res.blkio_weight:
        out["weight"] = res.blkio_weight
    if res.blkio_weight_device:
        out["weightDevice"] = _devices(res.blkio_weight_device, "weight")
    for key, field in _THROTTLES.items():
        limits = getattr(res, field)
        if limits:
            out[key] = _devices(limits, "rate")
    return out


def _namespaces(spec: ContainerSpec) -> list[dict[str, str]]:
    kinds = [k for k in ("pid", "ipc", "uts") if k not in spec.host_namespaces]
    kinds += ["mount", "cgroup"]
    if spec.network != "host":
        kinds.append("network")
    if spec.idmap is not None:
        kinds.append("user")
    unknown = set(spec.joins) - set(kinds)
    if unknown:
        raise InvalidArgument(f"cannot join a {sorted(unknown)[0]} namespace here")
    return [{"type": k, "path": spec.joins[k]} if k in spec.joins else {"type": k}
            for k in kinds]


def build_oci_config(spec: ContainerSpec, uid: int, gid: int, additional_gids: list[int],
                     rootfs: Path, files: dict[str, Path], *, home: str = "/",
                     nofile_hard_limit: int | None = None, shm_source: Path | None = None,
                     host_mqueue: bool = False) -> dict[str, Any]:
    """files maps a container path (/etc/hosts, /etc/hostname, /etc/resolv.conf) to the
    host file bind-mounted there. nofile_hard_limit: the hard RLIMIT_NOFILE the runtime
    inherits; inside a user namespace a limit cannot be raised above it. shm_source and
    host_mqueue: see _standard_mounts."""
    if spec.network not in ("none", "host"):
        raise InvalidArgument(f"unknown network mode: {spec.network!r}")
    nofile = NOFILE_LIMIT
    if spec.idmap is not None and nofile_hard_limit is not None and nofile_hard_limit > 0:
        nofile = min(nofile, nofile_hard_limit)
    process = build_process(spec, uid, gid, additional_gids, home=home, nofile=nofile)
    mounts = _standard_mounts(spec, shm_source, host_mqueue)
    for target, source in sorted(files.items()):
        mounts.append({"destination": target, "type": "bind", "source": str(source),
                       "options": ["rbind", "rprivate", "rw"]})
    mounts += [_user_mount(m) for m in spec.mounts]

    linux: dict[str, Any] = {
        "namespaces": _namespaces(spec),
        "resources": _resources(spec.resources),
        "cgroupsPath": cgroups_path(spec.id),
    }
    if not spec.privileged:  # a privileged container's: nothing masked, nothing filtered
        linux.update(maskedPaths=list(MASKED_PATHS), readonlyPaths=list(READONLY_PATHS),
                     seccomp=default_profile(process["capabilities"]["bounding"]))
    if spec.sysctls:
        linux["sysctl"] = dict(spec.sysctls)
    if spec.devices or spec.privileged:
        mounts += _add_devices(linux, spec.devices, spec.privileged)

    if spec.idmap is not None:
        mapping = [{"containerID": 0, "hostID": spec.idmap.host_base, "size": spec.idmap.size}]
        linux["uidMappings"] = mapping
        linux["gidMappings"] = [dict(m) for m in mapping]
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(rootfs), "readonly": spec.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
        "annotations": dict(spec.annotations),
    }
    if "uts" not in spec.host_namespaces:  # the host's keeps the host's name
        config["hostname"] = hostname_of(spec)
    if spec.domainname:  # runc before 1.2 ignores it: the backend sets it too (oci/uts.py)
        config["domainname"] = spec.domainname
    return config
