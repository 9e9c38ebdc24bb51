"""Block IO limits and the domain name, without a runtime: the CLI's and Docker's spellings,
the request's checks, the host checks at create (with a faked host), what the host's cgroups
can apply, the OCI config and Docker's inspect shape."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from berth import blockdev
from berth.api.docker import shapes, translate
from berth.cli.blockio import device_settings, parse_device_value
from berth.cli.convert import UsageError
from berth.errors import InvalidArgument
from berth.runtime.base import Capability, ContainerSpec, DeviceLimit, Resources
from berth.runtime.oci.blkio import support
from berth.runtime.oci.rootfs import hosts_names
from berth.runtime.oci.spec import build_oci_config
from berth.service import blkio
from berth.service.specs import ContainerCreate, ContainerUpdate

MiB = 1 << 20
ALL = frozenset({Capability.BLKIO_WEIGHT, Capability.BLKIO_WEIGHT_DEVICE,
                 Capability.BLKIO_THROTTLE})

# ---- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "unit", "want"), [
    ("/dev/vda:1mb", "RATE", ("/dev/vda", MiB)),
    ("/dev/vda:512k", "RATE", ("/dev/vda", 512 << 10)),
    ("/dev/vda:1048576", "RATE", ("/dev/vda", MiB)),
    ("/dev/disk/by-path/pci-0:0:2.0:1g", "RATE", ("/dev/disk/by-path/pci-0:0:2.0", 1 << 30)),
    ("/dev/vda:200", "WEIGHT", ("/dev/vda", 200)),
    ("/dev/vda:1000", "IOPS", ("/dev/vda", 1000)),
])
def test_device_values_as_docker_writes_them(text: str, unit: str,
                                             want: tuple[str, int]) -> None:
    assert parse_device_value(text, "--x", unit) == want


@pytest.mark.parametrize(("text", "unit"), [
    ("/dev/vda", "RATE"), ("/dev/vda:", "RATE"), (":1mb", "RATE"), ("/dev/vda:fast", "RATE"),
    ("/dev/vda:1mb", "IOPS"), ("/dev/vda:-5", "WEIGHT"), ("/dev/vda:1.5", "IOPS"),
    # non-ASCII digits (isdigit takes "²", int() takes "٣٠٠"; docker neither), past int64
    ("/dev/vda:²", "IOPS"), ("/dev/vda:٣٠٠", "WEIGHT"), ("/dev/vda:" + "9" * 5000, "IOPS"),
])
def test_bad_device_values_name_the_option(text: str, unit: str) -> None:
    with pytest.raises(UsageError, match=f"invalid --device-x {text!r}: expected DEVICE:{unit}"):
        parse_device_value(text, "--device-x", unit)


def test_cli_options_become_the_request_lists() -> None:
    args = argparse.Namespace(blkio_weight_device=["/dev/vda:300"],
                              device_read_bps=["/dev/vda:1mb", "/dev/vdb:2m"],
                              device_write_bps=[], device_read_iops=[],
                              device_write_iops=["/dev/vda:50"], device=[])
    assert device_settings(args) == {
        "blkio_weight_device": [{"path": "/dev/vda", "weight": 300}],
        "device_read_bps": [{"path": "/dev/vda", "rate": MiB},
                            {"path": "/dev/vdb", "rate": 2 * MiB}],
        "device_write_iops": [{"path": "/dev/vda", "rate": 50}]}


def test_cli_parser_takes_docker_spellings() -> None:
    from berth.cli.parser import build

    line = ["run", "--blkio-weight", "300", "--blkio-weight-device", "/dev/vda:200",
            "--device-read-bps", "/dev/vda:1mb", "--device-write-bps", "/dev/vda:2mb",
            "--device-read-iops", "/dev/vda:10", "--device-write-iops", "/dev/vda:20",
            "--domainname", "example.org", "busybox"]
    args = build(line).parse_args(line)
    assert args.blkio_weight == 300 and args.domainname == "example.org"
    assert args.device_write_iops == ["/dev/vda:20"]
    line = ["update", "--blkio-weight", "500", "c"]
    assert build(line).parse_args(line).blkio_weight == 500


# ---- the request ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "says"), [
    ({"blkio_weight": 9}, "blkio_weight\n.*must be from 10 to 1000"),
    ({"blkio_weight": 1001}, "blkio_weight"),
    ({"blkio_weight_device": [{"path": "/dev/vda", "weight": 5}]}, "weight"),
    ({"device_read_bps": [{"path": "vda", "rate": 1}]}, "must be absolute"),
    ({"device_read_bps": [{"path": "/dev/vda", "rate": 0}]}, "greater than 0"),
    ({"device_write_iops": [{"path": "/dev/vda", "rate": 2**32}]}, "less than or equal"),
    ({"device_read_iops": [{"path": "/dev/vda", "rate": 1}, {"path": "/dev/vda", "rate": 2}]},
     "given twice"),
    ({"domainname": "a..b"}, "invalid domainname"),
    ({"domainname": "x" * 65}, "invalid domainname"),
    ({"domainname": "corp", "pod": "p"}, "domain name"),
])
def test_bad_requests(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        ContainerCreate(image="busybox", **fields)


def test_weight_zero_is_unset_and_update_takes_only_the_weight() -> None:
    assert ContainerCreate(image="b", blkio_weight=0).blkio_weight is None
    assert ContainerUpdate(blkio_weight=300).blkio_weight == 300
    with pytest.raises(ValidationError, match="device_read_bps"):
        ContainerUpdate(device_read_bps=[{"path": "/dev/vda", "rate": 1}])  # type: ignore


# ---- the host checks at create ------------------------------------------------------------


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A faked host: /dev/vda (254:0, mq-deadline), /dev/vda1 (a partition), /dev/sdb
    (8:16, bfq), /dev/stale (a node the kernel has no device for)."""
    nodes = {"/dev/vda": (254, 0), "/dev/vda1": (254, 1), "/dev/sdb": (8, 16),
             "/dev/stale": (9, 9)}
    kinds = {(254, 0): "disk", (254, 1): "partition", (8, 16): "disk"}
    scheds = {(254, 0): "mq-deadline", (8, 16): "bfq"}
    monkeypatch.setattr(blockdev, "device_number", nodes.get)
    monkeypatch.setattr(blockdev, "kind", lambda ma, mi: kinds.get((ma, mi)))
    monkeypatch.setattr(blockdev, "scheduler", lambda ma, mi: scheds.get((ma, mi)))
    return nodes


