"""The Docker API's pure translations: create/update bodies in, inspect/list shapes out."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.docker import shapes, translate
from berth.errors import InvalidArgument
from berth.runtime.base import LogLimits
from berth.store.models import Container

# What the docker CLI 20.10 sends for `docker create busybox sleep 5`: zeros everywhere.
CLI_BODY: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": [], "Cmd": ["sleep", "5"], "Image": "busybox",
    "Volumes": {}, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {},
    "HostConfig": {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {
            "Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False, "VolumeDriver": "",
        "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "CgroupnsMode": "",
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
        "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
        "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 0,
        "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "",
        "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
        "KernelMemory": 0, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": -1, "OomKillDisable": False, "PidsLimit": None,
        "Ulimits": None, "CpuCount": 0, "IOMaximumIOps": 0, "MaskedPaths": None,
        "ReadonlyPaths": None,
    },
    "NetworkingConfig": {"EndpointsConfig": {}},
}


def _with(**host: Any) -> dict[str, Any]:
    return {**CLI_BODY, "HostConfig": {**CLI_BODY["HostConfig"], **host}}


def test_the_clis_zero_values_are_accepted() -> None:
    req = translate.container_create(CLI_BODY, "box")
    assert req.image == "busybox" and req.command == ["sleep", "5"] and req.name == "box"
    assert req.network == "none" and req.networks == {"bridge": []}
    assert req.memory is None and req.cpus is None and req.mounts == []
    assert req.restart_policy.name == "no"


def test_namespace_modes_are_taken() -> None:
    req = translate.container_create(_with(PidMode="container:web", IpcMode="container:web",
                                           UTSMode="", NetworkMode="bridge"))
    assert (req.pid_mode, req.ipc_mode, req.uts_mode) == ("container:web", "container:web",
                                                          None)
    req = translate.container_create(_with(PidMode="host", IpcMode="shareable"))
    assert (req.pid_mode, req.ipc_mode) == ("host", "shareable")
    assert translate.container_create(_with(IpcMode="private")).ipc_mode is None
    with pytest.raises(InvalidArgument, match="uts_mode host: the container has the host's"):
        translate.container_create({**_with(UTSMode="host"), "Hostname": "web"})


@pytest.mark.parametrize(("host", "field"), [
    ({"Privileged": "yes"}, "HostConfig.Privileged"),
    ({"Devices": [{"PathOnHost": "/dev/kvm", "Major": 10}]}, "HostConfig.Devices[0].Major"),
    ({"PidMode": "bogus"}, "HostConfig.PidMode: unknown PID mode 'bogus'"),
    ({"PidMode": "container:"}, "HostConfig.PidMode: 'container:' names no container"),
    ({"OomKillDisable": True}, "HostConfig.OomKillDisable"),
    ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 2}]}, "unknown ulimit 'bogus'"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 3, "Hard": 2}]}, "above the hard limit"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2, "X": 1}]}, "Ulimits[0].X"),
    ({"ExtraHosts": ["nocolon"]}, "invalid extra host 'nocolon'"),
    ({"GroupAdd": ["a b"]}, "invalid group 'a b'"),
    ({"DnsOptions": ["ndots 2"]}, "invalid DNS option"),
    ({"PortBindings": {"80/tcp": [{"HostPort": "80-90"}]}}, "ranges are not supported"),
    ({"PortBindings": {"80/sctp": [{"HostPort": "80"}]}}, "PORT/tcp or PORT/udp"),
    ({"PortBindings": {"80/tcp": [{"HostIp": "nowhere", "HostPort": "80"}]}}, "host_ip"),
    ({"Links": ["db:db"]}, "user-defined network"),
    ({"Dns": ["one.one"]}, "invalid DNS server 'one.one'"),
    ({"ShmSize": -1}, "shm_size"),
    ({"Sysctls": {"vm.swappiness": "1"}}, "sysctl 'vm.swappiness' is not allowed"),
    ({"Sysctls": {"net.core.somaxconn": 1024}}, "HostConfig.Sysctls: expected string"),
    ({"SecurityOpt": ["seccomp=unconfined"]}, "seccomp=unconfined"),
    ({"LogConfig": {"Type": "syslog", "Config": {}}}, "LogConfig.Type 'syslog'"),
    ({"LogConfig": {"Type": "json-file", "Config": {"compress": "true"}}},
     "LogConfig.Config.compress: unsupported log option"),
    ({"LogConfig": {"Config": {"max-size": "huge"}}}, "LogConfig.Config.max-size: invalid"),
    ({"LogConfig": {"Config": {"max-size": "1k"}}}, "max_size must be at least 4096"),
    ({"LogConfig": {"Config": {"max-file": "3", "max-size": "-1"}}},
     "log max_files needs a max_size"),
    ({"LogConfig": {"Config": {"max-file": "0"}}}, "max_files"),
    ({"NetworkMode": "container:"}, "names no container"),
    ({"IpcMode": "private-ish"}, "HostConfig.IpcMode: unknown IPC mode"),
    ({"UTSMode": "container:web"}, "HostConfig.UTSMode: unknown UTS mode 'container:web'"),
    ({"IpcMode": "none", "ShmSize": 1 << 20}, "with ipc_mode none the container has no"),
    ({"UsernsMode": "host"}, "HostConfig.UsernsMode: 'host' is not supported"),
    ({"Runtime": "crun"}, "HostConfig.Runtime: 'crun'"),
    ({"Memory": "lots"}, "HostConfig.Memory: expected an integer"),
    ({"Memory": True}, "HostConfig.Memory: expected an integer"),
    ({"Binds": "/a:/b"}, "HostConfig.Binds: expected a list"),
    ({"Binds": ["/a:/b:shared"]}, "'shared'"),
    ({"Tmpfs": {"/t": "uid=5"}}, "'uid=5'"),
    ({"Mounts": [{"Type": "npipe", "Target": "/x"}]}, "npipe"),
    ({"NanoCpus": 10**9, "CpuQuota": 50000}, "Conflicting options"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}, "RestartPolicy"),
    ({"Memory": 1024}, "memory: minimum"),
])
def test_what_berth_cannot_honour_is_refused(host: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        translate.container_create(_with(**host))
    assert field in err.value.message


@pytest.mark.parametrize(("body", "field"), [
    ({"Image": ""}, "Image: required"),
    ({"Image": "busybox", "Domainname": "-example.com"}, "invalid domainname"),
    ({"Image": "busybox", "Domainname": 5}, "Domainname: expected a string"),
    ({"Image": "busybox", "Hostname": "-web"}, "invalid hostname"),
    ({"Image": "busybox", "Hostname": "a" * 65}, "invalid hostname"),
    ({"Image": "busybox", "HostConfig": {"OomScoreAdj": 1001}}, "oom_score_adj"),
    ({"Image": "busybox", "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1}},
     "Healthcheck.Interval: cannot be less than 1ms"),
    ({"Image": "busybox", "Env": "A=1"}, "Env: expected a list"),
    ({"Image": "busybox", "Labels": {"a": 1}}, "Labels"),
    ({"Image": "busybox", "WorkingDir": "rel"}, "workdir"),
    ({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {
        "bridge": {"Aliases": ["x"]}}}}, "user-defined networks"),
    ({"Image": "busybox", "HostConfig": {"NetworkMode": "a"}, "NetworkingConfig": {
        "EndpointsConfig": {"a": {"IPAMConfig": {"IPv4Address": "10.0.0.999"}}}}},
     "not an IPv4 address"),
    ({"Image": "busybox", "HostConfig": {"NetworkMode": "a"}, "NetworkingConfig": {
        "EndpointsConfig": {"a": {"IPAMConfig": {"IPv6Address": "fd00::2"}}}}},
     "IPv6Address"),
])
def test_bad_config_fields(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        translate.container_create(body)
    assert field in err.value.message


def test_ports_and_fixed_address() -> None:
    req = translate.container_create({
        "Image": "busybox", "HostConfig": {
            "NetworkMode": "app", "PublishAllPorts": True, "PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "::", "HostPort": ""}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}},
        "NetworkingConfig": {"EndpointsConfig": {"app": {
            "Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.2.3"}}}}})
    assert req.networks == {"app": ["web"]} and req.ip_addresses == {"app": "10.1.2.3"}
    assert req.publish_all
    assert [(p.container_port, p.proto, p.host_ip, p.host_port) for p in req.ports] == [
        (80, "tcp", "0.0.0.0", 8080), (53, "udp", "127.0.0.1", 0)]


def test_settings_berth_honours() -> None:
    req = translate.container_create({
        "Image": "busybox", "Cmd": "true", "Env": ["A=1"], "User": "1000:1000",
        "Hostname": "h1.example.com", "Labels": {"k": "v"}, "Tty": True, "OpenStdin": True,
        "StdinOnce": True, "StopSignal": "SIGINT", "StopTimeout": 3,
        "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/anon": {}, "/bound": {}},
        "Healthcheck": {"Test": ["NONE"]},
        "HostConfig": {
            "Binds": ["/srv:/bound:ro,z", "data:/data"], "Tmpfs": {"/run": "rw,exec,size=1m"},
            "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {
                "SizeBytes": 4096, "Mode": 0o700}}],
            "Memory": 64 << 20, "MemorySwap": -1, "CpuQuota": 50000, "CpuShares": 512,
            "PidsLimit": -1, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
            "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"], "ReadonlyRootfs": True,
            "Init": True, "ShmSize": 64 << 20, "SecurityOpt": ["no-new-privileges"],
            "NetworkMode": "appnet", "OomScoreAdj": 300},
        "NetworkingConfig": {"EndpointsConfig": {"appnet": {"Aliases": ["web", "web"]}}},
    })
    assert req.command == ["true"] and req.user == "1000:1000"
    assert req.hostname == "h1.example.com" and req.oom_score_adj == 300
    assert req.tty and req.stdin_open and req.stdin_once and req.init
    assert req.stop_signal == "SIGINT" and req.stop_timeout == 3
    assert req.exposed_ports == ["80/tcp"]
    assert (req.memory, req.memory_swap, req.cpus, req.cpu_shares, req.pids_limit) == (
        64 << 20, -1, 0.5, 512, -1)
    assert req.restart_policy.name == "on-failure" and req.restart_policy.max_retries == 2
    assert req.networks == {"appnet": ["web"]} and req.network == "none"
    by_target = {m.target: m for m in req.mounts}
    assert by_target["/bound"].type == "bind" and by_target["/bound"].readonly
    assert by_target["/data"].type == "volume" and by_target["/data"].source == "data"
    assert by_target["/anon"].type == "volume" and by_target["/anon"].source == ""
    assert by_target["/run"].tmpfs_size == 1 << 20 and not by_target["/run"].tmpfs_noexec
    assert by_target["/t"].tmpfs_mode == 0o700 and by_target["/t"].tmpfs_size == 4096
    assert len(req.mounts) == 5  # /bound came once: the bind wins over Volumes


def test_network_modes() -> None:
    def net(mode: str) -> tuple[str, dict[str, list[str]]]:
        req = translate.container_create({"Image": "b", "HostConfig": {"NetworkMode": mode}})
        return req.network, req.networks

    assert net("host") == ("host", {})
    assert net("none") == ("none", {})
    assert net("bridge") == ("none", {"bridge": []})
    assert net("") == ("none", {"bridge": []})
    assert net("mynet") == ("none", {"mynet": []})
    shared = translate.container_create({"Image": "b", "HostConfig": {
        "NetworkMode": "container:web"}, "NetworkingConfig": {"EndpointsConfig": {
            "container:web": {}}}})
    assert (shared.network, shared.networks, shared.network_of) == ("none", {}, "web")
    with pytest.raises(InvalidArgument, match="joins no network of its own"):
        translate.container_create({"Image": "b", "HostConfig": {
            "NetworkMode": "container:web"}, "NetworkingConfig": {"EndpointsConfig": {
                "container:web": {"Aliases": ["x"]}}}})


def test_endpoint_named_after_the_mode_or_the_network() -> None:
    """Docker 20.10's CLI names the default endpoint "bridge"; newer ones (28) "default"."""
    for key in ("default", "bridge"):
        req = translate.container_create({"Image": "b", "HostConfig": {"NetworkMode": "default"},
                                          "NetworkingConfig": {"EndpointsConfig": {key: {}}}})
        assert (req.network, req.networks) == ("none", {"bridge": []})
    with pytest.raises(InvalidArgument, match="names 'other'"):
        translate.container_create({"Image": "b", "HostConfig": {"NetworkMode": "default"},
                                    "NetworkingConfig": {"EndpointsConfig": {"other": {}}}})


