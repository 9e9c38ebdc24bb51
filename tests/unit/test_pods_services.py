"""Pods and services, the pure parts: which backends a selector picks, a pod's status, the
namespaces a member joins, the pause image, and the VIP range (on a real SQLite store)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from berth.agent.specbuild import pod_joins
from berth.errors import Conflict, InvalidArgument
from berth.image.base import build_pause_image
from berth.image.blobs import BlobStore
from berth.runtime.base import ContainerSpec, IdMapping
from berth.runtime.oci.spec import build_oci_config
from berth.service import ipam
from berth.service.pods import PodCreate, pod_status
from berth.service.selectors import parse_selector
from berth.service.vips import ServiceCreate, first_addresses, select_backends
from berth.store.db import Store
from berth.store.models import Container, Endpoint, Pod, Service


def box(cid: str, labels: dict[str, str] | None = None, status: str = "running",
        health: str | None = None, project: str = "p", **spec: Any) -> Container:
    return Container(id=cid, project_id=project, name=cid, host="h", image_id="i",
                     image_ref="busybox", spec=spec, labels=labels or {}, created_at=0.0,
                     desired="running", status=status,
                     health={"status": health} if health else None)


def pod(pid: str, infra: str, labels: dict[str, str], project: str = "p") -> Pod:
    return Pod(id=pid, project_id=project, name=pid, labels=labels, infra_id=infra,
               hostname=pid, shared=[], created_at=0.0)


def picked(selector: str, containers: list[Container], pods: list[Pod],
           addresses: dict[str, str], project: str = "p") -> list[tuple[str, str]]:
    return [(b.name, b.address) for b in select_backends(
        parse_selector(selector), project, containers, pods, addresses)]


def test_backends_are_running_ready_matching_containers_of_the_project() -> None:
    addresses = {f"c{i}": f"10.0.0.{i}" for i in range(1, 9)}
    containers = [
        box("c1", {"app": "web"}),
        box("c2", {"app": "web"}, status="exited"),
        box("c3", {"app": "web"}, health="starting"),
        box("c4", {"app": "web"}, health="unhealthy"),
        box("c5", {"app": "web"}, health="healthy"),
        box("c6", {"app": "api"}),
        box("c7", {"app": "web"}, status="paused"),
        box("c8", {"app": "web"}, project="other"),
        box("c9", {"app": "web"}),  # no address: on no bridge network
    ]
    assert picked("app=web", containers, [], addresses) == [("c1", "10.0.0.1"),
                                                            ("c5", "10.0.0.5")]
    assert picked("app in (web,api),!gone", containers, [], addresses) == [
        ("c1", "10.0.0.1"), ("c5", "10.0.0.5"), ("c6", "10.0.0.6")]
    assert picked("app=web", containers, [], addresses, project="other") == [
        ("c8", "10.0.0.8")]


def test_pods_are_one_backend_at_their_infra_address() -> None:
    addresses = {"infra1": "10.0.0.20", "infra2": "10.0.0.30", "solo": "10.0.0.40"}
    infra1 = box("infra1", {"io.berth.pod": "one"}, infra_of="pod1")
    infra2 = box("infra2", {"io.berth.pod": "two"}, infra_of="pod2")
    m1 = box("m1", {"app": "web"}, pod_id="pod1", pod_infra="infra1")
    m2 = box("m2", {"app": "web"}, pod_id="pod1", pod_infra="infra1")
    sick = box("m3", {}, health="unhealthy", pod_id="pod2", pod_infra="infra2")
    pods = [pod("pod1", "infra1", {"app": "web"}), pod("pod2", "infra2", {"app": "web"})]
    every = [infra1, infra2, m1, m2, sick, box("solo", {"app": "web"})]
    # pod1 matches as a pod and through its members: one backend; pod2 has a sick member
    assert picked("app=web", every, pods, addresses) == [("pod1", "10.0.0.20"),
                                                         ("solo", "10.0.0.40")]
    # an infra container is never picked by its own labels
    assert picked("io.berth.pod", every, pods, addresses) == []
    # a pod whose infra container is not running is no backend
    infra1.status = "exited"
    assert picked("app=web", every, pods, addresses) == [("m1", "10.0.0.20"),
                                                         ("solo", "10.0.0.40")]


def test_first_addresses_take_eth0() -> None:
    eps = [Endpoint(owner_id="a", network_id="n2", project_id="p", address="10.1.0.2",
                    aliases=[], ifname="eth1", created_at=0.0),
           Endpoint(owner_id="a", network_id="n1", project_id="p", address="10.0.0.2",
                    aliases=[], ifname="eth0", created_at=0.0)]
    assert first_addresses(eps) == {"a": "10.0.0.2"}


def test_pod_status() -> None:
    infra = box("i")
    assert pod_status(infra, [box("a"), box("b")]) == "Running"
    assert pod_status(infra, [box("a"), box("b", status="exited")]) == "Degraded"
    assert pod_status(box("i", status="exited"), [box("a", status="exited")]) == "Exited"
    assert pod_status(box("i", status="created"), []) == "Created"
    assert pod_status(infra, []) == "Running"
    assert pod_status(box("i", status="paused"), [box("a", status="paused")]) == "Paused"


def test_members_join_the_infra_namespaces() -> None:
    assert pod_joins(42, [], True) == {"network": "/proc/42/ns/net", "uts": "/proc/42/ns/uts",
                                       "user": "/proc/42/ns/user"}
    assert pod_joins(7, ["ipc", "pid"], False) == {
        "network": "/proc/7/ns/net", "uts": "/proc/7/ns/uts", "ipc": "/proc/7/ns/ipc",
        "pid": "/proc/7/ns/pid"}
    spec = ContainerSpec(id="c1abcdef0123", name="m", args=["sh"], env=[],
                         idmap=IdMapping(host_base=100000, size=65536),
                         joins=pod_joins(42, ["pid"], True))
    cfg = build_oci_config(spec, 0, 0, [], Path("/r"), {})
    namespaces = {n["type"]: n.get("path") for n in cfg["linux"]["namespaces"]}
    assert namespaces == {"pid": "/proc/42/ns/pid", "ipc": None, "uts": "/proc/42/ns/uts",
                          "mount": None, "cgroup": None, "network": "/proc/42/ns/net",
                          "user": "/proc/42/ns/user"}
    assert cfg["linux"]["uidMappings"]  # the mapping of the rootfs stays the project's
    # a join the container would not otherwise have is refused, not silently dropped
    host = ContainerSpec(id="c1abcdef0123", name="m", args=["sh"], env=[], network="host",
                         joins={"network": "/proc/1/ns/net"})
    with pytest.raises(InvalidArgument, match="network"):
        build_oci_config(host, 0, 0, [], Path("/r"), {})


def test_pod_and_service_requests() -> None:
    assert PodCreate(name="p", share=["pid", "net", "ipc", "pid"]).share == ["ipc", "pid"]
    with pytest.raises(ValueError, match="mnt"):
        PodCreate(name="p", share=["mnt"])
    with pytest.raises(ValueError, match="hostname"):
        PodCreate(name="p", hostname="not valid")
    with pytest.raises(ValueError, match="DNS name"):
        ServiceCreate(name="a.b", selector="a=b", ports=[{"port": 1}])
    with pytest.raises(ValueError, match="tcp"):
        ServiceCreate(name="a", selector="a=b", ports=[{"port": 1, "proto": "sctp"}])


@pytest.mark.skipif(not Path("/usr/bin/catatonit").exists(),
                    reason="the host has no catatonit (Debian package catatonit)")
def test_pause_image_is_catatonit_and_the_same_every_time(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    first = build_pause_image(blobs)
    assert build_pause_image(blobs).id == first.id
    assert first.config["config"]["Entrypoint"] == ["/catatonit", "-P"]
    assert len(first.layers) == 1


def test_pause_image_refuses_a_dynamic_binary(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="catatonit"):
        build_pause_image(BlobStore(tmp_path / "blobs"), Path("/bin/ls"))
    with pytest.raises(InvalidArgument, match="catatonit"):
        build_pause_image(BlobStore(tmp_path / "blobs"), tmp_path / "missing")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    try:
        yield st
    finally:
        st.close()


def test_vips_come_from_the_service_range_once_each(store: Store) -> None:
    with store.session() as s:
        first = ipam.allocate_vip(s)
        assert first == IPv4Address("10.212.0.1")
        s.add(Service(id="s1", project_id="default", name="a", selector="a=b", ports=[],
                      vip=str(first), labels={}, created_at=time.time()))
        s.flush()
        # the next free one, skipping what a host route covers
        routed = [IPv4Network("10.212.0.0/31"), IPv4Network("10.212.0.2/32")]
        assert ipam.allocate_vip(s, routed) == IPv4Address("10.212.0.3")
        with pytest.raises(Conflict, match="10.212.0.0/16"):
            ipam.choose_subnet(s, IPv4Network("10.212.128.0/24"))
        with pytest.raises(Conflict, match="10.212.0.0/16"):
            ipam.choose_subnet(s, IPv4Network("10.0.0.0/8"))


def test_only_a_stop_with_addresses_asks_for_a_network_sync(store: Store) -> None:
    """A container without addresses (network none, the native default) changes no rule,
    name or service backend when it stops: it must not cost every short run a sync. One
    with an endpoint, and a pod member through its infra container's, does."""
    from berth.service.endpoints import has_addresses
    from berth.store.db import DEFAULT_PROJECT
    from berth.store.models import Network

    with store.session() as s:
        s.add(Network(id="n1", project_id=DEFAULT_PROJECT, name="n1", created_at=0.0,
                      subnet="10.99.0.0/24", gateway="10.99.0.1"))
        s.flush()
        s.add(Endpoint(owner_id="infra", network_id="n1", project_id=DEFAULT_PROJECT,
                       address="10.99.0.2", ifname="eth0", created_at=0.0))
    with store.session() as s:
        assert has_addresses(s, {"network": "none"}, "plain") is False
        assert has_addresses(s, {}, "infra") is True
        assert has_addresses(s, {"pod_infra": "infra"}, "member") is True