def _spec(**fields: Any) -> dict[str, Any]:
    return ContainerCreate(image="b", **fields).model_dump(mode="json")


def test_devices_are_resolved_to_major_minor(host: dict[str, Any]) -> None:
    spec = _spec(device_read_bps=[{"path": "/dev/vda", "rate": MiB}],
                 blkio_weight_device=[{"path": "/dev/sdb", "weight": 200}], blkio_weight=300)
    blkio.resolve_devices(spec, ALL)
    assert spec["device_read_bps"] == [{"path": "/dev/vda", "rate": MiB, "major": 254,
                                        "minor": 0}]
    assert spec["blkio_weight_device"][0] | {} == {"path": "/dev/sdb", "weight": 200,
                                                   "major": 8, "minor": 16}


@pytest.mark.parametrize(("fields", "caps", "says"), [
    ({"device_read_bps": [{"path": "/dev/null", "rate": 1}]}, ALL,
     "device_read_bps: /dev/null is not a block device on this host"),
    ({"device_write_bps": [{"path": "/dev/stale", "rate": 1}]}, ALL,
     "device_write_bps: /dev/stale is not a block device"),
    ({"device_read_iops": [{"path": "/dev/vda1", "rate": 1}]}, ALL,
     "device_read_iops: /dev/vda1 is a partition"),
    ({"blkio_weight_device": [{"path": "/dev/vda", "weight": 200}]}, ALL,
     "blkio_weight_device: /dev/vda uses the mq-deadline IO scheduler"),
    ({"blkio_weight_device": [{"path": "/dev/sdb", "weight": 200}]},
     ALL - {Capability.BLKIO_WEIGHT_DEVICE}, "cannot weight block IO per device"),
    ({"device_write_iops": [{"path": "/dev/vda", "rate": 1}]},
     ALL - {Capability.BLKIO_THROTTLE}, "device_write_iops: this host cannot throttle"),
    ({"blkio_weight": 300}, ALL - {Capability.BLKIO_WEIGHT},
     "blkio_weight: this host cannot weight"),
])
def test_what_the_host_cannot_apply_is_refused(host: dict[str, Any], fields: dict[str, Any],
                                               caps: frozenset[Capability], says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        blkio.resolve_devices(_spec(**fields), caps)


def test_two_paths_of_one_device_are_refused(host: dict[str, Any]) -> None:
    host["/dev/disk/by-id/virtio-x"] = (254, 0)
    spec = _spec(device_read_bps=[{"path": "/dev/vda", "rate": 1},
                                  {"path": "/dev/disk/by-id/virtio-x", "rate": 2}])
    with pytest.raises(InvalidArgument, match="254:0 given twice"):
        blkio.resolve_devices(spec, ALL)


def test_blockdev_reads_sysfs(tmp_path: Path) -> None:
    assert blockdev.parse_scheduler("none [mq-deadline] kyber bfq") == (
        "mq-deadline", frozenset({"none", "mq-deadline", "kyber", "bfq"}))
    assert blockdev.parse_scheduler("") == (None, frozenset())
    (tmp_path / "8:0" / "queue").mkdir(parents=True)
    (tmp_path / "8:0" / "queue" / "scheduler").write_text("mq-deadline [bfq] none\n")
    (tmp_path / "8:1").mkdir()
    (tmp_path / "8:1" / "partition").write_text("1\n")
    assert blockdev.kind(8, 0, tmp_path) == "disk"
    assert blockdev.kind(8, 1, tmp_path) == "partition"
    assert blockdev.kind(8, 2, tmp_path) is None
    assert blockdev.scheduler(8, 0, tmp_path) == "bfq"
    assert blockdev.scheduler(8, 1, tmp_path) is None
    assert blockdev.device_number("/dev/null") is None  # a character device
    assert blockdev.device_number("/no/such/node") is None


# ---- what the host's cgroups can apply ----------------------------------------------------

V1_ROOT = frozenset({"blkio.throttle.read_bps_device", "blkio.bfq.io_service_bytes",
                     "cgroup.procs"})
SCHEDS = frozenset({"none", "mq-deadline", "bfq"})


@pytest.mark.parametrize(("args", "want"), [
    (("hybrid", V1_ROOT, frozenset(), frozenset(), SCHEDS), ALL),  # this kind of host
    (("v1", V1_ROOT, frozenset(), frozenset(), frozenset({"mq-deadline"})),
     {Capability.BLKIO_THROTTLE}),  # no bfq: runc's blkio.bfq.weight would be missing
    (("v1", frozenset({"blkio.weight", "blkio.throttle.read_bps_device"}), frozenset(),
      frozenset(), frozenset({"cfq"})), {Capability.BLKIO_THROTTLE, Capability.BLKIO_WEIGHT}),
    (("hybrid", None, frozenset({"io"}), frozenset(), SCHEDS), set()),  # runc drives v1
    (("v2", None, frozenset({"cpu", "io"}), frozenset(), SCHEDS), ALL),
    (("v2", None, frozenset({"cpu", "io"}), frozenset({"io.cost.qos"}),
      frozenset({"mq-deadline"})), {Capability.BLKIO_THROTTLE, Capability.BLKIO_WEIGHT}),
    (("v2", None, frozenset({"cpu", "io"}), frozenset(), frozenset({"none"})),
     {Capability.BLKIO_THROTTLE}),
    (("v2", None, frozenset({"cpu", "memory"}), frozenset(), SCHEDS), set()),  # no io
])
def test_host_support(args: tuple[Any, ...], want: set[Capability]) -> None:
    assert support(*args) == frozenset(want)


# ---- the OCI config -----------------------------------------------------------------------


def _config(**kw: Any) -> dict[str, Any]:
    spec = ContainerSpec(id="c1abcdef0123456789", name="web", args=["sh"], env=[], **kw)
    return build_oci_config(spec, 0, 0, [], Path("/r"), {})


def test_block_io_in_the_oci_config() -> None:
    res = Resources(blkio_weight=300, blkio_weight_device=(DeviceLimit(8, 16, 200),),
                    device_read_bps=(DeviceLimit(254, 0, MiB),),
                    device_write_bps=(DeviceLimit(254, 0, 2 * MiB),),
                    device_read_iops=(DeviceLimit(254, 0, 100),),
                    device_write_iops=(DeviceLimit(254, 0, 200), DeviceLimit(7, 0, 5)))
    block_io = _config(resources=res)["linux"]["resources"]["blockIO"]
    assert block_io == {
        "weight": 300,
        "weightDevice": [{"major": 8, "minor": 16, "weight": 200}],
        "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": MiB}],
        "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 2 * MiB}],
        "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 200},
                                    {"major": 7, "minor": 0, "rate": 5}]}
    assert "blockIO" not in _config()["linux"]["resources"]