def test_update() -> None:
    req = translate.container_update({"Memory": 96 << 20, "MemorySwap": 0, "CpuShares": 0,
                                      "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                                      "BlkioWeight": 0, "KernelMemory": 0})
    assert req.memory == 96 << 20 and req.restart_policy is None and req.memory_swap is None
    req = translate.container_update({"RestartPolicy": {"Name": "always"}})
    assert req.restart_policy is not None and req.restart_policy.name == "always"
    assert translate.container_update({"BlkioWeight": 300}).blkio_weight == 300
    with pytest.raises(InvalidArgument, match="blkio_weight: must be from 10 to 1000"):
        translate.container_update({"BlkioWeight": 5})
    # runc changes no per-device setting of a live container (nor does docker update)
    with pytest.raises(InvalidArgument, match="BlkioDeviceReadBps"):
        translate.container_update({"BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": 1}]})
    with pytest.raises(InvalidArgument, match="nothing to update"):
        translate.container_update({"Memory": 0})


def test_sizes_and_names() -> None:
    assert translate.parse_size("64m", "x") == 64 << 20
    assert translate.parse_size("1g", "x") == 1 << 30
    assert translate.parse_size("512", "x") == 512
    with pytest.raises(InvalidArgument):
        translate.parse_size("lots", "x")
    assert translate.image_ref_for_message("busybox") == "busybox:latest"
    assert translate.image_ref_for_message("reg:5000/a/b") == "reg:5000/a/b:latest"
    assert translate.image_ref_for_message("a:1") == "a:1"
    assert translate.image_ref_for_message("sha256:abcd") == "sha256:abcd"


