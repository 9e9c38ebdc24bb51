"""NetworkService on a real (temporary SQLite) store: names, lookups, membership."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.errors import Conflict, InvalidArgument, NotFound, PolicyDenied
from berth.service.context import Context
from berth.service.networks import NetworkCreate, NetworkService, container_networks
from berth.store.db import DEFAULT_PROJECT, Store
from berth.store.models import Container, Project


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[NetworkService]:
    store = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    with store.session() as s:
        s.add(Project(id="other", name="other", created_at=0.0, userns_slot=1))
    try:
        yield NetworkService(store)
    finally:
        store.close()


ME, THEM = Context(project_id=DEFAULT_PROJECT), Context(project_id="other")


def _container(svc: NetworkService, name: str, spec: dict) -> Container:
    row = Container(id=f"{name}-id", project_id=DEFAULT_PROJECT, name=name, host="h",
                    image_id="i", image_ref="busybox", spec=spec, labels={},
                    created_at=time.time(), desired="created", status="created")
    with svc.store.session() as s:
        s.add(row)
    return row


def test_predefined_networks_in_every_project(svc: NetworkService) -> None:
    assert [n.name for n in svc.list(ME)] == ["bridge", "host", "none"]
    mine, theirs = svc.get(ME, "bridge"), svc.get(THEM, "bridge")
    assert mine.predefined and mine.id != theirs.id
    assert svc.get(ME, mine.id[:6]).name == "bridge"
    with pytest.raises(PolicyDenied, match="pre-defined network"):
        svc.remove(ME, "host")
    with pytest.raises(PolicyDenied):
        svc.create(ME, NetworkCreate(name="none"))


def test_names_are_unique_per_project(svc: NetworkService) -> None:
    net = svc.create(ME, NetworkCreate(name="app", labels={"a": "1"}))
    with pytest.raises(Conflict, match="network with name app already exists"):
        svc.create(ME, NetworkCreate(name="app"))
    svc.create(THEM, NetworkCreate(name="app"))  # another project's own
    assert svc.get(ME, "app").id == net.id
    with pytest.raises(NotFound, match="network app2 not found"):
        svc.get(ME, "app2")
    with pytest.raises(NotFound):
        svc.get(THEM, net.id)
    assert [n.name for n in svc.list(ME, {"label": ["a=1"]})] == ["app"]
    assert [n.name for n in svc.list(ME, {"type": ["custom"]})] == ["app"]
    with pytest.raises(InvalidArgument):
        svc.list(ME, {"colour": ["red"]})


def test_bad_requests() -> None:
    with pytest.raises(ValueError, match="not inside the subnet"):
        NetworkCreate(name="x", ipam={"config": [{"subnet": "10.0.0.0/24",
                                                  "gateway": "10.0.1.1"}]})
    with pytest.raises(ValueError, match="invalid subnet"):
        NetworkCreate(name="x", ipam={"config": [{"subnet": "10.0.0.1/24"}]})
    with pytest.raises(InvalidArgument, match="invalid network name"):
        NetworkCreate(name="a/b")


def test_membership_connect_disconnect_and_removal(svc: NetworkService) -> None:
    svc.create(ME, NetworkCreate(name="app"))
    web = _container(svc, "web", {"network": "none", "networks": {"app": ["www"]}})
    lone = _container(svc, "lone", {"network": "none"})
    assert [(r.name, a) for r, a in svc.members(ME, svc.get(ME, "app"))] == [("web", ["www"])]
    assert [r.name for r, _ in svc.members(ME, svc.get(ME, "none"))] == ["lone"]
    with pytest.raises(Conflict, match="active endpoints"):
        svc.remove(ME, "app")
    svc.connect(ME, "app", lone, ["db"])
    with pytest.raises(Conflict, match="already exists"):
        svc.connect(ME, "app", lone)
    with svc.store.session() as s:
        assert container_networks(s.get(Container, lone.id).spec) == {"app": ["db"]}
    svc.disconnect(ME, "app", lone)
    svc.disconnect(ME, "app", web)
    with pytest.raises(Conflict, match="not connected"):
        svc.disconnect(ME, "app", web)
    assert svc.prune(ME) == ["app"]
    assert [n.name for n in svc.list(ME)] == ["bridge", "host", "none"]


def test_host_mode_containers_cannot_connect(svc: NetworkService) -> None:
    svc.create(ME, NetworkCreate(name="app"))
    box = _container(svc, "h", {"network": "host"})
    assert container_networks(box.spec) == {"host": []}
    with pytest.raises(Conflict, match="host"):
        svc.connect(ME, "app", box)