def test_domainname_in_the_oci_config_and_etc_hosts() -> None:
    cfg = _config(hostname="web", domainname="example.org")
    assert (cfg["hostname"], cfg["domainname"]) == ("web", "example.org")
    assert "domainname" not in _config()
    assert hosts_names("web", "example.org") == "web.example.org web"
    assert hosts_names("web.a", "example.org") == "web.a.example.org web.a web"
    assert hosts_names("web") == "web"


def test_agent_turns_the_spec_into_resources() -> None:
    from berth.agent.specbuild import resources_from

    res = resources_from({"blkio_weight": 300, "device_read_iops": [
        {"path": "/dev/vda", "rate": 10, "major": 254, "minor": 0}]})
    assert res.blkio_weight == 300
    assert res.device_read_iops == (DeviceLimit(254, 0, 10),) and res.device_read_bps == ()


# ---- Docker's API -------------------------------------------------------------------------


def test_docker_create_body_translates() -> None:
    req = translate.container_create({
        "Image": "busybox", "Domainname": "example.org", "HostConfig": {
            "BlkioWeight": 300, "BlkioWeightDevice": [{"Path": "/dev/sdb", "Weight": 200}],
            "BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": MiB}],
            "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": None,
            "BlkioDeviceWriteIOps": [{"Path": "/dev/vda", "Rate": 20}]}})
    assert req.domainname == "example.org" and req.blkio_weight == 300
    assert [(d.path, d.weight) for d in req.blkio_weight_device] == [("/dev/sdb", 200)]
    assert [(d.path, d.rate) for d in req.device_read_bps] == [("/dev/vda", MiB)]
    assert req.device_write_bps == [] and req.device_read_iops == []
    assert [(d.path, d.rate) for d in req.device_write_iops] == [("/dev/vda", 20)]