# -- shapes ----------------------------------------------------------------------------------

IMAGE = {"config": {"Env": ["PATH=/bin", "A=image"], "Cmd": ["sh"], "WorkingDir": "/w",
                    "Labels": {"from": "image"}, "ExposedPorts": {"53/udp": {}}}}


def _row(**spec: Any) -> Container:
    return Container(
        id="a" * 64, project_id="p", name="box", host="h", image_id="sha256:" + "b" * 64,
        image_ref="busybox", spec={"image": "busybox", **spec}, labels={"k": "v"},
        created_at=1_700_000_000.5, desired="running", status="running", pid=42,
        exit_code=None, oom_killed=False, error="", started_at=1_700_000_001.0,
        finished_at=None, restart_count=0, stopped_by_user=False)


def test_inspect_shape() -> None:
    row = _row(command=["sleep", "300"], env=["A=mine", "B=2"], memory=64 << 20,
               networks={"bridge": []}, mounts=[
                   {"type": "volume", "target": "/v", "volume": "vol1", "source": "/x",
                    "readonly": False, "anonymous": False},
                   {"type": "tmpfs", "target": "/t", "readonly": False,
                    "options": ["mode=1777"]}], init=True,
               log={"max_size": 1 << 20, "max_files": 3})
    info = shapes.inspect(row, IMAGE)
    assert info["Name"] == "/box" and info["Path"] == "sleep" and info["Args"] == ["300"]
    assert info["Created"] == "2023-11-14T22:13:20.5Z"
    assert info["State"]["Running"] and info["State"]["Pid"] == 42
    assert info["State"]["FinishedAt"] == "0001-01-01T00:00:00Z"
    cfg = info["Config"]
    assert cfg["Env"] == ["PATH=/bin", "A=mine", "B=2"] and cfg["Cmd"] == ["sleep", "300"]
    assert cfg["WorkingDir"] == "/w" and cfg["Labels"] == {"from": "image", "k": "v"}
    assert cfg["ExposedPorts"] == {"53/udp": {}} and cfg["Hostname"] == "a" * 12
    host = info["HostConfig"]
    assert host["Memory"] == 64 << 20 and host["NetworkMode"] == "bridge"
    assert host["Binds"] == ["vol1:/v"] and host["Tmpfs"] == {"/t": "mode=1777"}
    assert host["Init"] is True and host["RestartPolicy"]["Name"] == "no"
    assert host["LogConfig"] == {"Type": "json-file",
                                 "Config": {"max-size": "1048576", "max-file": "3"}}
    assert info["Mounts"][0] == {"Type": "volume", "Name": "vol1", "Source": "/x",
                                 "Destination": "/v", "Driver": "local", "Mode": "",
                                 "RW": True, "Propagation": ""}
    assert list(info["NetworkSettings"]["Networks"]) == ["bridge"]
    assert info["NetworkSettings"]["Ports"] == {"53/udp": None}


