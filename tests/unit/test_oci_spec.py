"""config.json building, capabilities, the seccomp profile and exec process specs (pure)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from berth.errors import InvalidArgument
from berth.runtime.base import (
    ContainerSpec,
    DeviceNode,
    ExecSpec,
    IdMapping,
    MountSpec,
    Resources,
)
from berth.runtime.oci.caps import DEFAULT_CAPS, effective_caps
from berth.runtime.oci.exec import build_exec_process, exit_code_for, merge_env
from berth.runtime.oci.runc import clean_error
from berth.runtime.oci.seccomp import arches_for, default_profile
from berth.runtime.oci.spec import build_oci_config, check_ulimits

ROOTFS = Path("/var/lib/berth/containers/c1/rootfs")
FILES = {"/etc/hosts": Path("/x/hosts"), "/etc/hostname": Path("/x/hostname"),
         "/etc/resolv.conf": Path("/x/resolv.conf")}


def spec(**kw: Any) -> ContainerSpec:
    base: dict[str, Any] = {"id": "c1abcdef0123456789", "name": "web", "args": ["sh"],
                            "env": ["A=1"]}
    base.update(kw)
    return ContainerSpec(**base)


def config(s: ContainerSpec | None = None, **kw: Any) -> dict[str, Any]:
    return build_oci_config(s or spec(), 0, 0, [], ROOTFS, FILES, **kw)


def mount_at(cfg: dict[str, Any], dest: str) -> dict[str, Any]:
    found = [m for m in cfg["mounts"] if m["destination"] == dest]
    assert len(found) == 1, dest
    return found[0]


# ---- process ----------------------------------------------------------------------------


def test_process_defaults() -> None:
    cfg = build_oci_config(spec(user="app", cwd="/srv", tty=True), 1000, 1000, [50], ROOTFS,
                           FILES, home="/home/app")
    proc = cfg["process"]
    assert proc["args"] == ["sh"]
    assert proc["cwd"] == "/srv"
    assert proc["terminal"] is True
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [50]}
    assert proc["noNewPrivileges"] is True
    assert proc["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
    env = proc["env"]
    assert "A=1" in env and "HOME=/home/app" in env and "TERM=xterm" in env
    assert "HOSTNAME=c1abcdef0123" in env
    assert any(e.startswith("PATH=/usr/local/sbin:") for e in env)
    assert cfg["hostname"] == "c1abcdef0123"
    assert "oomScoreAdj" not in proc


def test_env_given_wins_and_oom_score() -> None:
    cfg = config(spec(env=["PATH=/only", "HOME=/h"], hostname="box", oom_score_adj=500))
    assert cfg["process"]["env"][:2] == ["PATH=/only", "HOME=/h"]
    assert not any(e.startswith("HOME=/") and e != "HOME=/h" for e in cfg["process"]["env"])
    assert cfg["hostname"] == "box"
    assert cfg["process"]["oomScoreAdj"] == 500


def test_no_command_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        config(spec(args=[]))


def test_nofile_clamped_only_in_user_namespace() -> None:
    with_userns = config(spec(idmap=IdMapping(100000)), nofile_hard_limit=20000)
    without = config(spec(), nofile_hard_limit=20000)
    assert with_userns["process"]["rlimits"][0]["hard"] == 20000
    assert without["process"]["rlimits"][0]["hard"] == 1048576


# ---- capabilities -----------------------------------------------------------------------


def test_default_capabilities_are_dockers() -> None:
    caps = config()["process"]["capabilities"]
    assert set(caps["bounding"]) == set(DEFAULT_CAPS)
    assert len(DEFAULT_CAPS) == 14
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    assert "inheritable" not in caps and "ambient" not in caps
    assert "CAP_SYS_ADMIN" not in caps["bounding"]


def test_cap_add_drop_and_names() -> None:
    caps = effective_caps(["sys_ptrace", "CAP_NET_ADMIN"], ["MKNOD", "cap_chown"])
    assert "CAP_SYS_PTRACE" in caps and "CAP_NET_ADMIN" in caps
    assert "CAP_MKNOD" not in caps and "CAP_CHOWN" not in caps
    assert effective_caps([], ["ALL"]) == []
    assert effective_caps(["NET_ADMIN"], ["ALL"]) == ["CAP_NET_ADMIN"]
    assert "CAP_SYS_ADMIN" in effective_caps(["ALL"], [])
    with pytest.raises(InvalidArgument, match="unknown capability"):
        effective_caps(["CAP_FLY"], [])
    with pytest.raises(InvalidArgument):
        config(spec(cap_drop=["nope"]))


# ---- root, mounts, namespaces -----------------------------------------------------------


def test_root_and_standard_mounts() -> None:
    cfg = config(spec(readonly_rootfs=True))
    assert cfg["root"] == {"path": str(ROOTFS), "readonly": True}
    assert mount_at(cfg, "/proc")["type"] == "proc"
    assert mount_at(cfg, "/dev")["type"] == "tmpfs"
    pts = mount_at(cfg, "/dev/pts")
    assert "newinstance" in pts["options"] and "ptmxmode=0666" in pts["options"]
    assert "size=67108864" in mount_at(cfg, "/dev/shm")["options"]  # 64 MiB, as docker's
    big = config(spec(shm_size=1 << 30, sysctls={"net.core.somaxconn": "1024"}))
    assert "size=1073741824" in mount_at(big, "/dev/shm")["options"]
    assert big["linux"]["sysctl"] == {"net.core.somaxconn": "1024"}
    assert "sysctl" not in cfg["linux"]
    assert mount_at(cfg, "/dev/mqueue")["type"] == "mqueue"
    sys_mount = mount_at(cfg, "/sys")
    assert sys_mount["type"] == "sysfs" and "ro" in sys_mount["options"]
    cg = mount_at(cfg, "/sys/fs/cgroup")
    assert cg["type"] == "cgroup" and "ro" in cg["options"]
    for dest, src in FILES.items():
        m = mount_at(cfg, dest)
        assert m["type"] == "bind" and m["source"] == str(src)


def test_sysfs_is_a_readonly_bind_with_userns_and_host_network() -> None:
    cfg = config(spec(idmap=IdMapping(100000), network="host"))
    m = mount_at(cfg, "/sys")
    assert m["type"] == "bind" and m["source"] == "/sys"
    assert "rbind" in m["options"] and "ro" in m["options"]
    assert mount_at(config(spec(network="host")), "/sys")["type"] == "sysfs"


def test_user_mounts() -> None:
    cfg = config(spec(mounts=[MountSpec("bind", "/ro", "/srv/a", readonly=True),
                              MountSpec("volume", "/rw", "/var/lib/berth/volumes/v/_data"),
                              MountSpec("tmpfs", "/scratch", options=("size=64m",))]))
    ro, rw, tmp = mount_at(cfg, "/ro"), mount_at(cfg, "/rw"), mount_at(cfg, "/scratch")
    assert ro["type"] == "bind" and "rbind" in ro["options"] and "ro" in ro["options"]
    assert rw["source"].endswith("/_data") and "rw" in rw["options"]
    assert tmp["type"] == "tmpfs" and "size=64m" in tmp["options"]
    assert cfg["mounts"][-3:] == [ro, rw, tmp]  # after the standard ones: they win
    for bad in (MountSpec("bind", "rel", "/a"), MountSpec("bind", "/a", "rel"),
                MountSpec("nfs", "/a", "/b")):
        with pytest.raises(InvalidArgument):
            config(spec(mounts=[bad]))


def test_namespaces_and_idmap() -> None:
    plain = {n["type"] for n in config()["linux"]["namespaces"]}
    assert plain == {"pid", "ipc", "uts", "mount", "network", "cgroup"}
    cfg = config(spec(idmap=IdMapping(200000, 65536), network="host"))
    kinds = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert kinds == {"pid", "ipc", "uts", "mount", "user", "cgroup"}
    want = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    assert cfg["linux"]["uidMappings"] == want and cfg["linux"]["gidMappings"] == want
    assert "uidMappings" not in config()["linux"]
    with pytest.raises(InvalidArgument):
        config(spec(network="bridge0"))


def test_masked_readonly_paths_cgroups_path_annotations() -> None:
    cfg = config(spec(annotations={"io.berth.project": "p1"}))
    linux = cfg["linux"]
    assert "/proc/kcore" in linux["maskedPaths"] and "/sys/firmware" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]
    assert "/proc/sysrq-trigger" in linux["readonlyPaths"]
    assert linux["cgroupsPath"] == "/berth/c1abcdef0123456789"
    assert cfg["annotations"] == {"io.berth.project": "p1"}
    assert cfg["ociVersion"].startswith("1.0")


# ---- resources --------------------------------------------------------------------------


def test_resources() -> None:
    res = Resources(memory=64 << 20, memory_swap=128 << 20, nano_cpus=1_500_000_000,
                    cpu_shares=512, pids_limit=100)
    r = config(spec(resources=res))["linux"]["resources"]
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert r["cpu"] == {"quota": 150000, "period": 100000, "shares": 512}
    assert r["pids"] == {"limit": 100}
    assert r["devices"] == [{"allow": False, "access": "rwm"}]
    empty = config()["linux"]["resources"]
    assert "memory" not in empty and "cpu" not in empty and "pids" not in empty


def test_bad_resources() -> None:
    for res in (Resources(memory=1024), Resources(memory=64 << 20, memory_swap=32 << 20),
                Resources(memory_swap=64 << 20), Resources(nano_cpus=-5)):
        with pytest.raises(InvalidArgument):
            config(spec(resources=res))


# ---- seccomp ----------------------------------------------------------------------------


def _denied_names(profile: dict[str, Any]) -> set[str]:
    return {n for rule in profile["syscalls"] if "args" not in rule for n in rule["names"]}


def _matches(rule: dict[str, Any], syscall: str, arg0: int) -> bool:
    """Evaluate one rule the way runc/libseccomp do (one condition per rule here)."""
    if syscall not in rule["names"]:
        return False
    for cond in rule.get("args", []):
        assert cond["op"] == "SCMP_CMP_MASKED_EQ" and cond["index"] == 0
        if arg0 & cond["value"] != cond["valueTwo"]:
            return False
    return True


def _blocked(profile: dict[str, Any], syscall: str, arg0: int = 0) -> bool:
    return any(_matches(r, syscall, arg0) for r in profile["syscalls"])


def test_seccomp_profile_shape_and_denylist() -> None:
    profile = config()["linux"]["seccomp"]
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert profile["architectures"] == arches_for(os.uname().machine)
    denied = _denied_names(profile)
    for name in ("kexec_load", "kexec_file_load", "init_module", "finit_module",
                 "delete_module", "reboot", "swapon", "swapoff", "acct", "bpf",
                 "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
                 "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "clock_settime",
                 "adjtimex", "settimeofday", "iopl", "ioperm", "mount", "umount2",
                 "pivot_root", "setns", "quotactl", "nfsservctl", "vm86", "move_mount",
                 "open_tree", "fsopen", "fsmount", "fspick"):
        assert name in denied, name
    for rule in profile["syscalls"]:
        assert rule["action"] == "SCMP_ACT_ERRNO"
        assert rule["errnoRet"] == (38 if rule["names"] == ["clone3"] else 1)
    for harmless in ("read", "write", "clone", "unshare", "ptrace", "personality"):
        assert harmless not in denied


@pytest.mark.parametrize(("machine", "arches"), [
    ("x86_64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),  # int 0x80, x32 too
    ("aarch64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
    ("mips", []),  # unknown: libseccomp's native arch alone
])
def test_seccomp_covers_every_abi_of_the_host_and_no_foreign_one(machine: str,
                                                                 arches: list[str]) -> None:
    assert arches_for(machine) == arches


def test_seccomp_namespace_flags() -> None:
    profile = config()["linux"]["seccomp"]
    assert not _blocked(profile, "clone", 0x01200011)  # fork(): SIGCHLD|CHILD_SETTID|...
    assert not _blocked(profile, "clone", 0x003D0F00)  # pthread_create flags
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x02000000):
        assert _blocked(profile, "clone", flag | 0x11)
        assert _blocked(profile, "unshare", flag)
    assert _blocked(profile, "unshare", 0x80)  # CLONE_NEWTIME
    assert not _blocked(profile, "unshare", 0x00000400)  # CLONE_FILES is harmless
    assert _blocked(profile, "clone3")


def test_seccomp_personality_allows_only_safe_values() -> None:
    profile = config()["linux"]["seccomp"]
    for ok in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert not _blocked(profile, "personality", ok), hex(ok)
    for bad in (0x0040000, 0x0400000, 0x1, 0x9, 0x20001, 0xFFFFFFFE, 0x7FFFFFFF, 0x10):
        assert _blocked(profile, "personality", bad), hex(bad)


def test_seccomp_relaxed_by_capabilities() -> None:
    admin = default_profile(effective_caps(["SYS_ADMIN"], []))
    assert "mount" not in _denied_names(admin)
    assert not _blocked(admin, "unshare", 0x10000000)
    assert "kexec_load" in _denied_names(admin)
    boot = default_profile(effective_caps(["SYS_BOOT"], []))
    assert "reboot" not in _denied_names(boot)
    assert "swapoff" in _denied_names(default_profile(effective_caps(["ALL"], [])))


# ---- exec and runtime messages ----------------------------------------------------------


def test_exec_process_inherits_container_process() -> None:
    base = config(spec(env=["A=1", "B=2"]))["process"]
    proc = build_exec_process(base, ExecSpec(["ls", "-l"], env=["B=3", "C=4"], cwd="/tmp",
                                             tty=True), {"uid": 5, "gid": 6})
    assert proc["args"] == ["ls", "-l"]
    assert proc["capabilities"] == base["capabilities"]
    assert proc["noNewPrivileges"] is True
    assert "A=1" in proc["env"] and "B=3" in proc["env"] and "C=4" in proc["env"]
    assert "B=2" not in proc["env"]
    assert proc["cwd"] == "/tmp" and proc["terminal"] is True
    assert proc["user"] == {"uid": 5, "gid": 6}
    same_user = build_exec_process(base, ExecSpec(["id"]), None)
    assert same_user["user"] == base["user"] and same_user["cwd"] == base["cwd"]
    assert base["args"] == ["sh"]  # the container's own process is not modified
    assert merge_env(["X=1", "Y=2"], ["X=9"]) == ["X=9", "Y=2"]


def test_exec_exit_code_mapping() -> None:
    nf = 'exec failed: unable to start container process: exec: "nosuch": executable ' \
         'file not found in $PATH'
    assert exit_code_for(255, nf) == 127
    assert exit_code_for(255, "exec: /data/x: permission denied") == 126
    assert exit_code_for(255, "") == 255  # the process itself exited 255
    assert exit_code_for(3, "") == 3
    assert exit_code_for(-9, "") == 137


def test_clean_error_reads_logrus_lines() -> None:
    text = ('time="2026-01-01T00:00:00Z" level=error msg="runc create failed: exec: '
            '\\"nosuch\\": executable file not found in $PATH"\n')
    assert clean_error(text) == ('runc create failed: exec: "nosuch": executable file not '
                                 'found in $PATH')
    assert clean_error("container not running\n") == "container not running"


def test_ulimits_join_the_default_open_files_limit() -> None:
    cfg = config(spec(ulimits=[("nproc", 64, 128), ("core", 0, 0)]))
    limits = {r["type"]: (r["soft"], r["hard"]) for r in cfg["process"]["rlimits"]}
    assert limits == {"RLIMIT_NOFILE": (1048576, 1048576), "RLIMIT_NPROC": (64, 128),
                      "RLIMIT_CORE": (0, 0)}
    own = config(spec(ulimits=[("nofile", 100, 200)]))
    assert own["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]


def test_ulimits_above_the_hosts_are_refused_only_in_a_user_namespace() -> None:
    limits = {"nofile": 1024, "core": -1}
    check = lambda s: check_ulimits(s, limits.__getitem__)  # noqa: E731
    check(spec(ulimits=[("nofile", 2048, 4096)]))  # no user namespace: runc may raise it
    userns = IdMapping(100000)
    check(spec(idmap=userns, ulimits=[("nofile", 512, 1024), ("core", -1, -1)]))
    for asked in (4096, -1):
        with pytest.raises(InvalidArgument, match="above this host's 1024"):
            check(spec(idmap=userns, ulimits=[("nofile", 1, asked)]))
    unlimited = config(spec(ulimits=[("core", -1, -1)]))["process"]["rlimits"][1]
    assert unlimited == {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}


def test_cpusets_and_memory_reservation_reach_the_config() -> None:
    res = Resources(cpuset_cpus="0-1", cpuset_mems="0", memory_reservation=64 << 20)
    linux = config(spec(resources=res))["linux"]["resources"]
    assert linux["cpu"] == {"cpus": "0-1", "mems": "0"}
    assert linux["memory"] == {"reservation": 64 << 20}


def test_host_devices_are_a_cgroup_rule_and_a_bind_of_the_hosts_node() -> None:
    cfg = config(spec(devices=(DeviceNode("/srv/nodes/ctl", "/dev/ctl", "c", 10, 237, "rw"),)))
    rules = cfg["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}  # deny all first
    assert {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "rw"} in rules
    assert {"destination": "/dev/ctl", "type": "bind", "source": "/srv/nodes/ctl",
            "options": ["bind", "nosuid", "noexec"]} in cfg["mounts"]
    # not linux.devices: in a user namespace runc would bind the host's /dev/ctl instead
    assert "devices" not in cfg["linux"]


# ---- namespace modes (--pid, --ipc, --uts) ----------------------------------------------


def namespaces(cfg: dict[str, Any]) -> list[str]:
    return [n["type"] for n in cfg["linux"]["namespaces"]]


def test_host_pid_under_a_user_namespace_binds_the_hosts_proc() -> None:
    cfg = config(spec(idmap=IdMapping(100000), host_namespaces=frozenset({"pid"})))
    assert "pid" not in namespaces(cfg) and "user" in namespaces(cfg)
    # a user namespace cannot mount proc for the host's PID namespace: runc would fail
    assert mount_at(cfg, "/proc")["type"] == "bind"
    assert mount_at(cfg, "/proc")["source"] == "/proc"
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]  # masked all the same
    root = config(spec(host_namespaces=frozenset({"pid"})))  # no user namespace: a real proc
    assert mount_at(root, "/proc")["type"] == "proc"
    assert namespaces(config())[:3] == ["pid", "ipc", "uts"]


def test_host_uts_sets_no_hostname() -> None:
    cfg = config(spec(hostname="web", host_namespaces=frozenset({"uts"})))
    assert "uts" not in namespaces(cfg) and "hostname" not in cfg  # runc would refuse it
    assert config(spec(hostname="web"))["hostname"] == "web"


def test_host_ipc_binds_the_hosts_dev_shm_and_mqueue() -> None:
    userns = {"idmap": IdMapping(100000), "host_namespaces": frozenset({"ipc"}), "shm": "host"}
    cfg = config(spec(**userns), shm_source=Path("/dev/shm"), host_mqueue=True)
    assert "ipc" not in namespaces(cfg)
    assert mount_at(cfg, "/dev/shm")["source"] == "/dev/shm"
    assert mount_at(cfg, "/dev/mqueue") == {"destination": "/dev/mqueue", "type": "bind",
                                             "source": "/dev/mqueue",
                                             "options": ["rbind", "nosuid", "noexec", "nodev"]}
    cfg = config(spec(**userns), shm_source=Path("/dev/shm"), host_mqueue=False)
    assert not [m for m in cfg["mounts"] if m["destination"] == "/dev/mqueue"]


def test_dev_shm_private_shared_or_none() -> None:
    own = mount_at(config(spec(shm_size=1 << 20)), "/dev/shm")
    assert own["type"] == "tmpfs" and f"size={1 << 20}" in own["options"]
    for mode in ("shareable", "join"):
        shared = mount_at(config(spec(shm=mode), shm_source=Path("/run/b/c/shm")), "/dev/shm")
        assert (shared["type"], shared["source"]) == ("bind", "/run/b/c/shm")
        assert {"nosuid", "noexec", "nodev"} <= set(shared["options"])
        with pytest.raises(InvalidArgument):  # never a bind of nothing
            config(spec(shm=mode))
    cfg = config(spec(shm="none"))
    assert not [m for m in cfg["mounts"] if m["destination"] == "/dev/shm"]
    assert mount_at(cfg, "/dev/mqueue")["type"] == "mqueue"


# ---- privileged -------------------------------------------------------------------------


def test_privileged_config() -> None:
    from berth.runtime.oci.caps import ALL_CAPS

    fuse = DeviceNode("/dev/fuse", "/dev/fuse", "c", 10, 229, "rwm")
    cfg = config(spec(privileged=True, idmap=IdMapping(100000), cap_drop=["ALL"],
                      devices=(fuse,)))
    assert cfg["process"]["capabilities"]["effective"] == list(ALL_CAPS)  # drops or not
    assert cfg["process"]["noNewPrivileges"] is False
    linux = cfg["linux"]
    assert not {"seccomp", "maskedPaths", "readonlyPaths"} & set(linux)
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert mount_at(cfg, "/dev/fuse")["source"] == "/dev/fuse"
    assert "rw" in mount_at(cfg, "/sys")["options"]
    assert "rw" in mount_at(cfg, "/sys/fs/cgroup")["options"]
    assert "user" in [n["type"] for n in linux["namespaces"]]  # still its user namespace
    plain = config(spec(idmap=IdMapping(100000)))
    assert plain["process"]["noNewPrivileges"] is True and "seccomp" in plain["linux"]
    assert "ro" in mount_at(plain, "/sys")["options"]


def test_host_devices_skip_what_each_container_has(tmp_path: Path) -> None:
    from berth.runtime.oci.hostdevices import OWN_NODES, host_devices, with_host_devices

    (tmp_path / "pts").mkdir()
    (tmp_path / "notanode").write_text("")
    (tmp_path / "link").symlink_to("/dev/null")
    assert host_devices(tmp_path) == []  # files and symlinks are no devices
    real = host_devices()
    paths = {d.path for d in real}
    assert not {f"/dev/{n}" for n in OWN_NODES} & paths
    assert not [p for p in paths if p.startswith(("/dev/pts/", "/dev/shm/"))]
    if real:  # the asked-for node wins its path
        first = real[0]
        asked = DeviceNode(first.source, first.path, first.kind, first.major, first.minor, "r")
        merged = with_host_devices((asked,))
        assert [d.access for d in merged if d.path == first.path] == ["r"]