@pytest.mark.parametrize(("host", "says"), [
    ({"BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": "1mb"}]},
     "HostConfig.BlkioDeviceReadBps[0].Rate: expected an integer"),
    ({"BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": 1, "Major": 8}]},
     "HostConfig.BlkioDeviceReadBps[0].Major"),
    ({"BlkioWeightDevice": {"Path": "/dev/vda"}}, "HostConfig.BlkioWeightDevice: expected"),
    ({"BlkioWeight": 2000}, "blkio_weight"),
    ({"BlkioDeviceWriteIOps": [{"Path": "/dev/vda", "Rate": -1}]}, "greater than 0"),
])
def test_bad_docker_bodies_name_the_field(host: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidArgument, match=says.replace("[", r"\[").replace("]", r"\]")):
        translate.container_create({"Image": "busybox", "HostConfig": host})


def test_docker_inspect_shows_them() -> None:
    spec = {"blkio_weight": 300,
            "device_read_bps": [{"path": "/dev/vda", "rate": MiB, "major": 254, "minor": 0}],
            "blkio_weight_device": [{"path": "/dev/sdb", "weight": 200, "major": 8,
                                     "minor": 16}]}
    host = shapes.host_config(spec)
    assert host["BlkioWeight"] == 300
    assert host["BlkioDeviceReadBps"] == [{"Path": "/dev/vda", "Rate": MiB}]
    assert host["BlkioWeightDevice"] == [{"Path": "/dev/sdb", "Weight": 200}]
    assert host["BlkioDeviceWriteIOps"] is None
    empty = shapes.host_config({})
    assert (empty["BlkioWeight"], empty["BlkioWeightDevice"], empty["BlkioDeviceReadBps"]) == (
        0, [], None)


def test_update_of_the_weight_needs_the_capability() -> None:
    from berth.service.containers import ContainerService

    svc = ContainerService(store=None, hub=None, host="h",  # type: ignore[arg-type]
                           capabilities=frozenset(), images=None,  # type: ignore[arg-type]
                           volumes=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="blkio_weight: this host cannot weight"):
        svc.update(None, "web", ContainerUpdate(blkio_weight=300))  # type: ignore[arg-type]