def test_entrypoint_drops_the_images_cmd() -> None:
    cfg = shapes.config(_row(entrypoint=["/bin/echo"]), IMAGE)
    assert cfg["Entrypoint"] == ["/bin/echo"] and cfg["Cmd"] is None


def test_list_shape_and_status_words() -> None:
    row = _row(command=["sleep", "300"], network="host")
    item = shapes.summary(row, IMAGE, now=1_700_000_031.0)
    assert item["Names"] == ["/box"] and item["Command"] == "sleep 300"
    assert item["Status"] == "Up 30 seconds" and item["State"] == "running"
    assert item["HostConfig"] == {"NetworkMode": "host"} and item["Created"] == 1_700_000_000
    row.status, row.exit_code, row.finished_at = "exited", 3, 1_700_000_000.0
    assert shapes.status_text(row, 1_700_000_000.0 + 7200) == "Exited (3) 2 hours ago"
    row.status = "paused"
    assert shapes.status_text(row, 1_700_000_062.0) == "Up About a minute (Paused)"
    row.status = "creating"
    assert shapes.status_text(row) == "Created" and shapes.state_name(row) == "created"


def test_human_duration() -> None:
    assert shapes.human_duration(0.5) == "Less than a second"
    assert shapes.human_duration(1) == "1 second"
    assert shapes.human_duration(59) == "59 seconds"
    assert shapes.human_duration(60 * 5) == "5 minutes"
    assert shapes.human_duration(3600 * 30) == "30 hours"
    assert shapes.human_duration(86400 * 3) == "3 days"
    assert shapes.rfc3339(0) == "1970-01-01T00:00:00Z"


def test_hosts_dns_ulimits_and_groups_are_taken() -> None:
    req = translate.container_create(_with(
        ExtraHosts=["db:10.0.0.5", "gw:host-gateway"], Dns=["10.0.0.53"], DnsSearch=["corp"],
        DnsOptions=["ndots:2"], Ulimits=[{"Name": "nofile", "Soft": 100, "Hard": 200}],
        GroupAdd=["audio", "1234"], ShmSize=1 << 30, Sysctls={"net.core.somaxconn": "512"}))
    assert req.shm_size == 1 << 30 and req.sysctls == {"net.core.somaxconn": "512"}
    assert req.extra_hosts == ["db:10.0.0.5", "gw:host-gateway"]
    assert (req.dns, req.dns_search, req.dns_options) == (["10.0.0.53"], ["corp"], ["ndots:2"])
    assert [(u.name, u.soft, u.hard) for u in req.ulimits] == [("nofile", 100, 200)]
    assert req.group_add == ["audio", "1234"]


def test_log_options_are_taken_and_shown() -> None:
    req = translate.container_create(_with(LogConfig={
        "Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}))
    assert req.log is not None and (req.log.max_size, req.log.max_files) == (10 << 20, 3)
    assert translate.container_create(_with(LogConfig={"Type": "", "Config": {}})).log is None
    unlimited = translate.container_create(_with(LogConfig={"Config": {"max-size": "-1"}}))
    assert unlimited.log is not None
    assert unlimited.log.merged(LogLimits(1 << 20, 5)) == {"max_size": None, "max_files": 1}
    # A field left out takes the daemon's default, as docker merges its daemon log-opts.
    assert req.log.merged(LogLimits(1 << 20, 5)) == {"max_size": 10 << 20, "max_files": 3}
    only_files = translate.container_create(_with(LogConfig={"Config": {"max-file": "2"}}))
    assert only_files.log is not None
    assert only_files.log.merged(LogLimits(1 << 20, 5)) == {"max_size": 1 << 20,
                                                            "max_files": 2}
    with pytest.raises(InvalidArgument, match="needs a max_size"):
        only_files.log.merged(LogLimits(None, 1))


def test_cpusets_and_memory_reservation_are_taken() -> None:
    req = translate.container_create(_with(CpusetCpus="0", CpusetMems="0",
                                           MemoryReservation=64 << 20))
    assert (req.cpuset_cpus, req.cpuset_mems, req.memory_reservation) == ("0", "0", 64 << 20)
    upd = translate.container_update({"CpusetCpus": "0", "MemoryReservation": 32 << 20})
    assert (upd.cpuset_cpus, upd.memory_reservation) == ("0", 32 << 20)
    for bad, words in (({"CpusetCpus": "0-"}, "invalid list"), ({"CpusetCpus": "3-1"},
                       "invalid range"), ({"CpusetCpus": "4096"}, "not on this host"),
                       ({"Memory": 64 << 20, "MemoryReservation": 128 << 20}, "below")):
        with pytest.raises(InvalidArgument, match=words):
            translate.container_create(_with(**bad))


def test_devices() -> None:
    req = translate.container_create({"Image": "busybox", "HostConfig": {"Devices": [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rw"},
        {"PathOnHost": "/dev/net/tun"}]}})
    assert [(d.path_on_host, d.path_in_container, d.permissions) for d in req.devices] == [
        ("/dev/fuse", "/dev/fuse", "rw"), ("/dev/net/tun", None, "rwm")]
    for bad, words in (({"PathOnHost": "dev/fuse"}, "absolute path"),
                       ({"PathOnHost": "/dev/fuse", "CgroupPermissions": "rx"},
                        "invalid permissions"),
                       ({"PathOnHost": "/srv/node"}, "not under /dev/"),
                       ({"PathOnHost": "/dev/a", "PathInContainer": "/etc/a"}, "under /dev/")):
        with pytest.raises(InvalidArgument, match=words):
            translate.container_create({"Image": "busybox", "HostConfig": {"Devices": [bad]}})
